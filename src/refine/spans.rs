//! Per-row spans of pixel sets and the rectangular dilations that derive the sets every pass
//! runs over. The sets are built and dilated as span lists (a few spans per row), never as
//! full-size masks, so their cost follows the band, not the level's area.

/// Per-row spans `[x0, x1)` of a pixel set, sorted and disjoint within each row.
#[derive(Debug, Default)]
pub(super) struct Spans {
    row_start: Vec<usize>,
    spans: Vec<(usize, usize)>,
}

impl Spans {
    /// The spans of the pixels whose `known` flag is 0 (a `w × h` plane of 0/1 bytes).
    pub(super) fn set_from_unknown(&mut self, known: &[u8], w: usize, h: usize) {
        self.row_start.clear();
        self.spans.clear();
        for row in known.chunks_exact(w).take(h) {
            self.row_start.push(self.spans.len());
            let mut x = 0;
            loop {
                x = skip_while_equal(row, x, 1);
                if x == w {
                    break;
                }
                if row[x] != 0 {
                    // Only 0 (unknown) and 1 (known) are expected; anything else is known.
                    x += 1;
                    continue;
                }
                let x0 = x;
                x = skip_while_equal(row, x, 0);
                self.spans.push((x0, x));
            }
        }
        self.row_start.push(self.spans.len());
    }

    /// `src` dilated by `dx` pixels left and right and `dy` rows up and down (clipped to the
    /// `w`-wide plane): per row, the union of the widened spans of rows `y − dy ..= y + dy`.
    /// `scratch` holds one row's gathered spans.
    pub(super) fn set_dilated(
        &mut self,
        src: &Spans,
        w: usize,
        dx: usize,
        dy: usize,
        scratch: &mut Vec<(usize, usize)>,
    ) {
        let h = src.row_start.len().saturating_sub(1);
        self.row_start.clear();
        self.spans.clear();
        for y in 0..h {
            self.row_start.push(self.spans.len());
            scratch.clear();
            for yy in y.saturating_sub(dy)..=(y + dy).min(h - 1) {
                scratch.extend(
                    src.row(yy)
                        .iter()
                        .map(|&(x0, x1)| (x0.saturating_sub(dx), (x1 + dx).min(w))),
                );
            }
            scratch.sort_unstable();
            let mut current: Option<(usize, usize)> = None;
            for &(x0, x1) in scratch.iter() {
                current = match current {
                    Some((c0, c1)) if x0 <= c1 => Some((c0, c1.max(x1))),
                    Some(done) => {
                        self.spans.push(done);
                        Some((x0, x1))
                    }
                    None => Some((x0, x1)),
                };
            }
            self.spans.extend(current);
        }
        self.row_start.push(self.spans.len());
    }

    #[inline]
    pub(super) fn row(&self, y: usize) -> &[(usize, usize)] {
        &self.spans[self.row_start[y]..self.row_start[y + 1]]
    }

    /// Number of pixels in the set.
    pub(super) fn pixels(&self) -> usize {
        self.spans.iter().map(|&(x0, x1)| x1 - x0).sum()
    }
}

/// The first position at or after `x` whose byte is not `value` (`row.len()` if none); eight
/// bytes at a time where whole words equal it (long known runs cost one compare per word).
#[inline]
fn skip_while_equal(row: &[u8], mut x: usize, value: u8) -> usize {
    let word = u64::from_ne_bytes([value; 8]);
    while x + 8 <= row.len() {
        let chunk = u64::from_ne_bytes(row[x..x + 8].try_into().expect("eight bytes"));
        if chunk != word {
            break;
        }
        x += 8;
    }
    while x < row.len() && row[x] == value {
        x += 1;
    }
    x
}
