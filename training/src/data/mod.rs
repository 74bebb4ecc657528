//! Synthetic matting data with exact ground truth, deterministic from a seed.
//!
//! Each sample: a procedural alpha (person-like or object blobs with soft edges, boundary
//! wobble, holes, semi-transparent regions, thin semi-transparent hair-like strands, sometimes
//! motion blur), a foreground texture F and a background B cropped from real photographs
//! (scikit-image and opencv-doc images) with colour jitter, composited as `I = αF + (1−α)B`,
//! then sensor noise, 8-bit quantisation and sometimes JPEG artefacts. The trimap is either
//! DIM/GCA-style (ground-truth alpha with randomly eroded fg / bg) or the project's own trimap
//! stage ([`slimmatte::trimap::TrimapBuilder`]) run on a degraded coarse mask (downsampled like
//! a 256×144 segmentation output, blurred, shifted, holes and false blobs, threshold jitter;
//! thin strands vanish in it as they do in the real coarse mask).
//!
//! Sample `i` of a split depends only on (split seed, i): the splits are separate seed streams,
//! and generation is identical however many threads run it.

// Angle ranges are written as 3.14 / 6.28 on purpose: the seeded data (and so the shipped
// models) depend on these exact values.
#![allow(clippy::approx_constant)]

mod alpha;
pub mod bank;
mod composite;
pub mod sequence;
mod trimap;

use std::path::Path;

use anyhow::Result;
use serde::Serialize;
use slimmatte_measure::rng::Rng;
use tch::Tensor;

pub use bank::{BankSettings, RealMatte};
#[cfg(test)]
pub(crate) use composite::procedural_texture;
pub use composite::{Generator, REAL_MATTE_FRACTION, Texture, load_textures, texture_dirs};
pub use trimap::{gt_trimap, pipeline_trimap};

/// Seed of sample `i` of the split with seed `split`.
pub fn sample_seed(split: u64, i: usize) -> u64 {
    let mut r = Rng::new(
        split.wrapping_mul(0xD1B5_4A32_D192_ED03) ^ (i as u64).wrapping_mul(0x8CB9_2BA7_2F3D_8DD7),
    );
    r.next_u64()
}

/// Items `make(0) .. make(n − 1)` made on `threads` threads, in order (each item depends on
/// its index only, so the result does not depend on the thread count).
pub fn par_generate<T: Send>(n: usize, threads: usize, make: impl Fn(usize) -> T + Sync) -> Vec<T> {
    let threads = threads.max(1);
    let mut items: Vec<Option<T>> = (0..n).map(|_| None).collect();
    let make = &make;
    std::thread::scope(|scope| {
        let chunk = n.div_ceil(threads).max(1);
        for (ci, part) in items.chunks_mut(chunk).enumerate() {
            scope.spawn(move || {
                for (j, slot) in part.iter_mut().enumerate() {
                    *slot = Some(make(ci * chunk + j));
                }
            });
        }
    });
    items.into_iter().map(|s| s.expect("generated")).collect()
}

/// How a sample's trimap was made.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum TrimapKind {
    /// Ground-truth alpha with randomly eroded fg / bg (DIM / GCA training trimaps).
    GroundTruth,
    /// The project's trimap stage on a degraded coarse mask (what inference sees).
    Pipeline,
}

/// One composite with its exact ground truth.
#[derive(Clone, Debug)]
pub struct Sample {
    pub size: usize,
    /// Composite, HWC 8-bit.
    pub rgb: Vec<u8>,
    /// 0 / 128 / 255.
    pub trimap: Vec<u8>,
    /// Ground-truth alpha 0..1.
    pub alpha: Vec<f32>,
    pub kind: TrimapKind,
    /// A temporal sample's previous-frame matte (0..255, what the runtime feeds a temporal
    /// net's `prev_alpha`); `None` for single-frame samples.
    pub prev: Option<Vec<u8>>,
}

impl Sample {
    /// Input channels: RGB + trimap (+ the previous matte of a temporal sample).
    pub fn channels(&self) -> usize {
        4 + self.prev.is_some() as usize
    }

    /// The net input, CHW: RGB 0..1, the trimap as 0 / 0.5 / 1 and, for a temporal sample,
    /// the previous matte 0..1.
    pub fn input_chw(&self) -> Vec<f32> {
        let n = self.size * self.size;
        let mut v = vec![0.0f32; self.channels() * n];
        for i in 0..n {
            for c in 0..3 {
                v[c * n + i] = self.rgb[i * 3 + c] as f32 / 255.0;
            }
            v[3 * n + i] = trimap_value(self.trimap[i]);
            if let Some(prev) = &self.prev {
                v[4 * n + i] = prev[i] as f32 / 255.0;
            }
        }
        v
    }
}

/// Trimap byte → net input value (0 bg, 0.5 unknown, 1 fg).
pub fn trimap_value(t: u8) -> f32 {
    match t {
        0 => 0.0,
        255 => 1.0,
        _ => 0.5,
    }
}

/// A split: samples of one seed stream.
pub struct Dataset {
    pub size: usize,
    pub samples: Vec<Sample>,
    pub seed: u64,
}

impl Dataset {
    /// Generates `n` samples of `size` from split seed `seed` on `threads` threads.
    pub fn generate(
        generator: &Generator,
        seed: u64,
        n: usize,
        size: usize,
        threads: usize,
    ) -> Dataset {
        Dataset {
            size,
            samples: par_generate(n, threads, |i| generator.sample(sample_seed(seed, i), size)),
            seed,
        }
    }

    pub fn len(&self) -> usize {
        self.samples.len()
    }

    pub fn is_empty(&self) -> bool {
        self.samples.is_empty()
    }

    /// A batch: (input `[B,C,S,S]`, alpha `[B,1,S,S]`, unknown mask `[B,1,S,S]`), C = 4
    /// (RGB + trimap) or 5 for temporal samples (+ previous matte); `flips[i]` mirrors sample
    /// i horizontally.
    pub fn batch(&self, idx: &[usize], flips: &[bool]) -> (Tensor, Tensor, Tensor) {
        let s = self.size;
        let n = s * s;
        let b = idx.len();
        let ch = self.samples.first().map_or(4, Sample::channels);
        let mut input = vec![0.0f32; b * ch * n];
        let mut alpha = vec![0.0f32; b * n];
        let mut unknown = vec![0.0f32; b * n];
        for (bi, (&i, &flip)) in idx.iter().zip(flips).enumerate() {
            let smp = &self.samples[i];
            for y in 0..s {
                for x in 0..s {
                    let src = y * s + if flip { s - 1 - x } else { x };
                    let dst = y * s + x;
                    for c in 0..3 {
                        input[(bi * ch + c) * n + dst] = smp.rgb[src * 3 + c] as f32 / 255.0;
                    }
                    input[(bi * ch + 3) * n + dst] = trimap_value(smp.trimap[src]);
                    if let Some(prev) = &smp.prev {
                        input[(bi * ch + 4) * n + dst] = prev[src] as f32 / 255.0;
                    }
                    alpha[bi * n + dst] = smp.alpha[src];
                    unknown[bi * n + dst] = if smp.trimap[src] == 128 { 1.0 } else { 0.0 };
                }
            }
        }
        let s = s as i64;
        let b = b as i64;
        (
            Tensor::from_slice(&input).view([b, ch as i64, s, s]),
            Tensor::from_slice(&alpha).view([b, 1, s, s]),
            Tensor::from_slice(&unknown).view([b, 1, s, s]),
        )
    }

    /// Fraction of unknown pixels and of pipeline trimaps (for the data description).
    pub fn stats(&self) -> (f64, f64) {
        let mut unk = 0usize;
        let mut tot = 0usize;
        let mut pipe = 0usize;
        for s in &self.samples {
            unk += s.trimap.iter().filter(|&&t| t == 128).count();
            tot += s.trimap.len();
            if s.kind == TrimapKind::Pipeline {
                pipe += 1;
            }
        }
        (
            unk as f64 / tot.max(1) as f64,
            pipe as f64 / self.samples.len().max(1) as f64,
        )
    }
}

/// Writes a sample's composite, trimap and alpha side by side as a PNG (for eyeballing).
pub fn save_preview(samples: &[&Sample], path: &Path) -> Result<()> {
    let s = samples[0].size;
    let w = 3 * s;
    let h = s * samples.len();
    let mut img = image::RgbImage::new(w as u32, h as u32);
    for (row, smp) in samples.iter().enumerate() {
        for y in 0..s {
            for x in 0..s {
                let i = y * s + x;
                let yy = (row * s + y) as u32;
                img.put_pixel(
                    x as u32,
                    yy,
                    image::Rgb([smp.rgb[i * 3], smp.rgb[i * 3 + 1], smp.rgb[i * 3 + 2]]),
                );
                let t = smp.trimap[i];
                img.put_pixel((s + x) as u32, yy, image::Rgb([t, t, t]));
                let a = (smp.alpha[i] * 255.0).round() as u8;
                img.put_pixel((2 * s + x) as u32, yy, image::Rgb([a, a, a]));
            }
        }
    }
    img.save(path)?;
    Ok(())
}

/// A small generator of three procedural textures drawn from `seed` (tests).
#[cfg(test)]
pub(crate) fn test_generator(seed: u64) -> Generator {
    let mut r = Rng::new(seed);
    Generator::new((0..3).map(|i| procedural_texture(&mut r, i)).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn generator() -> Generator {
        test_generator(1)
    }

    #[test]
    fn generation_is_deterministic_and_thread_independent() {
        let g = generator();
        let a = Dataset::generate(&g, 11, 6, 64, 1);
        let b = Dataset::generate(&g, 11, 6, 64, 3);
        for (x, y) in a.samples.iter().zip(&b.samples) {
            assert_eq!(x.rgb, y.rgb);
            assert_eq!(x.trimap, y.trimap);
            assert_eq!(x.alpha, y.alpha);
        }
        let c = Dataset::generate(&g, 12, 6, 64, 1);
        assert_ne!(
            a.samples[0].alpha, c.samples[0].alpha,
            "other split seed, other data"
        );
    }

    #[test]
    fn samples_are_valid_composites() {
        let g = generator();
        let d = Dataset::generate(&g, 5, 16, 64, 2);
        let mut kinds = std::collections::HashSet::new();
        for s in &d.samples {
            assert!(s.alpha.iter().all(|a| (0.0..=1.0).contains(a)));
            assert!(s.trimap.iter().all(|&t| t == 0 || t == 128 || t == 255));
            kinds.insert(format!("{:?}", s.kind));
        }
        assert_eq!(kinds.len(), 2, "both trimap kinds occur");
        let (unk, _) = d.stats();
        assert!(unk > 0.01 && unk < 0.9, "unknown fraction {unk}");
        let (x, a, m) = d.batch(&[0, 1], &[false, true]);
        assert_eq!(x.size(), vec![2, 4, 64, 64]);
        assert_eq!(a.size(), vec![2, 1, 64, 64]);
        assert_eq!(m.size(), vec![2, 1, 64, 64]);
    }

    #[test]
    fn strands_carry_their_own_colours_into_the_foreground() {
        let s = 96;
        // Find a seed whose alpha has strands (70 % of them do).
        let (alpha, colours) = (0..20)
            .map(|seed| alpha::alpha(&mut Rng::new(seed), s))
            .find(|(_, c)| c.set.iter().any(|&on| on))
            .expect("some seed draws strands");
        let painted: Vec<usize> = (0..s * s).filter(|&i| colours.set[i]).collect();
        assert!(
            painted.iter().all(|&i| alpha[i] > 0.0),
            "painted pixels are covered"
        );
        let mut fg = vec![0.5f32; s * s * 3];
        colours.paint(&mut fg);
        let i = painted[0];
        assert_eq!(&fg[i * 3..i * 3 + 3], &colours.rgb[i * 3..i * 3 + 3]);
        let untouched = (0..s * s).find(|&i| !colours.set[i]).unwrap();
        assert_eq!(&fg[untouched * 3..untouched * 3 + 3], &[0.5, 0.5, 0.5]);
    }

    #[test]
    fn held_out_and_non_photographs_are_not_loaded() {
        let dir = tempfile::tempdir().unwrap();
        let photo = image::RgbImage::from_fn(220, 220, |x, y| {
            image::Rgb([(x % 256) as u8, (y % 256) as u8, ((x * y) % 256) as u8])
        });
        for name in ["astronaut.png", "LinuxLogo.jpg", "left01.jpg", "baboon.png"] {
            photo.save(dir.path().join(name)).unwrap();
        }
        let names: Vec<String> = load_textures(&[dir.path().to_path_buf()], 256)
            .into_iter()
            .map(|t| t.name)
            .collect();
        assert_eq!(names, vec!["baboon.png".to_string()]);
    }

    #[test]
    fn gt_trimap_marks_soft_pixels_unknown() {
        let s = 32;
        let alpha: Vec<f32> = (0..s * s)
            .map(|i| (i % s) as f32 / (s - 1) as f32)
            .collect();
        let mut r = Rng::new(3);
        let t = gt_trimap(&mut r, &alpha, s);
        for i in 0..s * s {
            if alpha[i] > 0.001 && alpha[i] < 0.999 {
                assert_eq!(t[i], 128);
            }
        }
    }
}
