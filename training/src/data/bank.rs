//! The matte bank: real alpha structure pulled from real photographs.
//!
//! Procedural shapes teach a net what a soft ellipse edge looks like, not what hair, fur,
//! leaves or stems look like to a camera. Here every entry is a matte of a crop of a real
//! photograph as a classical solver sees it:
//! 1. a crop of a photo (random position and scale), resampled to `size × size`;
//! 2. a trimap from thresholds along a colour axis (luminance or a random direction) of the
//!    lightly blurred crop: the brighter (or darker) side is foreground, the other background,
//!    a band of quantiles in between unknown — dark branches against the sky, hair against a
//!    wall, fur against fur;
//! 3. closed-form matting (Levin et al. 2008) of that trimap: the project's matting-Laplacian
//!    solver ([`slimmatte::refine`], ε = 1e-7, 3×3 windows) run to convergence;
//! 4. the foreground colours of the matte (Germer et al. 2020 multilevel estimation,
//!    [`slimmatte::foreground`]), so that `I = αF + (1−α)B` over any other background has that
//!    α as its exact ground truth.
//!
//! Crops whose solve is degenerate (almost no soft pixels, or a grey fog of mid values) are
//! dropped. The bank is deterministic from its seed (attempt `j` depends only on
//! (seed, j)), made once and cached outside git as 16-bit RGBA PNGs (F in RGB, α in A) with a
//! manifest; a cache made with other settings or from other photographs is rebuilt.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use ndarray::ArrayView3;
use serde::{Deserialize, Serialize};
use slimmatte::foreground::{ForegroundSettings, estimate_foreground};
use slimmatte::refine::{LaplacianSolver, RefineMethod, RefineSettings};
use slimmatte_measure::rng::Rng;

use super::Texture;
use super::sample_seed;

/// One matte of a real photograph: foreground colours and alpha, `size × size`.
#[derive(Clone, Debug)]
pub struct RealMatte {
    /// `photo.png#attempt`: where it came from.
    pub name: String,
    pub size: usize,
    /// Foreground colours (`size × size`).
    pub fg: Texture,
    /// Alpha 0..1.
    pub alpha: Vec<f32>,
}

/// How a bank is made (its cache is rebuilt when any of this changes).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BankSettings {
    /// Mattes to keep.
    pub count: usize,
    /// Side of each matte in pixels.
    pub size: usize,
    pub seed: u64,
    /// CG iterations of the closed-form solve at full resolution (coarser levels run more).
    pub iterations: u32,
}

#[derive(Serialize, Deserialize)]
struct Manifest {
    settings: BankSettings,
    /// Names of the photographs the mattes were pulled from, in order.
    photos: Vec<String>,
    /// Name of each kept matte (its file is `{index:05}.png`).
    mattes: Vec<String>,
    attempts: usize,
    seconds: f64,
}

/// Solver settings of the bank: Levin et al.'s closed-form matting (3×3 windows, ε = 1e-7)
/// solved to convergence at the crop's full resolution.
fn solver_settings(iterations: u32) -> RefineSettings {
    RefineSettings {
        method: RefineMethod::Laplacian,
        iterations,
        // Twice `iterations` below the finest level, doubling further down (the floor).
        coarse_iterations: 0,
        radius: 1,
        lambda: 0.0,
        levels: 5,
        epsilon: 1e-7,
        size: 0,
        trust: 0.0,
    }
}

/// Loads the bank from `dir` when its manifest matches `settings` and `photos`; makes it (and
/// writes it there) otherwise. Progress goes to a progress bar.
pub fn load_or_make(
    dir: &Path,
    photos: &[Texture],
    settings: &BankSettings,
) -> Result<Vec<RealMatte>> {
    let names: Vec<String> = photos.iter().map(|t| t.name.clone()).collect();
    let manifest_path = dir.join("bank.json");
    if let Ok(text) = std::fs::read_to_string(&manifest_path)
        && let Ok(m) = serde_json::from_str::<Manifest>(&text)
        && m.settings == *settings
        && m.photos == names
    {
        let mut out = Vec::with_capacity(m.mattes.len());
        for (i, name) in m.mattes.iter().enumerate() {
            out.push(read_matte(&matte_path(dir, i), name)?);
        }
        eprintln!("matte bank: {} mattes from {}", out.len(), dir.display());
        return Ok(out);
    }
    let t0 = std::time::Instant::now();
    let (mattes, attempts) = make(photos, settings, 2);
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    for (i, m) in mattes.iter().enumerate() {
        write_matte(&matte_path(dir, i), m)?;
    }
    let manifest = Manifest {
        settings: settings.clone(),
        photos: names,
        mattes: mattes.iter().map(|m| m.name.clone()).collect(),
        attempts,
        seconds: t0.elapsed().as_secs_f64(),
    };
    std::fs::write(&manifest_path, serde_json::to_string_pretty(&manifest)?)?;
    eprintln!(
        "matte bank: {} mattes kept of {attempts} crops in {:.0} s → {}",
        mattes.len(),
        manifest.seconds,
        dir.display()
    );
    Ok(mattes)
}

fn matte_path(dir: &Path, i: usize) -> PathBuf {
    dir.join(format!("{i:05}.png"))
}

/// Makes the bank on `threads` threads: attempts in rounds, kept in attempt order until
/// `settings.count` are kept (or 6× as many attempts failed). Returns the mattes and the number
/// of attempts.
pub fn make(
    photos: &[Texture],
    settings: &BankSettings,
    threads: usize,
) -> (Vec<RealMatte>, usize) {
    let bar = crate::distill::progress_bar(settings.count as u64, "matte bank");
    let threads = threads.max(1);
    let mut kept = Vec::new();
    let mut attempt = 0;
    let max_attempts = settings.count * 6;
    while kept.len() < settings.count && attempt < max_attempts {
        let round: Vec<usize> = (attempt..attempt + 4 * threads).collect();
        let mut results: Vec<Option<RealMatte>> = round.iter().map(|_| None).collect();
        std::thread::scope(|scope| {
            for (part, ids) in results.chunks_mut(4).zip(round.chunks(4)) {
                scope.spawn(move || {
                    let mut solver = LaplacianSolver::new();
                    for (slot, &j) in part.iter_mut().zip(ids) {
                        *slot = attempt_matte(photos, settings, j, &mut solver);
                    }
                });
            }
        });
        attempt += round.len();
        for m in results.into_iter().flatten() {
            if kept.len() < settings.count {
                kept.push(m);
            }
        }
        bar.set_position(kept.len() as u64);
        bar.set_message(format!("{attempt} crops"));
    }
    bar.finish_and_clear();
    (kept, attempt)
}

/// Attempt `j`: one crop, its threshold trimap, the closed-form solve and the foreground
/// colours; `None` when the matte is degenerate.
fn attempt_matte(
    photos: &[Texture],
    settings: &BankSettings,
    j: usize,
    solver: &mut LaplacianSolver,
) -> Option<RealMatte> {
    let mut r = Rng::new(sample_seed(settings.seed, j));
    let photo = &photos[j % photos.len()];
    let s = settings.size;
    let rgb = crop(&mut r, photo, s);
    let (trimap, warm) = threshold_trimap(&mut r, &rgb, s);
    let mut rgba = vec![0u8; s * s * 4];
    for i in 0..s * s {
        for c in 0..3 {
            rgba[i * 4 + c] = (rgb[i * 3 + c] * 255.0).round() as u8;
        }
        rgba[i * 4 + 3] = trimap[i];
    }
    let view = ArrayView3::from_shape((s, s, 4), &rgba).ok()?;
    let mut alpha = warm;
    solver.refine(&view, &mut alpha, &solver_settings(settings.iterations));
    if !acceptable(&alpha, &trimap) {
        return None;
    }
    let (fg, _) = estimate_foreground(&rgb, &alpha, s, s, &ForegroundSettings::default());
    let name = format!("{}#{j}", photo.name);
    Some(RealMatte {
        fg: Texture {
            name: name.clone(),
            width: s,
            height: s,
            rgb: fg,
        },
        name,
        size: s,
        alpha,
    })
}

/// A `size × size` crop of `photo` at a random position and scale (bilinear), HWC 0..1.
fn crop(r: &mut Rng, photo: &Texture, size: usize) -> Vec<f32> {
    let short = photo.width.min(photo.height) as f32;
    let region = (r.range(0.2, 0.7) * short).max((size as f32 * 0.75).min(short));
    let x0 = r.range(0.0, (photo.width as f32 - region).max(0.0));
    let y0 = r.range(0.0, (photo.height as f32 - region).max(0.0));
    let mut out = vec![0.0; size * size * 3];
    photo.resample((x0, y0), region / size as f32, size, false, |i, _, px| {
        out[i * 3..i * 3 + 3].copy_from_slice(px);
    });
    out
}

/// A trimap (0 / 128 / 255) from thresholds along a colour axis of the blurred crop, and the
/// solver's warm start (the axis value ramped across the unknown band).
fn threshold_trimap(r: &mut Rng, rgb: &[f32], s: usize) -> (Vec<u8>, Vec<f32>) {
    let axis = if r.chance(0.5) {
        [0.299, 0.587, 0.114]
    } else {
        let mut a = [r.normal(), r.normal(), r.normal()];
        let n = (a[0] * a[0] + a[1] * a[1] + a[2] * a[2]).sqrt().max(1e-6);
        a.iter_mut().for_each(|v| *v /= n);
        a
    };
    let sign = if r.chance(0.5) { 1.0 } else { -1.0 };
    let v: Vec<f32> = (0..s * s)
        .map(|i| sign * (0..3).map(|c| axis[c] * rgb[i * 3 + c]).sum::<f32>())
        .collect();
    let mut blurred = v;
    let radius = 1 + r.below(2);
    slimmatte::filter::box_blur(&mut blurred, s, s, radius, &mut Vec::new());
    let mut sorted = blurred.clone();
    sorted.sort_by(f32::total_cmp);
    let q = |p: f32| sorted[(p.clamp(0.0, 1.0) * (s * s - 1) as f32) as usize];
    let centre = r.range(0.3, 0.7);
    let width = r.range(0.08, 0.3);
    let (lo, hi) = (q(centre - width / 2.0), q(centre + width / 2.0));
    let span = (hi - lo).max(1e-4);
    let mut trimap = vec![128u8; s * s];
    let mut warm = vec![0.5f32; s * s];
    for i in 0..s * s {
        let b = blurred[i];
        if b >= hi {
            trimap[i] = 255;
        } else if b <= lo {
            trimap[i] = 0;
        }
        warm[i] = ((b - lo) / span).clamp(0.0, 1.0);
    }
    (trimap, warm)
}

/// Whether a solved matte is worth training on: enough soft pixels (at least 2 % of the crop),
/// some foreground and some background, and not a fog (at most 55 % of the unknown pixels
/// between 0.25 and 0.75).
fn acceptable(alpha: &[f32], trimap: &[u8]) -> bool {
    let n = alpha.len() as f32;
    let soft = alpha.iter().filter(|&&a| a > 0.02 && a < 0.98).count() as f32;
    let mean = alpha.iter().sum::<f32>() / n;
    let unknown: Vec<f32> = alpha
        .iter()
        .zip(trimap)
        .filter(|&(_, &t)| t == 128)
        .map(|(&a, _)| a)
        .collect();
    let fog = unknown.iter().filter(|&&a| a > 0.25 && a < 0.75).count() as f32
        / unknown.len().max(1) as f32;
    alpha.iter().all(|a| a.is_finite())
        && soft / n >= 0.02
        && (0.08..=0.92).contains(&mean)
        && fog <= 0.55
}

/// Writes `mattes` side by side in pairs (foreground composited over mid grey, alpha), four
/// pairs per row, for eyeballing.
pub fn save_preview(shown: &[RealMatte], path: &Path) -> Result<()> {
    let s = shown.iter().map(|m| m.size).max().unwrap_or(1);
    let per_row = 4;
    let rows = shown.len().div_ceil(per_row);
    let mut img = image::RgbImage::new((per_row * 2 * s) as u32, (rows * s) as u32);
    for (k, m) in shown.iter().enumerate() {
        let (ox, oy) = ((k % per_row) * 2 * s, (k / per_row) * s);
        for y in 0..m.size {
            for x in 0..m.size {
                let i = y * m.size + x;
                let a = m.alpha[i];
                let c =
                    |c: usize| ((a * m.fg.rgb[i * 3 + c] + (1.0 - a) * 0.5) * 255.0).round() as u8;
                img.put_pixel(
                    (ox + x) as u32,
                    (oy + y) as u32,
                    image::Rgb([c(0), c(1), c(2)]),
                );
                let v = (a * 255.0).round() as u8;
                img.put_pixel((ox + s + x) as u32, (oy + y) as u32, image::Rgb([v, v, v]));
            }
        }
    }
    img.save(path)
        .with_context(|| format!("writing {}", path.display()))
}

fn write_matte(path: &Path, m: &RealMatte) -> Result<()> {
    let q = |v: f32| (v.clamp(0.0, 1.0) * 65535.0).round() as u16;
    let mut px = Vec::with_capacity(m.size * m.size * 4);
    for i in 0..m.size * m.size {
        px.extend((0..3).map(|c| q(m.fg.rgb[i * 3 + c])));
        px.push(q(m.alpha[i]));
    }
    let img = image::ImageBuffer::<image::Rgba<u16>, _>::from_raw(m.size as u32, m.size as u32, px)
        .context("matte buffer size")?;
    img.save(path)
        .with_context(|| format!("writing {}", path.display()))
}

fn read_matte(path: &Path, name: &str) -> Result<RealMatte> {
    let img = image::open(path)
        .with_context(|| {
            format!(
                "reading {} (delete the bank folder to rebuild it)",
                path.display()
            )
        })?
        .to_rgba16();
    let size = img.width() as usize;
    anyhow::ensure!(
        img.height() as usize == size,
        "{} is not square",
        path.display()
    );
    let mut fg = Vec::with_capacity(size * size * 3);
    let mut alpha = Vec::with_capacity(size * size);
    for p in img.pixels() {
        fg.extend(p.0[..3].iter().map(|&v| v as f32 / 65535.0));
        alpha.push(p.0[3] as f32 / 65535.0);
    }
    Ok(RealMatte {
        fg: Texture {
            name: name.to_string(),
            width: size,
            height: size,
            rgb: fg,
        },
        name: name.to_string(),
        size,
        alpha,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::procedural_texture;

    #[test]
    fn bank_is_deterministic_valid_and_cached() {
        let mut r = Rng::new(5);
        let photos: Vec<Texture> = (0..2).map(|i| procedural_texture(&mut r, i)).collect();
        let settings = BankSettings {
            count: 3,
            size: 48,
            seed: 9,
            iterations: 64,
        };
        let (a, _) = make(&photos, &settings, 1);
        let (b, _) = make(&photos, &settings, 2);
        assert_eq!(a.len(), 3, "smooth textures still give soft mattes");
        for (x, y) in a.iter().zip(&b) {
            assert_eq!(x.alpha, y.alpha, "thread-independent");
            assert_eq!(x.fg.rgb, y.fg.rgb);
            assert!(x.alpha.iter().all(|v| (0.0..=1.0).contains(v)));
            let soft = x.alpha.iter().filter(|&&v| v > 0.02 && v < 0.98).count();
            assert!(soft * 50 >= x.alpha.len(), "soft pixels {soft}");
        }
        let dir = tempfile::tempdir().unwrap();
        let made = load_or_make(dir.path(), &photos, &settings).unwrap();
        let loaded = load_or_make(dir.path(), &photos, &settings).unwrap();
        assert_eq!(made.len(), loaded.len());
        for (x, y) in made.iter().zip(&loaded) {
            assert_eq!(x.name, y.name);
            let d = x
                .alpha
                .iter()
                .zip(&y.alpha)
                .map(|(p, q)| (p - q).abs())
                .fold(0.0f32, f32::max);
            assert!(d < 1e-4, "16-bit round trip {d}");
        }
    }

    #[test]
    fn threshold_trimap_has_all_three_regions_and_solve_respects_it() {
        let mut r = Rng::new(3);
        let photo = procedural_texture(&mut r, 0);
        let s = 64;
        let rgb = crop(&mut r, &photo, s);
        let (trimap, warm) = threshold_trimap(&mut r, &rgb, s);
        for v in [0u8, 128, 255] {
            assert!(trimap.contains(&v), "trimap lacks {v}");
        }
        let rgba: Vec<u8> = (0..s * s)
            .flat_map(|i| {
                let p = &rgb[i * 3..i * 3 + 3];
                [
                    (p[0] * 255.0) as u8,
                    (p[1] * 255.0) as u8,
                    (p[2] * 255.0) as u8,
                    trimap[i],
                ]
            })
            .collect();
        let view = ArrayView3::from_shape((s, s, 4), &rgba).unwrap();
        let mut alpha = warm;
        LaplacianSolver::new().refine(&view, &mut alpha, &solver_settings(64));
        for i in 0..s * s {
            match trimap[i] {
                0 => assert_eq!(alpha[i], 0.0),
                255 => assert_eq!(alpha[i], 1.0),
                _ => assert!((0.0..=1.0).contains(&alpha[i])),
            }
        }
    }

    #[test]
    fn fog_and_empty_mattes_are_rejected() {
        let n = 100;
        let trimap = vec![128u8; n];
        assert!(!acceptable(&vec![0.5; n], &trimap), "fog");
        assert!(!acceptable(&vec![0.0; n], &trimap), "empty");
        let ramp: Vec<f32> = (0..n).map(|i| i as f32 / (n - 1) as f32).collect();
        assert!(acceptable(&ramp, &trimap), "a ramp is fine");
    }
}
