//! The band net's training data: composites from the data engine ([`crate::data`]) at the size
//! of a runtime crop, each solved by the project's closed-form refinement at the runtime's
//! default settings ([`slimmatte::band_net::coarse_matte`], a flat start as the matting stage
//! makes it), then cut into the tiles the runtime would send to the net
//! ([`slimmatte::band_net::gather_tiles`]). The target is the composite's exact alpha.
//!
//! For a temporal band net each composite is the current frame of a moving pair
//! ([`crate::data::sequence`]) and the tiles carry a sixth channel, the previous matte as the
//! runtime would feed it: the previous frame's truth degraded like a net's output (the pair's
//! `Truth` source), the previous frame's coarse matte (standing for a weak previous output, the
//! pair's `Own` source), or nothing (`Reset`: the coarse alpha is repeated, as the runtime does
//! without history). Each such tile has a **partner**: the pair's previous frame at the same
//! place, as the runtime would send it on that frame (its own trimap and coarse matte, no
//! history), with that frame's exact alpha, for the temporal-consistency loss
//! ([`super::train::temporal_loss`]).

use anyhow::Result;
use ndarray::Array3;
use slimmatte::band_net::{
    CHANNELS, Crop, TEMPORAL_CHANNELS, TILE, TILE_INPUT, TILE_MARGIN, TileBatch, band_crop,
    cell_offset, coarse_matte, gather_tiles, gather_tiles_at,
};
use slimmatte::matte::DEFAULT_MARGIN;
use slimmatte::refine::{LaplacianSolver, RefineSettings};
use tch::Tensor;

use crate::data::sequence::{PrevSource, finish_prev};
use crate::data::{Generator, Sample, par_generate, sample_seed};

/// Pixels of one tile plane.
pub const PLANE: usize = TILE_INPUT * TILE_INPUT;

/// Speed of a temporal set's slow pairs, relative to the data engine's moves (which shift a
/// 448-px subject by ~13 px from one frame to the next; a webcam's subject moves a few).
pub const SLOW_SPEED: f32 = 0.15;

/// How the moving pairs of a temporal set are made.
#[derive(Clone, Copy, Debug, Default, PartialEq, serde::Serialize)]
pub struct Pairs {
    /// Each tile carries its partner (the previous frame at the same place) for the
    /// temporal-consistency loss.
    pub partners: bool,
    /// Share of the pairs that move at [`SLOW_SPEED`].
    pub slow_share: f32,
}

/// The speed of pair `seed` of a temporal set whose pairs are slow with probability
/// `slow_share` (a function of the seed, so a pair is remade exactly).
pub fn pair_speed(seed: u64, slow_share: f32) -> f32 {
    let u = (seed.rotate_left(29) % 10_000) as f32 / 10_000.0;
    if u < slow_share { SLOW_SPEED } else { 1.0 }
}

/// The tiles of one composite, with what the whole composite's error needs.
struct SampleTiles {
    /// `tiles × CHANNELS × PLANE`.
    input: Vec<f32>,
    /// `tiles × PLANE`: the exact alpha under each tile input.
    target: Vec<f32>,
    /// Where each tile's centre starts in the frame.
    origins: Vec<(usize, usize)>,
    /// The part of each tile's centre inside the crop, in tile-input coordinates: columns
    /// `u0..u1`, rows `v0..v1` (the rest is never written).
    extent: Vec<[usize; 4]>,
    /// SAD (÷1000) of the coarse matte over the unknown pixels no tile covers.
    rest_sad: f64,
    /// SAD (÷1000) of the coarse matte over all unknown pixels.
    coarse_sad: f64,
    /// Temporal sets: the previous frame's tiles at the same places (`tiles × CHANNELS ×
    /// PLANE`, its own coarse matte, no history) and its exact alpha under them.
    partner_input: Vec<f32>,
    partner_target: Vec<f32>,
    /// Whether the pair's previous matte is the runtime's own output (`PrevSource::Own`).
    own: bool,
}

/// One split of band-net tiles.
pub struct BandSet {
    /// Pixel channels of a tile: 5, or 6 for a temporal net.
    pub channels: usize,
    /// `tiles × channels × PLANE`.
    pub input: Vec<f32>,
    /// `tiles × PLANE`.
    pub target: Vec<f32>,
    /// The composite each tile comes from.
    pub sample_of: Vec<usize>,
    /// Where each tile's centre starts in its composite.
    pub origins: Vec<(usize, usize)>,
    /// The part of each tile's centre inside its crop: `[u0, u1, v0, v1]` in tile-input
    /// coordinates.
    pub extent: Vec<[usize; 4]>,
    /// Per composite: SAD of the coarse matte over the unknown pixels outside the tiles.
    pub rest_sad: Vec<f64>,
    /// Per composite: SAD of the coarse matte over all its unknown pixels.
    pub coarse_sad: Vec<f64>,
    /// Temporal sets: each tile's partner, the previous frame of its pair at the same place
    /// (`tiles × channels × PLANE`, as the runtime would send it on that frame without
    /// history), and the previous frame's exact alpha there (`tiles × PLANE`); empty otherwise.
    /// The temporal-consistency loss compares the net's change between the two with the
    /// truth's.
    pub partner_input: Vec<f32>,
    pub partner_target: Vec<f32>,
    /// Temporal sets: whether each tile's previous matte stands for the net's own output on
    /// the previous frame (the pair's `Own` source; training then feeds it the net's output on
    /// the partner instead of the coarse matte stored here).
    pub own: Vec<bool>,
}

/// A composite as the stage sees it: the RGBA frame with the trimap in alpha and, when the
/// trimap has an unknown band, the band's crop and the coarse matte the stage computes there
/// (`band_crop` and `coarse_matte` at the default margin and refinement).
pub(crate) struct Staged {
    pub frame: Array3<u8>,
    pub coarse: Option<(Crop, Vec<f32>)>,
}

pub(crate) fn staged(s: &Sample, size: usize) -> Staged {
    let frame = Array3::from_shape_fn((size, size, 4), |(y, x, c)| {
        if c == 3 {
            s.trimap[y * size + x]
        } else {
            s.rgb[(y * size + x) * 3 + c]
        }
    });
    let view = frame.view();
    let coarse = band_crop(&view, DEFAULT_MARGIN as usize).map(|(crop, _)| {
        let mut alpha = Vec::new();
        coarse_matte(
            &view,
            crop,
            &RefineSettings::default(),
            &mut LaplacianSolver::new(),
            &mut alpha,
        );
        (crop, alpha)
    });
    Staged { frame, coarse }
}

/// The coarse matte of a whole frame as the stage would write it without a net (8-bit, known
/// pixels exact).
fn coarse_frame(s: &Sample, staged: &Staged, size: usize) -> Vec<u8> {
    let mut full: Vec<f32> = s.trimap.iter().map(|&t| (t == 255) as u8 as f32).collect();
    if let Some(((cx, cy, cw, ch), coarse)) = &staged.coarse {
        for y in 0..*ch {
            full[(cy + y) * size + cx..][..*cw].copy_from_slice(&coarse[y * cw..(y + 1) * cw]);
        }
    }
    finish_prev(&full, &s.trimap)
}

/// Makes the tiles of composite `seed` of side `size` (the current frame of a moving pair,
/// with the previous matte, for a temporal net).
fn sample_tiles(
    generator: &Generator,
    seed: u64,
    size: usize,
    pairs: Option<Pairs>,
) -> SampleTiles {
    let temporal = pairs.is_some();
    let mut own = false;
    let (s, previous, previous_frame) = if let Some(pairs) = pairs {
        let pair = generator.pair_at_speed(seed, size, pair_speed(seed, pairs.slow_share));
        own = pair.source == PrevSource::Own;
        let staged_previous = staged(&pair.previous, size);
        let previous = match pair.source {
            PrevSource::Reset => None,
            PrevSource::Truth => pair.current.prev.clone(),
            PrevSource::Own => Some(coarse_frame(&pair.previous, &staged_previous, size)),
        };
        let partner = pairs.partners.then_some((pair.previous, staged_previous));
        (pair.current, previous, partner)
    } else {
        (generator.sample(seed, size), None, None)
    };
    let channels = if temporal {
        TEMPORAL_CHANNELS
    } else {
        CHANNELS
    };
    let Staged { frame, coarse } = staged(&s, size);
    let view = frame.view();
    let mut out = SampleTiles {
        input: Vec::new(),
        target: Vec::new(),
        origins: Vec::new(),
        extent: Vec::new(),
        rest_sad: 0.0,
        coarse_sad: 0.0,
        partner_input: Vec::new(),
        partner_target: Vec::new(),
        own,
    };
    let Some((crop, coarse)) = coarse else {
        return out;
    };
    let (cx, cy, cw, ch) = crop;
    let mut batch = TileBatch::default();
    gather_tiles(
        &view,
        crop,
        &coarse,
        channels,
        previous.as_deref(),
        &mut batch,
    );
    out.origins.clone_from(&batch.origins);
    let mut covered = vec![false; cw * ch];
    for &(tx, ty) in &batch.origins {
        let (x0, x1) = (tx.max(cx), (tx + TILE).min(cx + cw));
        let (y0, y1) = (ty.max(cy), (ty + TILE).min(cy + ch));
        out.extent.push([
            x0 - tx + TILE_MARGIN,
            x1 - tx + TILE_MARGIN,
            y0 - ty + TILE_MARGIN,
            y1 - ty + TILE_MARGIN,
        ]);
        for y in y0..y1 {
            for x in x0..x1 {
                covered[(y - cy) * cw + (x - cx)] = true;
            }
        }
        push_target(&s.alpha, size, (tx, ty), &mut out.target);
    }
    if let Some((p, Staged { frame, coarse })) = previous_frame {
        // The previous frame at the same places, as the runtime sends it without history.
        let (crop, coarse) = coarse.unwrap_or(((0, 0, 0, 0), Vec::new()));
        let mut partners = TileBatch::default();
        gather_tiles_at(
            &frame.view(),
            crop,
            &coarse,
            channels,
            None,
            &batch.origins,
            &mut partners,
        );
        out.partner_input = to_planes(&partners.input, channels);
        for &origin in &batch.origins {
            push_target(&p.alpha, size, origin, &mut out.partner_target);
        }
    }
    for y in 0..ch {
        for x in 0..cw {
            let t = s.trimap[(cy + y) * size + cx + x];
            if t != 0 && t != 255 {
                let e = (coarse[y * cw + x] - s.alpha[(cy + y) * size + cx + x]).abs() as f64;
                out.coarse_sad += e / 1000.0;
                if !covered[y * cw + x] {
                    out.rest_sad += e / 1000.0;
                }
            }
        }
    }
    out.input = to_planes(&batch.input, channels);
    out
}

/// The exact alpha under the input of the tile whose centre starts at `(tx, ty)`, clamped at
/// the border as the input is.
fn push_target(alpha: &[f32], size: usize, (tx, ty): (usize, usize), target: &mut Vec<f32>) {
    for v in 0..TILE_INPUT {
        let y = (ty + v).saturating_sub(TILE_MARGIN).min(size - 1);
        for u in 0..TILE_INPUT {
            let x = (tx + u).saturating_sub(TILE_MARGIN).min(size - 1);
            target.push(alpha[y * size + x]);
        }
    }
}

/// The runtime's cell layout back to pixel planes (the tch net lays out its cells itself).
fn to_planes(cells: &[f32], channels: usize) -> Vec<f32> {
    let per_tile = channels * PLANE;
    let mut planes = vec![0.0; cells.len()];
    for (src, dst) in cells
        .chunks_exact(per_tile)
        .zip(planes.chunks_exact_mut(per_tile))
    {
        for k in 0..channels {
            for v in 0..TILE_INPUT {
                for u in 0..TILE_INPUT {
                    dst[k * PLANE + v * TILE_INPUT + u] = src[cell_offset(k, u, v, channels)];
                }
            }
        }
    }
    planes
}

impl BandSet {
    /// `n` composites of split seed `seed`, side `size`, made on `threads` threads (for a
    /// temporal net, the current frames of moving `pairs` with the previous matte).
    pub fn generate(
        generator: &Generator,
        seed: u64,
        n: usize,
        size: usize,
        threads: usize,
        pairs: Option<Pairs>,
    ) -> Self {
        let temporal = pairs.is_some();
        let mut set = BandSet {
            channels: if temporal {
                TEMPORAL_CHANNELS
            } else {
                CHANNELS
            },
            input: Vec::new(),
            target: Vec::new(),
            sample_of: Vec::new(),
            origins: Vec::new(),
            extent: Vec::new(),
            rest_sad: Vec::new(),
            coarse_sad: Vec::new(),
            partner_input: Vec::new(),
            partner_target: Vec::new(),
            own: Vec::new(),
        };
        // A few composites per thread at a time, appended as they come, so the tiles are held
        // once (a temporal training split with partners is ~13 GB; the allocator would keep
        // freed per-composite parts).
        let chunk = 8 * threads.max(1);
        for start in (0..n).step_by(chunk) {
            let count = chunk.min(n - start);
            let parts = par_generate(count, threads, |j| {
                let seed = sample_seed(seed, start + j);
                sample_tiles(generator, seed, size, pairs)
            });
            for (j, p) in parts.into_iter().enumerate() {
                let tiles = p.target.len() / PLANE;
                set.sample_of.extend(std::iter::repeat_n(start + j, tiles));
                set.origins.extend_from_slice(&p.origins);
                set.extent.extend_from_slice(&p.extent);
                set.input.extend_from_slice(&p.input);
                set.target.extend_from_slice(&p.target);
                set.partner_input.extend_from_slice(&p.partner_input);
                set.partner_target.extend_from_slice(&p.partner_target);
                if temporal {
                    set.own.extend(std::iter::repeat_n(p.own, tiles));
                }
                set.rest_sad.push(p.rest_sad);
                set.coarse_sad.push(p.coarse_sad);
            }
        }
        set
    }

    /// Whether the runtime writes input pixel `(u, v)` of tile `i` (if unknown): it is in the
    /// tile's centre and inside the crop.
    fn written(&self, i: usize, u: usize, v: usize) -> bool {
        let [u0, u1, v0, v1] = self.extent[i];
        (u0..u1).contains(&u) && (v0..v1).contains(&v)
    }

    pub fn tiles(&self) -> usize {
        self.sample_of.len()
    }

    pub fn samples(&self) -> usize {
        self.rest_sad.len()
    }

    /// A batch: (input `[B, 5, T, T]`, target `[B, 1, T, T]`, loss mask `[B, 1, T, T]`: the
    /// unknown pixels of the tile's centre, the ones the runtime writes); `flips[i]` mirrors
    /// tile `idx[i]` horizontally.
    pub fn batch(&self, idx: &[usize], flips: &[bool]) -> (Tensor, Tensor, Tensor) {
        let (x, target) = self.planes(&self.input, &self.target, idx, flips);
        (x, target, self.mask(idx, flips))
    }

    /// Whether the tiles have partners (a temporal set).
    pub fn has_partners(&self) -> bool {
        !self.partner_target.is_empty()
    }

    /// The partners of tiles `idx`, flipped alike: (input, the previous frame's exact alpha).
    pub fn partner_batch(&self, idx: &[usize], flips: &[bool]) -> (Tensor, Tensor) {
        self.planes(&self.partner_input, &self.partner_target, idx, flips)
    }

    /// Tiles `idx` of `inputs` and `targets` (the tiles or their partners), flipped.
    fn planes(
        &self,
        inputs: &[f32],
        targets: &[f32],
        idx: &[usize],
        flips: &[bool],
    ) -> (Tensor, Tensor) {
        let b = idx.len();
        let ch = self.channels;
        let mut input = vec![0.0f32; b * ch * PLANE];
        let mut target = vec![0.0f32; b * PLANE];
        for (bi, (&i, &flip)) in idx.iter().zip(flips).enumerate() {
            let src_in = &inputs[i * ch * PLANE..(i + 1) * ch * PLANE];
            let src_t = &targets[i * PLANE..(i + 1) * PLANE];
            for v in 0..TILE_INPUT {
                for u in 0..TILE_INPUT {
                    let su = if flip { TILE_INPUT - 1 - u } else { u };
                    let (s, d) = (v * TILE_INPUT + su, v * TILE_INPUT + u);
                    for c in 0..ch {
                        input[(bi * ch + c) * PLANE + d] = src_in[c * PLANE + s];
                    }
                    target[bi * PLANE + d] = src_t[s];
                }
            }
        }
        let (b, t) = (b as i64, TILE_INPUT as i64);
        (
            Tensor::from_slice(&input).view([b, ch as i64, t, t]),
            Tensor::from_slice(&target).view([b, 1, t, t]),
        )
    }

    /// The loss mask of tiles `idx`, flipped: the unknown pixels the runtime writes.
    fn mask(&self, idx: &[usize], flips: &[bool]) -> Tensor {
        let ch = self.channels;
        let mut mask = vec![0.0f32; idx.len() * PLANE];
        for (bi, (&i, &flip)) in idx.iter().zip(flips).enumerate() {
            let trimap = &self.input[(i * ch + 3) * PLANE..(i * ch + 4) * PLANE];
            for v in 0..TILE_INPUT {
                for u in 0..TILE_INPUT {
                    let su = if flip { TILE_INPUT - 1 - u } else { u };
                    if self.written(i, su, v) && trimap[v * TILE_INPUT + su] == 0.5 {
                        mask[bi * PLANE + v * TILE_INPUT + u] = 1.0;
                    }
                }
            }
        }
        let t = TILE_INPUT as i64;
        Tensor::from_slice(&mask).view([idx.len() as i64, 1, t, t])
    }
}

/// Per-composite SAD (÷1000, unknown pixels) of the mattes `alpha` (`tiles × PLANE`, e.g. a
/// net's output) written over the coarse matte, as the runtime writes them.
pub fn per_sample_sad(set: &BandSet, alpha: &[f32]) -> Vec<f64> {
    let mut sad = set.rest_sad.clone();
    for (i, &s) in set.sample_of.iter().enumerate() {
        let ch = set.channels;
        let inp = &set.input[i * ch * PLANE..(i + 1) * ch * PLANE];
        let tgt = &set.target[i * PLANE..(i + 1) * PLANE];
        let out = &alpha[i * PLANE..(i + 1) * PLANE];
        for v in TILE_MARGIN..TILE_MARGIN + TILE {
            for u in TILE_MARGIN..TILE_MARGIN + TILE {
                let p = v * TILE_INPUT + u;
                if set.written(i, u, v) && inp[3 * PLANE + p] == 0.5 {
                    sad[s] += (out[p].clamp(0.0, 1.0) - tgt[p]).abs() as f64 / 1000.0;
                }
            }
        }
    }
    sad
}

/// The coarse matte of every tile (`tiles × PLANE`): what the runtime writes without a net.
pub fn coarse_of(set: &BandSet) -> Vec<f32> {
    let mut out = Vec::with_capacity(set.tiles() * PLANE);
    for i in 0..set.tiles() {
        let ch = set.channels;
        out.extend_from_slice(&set.input[(i * ch + 4) * PLANE..(i * ch + 5) * PLANE]);
    }
    out
}

/// Check used by tests and the quick run: a tile whose centre the trimap marks unknown is
/// counted once per composite (tiles do not overlap).
pub fn check(set: &BandSet) -> Result<()> {
    let coarse = coarse_of(set);
    let sad = per_sample_sad(set, &coarse);
    for (i, (a, b)) in sad.iter().zip(&set.coarse_sad).enumerate() {
        anyhow::ensure!(
            (a - b).abs() < 1e-6 * (1.0 + b.abs()) + 1e-9,
            "composite {i}: tiles give coarse SAD {a}, the whole crop {b}"
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::{sample_seed, test_generator};

    /// Every tile of a temporal set has a partner: the previous frame of its pair at the same
    /// place (its pixels, its trimap, no history), with the previous frame's truth under it.
    #[test]
    fn partners_are_the_previous_frame_at_the_same_places() {
        let g = test_generator(5);
        let (size, n) = (96, 4);
        let pairs = Pairs {
            partners: true,
            slow_share: 0.5,
        };
        let set = BandSet::generate(&g, 77, n, size, 1, Some(pairs));
        assert!(set.tiles() > 0, "the composites send tiles");
        assert_eq!(set.partner_input.len(), set.input.len());
        assert_eq!(set.partner_target.len(), set.target.len());
        let ch = set.channels;
        let mut differs = false;
        for (k, &(tx, ty)) in set.origins.iter().enumerate() {
            let seed = sample_seed(77, set.sample_of[k]);
            let pair = g.pair_at_speed(seed, size, pair_speed(seed, 0.5));
            let input = &set.partner_input[k * ch * PLANE..(k + 1) * ch * PLANE];
            let target = &set.partner_target[k * PLANE..(k + 1) * PLANE];
            for v in 0..TILE_INPUT {
                let y = (ty + v).saturating_sub(TILE_MARGIN).min(size - 1);
                for u in 0..TILE_INPUT {
                    let x = (tx + u).saturating_sub(TILE_MARGIN).min(size - 1);
                    let (p, q) = (y * size + x, v * TILE_INPUT + u);
                    let rgb = &pair.previous.rgb[p * 3..][..3];
                    for c in 0..3 {
                        assert_eq!(input[c * PLANE + q], rgb[c] as f32 * (1.0 / 255.0));
                    }
                    let want = match pair.previous.trimap[p] {
                        0 => 0.0,
                        255 => 1.0,
                        _ => 0.5,
                    };
                    assert_eq!(input[3 * PLANE + q], want, "the previous frame's trimap");
                    // No history: the previous-matte channel repeats the coarse alpha.
                    assert_eq!(input[5 * PLANE + q], input[4 * PLANE + q]);
                    assert_eq!(target[q], pair.previous.alpha[p]);
                    differs |= target[q] != pair.current.alpha[p];
                }
            }
        }
        assert!(
            differs,
            "the pairs move: some partner's truth differs from its tile's"
        );
    }
}
