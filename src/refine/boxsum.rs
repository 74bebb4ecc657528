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
