//! Running box sums over row spans: horizontal passes into a ring of rows, vertical passes out
//! of it.

/// Number of positions of `[i - r, i + r]` inside `[0, n)`.
#[inline]
pub(super) fn clipped_count(i: usize, r: usize, n: usize) -> usize {
    (i + r).min(n - 1) + 1 - i.saturating_sub(r)
}

/// Horizontal running box sums of the `N` channels that `f(x)` yields, over the spans of one
/// row; windows are clipped at `[0, w)`. `f` is evaluated once per position (into `vals`, a
/// row-long scratch), not once when entering and once when leaving the window.
#[inline(always)]
pub(super) fn hpass<const N: usize>(
    w: usize,
    r: usize,
    spans: &[(usize, usize)],
    f: impl Fn(usize) -> [f64; N],
    vals: &mut [[f64; N]],
    out: &mut [[f64; N]],
) {
    for &(x0, x1) in spans {
        let (lo, hi) = (x0.saturating_sub(r), (x1 + r).min(w));
        for (x, v) in vals[lo..hi].iter_mut().enumerate() {
            *v = f(lo + x);
        }
        let mut s = [0.0; N];
        for v in &vals[lo..(x0 + r + 1).min(hi)] {
            for c in 0..N {
                s[c] += v[c];
            }
        }
        for x in x0..x1 {
            out[x] = s;
            if x + r + 1 < hi {
                let v = &vals[x + r + 1];
                for c in 0..N {
                    s[c] += v[c];
                }
            }
            if x >= r {
                let v = &vals[x - r];
                for c in 0..N {
                    s[c] -= v[c];
                }
            }
        }
    }
}

/// Vertical box sums at the spans of row `y`: adds rows `y - r ..= y + r` (clipped at
/// `[0, h)`) of `ring` into `out` (a row). `ring` holds `2r + 1` rows of width `w`, row `yy` at
/// `yy mod (2r + 1)`, filled by [`hpass`] just before.
#[inline(always)]
pub(super) fn vpass<const N: usize>(
    w: usize,
    h: usize,
    r: usize,
    y: usize,
    spans: &[(usize, usize)],
    ring: &[[f64; N]],
    out: &mut [[f64; N]],
) {
    let rows = 2 * r + 1;
    for &(x0, x1) in spans {
        out[x0..x1].fill([0.0; N]);
        for yy in y.saturating_sub(r)..=(y + r).min(h - 1) {
            let base = (yy % rows) * w;
            for (o, v) in out[x0..x1].iter_mut().zip(&ring[base + x0..base + x1]) {
                for c in 0..N {
                    o[c] += v[c];
                }
            }
        }
    }
}

/// The row index of `ring` where row `y` goes.
#[inline(always)]
pub(super) fn ring_row<T>(ring: &mut [T], w: usize, r: usize, y: usize) -> &mut [T] {
    let base = (y % (2 * r + 1)) * w;
    &mut ring[base..base + w]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn horizontal_sums_match_brute_force_at_every_radius() {
        // Spans touching both edges, single pixels and rows of one or two pixels: every
        // position's sum is that of its window clipped to the row.
        for w in [1usize, 2, 3, 7, 16] {
            let value = |x: usize| [x as f64 * 0.5 + 1.0, (x * x) as f64];
            let mut spans_sets = vec![vec![(0, w)], vec![(0, 1)], vec![(w - 1, w)]];
            if w > 4 {
                spans_sets.push(vec![(0, 2), (3, w - 1)]);
                spans_sets.push(vec![(1, 2), (w - 2, w)]);
            }
            for r in 1..=3 {
                for spans in &spans_sets {
                    let mut vals = vec![[0.0; 2]; w];
                    let mut out = vec![[f64::NAN; 2]; w];
                    hpass(w, r, spans, value, &mut vals, &mut out);
                    for &(x0, x1) in spans {
                        for (x, got) in out.iter().enumerate().take(x1).skip(x0) {
                            let want = (x.saturating_sub(r)..=(x + r).min(w - 1))
                                .map(value)
                                .fold([0.0; 2], |a, v| [a[0] + v[0], a[1] + v[1]]);
                            assert_eq!(*got, want, "w {w}, r {r}, spans {spans:?}, x {x}");
                        }
                    }
                }
            }
        }
    }
}
