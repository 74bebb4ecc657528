//! Diagonally preconditioned conjugate gradient on one level.

use super::laplacian::Level;

impl Level {
    /// Diagonally preconditioned CG from the current `x`; pushes ‖r‖ per iteration (first: initial).
    #[inline(always)]
    pub(super) fn solve(&mut self, iterations: usize, residuals: &mut Vec<f64>) -> usize {
        if self.unknown == 0 {
            return 0;
        }
        self.apply(true);
        let mut rz = 0.0;
        let mut rr = 0.0;
        for range in &self.u_ranges {
            let range = range.clone();
            for ((((((r, z), d), &q), &x), (&prior, &diag)), &lambda) in self.r[range.clone()]
                .iter_mut()
                .zip(&mut self.z[range.clone()])
                .zip(&mut self.d[range.clone()])
                .zip(&self.q[range.clone()])
                .zip(&self.x[range.clone()])
                .zip(
                    data_slice(&self.prior, &self.zeros, self.data_term, range.clone())
                        .iter()
                        .zip(&self.diag[range.clone()]),
                )
                .zip(data_slice(&self.weight, &self.zeros, self.data_term, range))
            {
                *r = lambda * (prior - x) - q;
                *z = *r / (diag + lambda);
                *d = *z;
                rz += *r * *z;
                rr += *r * *r;
            }
        }
        residuals.push(rr.sqrt());
        let mut done = 0;
        for _ in 0..iterations {
            if rz <= 1e-30 {
                break;
            }
            self.apply(false);
            let mut dq = 0.0;
            for range in &self.u_ranges {
                for ((q, &d), &lambda) in self.q[range.clone()]
                    .iter_mut()
                    .zip(&self.d[range.clone()])
                    .zip(data_slice(
                        &self.weight,
                        &self.zeros,
                        self.data_term,
                        range.clone(),
                    ))
                {
                    *q += lambda * d;
                    dq += d * *q;
                }
            }
            if dq <= 1e-30 || !dq.is_finite() {
                break;
            }
            let step = rz / dq;
            let (mut rz_new, mut rr) = (0.0, 0.0);
            for range in &self.u_ranges {
                let range = range.clone();
                for (((((x, r), z), (&d, &q)), &diag), &lambda) in self.x[range.clone()]
                    .iter_mut()
                    .zip(&mut self.r[range.clone()])
                    .zip(&mut self.z[range.clone()])
                    .zip(self.d[range.clone()].iter().zip(&self.q[range.clone()]))
                    .zip(&self.diag[range.clone()])
                    .zip(data_slice(&self.weight, &self.zeros, self.data_term, range))
                {
                    *x += step * d;
                    *r -= step * q;
                    *z = *r / (diag + lambda);
                    rz_new += *r * *z;
                    rr += *r * *r;
                }
            }
            let beta = rz_new / rz;
            rz = rz_new;
            for range in &self.u_ranges {
                for (d, &z) in self.d[range.clone()].iter_mut().zip(&self.z[range.clone()]) {
                    *d = z + beta * *d;
                }
            }
            residuals.push(rr.sqrt());
            done += 1;
        }
        done
    }
}

/// `plane[range]` with a data term, else that many zeros (`zeros` is a row long, and a range
/// of `U` never leaves its row).
#[inline(always)]
fn data_slice<'a>(
    plane: &'a [f64],
    zeros: &'a [f64],
    data_term: bool,
    range: std::ops::Range<usize>,
) -> &'a [f64] {
    if data_term {
        &plane[range]
    } else {
        &zeros[..range.len()]
    }
}
