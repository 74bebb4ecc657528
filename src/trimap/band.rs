//! The band builder: a coarse person mask → background / unknown / foreground, every pixel
//! closer than the band radius to the thresholded contour unknown (an exact Euclidean distance
//! transform, so the band is round, not blocky).

use super::{BACKGROUND, FOREGROUND, UNKNOWN};

/// Turns a mask into a trimap, keeping its scratch buffers between frames.
#[derive(Debug, Default)]
pub struct TrimapBuilder {
    /// Squared distance to the nearest contour pixel.
    dist: Vec<f32>,
    /// Row scratch of the distance transform.
    line: Vec<f32>,
    /// Per column: rows since the last contour pixel of the column sweeps.
    gap: Vec<f32>,
    vertices: Vec<usize>,
    bounds: Vec<f32>,
}

const FAR: f32 = 1.0e20;

impl TrimapBuilder {
    pub fn new() -> Self {
        Self::default()
    }

    /// Writes the trimap of `mask` (`width × height`, values 0..1) into `out`.
    ///
    /// A pixel is on the contour when it and a 4-neighbour fall on different sides of
    /// `threshold`; pixels whose distance to the nearest contour pixel is below `radius`
    /// are [`UNKNOWN`], the rest [`FOREGROUND`] or [`BACKGROUND`]. `radius` 0 gives a binary
    /// mask.
    pub fn build(
        &mut self,
        mask: &[f32],
        width: usize,
        height: usize,
        threshold: f32,
        radius: f32,
        out: &mut [u8],
    ) {
        self.build_biased(mask, width, height, threshold, (radius, radius), out);
    }

    /// [`build`](Self::build) with different radii on the two sides of the contour:
    /// `(outside, inside)`: background pixels closer than `outside` to the contour and
    /// foreground pixels closer than `inside` become [`UNKNOWN`].
    pub fn build_biased(
        &mut self,
        mask: &[f32],
        width: usize,
        height: usize,
        threshold: f32,
        (outside, inside): (f32, f32),
        out: &mut [u8],
    ) {
        assert_eq!(mask.len(), width * height, "mask size");
        assert_eq!(out.len(), width * height, "trimap size");
        for (o, &m) in out.iter_mut().zip(mask) {
            *o = if m >= threshold {
                FOREGROUND
            } else {
                BACKGROUND
            };
        }
        let (outside, inside) = (outside.max(0.0), inside.max(0.0));
        if outside <= 0.0 && inside <= 0.0 {
            return;
        }
        self.contour_distance(out, width, height, outside.max(inside));
        let (out2, in2) = (outside * outside, inside * inside);
        for (o, &d) in out.iter_mut().zip(&self.dist) {
            let r2 = if *o == FOREGROUND { in2 } else { out2 };
            if d < r2 {
                *o = UNKNOWN;
            }
        }
    }

    /// Squared Euclidean distance from each pixel to the nearest contour pixel of `binary`:
    /// exact where it is below `limit²`, at least `limit²` elsewhere (the band needs no more).
    fn contour_distance(&mut self, binary: &[u8], width: usize, height: usize, limit: f32) {
        self.dist.clear();
        self.dist.resize(width * height, FAR);
        // Row by row, with no branch in the inner loops, so the compiler vectorises them.
        let mut any = false;
        for y in 0..height {
            let row = &binary[y * width..(y + 1) * width];
            // Outside the frame a neighbour counts as equal (no contour at the border).
            let up = if y > 0 {
                &binary[(y - 1) * width..y * width]
            } else {
                row
            };
            let down = if y + 1 < height {
                &binary[(y + 1) * width..(y + 2) * width]
            } else {
                row
            };
            let dist = &mut self.dist[y * width..(y + 1) * width];
            for x in 0..width {
                let v = row[x];
                let edge = (row[x.saturating_sub(1)] != v)
                    | (row[(x + 1).min(width - 1)] != v)
                    | (up[x] != v)
                    | (down[x] != v);
                dist[x] = if edge { 0.0 } else { FAR };
                any |= edge;
            }
        }
        if !any {
            return;
        }
        // Columns: exact 1-D distance to the nearest contour pixel by two sweeps, each walking
        // the rows in order with one running gap per column (infinite before the first contour
        // pixel, which leaves the pixel empty for the row pass).
        self.gap.clear();
        self.gap.resize(width, f32::INFINITY);
        for row in self.dist.chunks_exact_mut(width) {
            for (d, g) in row.iter_mut().zip(&mut self.gap) {
                let on = *d == 0.0;
                *g = if on { 0.0 } else { *g + 1.0 };
                *d = if on { 0.0 } else { (*g * *g).min(FAR) };
            }
        }
        self.gap.fill(f32::INFINITY);
        for row in self.dist.chunks_exact_mut(width).rev() {
            for (d, g) in row.iter_mut().zip(&mut self.gap) {
                let on = *d == 0.0;
                *g = if on { 0.0 } else { *g + 1.0 };
                *d = d.min(*g * *g);
            }
        }
        self.line.resize(width, 0.0);
        let reach = limit.max(0.0).ceil() as usize;
        if reach <= MAX_WINDOW_REACH {
            // Rows, for a band of a few pixels: the minimum of `column distance + dx²` over
            // |dx| ≤ ⌈limit⌉, whole rows at a time (vectorised). A true distance below limit²
            // comes from such a dx, so it is found exactly; anything else stays ≥ limit².
            for row in self.dist.chunks_exact_mut(width) {
                self.line.copy_from_slice(row);
                for dx in 1..=reach.min(width - 1) {
                    let dd = (dx * dx) as f32;
                    for (o, &v) in row[..width - dx].iter_mut().zip(&self.line[dx..]) {
                        *o = o.min(v + dd);
                    }
                    for (o, &v) in row[dx..].iter_mut().zip(&self.line[..width - dx]) {
                        *o = o.min(v + dd);
                    }
                }
            }
            return;
        }
        // Rows: lower envelope of parabolas (Felzenszwalb & Huttenlocher 2012).
        self.vertices.resize(width, 0);
        self.bounds.resize(width + 1, 0.0);
        for y in 0..height {
            let row = &mut self.dist[y * width..(y + 1) * width];
            self.line.copy_from_slice(row);
            distance_1d(&self.line, &mut self.vertices, &mut self.bounds, row);
        }
    }
}

/// Up to this band radius (in pixels of the trimap's grid) the row pass of the distance
/// transform is a windowed minimum (`2·reach + 1` vectorised passes over each row); above it,
/// the exact lower envelope of parabolas, whose cost does not depend on the radius.
const MAX_WINDOW_REACH: usize = 24;

/// 1-D squared distance transform of the sampled function `f` into `out`; samples at or
/// above `FAR` are empty and contribute no parabola.
fn distance_1d(f: &[f32], v: &mut [usize], z: &mut [f32], out: &mut [f32]) {
    let mut k: Option<usize> = None;
    for (q, &fq) in f.iter().enumerate() {
        if fq >= FAR {
            continue;
        }
        let Some(mut kk) = k else {
            k = Some(0);
            v[0] = q;
            z[0] = f32::NEG_INFINITY;
            z[1] = f32::INFINITY;
            continue;
        };
        loop {
            let p = v[kk];
            let s = ((fq + (q * q) as f32) - (f[p] + (p * p) as f32)) / (2.0 * (q - p) as f32);
            // z[0] is -inf, so this stops at the first vertex at the latest.
            if s <= z[kk] {
                kk -= 1;
                continue;
            }
            kk += 1;
            v[kk] = q;
            z[kk] = s;
            z[kk + 1] = f32::INFINITY;
            break;
        }
        k = Some(kk);
    }
    if k.is_none() {
        return; // no finite sample in this line: leave it as it is
    }
    let mut kk = 0;
    for (q, o) in out.iter_mut().enumerate() {
        while z[kk + 1] < q as f32 {
            kk += 1;
        }
        let d = q as f32 - v[kk] as f32;
        *o = d * d + f[v[kk]];
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A disc of radius `r` centred in a `w × h` mask (1 inside, 0 outside).
    fn disc(w: usize, h: usize, r: f32) -> Vec<f32> {
        let (cx, cy) = (w as f32 / 2.0, h as f32 / 2.0);
        (0..w * h)
            .map(|i| {
                let (x, y) = ((i % w) as f32 + 0.5, (i / w) as f32 + 0.5);
                if ((x - cx).powi(2) + (y - cy).powi(2)).sqrt() < r {
                    1.0
                } else {
                    0.0
                }
            })
            .collect()
    }

    fn count(t: &[u8], v: u8) -> usize {
        t.iter().filter(|&&x| x == v).count()
    }

    #[test]
    fn classes_are_only_the_three_values() {
        let (w, h) = (80, 60);
        let mask: Vec<f32> = (0..w * h).map(|i| (i % w) as f32 / w as f32).collect();
        let mut out = vec![7u8; w * h];
        TrimapBuilder::new().build(&mask, w, h, 0.5, 4.0, &mut out);
        assert!(out.iter().all(|&v| v == 0 || v == 128 || v == 255));
        assert!(count(&out, FOREGROUND) > 0 && count(&out, BACKGROUND) > 0);
    }

    /// An 80×30 mask with a vertical edge at x = 40 (foreground to the right): its contour
    /// pixels are x = 39 and 40.
    const EDGE: (usize, usize) = (80, 30);

    fn vertical_edge() -> Vec<f32> {
        let (w, h) = EDGE;
        (0..w * h)
            .map(|i| if i % w >= 40 { 1.0 } else { 0.0 })
            .collect()
    }

    /// Asserts that the trimap of [`vertical_edge`] is unknown exactly on the columns `band`.
    fn assert_edge_band(out: &[u8], band: std::ops::RangeInclusive<usize>) {
        let (w, h) = EDGE;
        for y in 0..h {
            for x in 0..w {
                let want = if band.contains(&x) {
                    UNKNOWN
                } else if x >= 40 {
                    FOREGROUND
                } else {
                    BACKGROUND
                };
                assert_eq!(out[y * w + x], want, "pixel ({x},{y})");
            }
        }
    }

    #[test]
    fn band_has_the_requested_width() {
        // With radius 5 the unknown band covers x in 35..=44 on every row, nothing else.
        let (w, h) = EDGE;
        let mut out = vec![0u8; w * h];
        TrimapBuilder::new().build(&vertical_edge(), w, h, 0.5, 5.0, &mut out);
        assert_edge_band(&out, 35..=44);
    }

    #[test]
    fn biased_band_reaches_its_own_radius_on_each_side() {
        // 8 px outside and 2 px inside: the background side x = 32..=39 (the contour pixel 39
        // and 7 more), the foreground side x = 40..=41 (the contour pixel 40 and 1 more).
        let (w, h) = EDGE;
        let mask = vertical_edge();
        let mut out = vec![0u8; w * h];
        TrimapBuilder::new().build_biased(&mask, w, h, 0.5, (8.0, 2.0), &mut out);
        assert_edge_band(&out, 32..=41);
        // Only an inside band, and none at all.
        TrimapBuilder::new().build_biased(&mask, w, h, 0.5, (0.0, 3.0), &mut out);
        let unknown: Vec<usize> = (0..w).filter(|&x| out[x] == UNKNOWN).collect();
        assert_eq!(unknown, [40, 41, 42]);
        TrimapBuilder::new().build_biased(&mask, w, h, 0.5, (0.0, 0.0), &mut out);
        assert_eq!(count(&out, UNKNOWN), 0);
    }

    #[test]
    fn band_is_round_around_a_disc() {
        // Distance is Euclidean: the unknown ring around a disc of radius 20 with band 6 lies
        // between radii ~14 and ~26 in every direction, diagonals included.
        let (w, h) = (100, 100);
        let mask = disc(w, h, 20.0);
        let mut out = vec![0u8; w * h];
        TrimapBuilder::new().build(&mask, w, h, 0.5, 6.0, &mut out);
        for (i, &v) in out.iter().enumerate() {
            let (x, y) = ((i % w) as f32 + 0.5 - 50.0, (i / w) as f32 + 0.5 - 50.0);
            let r = (x * x + y * y).sqrt();
            if r < 13.0 {
                assert_eq!(v, FOREGROUND, "r={r}");
            } else if (15.5..24.5).contains(&r) {
                assert_eq!(v, UNKNOWN, "r={r}");
            } else if r > 27.0 {
                assert_eq!(v, BACKGROUND, "r={r}");
            }
        }
    }

    #[test]
    fn wider_band_only_grows_the_unknown_region() {
        let (w, h) = (64, 48);
        let mask = disc(w, h, 15.0);
        let mut b = TrimapBuilder::new();
        let mut prev = vec![0u8; w * h];
        b.build(&mask, w, h, 0.5, 0.0, &mut prev);
        assert_eq!(count(&prev, UNKNOWN), 0, "radius 0 is a binary mask");
        for r in [1.0, 2.0, 4.0, 8.0, 30.0] {
            let mut cur = vec![0u8; w * h];
            b.build(&mask, w, h, 0.5, r, &mut cur);
            for (p, c) in prev.iter().zip(&cur) {
                if *p == UNKNOWN {
                    assert_eq!(*c, UNKNOWN, "radius {r} shrank the band");
                }
                if *c != UNKNOWN {
                    assert_eq!(p, c, "definite pixels never change class");
                }
            }
            assert!(count(&cur, UNKNOWN) > count(&prev, UNKNOWN));
            prev = cur;
        }
    }

    #[test]
    fn higher_threshold_never_adds_foreground() {
        let (w, h) = (64, 48);
        let mask: Vec<f32> = (0..w * h)
            .map(|i| ((i * 7919) % 1000) as f32 / 1000.0)
            .collect();
        let mut b = TrimapBuilder::new();
        let mut lo = vec![0u8; w * h];
        let mut hi = vec![0u8; w * h];
        b.build(&mask, w, h, 0.3, 0.0, &mut lo);
        b.build(&mask, w, h, 0.7, 0.0, &mut hi);
        for (l, h) in lo.iter().zip(&hi) {
            if *h == FOREGROUND {
                assert_eq!(*l, FOREGROUND);
            }
        }
        assert!(count(&hi, FOREGROUND) < count(&lo, FOREGROUND));
    }

    #[test]
    fn uniform_masks_have_no_unknown_region() {
        let (w, h) = (20, 10);
        let mut out = vec![0u8; w * h];
        let mut b = TrimapBuilder::new();
        b.build(&vec![1.0; w * h], w, h, 0.5, 5.0, &mut out);
        assert!(out.iter().all(|&v| v == FOREGROUND));
        b.build(&vec![0.0; w * h], w, h, 0.5, 5.0, &mut out);
        assert!(out.iter().all(|&v| v == BACKGROUND));
    }

    #[test]
    fn distance_transform_matches_brute_force() {
        let (w, h) = (23, 17);
        let mask: Vec<f32> = (0..w * h)
            .map(|i| {
                if (i * 31 + i / w * 7) % 11 < 3 {
                    1.0
                } else {
                    0.0
                }
            })
            .collect();
        let mut bin = vec![0u8; w * h];
        let mut b = TrimapBuilder::new();
        b.build(&mask, w, h, 0.5, 0.0, &mut bin);
        // Exact everywhere through the parabola envelope; exact below the limit, and at least
        // the limit above it, through the windowed row pass.
        for limit in [100.0, 0.5, 1.0, 2.5, 4.0, 7.0] {
            assert_eq!(limit > MAX_WINDOW_REACH as f32, limit == 100.0);
            b.contour_distance(&bin, w, h, limit);
            let contour: Vec<(usize, usize)> = (0..w * h)
                .filter(|&i| b.dist[i] == 0.0)
                .map(|i| (i % w, i / w))
                .collect();
            let l2 = limit * limit;
            for i in 0..w * h {
                let (x, y) = (i % w, i / w);
                let want = contour
                    .iter()
                    .map(|&(cx, cy)| {
                        let (dx, dy) = (cx as f32 - x as f32, cy as f32 - y as f32);
                        dx * dx + dy * dy
                    })
                    .fold(f32::INFINITY, f32::min);
                if want < l2 {
                    assert_eq!(b.dist[i], want, "pixel ({x},{y}), limit {limit}");
                } else {
                    assert!(
                        b.dist[i] >= l2,
                        "pixel ({x},{y}), limit {limit}: {}",
                        b.dist[i]
                    );
                }
            }
        }
    }
}
