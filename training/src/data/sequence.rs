//! Two consecutive frames of a moving scene, for the temporal matting net.
//!
//! The layers of one sample (F, α, B as in [`Generator::sample`]) are shown twice: the
//! previous frame as drawn, the current one with the foreground moved by a random similarity
//! transform about the centre (translation, rotation, scale; a fifth of the pairs are fast
//! moves; whatever leaves the canvas is gone and whatever enters it comes from outside, so
//! subjects enter and leave the frame) and the background panned by a little camera motion.
//! Each frame gets its own noise, compression and trimap. On 40 % of the pairs the current
//! trimap carries a simulated person-mask failure: a chunk of the subject (a miss) or of the
//! background next to it (a false detection) turned unknown, as the project's trimap stage
//! does with pixels whose mask changed or is unsure — the net has to hold the matte there from
//! the image and the previous matte.
//!
//! The previous matte a pair is trained with ([`PrevSource`]) is the ground truth of the
//! previous frame degraded like a net's output (blur, gain, missing or extra chunks), the
//! single-frame student's own output on the previous frame (set by the caller, who has the
//! net), or nothing: after a reset the runtime feeds the trimap itself.

use slimmatte_measure::rng::Rng;

use super::alpha::{Ellipse, bilinear};
use super::composite::{Layers, composite};
use super::{Generator, Sample, trimap_value};

/// Where a pair's previous matte comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PrevSource {
    /// No history (first frame, reset, scene cut): the trimap of the current frame.
    Reset,
    /// The previous frame's ground truth, degraded like a net's output.
    Truth,
    /// The single-frame net's output on the previous frame (filled in by the caller).
    Own,
}

/// Shares of the three sources, in [`PrevSource`] order.
pub const PREV_SHARES: [f32; 3] = [0.15, 0.35, 0.5];

/// Share of pairs whose current trimap carries a simulated mask failure.
pub const FAILURE_SHARE: f32 = 0.4;

/// Two consecutive frames; `current.prev` is set for the `Reset` and `Truth` sources.
pub struct Pair {
    pub previous: Sample,
    pub current: Sample,
    pub source: PrevSource,
}

/// A similarity transform of the foreground about the centre plus a background pan, pixels.
#[derive(Clone, Copy, Debug)]
struct Motion {
    dx: f32,
    dy: f32,
    angle: f32,
    scale: f32,
    pan: (f32, f32),
}

impl Motion {
    /// A random motion, every part scaled by `speed` (1 = the data engine's moves).
    fn draw(r: &mut Rng, s: usize, speed: f32) -> Self {
        let s = s as f32;
        let (dx, dy) = if r.chance(0.2) {
            (r.range(-0.15, 0.15) * s, r.range(-0.15, 0.15) * s)
        } else {
            (0.03 * s * r.normal(), 0.03 * s * r.normal())
        };
        let (dx, dy) = (dx * speed, dy * speed);
        let angle = 0.04 * r.normal() * speed;
        let scale = (0.03 * r.normal() * speed).exp();
        let pan = if r.chance(0.5) {
            (
                r.range(-0.03, 0.03) * s * speed,
                r.range(-0.03, 0.03) * s * speed,
            )
        } else {
            (0.0, 0.0)
        };
        Self {
            dx,
            dy,
            angle,
            scale,
            pan,
        }
    }

    /// Where output pixel (x, y) of the moved foreground comes from.
    fn source(&self, x: f32, y: f32, c: f32) -> (f32, f32) {
        let (u, v) = (x - c - self.dx, y - c - self.dy);
        let (sin, cos) = self.angle.sin_cos();
        (
            c + (cos * u + sin * v) / self.scale,
            c + (-sin * u + cos * v) / self.scale,
        )
    }
}

/// The layers seen through `m`: F and α moved (α = 0 outside the canvas), B panned.
fn moved(l: &Layers, m: &Motion, s: usize) -> Layers {
    let c = (s as f32 - 1.0) * 0.5;
    let mut out = Layers {
        fg: vec![0.0; s * s * 3],
        alpha: vec![0.0; s * s],
        bg: vec![0.0; s * s * 3],
    };
    let inside = |v: f32| v >= -0.5 && v <= s as f32 - 0.5;
    let plane = |src: &[f32], ch: usize, x: f32, y: f32, dst: &mut [f32]| {
        let (x, y) = (x.clamp(0.0, s as f32 - 1.0), y.clamp(0.0, s as f32 - 1.0));
        let (x0, y0) = (x.floor() as usize, y.floor() as usize);
        let (x1, y1) = ((x0 + 1).min(s - 1), (y0 + 1).min(s - 1));
        let (fx, fy) = (x - x0 as f32, y - y0 as f32);
        for (k, d) in dst.iter_mut().enumerate().take(ch) {
            let at = |xx: usize, yy: usize| src[(yy * s + xx) * ch + k];
            let top = at(x0, y0) * (1.0 - fx) + at(x1, y0) * fx;
            let bot = at(x0, y1) * (1.0 - fx) + at(x1, y1) * fx;
            *d = top * (1.0 - fy) + bot * fy;
        }
    };
    for y in 0..s {
        for x in 0..s {
            let i = y * s + x;
            let (sx, sy) = m.source(x as f32, y as f32, c);
            if inside(sx) && inside(sy) {
                out.alpha[i] = bilinear(&l.alpha, s, s, sx, sy);
            }
            plane(&l.fg, 3, sx, sy, &mut out.fg[i * 3..i * 3 + 3]);
            let (bx, by) = (x as f32 - m.pan.0, y as f32 - m.pan.1);
            plane(&l.bg, 3, bx, by, &mut out.bg[i * 3..i * 3 + 3]);
        }
    }
    out
}

/// A random ellipse of radius `lo..hi` × size centred on a pixel where `pick` holds (tried a
/// few times; `None` when no such pixel was found).
fn ellipse_at(
    r: &mut Rng,
    s: usize,
    (lo, hi): (f32, f32),
    pick: impl Fn(usize) -> bool,
) -> Option<Ellipse> {
    for _ in 0..20 {
        let i = r.below(s * s);
        if pick(i) {
            let (rx, ry) = (r.range(lo, hi) * s as f32, r.range(lo, hi) * s as f32);
            return Some(Ellipse::new(
                (i % s) as f32,
                (i / s) as f32,
                rx,
                ry,
                r.range(0.0, 3.14),
            ));
        }
    }
    None
}

/// A person-mask failure in `trimap`: one or two chunks of the subject (a miss) or of the
/// background within reach of it (a false detection) turned unknown.
fn mask_failure(r: &mut Rng, trimap: &mut [u8], alpha: &[f32], s: usize) {
    for _ in 0..1 + r.below(2) {
        let miss = r.chance(0.6);
        let e = if miss {
            ellipse_at(r, s, (0.06, 0.18), |i| alpha[i] > 0.9)
        } else {
            ellipse_at(r, s, (0.06, 0.15), |i| {
                alpha[i] == 0.0 && near(alpha, s, i, s / 8)
            })
        };
        if let Some(e) = e {
            for (i, t) in trimap.iter_mut().enumerate() {
                if e.dist((i % s) as f32, (i / s) as f32) < 0.0 {
                    *t = 128;
                }
            }
        }
    }
}

/// Whether some α > 0 lies within `d` pixels (on the cross through `i`).
fn near(alpha: &[f32], s: usize, i: usize, d: usize) -> bool {
    let (x, y) = (i % s, i / s);
    (x.saturating_sub(d)..(x + d + 1).min(s)).any(|xx| alpha[y * s + xx] > 0.0)
        || (y.saturating_sub(d)..(y + d + 1).min(s)).any(|yy| alpha[yy * s + x] > 0.0)
}

/// The previous frame's ground truth degraded like a net's output, with the previous trimap's
/// known regions exact (the runtime writes them as 0 / 255).
fn degraded_truth(r: &mut Rng, previous: &Sample) -> Vec<u8> {
    let s = previous.size;
    let mut a = previous.alpha.clone();
    slimmatte::filter::box_blur_truncated(&mut a, s, s, r.below(3));
    let (gain, offset) = (r.range(0.85, 1.1), 0.05 * r.normal());
    for v in &mut a {
        *v = (*v * gain + offset).clamp(0.0, 1.0);
    }
    if r.chance(0.3) {
        let wrong = if r.chance(0.5) { 0.0 } else { 1.0 };
        if let Some(e) = ellipse_at(r, s, (0.04, 0.12), |i| previous.trimap[i] == 128) {
            for (i, v) in a.iter_mut().enumerate() {
                if e.dist((i % s) as f32, (i / s) as f32) < 0.0 {
                    *v = wrong;
                }
            }
        }
    }
    finish_prev(&a, &previous.trimap)
}

/// A previous matte as the runtime stores it: `alpha` in the unknown band of `trimap`, exact 0
/// / 255 in its known regions, 8-bit.
pub fn finish_prev(alpha: &[f32], trimap: &[u8]) -> Vec<u8> {
    alpha
        .iter()
        .zip(trimap)
        .map(|(&a, &t)| match t {
            0 => 0,
            255 => 255,
            _ => (a.clamp(0.0, 1.0) * 255.0).round() as u8,
        })
        .collect()
}

/// What the runtime feeds without history: the current trimap (0 / 0.5 / 1) itself.
pub fn reset_prev(trimap: &[u8]) -> Vec<u8> {
    trimap
        .iter()
        .map(|&t| (trimap_value(t) * 255.0).round() as u8)
        .collect()
}

impl Generator {
    /// Pair `seed` of `size × size` frames (deterministic from the seed).
    pub fn pair(&self, seed: u64, size: usize) -> Pair {
        self.pair_at_speed(seed, size, 1.0)
    }

    /// Pair `seed` with its motion scaled by `speed` (a webcam's subject moves a few pixels
    /// from frame to frame, less than [`Generator::pair`]'s moves).
    pub fn pair_at_speed(&self, seed: u64, size: usize, speed: f32) -> Pair {
        let mut r = Rng::new(seed ^ 0x7E3A_9C11_0B5D_2F48);
        let s = size;
        let layers = self.layers(&mut r, s);
        let motion = Motion::draw(&mut r, s, speed);
        let previous = composite(&mut r, &layers, s);
        let mut current = composite(&mut r, &moved(&layers, &motion, s), s);
        if r.chance(FAILURE_SHARE) {
            mask_failure(&mut r, &mut current.trimap, &current.alpha, s);
        }
        let u = r.f32();
        let source = if u < PREV_SHARES[0] {
            PrevSource::Reset
        } else if u < PREV_SHARES[0] + PREV_SHARES[1] {
            PrevSource::Truth
        } else {
            PrevSource::Own
        };
        current.prev = match source {
            PrevSource::Reset => Some(reset_prev(&current.trimap)),
            PrevSource::Truth => Some(degraded_truth(&mut r, &previous)),
            PrevSource::Own => None,
        };
        Pair {
            previous,
            current,
            source,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn generator() -> Generator {
        crate::data::test_generator(3)
    }

    #[test]
    fn pairs_are_deterministic_and_the_subject_moves() {
        let g = generator();
        let (a, b) = (g.pair(11, 64), g.pair(11, 64));
        assert_eq!(a.current.rgb, b.current.rgb);
        assert_eq!(a.current.prev, b.current.prev);
        assert_eq!(a.source, b.source);
        // Over a handful of pairs the α of the two frames differ (the foreground moved) while
        // each frame's α is a valid matte.
        let moved = (0..8)
            .map(|k| g.pair(100 + k, 64))
            .filter(|p| {
                let d: f32 = p
                    .previous
                    .alpha
                    .iter()
                    .zip(&p.current.alpha)
                    .map(|(x, y)| (x - y).abs())
                    .sum();
                p.current.alpha.iter().all(|v| (0.0..=1.0).contains(v)) && d > 1.0
            })
            .count();
        assert!(moved >= 6, "only {moved} of 8 pairs moved");
    }

    #[test]
    fn the_previous_matte_follows_its_source() {
        let g = generator();
        let mut seen = [false; 3];
        for k in 0..40 {
            let p = g.pair(k, 48);
            match p.source {
                PrevSource::Reset => {
                    seen[0] = true;
                    assert_eq!(p.current.prev, Some(reset_prev(&p.current.trimap)));
                }
                PrevSource::Truth => {
                    seen[1] = true;
                    let prev = p.current.prev.as_ref().expect("truth prev");
                    // Exact where the previous trimap is known.
                    for (&v, &t) in prev.iter().zip(&p.previous.trimap) {
                        match t {
                            0 => assert_eq!(v, 0),
                            255 => assert_eq!(v, 255),
                            _ => {}
                        }
                    }
                }
                PrevSource::Own => {
                    seen[2] = true;
                    assert!(p.current.prev.is_none(), "the caller fills Own");
                }
            }
        }
        assert_eq!(seen, [true; 3]);
    }

    #[test]
    fn a_mask_failure_turns_a_chunk_of_the_subject_unknown() {
        let s = 64;
        let alpha: Vec<f32> = (0..s * s)
            .map(|i| if (i % s) < s / 2 { 1.0 } else { 0.0 })
            .collect();
        let mut r = Rng::new(5);
        let mut changed = 0;
        for _ in 0..10 {
            let mut trimap: Vec<u8> = alpha
                .iter()
                .map(|&a| if a > 0.5 { 255 } else { 0 })
                .collect();
            mask_failure(&mut r, &mut trimap, &alpha, s);
            changed += trimap.iter().filter(|&&t| t == 128).count();
            // Only unknown is written, never a wrong known value.
            for (t, a) in trimap.iter().zip(&alpha) {
                assert!(*t == 128 || (*t == 255) == (*a > 0.5));
            }
        }
        assert!(changed > 0);
    }
}
