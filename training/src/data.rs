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

use std::path::{Path, PathBuf};

use anyhow::Result;
use serde::Serialize;
use slimmatte::trimap::TrimapBuilder;
use tch::Tensor;

/// SplitMix64: small, fast, and the same on every machine.
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        let mut r = Rng(seed ^ 0x9E37_79B9_7F4A_7C15);
        r.next_u64();
        r
    }
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform in [0, 1).
    pub fn f32(&mut self) -> f32 {
        (self.next_u64() >> 40) as f32 / (1u64 << 24) as f32
    }
    pub fn range(&mut self, a: f32, b: f32) -> f32 {
        a + (b - a) * self.f32()
    }
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n.max(1) as u64) as usize
    }
    pub fn chance(&mut self, p: f32) -> bool {
        self.f32() < p
    }
    pub fn normal(&mut self) -> f32 {
        let u1 = self.f32().max(1e-7);
        let u2 = self.f32();
        (-2.0 * u1.ln()).sqrt() * (2.0 * std::f32::consts::PI * u2).cos()
    }
}

/// Seed of sample `i` of the split with seed `split`.
pub fn sample_seed(split: u64, i: usize) -> u64 {
    let mut r = Rng::new(
        split.wrapping_mul(0xD1B5_4A32_D192_ED03) ^ (i as u64).wrapping_mul(0x8CB9_2BA7_2F3D_8DD7),
    );
    r.next_u64()
}

/// An RGB image in 0..1, row-major HWC.
#[derive(Clone, Debug)]
pub struct Texture {
    pub name: String,
    pub width: usize,
    pub height: usize,
    pub rgb: Vec<f32>,
}

impl Texture {
    fn sample(&self, x: f32, y: f32, out: &mut [f32; 3]) {
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
    dirs
}

/// Loads every colour-ish PNG/JPEG of at least 200×200 from `dirs` (sorted by name so the set
/// is deterministic). Falls back to procedural textures when none is found.
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
                if ext == "png" || ext == "jpg" || ext == "jpeg" {
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
}

impl Sample {
    /// The net input, CHW: RGB 0..1 and the trimap as 0 / 0.5 / 1.
    pub fn input_chw(&self) -> Vec<f32> {
        let n = self.size * self.size;
        let mut v = vec![0.0f32; 4 * n];
        for i in 0..n {
            for c in 0..3 {
                v[c * n + i] = self.rgb[i * 3 + c] as f32 / 255.0;
            }
            v[3 * n + i] = trimap_value(self.trimap[i]);
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

fn smoothstep01(x: f32) -> f32 {
    let x = x.clamp(0.0, 1.0);
    x * x * (3.0 - 2.0 * x)
}

/// A rotated ellipse; `dist` is an approximate signed distance in pixels (negative inside).
#[derive(Clone, Copy, Debug)]
struct Ellipse {
    cx: f32,
    cy: f32,
    rx: f32,
    ry: f32,
    cos: f32,
    sin: f32,
}

impl Ellipse {
    fn new(cx: f32, cy: f32, rx: f32, ry: f32, angle: f32) -> Self {
        Self {
            cx,
            cy,
            rx: rx.max(1.0),
            ry: ry.max(1.0),
            cos: angle.cos(),
            sin: angle.sin(),
        }
    }
    fn dist(&self, x: f32, y: f32) -> f32 {
        let (dx, dy) = (x - self.cx, y - self.cy);
        let u = (dx * self.cos + dy * self.sin) / self.rx;
        let v = (-dx * self.sin + dy * self.cos) / self.ry;
        ((u * u + v * v).sqrt() - 1.0) * self.rx.min(self.ry)
    }
}

/// Separable square min (erode) or max (dilate) filter of radius r on a byte mask.
fn morph(mask: &[bool], s: usize, r: usize, dilate: bool) -> Vec<bool> {
    let mut tmp = vec![false; s * s];
    let mut out = vec![false; s * s];
    for y in 0..s {
        for x in 0..s {
            let lo = x.saturating_sub(r);
            let hi = (x + r).min(s - 1);
            let row = &mask[y * s + lo..=y * s + hi];
            tmp[y * s + x] = if dilate {
                row.iter().any(|&b| b)
            } else {
                row.iter().all(|&b| b)
            };
        }
    }
    for y in 0..s {
        let lo = y.saturating_sub(r);
        let hi = (y + r).min(s - 1);
        for x in 0..s {
            let mut acc = !dilate;
            for yy in lo..=hi {
                let b = tmp[yy * s + x];
                if dilate {
                    acc |= b;
                } else {
                    acc &= b;
                }
            }
            out[y * s + x] = acc;
        }
    }
    out
}

fn box_blur(v: &mut [f32], w: usize, h: usize, r: usize) {
    if r == 0 {
        return;
    }
    let mut tmp = vec![0.0f32; w * h];
    for y in 0..h {
        for x in 0..w {
            let lo = x.saturating_sub(r);
            let hi = (x + r).min(w - 1);
            let s: f32 = v[y * w + lo..=y * w + hi].iter().sum();
            tmp[y * w + x] = s / (hi - lo + 1) as f32;
        }
    }
    for y in 0..h {
        let lo = y.saturating_sub(r);
        let hi = (y + r).min(h - 1);
        for x in 0..w {
            let mut s = 0.0;
            for yy in lo..=hi {
                s += tmp[yy * w + x];
            }
            v[y * w + x] = s / (hi - lo + 1) as f32;
        }
    }
}

fn bilinear(v: &[f32], w: usize, h: usize, x: f32, y: f32) -> f32 {
    let x = x.clamp(0.0, (w - 1) as f32);
    let y = y.clamp(0.0, (h - 1) as f32);
    let (x0, y0) = (x.floor() as usize, y.floor() as usize);
    let (x1, y1) = ((x0 + 1).min(w - 1), (y0 + 1).min(h - 1));
    let (fx, fy) = (x - x0 as f32, y - y0 as f32);
    let top = v[y0 * w + x0] * (1.0 - fx) + v[y0 * w + x1] * fx;
    let bot = v[y1 * w + x0] * (1.0 - fx) + v[y1 * w + x1] * fx;
    top * (1.0 - fy) + bot * fy
}

/// Generates sample data from textures.
pub struct Generator {
    pub textures: Vec<Texture>,
}

impl Generator {
    pub fn new(textures: Vec<Texture>) -> Self {
        assert!(!textures.is_empty(), "no textures");
        Self { textures }
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
        let gain = [r.range(0.8, 1.2), r.range(0.8, 1.2), r.range(0.8, 1.2)];
        let bright = r.range(-0.1, 0.1);
        let sat = r.range(0.6, 1.3);
        let mut out = vec![0.0; size * size * 3];
        let mut px = [0.0f32; 3];
        for y in 0..size {
            for x in 0..size {
                let xx = if flip { size - 1 - x } else { x };
                t.sample(
                    x0 + (xx as f32 + 0.5) * step,
                    y0 + (y as f32 + 0.5) * step,
                    &mut px,
                );
                let g = (px[0] + px[1] + px[2]) / 3.0;
                for c in 0..3 {
                    let v = (g + (px[c] - g) * sat) * gain[c] + bright;
                    out[(y * size + x) * 3 + c] = v.clamp(0.0, 1.0);
                }
            }
        }
        out
    }

    /// The procedural ground-truth alpha.
    fn alpha(&self, r: &mut Rng, s: usize) -> Vec<f32> {
        let sf = s as f32;
        let mut shapes: Vec<Ellipse> = Vec::new();
        if r.chance(0.65) {
            // Person-like: body, head, maybe arms, often cut by the frame.
            let cx = r.range(0.25, 0.75) * sf;
            let body_top = r.range(0.35, 0.8) * sf;
            let rx = r.range(0.18, 0.45) * sf;
            let ry = r.range(0.3, 0.6) * sf;
            shapes.push(Ellipse::new(cx, body_top + ry, rx, ry, r.range(-0.2, 0.2)));
            let hr = r.range(0.1, 0.22) * sf;
            shapes.push(Ellipse::new(
                cx + r.range(-0.1, 0.1) * sf,
                body_top - hr * r.range(0.4, 0.9),
                hr * r.range(0.8, 1.0),
                hr,
                r.range(-0.3, 0.3),
            ));
            for _ in 0..r.below(3) {
                shapes.push(Ellipse::new(
                    cx + r.range(-0.5, 0.5) * sf,
                    body_top + r.range(0.0, 0.5) * sf,
                    r.range(0.04, 0.1) * sf,
                    r.range(0.15, 0.35) * sf,
                    r.range(-1.5, 1.5),
                ));
            }
        } else {
            for _ in 0..1 + r.below(4) {
                shapes.push(Ellipse::new(
                    r.range(0.1, 0.9) * sf,
                    r.range(0.1, 0.9) * sf,
                    r.range(0.08, 0.4) * sf,
                    r.range(0.08, 0.4) * sf,
                    r.range(0.0, 3.14),
                ));
            }
        }
        let edge = if r.chance(0.3) {
            r.range(2.0, 6.0)
        } else {
            r.range(0.6, 2.0)
        };
        let wob_a = r.range(0.0, 3.0);
        let (wf1, wf2) = (r.range(0.05, 0.3), r.range(0.05, 0.3));
        let (wp1, wp2) = (r.range(0.0, 6.28), r.range(0.0, 6.28));
        let holes: Vec<Ellipse> = if r.chance(0.4) {
            (0..1 + r.below(3))
                .map(|_| {
                    let e = shapes[r.below(shapes.len())];
                    Ellipse::new(
                        e.cx + r.range(-0.5, 0.5) * e.rx,
                        e.cy + r.range(-0.5, 0.5) * e.ry,
                        r.range(0.02, 0.08) * sf,
                        r.range(0.02, 0.08) * sf,
                        r.range(0.0, 3.14),
                    )
                })
                .collect()
        } else {
            Vec::new()
        };
        let veil: Option<(Ellipse, f32)> = if r.chance(0.35) {
            Some((
                Ellipse::new(
                    r.range(0.2, 0.8) * sf,
                    r.range(0.2, 0.8) * sf,
                    r.range(0.1, 0.35) * sf,
                    r.range(0.1, 0.35) * sf,
                    r.range(0.0, 3.14),
                ),
                r.range(0.2, 0.8),
            ))
        } else {
            None
        };
        let mut a = vec![0.0f32; s * s];
        for y in 0..s {
            for x in 0..s {
                let (fx, fy) = (x as f32 + 0.5, y as f32 + 0.5);
                let mut d = f32::MAX;
                for e in &shapes {
                    d = d.min(e.dist(fx, fy));
                }
                d += wob_a * (fx * wf1 + wp1).sin() * (fy * wf2 + wp2).sin();
                let mut v = smoothstep01(0.5 - d / edge);
                for h in &holes {
                    v *= smoothstep01(0.5 + h.dist(fx, fy) / 1.5);
                }
                if let Some((e, t)) = &veil {
                    let inside = smoothstep01(0.5 - e.dist(fx, fy) / 3.0);
                    v *= 1.0 - inside * (1.0 - t);
                }
                a[y * s + x] = v;
            }
        }
        if r.chance(0.7) {
            self.strands(r, &mut a, s);
        }
        if r.chance(0.25) {
            motion_blur(r, &mut a, s);
        }
        a
    }

    /// Thin hair-like strands growing outwards from the boundary.
    fn strands(&self, r: &mut Rng, a: &mut [f32], s: usize) {
        let base = a.to_vec();
        let n = 5 + r.below(36);
        for _ in 0..n {
            // A boundary point.
            let mut start = None;
            for _ in 0..200 {
                let (x, y) = (r.below(s), r.below(s));
                let v = base[y * s + x];
                if v > 0.2 && v < 0.8 {
                    start = Some((x as f32 + 0.5, y as f32 + 0.5));
                    break;
                }
            }
            let Some((mut px, mut py)) = start else {
                return;
            };
            // Outward = down the alpha gradient.
            let gx = bilinear(&base, s, s, px + 2.0, py) - bilinear(&base, s, s, px - 2.0, py);
            let gy = bilinear(&base, s, s, px, py + 2.0) - bilinear(&base, s, s, px, py - 2.0);
            let mut ang = if gx.abs() + gy.abs() > 1e-3 {
                (-gy).atan2(-gx)
            } else {
                r.range(0.0, 6.28)
            } + r.range(-0.6, 0.6);
            let len = r.range(0.08, 0.35) * s as f32;
            let width = r.range(0.35, 1.5);
            let opacity = r.range(0.3, 1.0);
            let curl = r.range(-0.08, 0.08);
            let steps = (len / 1.5) as usize;
            for i in 0..steps {
                ang += curl + r.range(-0.1, 0.1);
                let (nx, ny) = (px + 1.5 * ang.cos(), py + 1.5 * ang.sin());
                let taper = 1.0 - i as f32 / steps.max(1) as f32 * 0.7;
                draw_segment(a, s, (px, py), (nx, ny), width * taper, opacity * taper);
                px = nx;
                py = ny;
            }
        }
    }

    /// Generates sample `seed` of `size × size`.
    pub fn sample(&self, seed: u64, size: usize) -> Sample {
        let mut r = Rng::new(seed);
        let s = size;
        let bg = self.crop(&mut r, s);
        let fg = self.crop(&mut r, s);
        let alpha = self.alpha(&mut r, s);
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
            (gt_trimap(&mut r, &alpha, s), TrimapKind::GroundTruth)
        } else {
            (pipeline_trimap(&mut r, &alpha, s), TrimapKind::Pipeline)
        };
        Sample {
            size: s,
            rgb,
            trimap,
            alpha,
            kind,
        }
    }
}

fn draw_segment(a: &mut [f32], s: usize, p0: (f32, f32), p1: (f32, f32), width: f32, opacity: f32) {
    let half = width * 0.5;
    let pad = half + 1.0;
    let x_lo = (p0.0.min(p1.0) - pad).floor().max(0.0) as usize;
    let y_lo = (p0.1.min(p1.1) - pad).floor().max(0.0) as usize;
    let x_hi = ((p0.0.max(p1.0) + pad).ceil() as isize).clamp(0, s as isize - 1) as usize;
    let y_hi = ((p0.1.max(p1.1) + pad).ceil() as isize).clamp(0, s as isize - 1) as usize;
    if p0.0 + pad < 0.0 || p0.1 + pad < 0.0 || x_lo >= s || y_lo >= s {
        return;
    }
    let (dx, dy) = (p1.0 - p0.0, p1.1 - p0.1);
    let l2 = (dx * dx + dy * dy).max(1e-6);
    for y in y_lo..=y_hi {
        for x in x_lo..=x_hi {
            let (qx, qy) = (x as f32 + 0.5, y as f32 + 0.5);
            let t = (((qx - p0.0) * dx + (qy - p0.1) * dy) / l2).clamp(0.0, 1.0);
            let (cx, cy) = (p0.0 + t * dx - qx, p0.1 + t * dy - qy);
            let d = (cx * cx + cy * cy).sqrt();
            // Area coverage of a line of width `width` (thin lines: partial coverage).
            let cov = (half + 0.5 - d).clamp(0.0, 1.0).min(width.min(1.0)) * opacity;
            let v = &mut a[y * s + x];
            *v = (*v).max(cov);
        }
    }
}

fn motion_blur(r: &mut Rng, a: &mut [f32], s: usize) {
    let len = 3 + r.below(9);
    let ang = r.range(0.0, 3.14);
    let (dx, dy) = (ang.cos(), ang.sin());
    let src = a.to_vec();
    for y in 0..s {
        for x in 0..s {
            let mut acc = 0.0;
            for t in 0..len {
                let o = t as f32 - (len - 1) as f32 / 2.0;
                acc += bilinear(&src, s, s, x as f32 + o * dx, y as f32 + o * dy);
            }
            a[y * s + x] = acc / len as f32;
        }
    }
}

fn jpeg_roundtrip(rgb: &[u8], s: usize, quality: u8) -> Option<Vec<u8>> {
    let mut buf = Vec::new();
    let mut enc = image::codecs::jpeg::JpegEncoder::new_with_quality(&mut buf, quality);
    enc.encode(rgb, s as u32, s as u32, image::ExtendedColorType::Rgb8)
        .ok()?;
    let img = image::load_from_memory_with_format(&buf, image::ImageFormat::Jpeg).ok()?;
    Some(img.to_rgb8().into_raw())
}

/// DIM / GCA training trimap: fg = alpha ≈ 1 eroded, bg = alpha ≈ 0 eroded, rest unknown.
pub fn gt_trimap(r: &mut Rng, alpha: &[f32], s: usize) -> Vec<u8> {
    let scale = s as f32 / 128.0;
    let rf = ((r.range(1.0, 10.0) * scale) as usize).max(1);
    let rb = ((r.range(1.0, 10.0) * scale) as usize).max(1);
    let fg: Vec<bool> = alpha.iter().map(|&a| a >= 0.999).collect();
    let bg: Vec<bool> = alpha.iter().map(|&a| a <= 0.001).collect();
    let fg = morph(&fg, s, rf, false);
    let bg = morph(&bg, s, rb, false);
    (0..s * s)
        .map(|i| {
            if fg[i] {
                255
            } else if bg[i] {
                0
            } else {
                128
            }
        })
        .collect()
}

/// The trimap the running pipeline would produce: a coarse, wrong-in-small-ways mask through
/// the project's own trimap stage.
pub fn pipeline_trimap(r: &mut Rng, alpha: &[f32], s: usize) -> Vec<u8> {
    // Coarse resolution: 640×360 → 256×144 is 2.5×; crops cover 2..4× downsampling.
    let f = r.range(2.0, 4.0);
    let cs = ((s as f32 / f).round() as usize).max(8);
    let mut coarse = vec![0.0f32; cs * cs];
    let cell = s as f32 / cs as f32;
    for cy in 0..cs {
        for cx in 0..cs {
            // Area average.
            let (x0, x1) = (
                (cx as f32 * cell) as usize,
                (((cx + 1) as f32 * cell) as usize).min(s),
            );
            let (y0, y1) = (
                (cy as f32 * cell) as usize,
                (((cy + 1) as f32 * cell) as usize).min(s),
            );
            let mut acc = 0.0;
            let mut n = 0;
            for y in y0..y1.max(y0 + 1) {
                for x in x0..x1.max(x0 + 1) {
                    acc += alpha[y.min(s - 1) * s + x.min(s - 1)];
                    n += 1;
                }
            }
            coarse[cy * cs + cx] = acc / n as f32;
        }
    }
    box_blur(&mut coarse, cs, cs, r.below(2));
    // Segmentation nets are over-confident: sharpen, then blobs of misses / false positives.
    let gain = r.range(1.0, 3.0);
    for v in &mut coarse {
        *v = ((*v - 0.5) * gain + 0.5).clamp(0.0, 1.0);
    }
    for _ in 0..r.below(3) {
        let e = Ellipse::new(
            r.range(0.0, cs as f32),
            r.range(0.0, cs as f32),
            r.range(0.5, 3.0),
            r.range(0.5, 3.0),
            r.range(0.0, 3.14),
        );
        let miss = r.chance(0.6);
        for y in 0..cs {
            for x in 0..cs {
                let inside = smoothstep01(0.5 - e.dist(x as f32 + 0.5, y as f32 + 0.5));
                let v = &mut coarse[y * cs + x];
                *v = if miss {
                    *v * (1.0 - 0.8 * inside)
                } else {
                    v.max(0.85 * inside)
                };
            }
        }
    }
    // Small shift (the coarse net is not pixel-aligned) and upsampling to the crop.
    let (sx, sy) = (r.range(-1.0, 1.0), r.range(-1.0, 1.0));
    let mut mask = vec![0.0f32; s * s];
    for y in 0..s {
        for x in 0..s {
            let cx = (x as f32 + 0.5) / cell - 0.5 + sx;
            let cy = (y as f32 + 0.5) / cell - 0.5 + sy;
            mask[y * s + x] = bilinear(&coarse, cs, cs, cx, cy);
        }
    }
    let threshold = r.range(0.35, 0.65);
    // The runtime's band is 3 % of the frame's shorter side (~11 px at 360 p).
    let radius = r.range(4.0, 12.0) * s as f32 / 128.0;
    let mut out = vec![0u8; s * s];
    TrimapBuilder::new().build(&mask, s, s, threshold, radius, &mut out);
    out
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
        let threads = threads.max(1);
        let mut samples: Vec<Option<Sample>> = (0..n).map(|_| None).collect();
        std::thread::scope(|scope| {
            let chunk = n.div_ceil(threads).max(1);
            for (ci, part) in samples.chunks_mut(chunk).enumerate() {
                scope.spawn(move || {
                    for (j, slot) in part.iter_mut().enumerate() {
                        let i = ci * chunk + j;
                        *slot = Some(generator.sample(sample_seed(seed, i), size));
                    }
                });
            }
        });
        Dataset {
            size,
            samples: samples.into_iter().map(|s| s.expect("generated")).collect(),
            seed,
        }
    }

    pub fn len(&self) -> usize {
        self.samples.len()
    }

    pub fn is_empty(&self) -> bool {
        self.samples.is_empty()
    }

    /// A batch: (input `[B,4,S,S]`, alpha `[B,1,S,S]`, unknown mask `[B,1,S,S]`);
    /// `flips[i]` mirrors sample i horizontally.
    pub fn batch(&self, idx: &[usize], flips: &[bool]) -> (Tensor, Tensor, Tensor) {
        let s = self.size;
        let n = s * s;
        let b = idx.len();
        let mut input = vec![0.0f32; b * 4 * n];
        let mut alpha = vec![0.0f32; b * n];
        let mut unknown = vec![0.0f32; b * n];
        for (bi, (&i, &flip)) in idx.iter().zip(flips).enumerate() {
            let smp = &self.samples[i];
            for y in 0..s {
                for x in 0..s {
                    let src = y * s + if flip { s - 1 - x } else { x };
                    let dst = y * s + x;
                    for c in 0..3 {
                        input[(bi * 4 + c) * n + dst] = smp.rgb[src * 3 + c] as f32 / 255.0;
                    }
                    input[(bi * 4 + 3) * n + dst] = trimap_value(smp.trimap[src]);
                    alpha[bi * n + dst] = smp.alpha[src];
                    unknown[bi * n + dst] = if smp.trimap[src] == 128 { 1.0 } else { 0.0 };
                }
            }
        }
        let s = s as i64;
        let b = b as i64;
        (
            Tensor::from_slice(&input).view([b, 4, s, s]),
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

#[cfg(test)]
mod tests {
    use super::*;

    fn generator() -> Generator {
        let mut r = Rng::new(1);
        Generator::new((0..3).map(|i| procedural_texture(&mut r, i)).collect())
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
