//! Textures and composites: the real photographs (or procedural stand-ins) that F and B are
//! cropped from, and the [`Generator`] that makes one [`Sample`]: background and foreground
//! crops, the procedural alpha ([`super::alpha`]), `I = αF + (1−α)B` with sensor noise, 8-bit
//! quantisation, sometimes JPEG artefacts, and the trimap ([`super::trimap`]).

use std::path::{Path, PathBuf};

use slimmatte_measure::rng::Rng;

use super::alpha::{StrandColours, alpha, bilinear, strands};
use super::bank::RealMatte;
use super::trimap::{gt_trimap, pipeline_trimap};
use super::{Sample, TrimapKind};

/// An RGB image in 0..1, row-major HWC.
#[derive(Clone, Debug)]
pub struct Texture {
    pub name: String,
    pub width: usize,
    pub height: usize,
    pub rgb: Vec<f32>,
}

impl Texture {
    /// Resamples the square region at `(x0, y0)` of side `step · size` to `size × size`
    /// (bilinear), mirrored when `flip`: calls `each(i, (x, y), rgb)` for output pixel `i`
    /// with the texture position it was sampled at.
    pub(super) fn resample(
        &self,
        (x0, y0): (f32, f32),
        step: f32,
        size: usize,
        flip: bool,
        mut each: impl FnMut(usize, (f32, f32), &[f32; 3]),
    ) {
        let mut px = [0.0f32; 3];
        for y in 0..size {
            for x in 0..size {
                let xx = if flip { size - 1 - x } else { x };
                let at = (x0 + (xx as f32 + 0.5) * step, y0 + (y as f32 + 0.5) * step);
                self.sample(at.0, at.1, &mut px);
                each(y * size + x, at, &px);
            }
        }
    }

    /// Bilinear sample at (x, y) in pixels, edges clamped.
    pub(super) fn sample(&self, x: f32, y: f32, out: &mut [f32; 3]) {
        let x = x.clamp(0.0, (self.width - 1) as f32);
        let y = y.clamp(0.0, (self.height - 1) as f32);
        let (x0, y0) = (x.floor() as usize, y.floor() as usize);
        let (x1, y1) = ((x0 + 1).min(self.width - 1), (y0 + 1).min(self.height - 1));
        let (fx, fy) = (x - x0 as f32, y - y0 as f32);
        for (c, o) in out.iter_mut().enumerate() {
            let p = |xx: usize, yy: usize| self.rgb[(yy * self.width + xx) * 3 + c];
            let top = p(x0, y0) * (1.0 - fx) + p(x1, y0) * fx;
            let bot = p(x0, y1) * (1.0 - fx) + p(x1, y1) * fx;
            *o = top * (1.0 - fy) + bot * fy;
        }
    }
}

/// The folders searched for real images, in order.
pub fn texture_dirs() -> Vec<PathBuf> {
    let mut dirs = Vec::new();
    if let Ok(d) = std::env::var("SLIMMATTE_TEXTURES") {
        dirs.extend(std::env::split_paths(&d));
    }
    let root = slimmatte::paths::project_root();
    if let Ok(rd) = std::fs::read_dir(root.join(".venv/lib")) {
        let mut pys: Vec<PathBuf> = rd.flatten().map(|e| e.path()).collect();
        pys.sort();
        for p in pys {
            dirs.push(p.join("site-packages/skimage/data"));
        }
    }
    dirs.push(PathBuf::from("/usr/share/doc/opencv-doc/examples/data"));
    // Video frames extracted by scripts/train.sh (opencv-doc's vtest.avi).
    dirs.push(root.join("target/slimmatte-train/frames"));
    dirs
}

/// Loads every colour-ish PNG/JPEG of at least 200×200 from `dirs` (sorted by name so the set
/// is deterministic), except what `eval` measures on ([`slimmatte_measure::heldout`]). Falls back to
/// procedural textures when none is found.
pub fn load_textures(dirs: &[PathBuf], max_side: usize) -> Vec<Texture> {
    let mut files: Vec<PathBuf> = Vec::new();
    for d in dirs {
        if let Ok(rd) = std::fs::read_dir(d) {
            for e in rd.flatten() {
                let p = e.path();
                let ext = p
                    .extension()
                    .and_then(|s| s.to_str())
                    .unwrap_or("")
                    .to_ascii_lowercase();
                if (ext == "png" || ext == "jpg" || ext == "jpeg")
                    && !slimmatte_measure::heldout::is_held_out(&p)
                    && is_photograph(&p)
                {
                    files.push(p);
                }
            }
        }
    }
    files.sort_by_key(|p| p.file_name().map(|s| s.to_os_string()));
    files.dedup_by_key(|p| p.file_name().map(|s| s.to_os_string()));
    let mut out = Vec::new();
    for f in files {
        if let Some(t) = load_texture(&f, max_side) {
            out.push(t);
        }
    }
    if out.is_empty() {
        eprintln!("warning: no real images found in {dirs:?}; using procedural textures");
        let mut r = Rng::new(7);
        for i in 0..8 {
            out.push(procedural_texture(&mut r, i));
        }
    }
    out
}

/// Pictures in the image folders that are not photographs of the world (logos, diagrams,
/// text, calibration boards, renders, masks, disparity maps): left out of the textures and the
/// matte bank (training/DATA.md).
const NOT_PHOTOGRAPHS: &[&str] = &[
    "Blender_Suzanne",
    "LinuxLogo",
    "WindowsLogo",
    "aloeGT",
    "cards",
    "chessboard",
    "chicky_512",
    "color.png",
    "detect_blob",
    "digits",
    "ellipses",
    "gradient",
    "horse",
    "imageText",
    "left0",
    "left1",
    "logo",
    "ml.png",
    "opencv-logo",
    "pca_test",
    "phantom",
    "pic",
    "right0",
    "right1",
    "sudoku",
    "text_defocus",
];

/// Whether the file is a photograph (not one of [`NOT_PHOTOGRAPHS`], matched by name prefix).
pub fn is_photograph(path: &Path) -> bool {
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
    !NOT_PHOTOGRAPHS.iter().any(|p| name.starts_with(p))
}

fn load_texture(path: &Path, max_side: usize) -> Option<Texture> {
    let img = image::open(path).ok()?;
    let (w, h) = (img.width() as usize, img.height() as usize);
    if w < 200 || h < 200 {
        return None;
    }
    let scale = (max_side as f32 / w.max(h) as f32).min(1.0);
    let img = if scale < 1.0 {
        img.resize(
            (w as f32 * scale) as u32,
            (h as f32 * scale) as u32,
            image::imageops::FilterType::Triangle,
        )
    } else {
        img
    };
    let rgb = img.to_rgb8();
    let (w, h) = (rgb.width() as usize, rgb.height() as usize);
    let data: Vec<f32> = rgb.as_raw().iter().map(|&v| v as f32 / 255.0).collect();
    // Skip near-constant images (masks, line drawings).
    let mean = data.iter().sum::<f32>() / data.len() as f32;
    let var = data.iter().map(|v| (v - mean) * (v - mean)).sum::<f32>() / data.len() as f32;
    if var < 0.002 {
        return None;
    }
    Some(Texture {
        name: path.file_name()?.to_string_lossy().into_owned(),
        width: w,
        height: h,
        rgb: data,
    })
}

/// A smooth, colourful 256×256 stand-in for a photograph (sums of sines).
pub(crate) fn procedural_texture(r: &mut Rng, i: usize) -> Texture {
    let (w, h) = (256, 256);
    let mut rgb = vec![0.0; w * h * 3];
    let f: Vec<f32> = (0..6).map(|_| r.range(0.01, 0.2)).collect();
    let p: Vec<f32> = (0..6).map(|_| r.range(0.0, 6.28)).collect();
    for y in 0..h {
        for x in 0..w {
            for c in 0..3 {
                let v = 0.5
                    + 0.25 * ((x as f32) * f[c] + p[c]).sin()
                    + 0.25 * ((y as f32) * f[c + 3] + p[c + 3]).cos();
                rgb[(y * w + x) * 3 + c] = v.clamp(0.0, 1.0);
            }
        }
    }
    Texture {
        name: format!("procedural{i}"),
        width: w,
        height: h,
        rgb,
    }
}

/// Share of the samples whose α and F come from the matte bank (when it is not empty).
pub const REAL_MATTE_FRACTION: f32 = 0.5;

/// Generates sample data from textures (F and B crops, procedural alphas) and, when given, the
/// matte bank's real mattes.
pub struct Generator {
    pub textures: Vec<Texture>,
    /// Real mattes (α with their foreground colours) of the matte bank; empty = procedural only.
    pub mattes: Vec<RealMatte>,
}

impl Generator {
    pub fn new(textures: Vec<Texture>) -> Self {
        assert!(!textures.is_empty(), "no textures");
        Self {
            textures,
            mattes: Vec::new(),
        }
    }

    /// The same generator drawing [`REAL_MATTE_FRACTION`] of its samples from `mattes`.
    pub fn with_mattes(mut self, mattes: Vec<RealMatte>) -> Self {
        self.mattes = mattes;
        self
    }

    /// F and α of a real matte: a random region (50–100 % of its side) resampled to
    /// `size × size`, flipped, colour-jittered; procedural strands added on 30 %.
    fn real(&self, r: &mut Rng, size: usize) -> (Vec<f32>, Vec<f32>) {
        let m = &self.mattes[r.below(self.mattes.len())];
        let region = r.range(0.5, 1.0) * m.size as f32;
        let x0 = r.range(0.0, m.size as f32 - region);
        let y0 = r.range(0.0, m.size as f32 - region);
        let flip = r.chance(0.5);
        let step = region / size as f32;
        let jitter = Jitter::draw(r);
        let mut fg = vec![0.0; size * size * 3];
        let mut alpha = vec![0.0; size * size];
        m.fg.resample((x0, y0), step, size, flip, |i, (sx, sy), px| {
            jitter.apply(px, &mut fg[i * 3..i * 3 + 3]);
            alpha[i] = bilinear(&m.alpha, m.size, m.size, sx - 0.5, sy - 0.5);
        });
        if r.chance(0.3) {
            let mut colours = StrandColours::new(size);
            strands(r, &mut alpha, size, &mut colours);
            colours.paint(&mut fg);
        }
        (fg, alpha)
    }

    /// A `size × size` crop of a random texture at a random scale, flipped, colour-jittered.
    fn crop(&self, r: &mut Rng, size: usize) -> Vec<f32> {
        let t = &self.textures[r.below(self.textures.len())];
        let max_region = t.width.min(t.height) as f32;
        let region = r.range(0.3, 1.0) * max_region.max(size as f32 * 0.5);
        let region = region.min(max_region);
        let x0 = r.range(0.0, (t.width as f32 - region).max(0.0));
        let y0 = r.range(0.0, (t.height as f32 - region).max(0.0));
        let flip = r.chance(0.5);
        let step = region / size as f32;
        let jitter = Jitter::draw(r);
        let mut out = vec![0.0; size * size * 3];
        t.resample((x0, y0), step, size, flip, |i, _, px| {
            jitter.apply(px, &mut out[i * 3..i * 3 + 3]);
        });
        out
    }

    /// Generates sample `seed` of `size × size`.
    pub fn sample(&self, seed: u64, size: usize) -> Sample {
        let mut r = Rng::new(seed);
        let layers = self.layers(&mut r, size);
        composite(&mut r, &layers, size)
    }

    /// The layers of one sample: a background crop, then F and α (real or procedural).
    pub(crate) fn layers(&self, r: &mut Rng, size: usize) -> Layers {
        let s = size;
        let bg = self.crop(r, s);
        let (fg, alpha) = if !self.mattes.is_empty() && r.chance(REAL_MATTE_FRACTION) {
            self.real(r, s)
        } else {
            let mut fg = self.crop(r, s);
            let (alpha, strand_colours) = alpha(r, s);
            // Half the samples keep the texture under the strands (hair of the body's colour).
            if r.chance(0.5) {
                strand_colours.paint(&mut fg);
            }
            (fg, alpha)
        };
        Layers { fg, alpha, bg }
    }
}

/// F (HWC 0..1), α and B (HWC 0..1) of one `s × s` sample.
#[derive(Clone, Debug)]
pub(crate) struct Layers {
    pub fg: Vec<f32>,
    pub alpha: Vec<f32>,
    pub bg: Vec<f32>,
}

/// `I = αF + (1−α)B` with sensor noise, 8-bit quantisation, sometimes JPEG, and a trimap
/// (DIM/GCA-style or the pipeline's, half each).
pub(crate) fn composite(r: &mut Rng, layers: &Layers, s: usize) -> Sample {
    let Layers { fg, alpha, bg } = layers;
    let sigma = if r.chance(0.7) {
        r.range(0.0, 0.03)
    } else {
        0.0
    };
    let mut rgb = vec![0u8; s * s * 3];
    for i in 0..s * s {
        let a = alpha[i];
        for c in 0..3 {
            let v = a * fg[i * 3 + c] + (1.0 - a) * bg[i * 3 + c] + sigma * r.normal();
            rgb[i * 3 + c] = (v.clamp(0.0, 1.0) * 255.0).round() as u8;
        }
    }
    if r.chance(0.35) {
        let q = 40 + r.below(51) as u8;
        if let Some(j) = jpeg_roundtrip(&rgb, s, q) {
            rgb = j;
        }
    }
    let (trimap, kind) = if r.chance(0.5) {
        (gt_trimap(r, alpha, s), TrimapKind::GroundTruth)
    } else {
        (pipeline_trimap(r, alpha, s), TrimapKind::Pipeline)
    };
    Sample {
        size: s,
        rgb,
        trimap,
        alpha: alpha.clone(),
        kind,
        prev: None,
    }
}

/// Colour jitter of a crop: per-channel gain, brightness offset, saturation.
struct Jitter {
    gain: [f32; 3],
    bright: f32,
    sat: f32,
}

impl Jitter {
    /// Draws gain, brightness and saturation (in that order).
    fn draw(r: &mut Rng) -> Self {
        let gain = [r.range(0.8, 1.2), r.range(0.8, 1.2), r.range(0.8, 1.2)];
        let bright = r.range(-0.1, 0.1);
        let sat = r.range(0.6, 1.3);
        Self { gain, bright, sat }
    }

    fn apply(&self, px: &[f32; 3], out: &mut [f32]) {
        let g = (px[0] + px[1] + px[2]) / 3.0;
        for c in 0..3 {
            let v = (g + (px[c] - g) * self.sat) * self.gain[c] + self.bright;
            out[c] = v.clamp(0.0, 1.0);
        }
    }
}

/// `rgb` (`s × s`) through JPEG at `quality` and back; `None` when encoding fails.
fn jpeg_roundtrip(rgb: &[u8], s: usize, quality: u8) -> Option<Vec<u8>> {
    let mut buf = Vec::new();
    let mut enc = image::codecs::jpeg::JpegEncoder::new_with_quality(&mut buf, quality);
    enc.encode(rgb, s as u32, s as u32, image::ExtendedColorType::Rgb8)
        .ok()?;
    let img = image::load_from_memory_with_format(&buf, image::ImageFormat::Jpeg).ok()?;
    Some(img.to_rgb8().into_raw())
}
