//! Per-row spans of pixel sets and the rectangular dilations that derive the sets every pass
//! runs over.

/// Per-row spans `[x0, x1)` of a pixel set.
#[derive(Debug, Default)]
pub(super) struct Spans {
    row_start: Vec<usize>,
    spans: Vec<(usize, usize)>,
}

impl Spans {
    pub(super) fn set_from_mask(&mut self, mask: &[u8], w: usize, h: usize) {
        self.row_start.clear();
        self.spans.clear();
        for y in 0..h {
            self.row_start.push(self.spans.len());
            let row = &mask[y * w..(y + 1) * w];
            let mut x = 0;
            while x < w {
                if row[x] != 0 {
                    let x0 = x;
                    while x < w && row[x] != 0 {
                        x += 1;
                    }
                    self.spans.push((x0, x));
                } else {
                    x += 1;
                }
            }
        }
        self.row_start.push(self.spans.len());
    }

    #[inline]
    pub(super) fn row(&self, y: usize) -> &[(usize, usize)] {
        &self.spans[self.row_start[y]..self.row_start[y + 1]]
    }
}

/// Dilates each row of a 0/1 mask by `r` pixels left and right, into `out`.
pub(super) fn dilate_rows(mask: &[u8], w: usize, h: usize, r: usize, out: &mut Vec<u8>) {
    out.clear();
    out.resize(w * h, 0);
    for (src, dst) in mask.chunks_exact(w).zip(out.chunks_exact_mut(w)) {
        // Count of set pixels in [x - r, x + r].
        let mut count: usize = src[..(r + 1).min(w)].iter().map(|&v| v as usize).sum();
        for x in 0..w {
            dst[x] = (count > 0) as u8;
            if x + r + 1 < w {
                count += src[x + r + 1] as usize;
            }
            if x >= r {
                count -= src[x - r] as usize;
            }
        }
    }
}

/// Dilates each column of a 0/1 mask by `r` pixels up and down, into `out` (running column
/// counts in `counts`, so rows are read in order).
pub(super) fn dilate_cols(
    mask: &[u8],
    w: usize,
    h: usize,
    r: usize,
    counts: &mut Vec<u32>,
    out: &mut Vec<u8>,
) {
    out.clear();
    out.resize(w * h, 0);
    counts.clear();
    counts.resize(w, 0);
    for y in 0..=r.min(h - 1) {
        for (c, &v) in counts.iter_mut().zip(&mask[y * w..(y + 1) * w]) {
            *c += v as u32;
        }
    }
    for y in 0..h {
        for (o, &c) in out[y * w..(y + 1) * w].iter_mut().zip(counts.iter()) {
            *o = (c > 0) as u8;
        }
        if y + r + 1 < h {
            let add = &mask[(y + r + 1) * w..(y + r + 2) * w];
            for (c, &v) in counts.iter_mut().zip(add) {
                *c += v as u32;
            }
        }
        if y >= r {
            let sub = &mask[(y - r) * w..(y - r + 1) * w];
            for (c, &v) in counts.iter_mut().zip(sub) {
                *c -= v as u32;
            }
        }
    }
}
