//! Synthetic matting test data with exact ground-truth alpha: a soft-edged, person-like
//! silhouette (head, shoulders, thin hair-like strands with partial opacity) textured with a
//! real photograph and composited `I = α·F + (1−α)·B` over another real photograph — as stills
//! and as moving sequences (the shape moves, the background pans) for temporal stability.
//!
//! Also the evaluation helpers that go with them: the standard trimap made from a ground-truth
//! alpha by dilating its soft region, and dtSSD (RVM's temporal-coherence error).

use std::path::PathBuf;

use anyhow::{Result, ensure};
use ndarray::s;

use slimmatte::composite::RgbaImage;
use slimmatte::frame::rgba_view;
use slimmatte::resize::RgbaToPlanar;
use slimmatte_measure::rng::Rng;

/// One composited image with its exact alpha.
#[derive(Debug, Clone)]
pub struct Sample {
    pub name: String,
    pub width: usize,
    pub height: usize,
    /// Packed RGBA, alpha 255.
    pub rgba: Vec<u8>,
    /// Ground-truth alpha, 0..1.
    pub alpha: Vec<f32>,
    /// Ground-truth foreground colour, packed RGB, where it is known (synthetic stills).
    pub foreground: Option<Vec<u8>>,
}

/// Photographs used as foreground textures and backgrounds: scikit-image's sample images when
/// its data folder is found (the project's `.venv`), else the two pictures shipped in `assets/`.
pub fn textures() -> Result<Vec<(String, RgbaImage)>> {
    let mut out = Vec::new();
    if let Some(dir) = skimage_data_dir() {
        // The held-out list is this list: training never sees these photographs.
        for &name in slimmatte_measure::heldout::EVAL_PHOTOS {
            let p = dir.join(name);
            if let Ok(img) = RgbaImage::load(&p) {
                out.push((name.to_string(), img));
            }
        }
    }
    if out.len() < 2 {
        out.clear();
        for name in ["hubble_deep_field.jpg", "astronaut.jpg"] {
            out.push((
                name.to_string(),
                RgbaImage::load(&slimmatte::paths::asset(name))?,
            ));
        }
    }
    Ok(out)
}

/// `skimage/data` inside the project's `.venv`, if present.
pub fn skimage_data_dir() -> Option<PathBuf> {
    let lib = slimmatte::paths::project_root().join(".venv").join("lib");
    let mut pythons: Vec<PathBuf> = std::fs::read_dir(&lib)
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    pythons.sort();
    pythons
        .into_iter()
        .map(|p| p.join("site-packages").join("skimage").join("data"))
        .find(|p| p.join("coffee.png").is_file())
}

/// A hair-like strand: start, end, half width, opacity.
type Strand = ((f32, f32), (f32, f32), f32, f32);

/// A limb: a capsule from one point to another, with its radius.
pub(crate) type Limb = ((f32, f32), (f32, f32), f32);

/// The silhouette's geometry, in pixels.
#[derive(Debug, Clone)]
pub(crate) struct Silhouette {
    pub(crate) head: (f32, f32, f32),
    pub(crate) torso: (f32, f32, f32, f32),
    /// Softness of the body edge (pixels over which alpha ramps 0 → 1).
    edge: f32,
    /// Hair-like strands: start, end, half width, opacity.
    strands: Vec<Strand>,
    /// A raised arm: a capsule from the shoulder, with its radius.
    pub(crate) arm: Option<Limb>,
}

impl Silhouette {
    fn random(rng: &mut Rng, w: usize, h: usize) -> Self {
        let scale = h as f32 * rng.range(0.55, 0.8);
        let cx = w as f32 * rng.range(0.35, 0.65);
        Self::placed(rng, h, scale, cx)
    }

    /// A silhouette `scale` pixels tall centred at `cx` in a frame `h` pixels tall (the rest
    /// drawn from `rng`).
    pub(crate) fn placed(rng: &mut Rng, h: usize, scale: f32, cx: f32) -> Self {
        let h = h as f32;
        let head_r = 0.14 * scale;
        let head_y = h - scale * rng.range(0.85, 0.95) + head_r;
        let torso = (
            cx,
            head_y + 0.8 * head_r + 0.38 * scale,
            0.33 * scale,
            0.4 * scale,
        );
        let edge = rng.range(1.0, 3.5) * (h / 360.0).max(0.25);
        let n = 24 + rng.below(24);
        let strands = (0..n)
            .map(|_| {
                let a = rng.range(-2.8, -0.35); // upwards and sideways
                let start = (cx + head_r * 0.9 * a.cos(), head_y + head_r * 0.9 * a.sin());
                let len = head_r * rng.range(0.3, 0.9);
                let b = a + rng.range(-0.3, 0.3);
                let end = (start.0 + len * b.cos(), start.1 + len * b.sin());
                (
                    start,
                    end,
                    rng.range(0.4, 1.0) * (h / 360.0).max(0.5),
                    rng.range(0.35, 0.9),
                )
            })
            .collect();
        Self {
            head: (cx, head_y, head_r),
            torso,
            edge,
            strands,
            arm: None,
        }
    }

    fn shifted(&self, dx: f32, dy: f32) -> Self {
        let mut s = self.clone();
        s.head.0 += dx;
        s.head.1 += dy;
        s.torso.0 += dx;
        s.torso.1 += dy;
        if let Some((a, b, _)) = &mut s.arm {
            for p in [a, b] {
                p.0 += dx;
                p.1 += dy;
            }
        }
        for st in &mut s.strands {
            st.0.0 += dx;
            st.0.1 += dy;
            st.1.0 += dx;
            st.1.1 += dy;
        }
        s
    }

    /// Exact alpha of the silhouette at pixel centre (x + 0.5, y + 0.5).
    pub(crate) fn alpha(&self, w: usize, h: usize) -> Vec<f32> {
        let mut out = vec![0.0f32; w * h];
        let (hx, hy, hr) = self.head;
        let (tx, ty, rx, ry) = self.torso;
        for y in 0..h {
            let py = y as f32 + 0.5;
            for x in 0..w {
                let px = x as f32 + 0.5;
                let d_head = ((px - hx).powi(2) + (py - hy).powi(2)).sqrt() - hr;
                let nx = (px - tx) / rx;
                let ny = (py - ty) / ry;
                let d_torso = ((nx * nx + ny * ny).sqrt() - 1.0) * rx.min(ry);
                let d_arm = self.arm.map_or(f32::INFINITY, |(a, b, r)| {
                    segment_distance((px, py), a, b) - r
                });
                let d = d_head.min(d_torso).min(d_arm);
                out[y * w + x] = smoothstep(0.5 * self.edge, -0.5 * self.edge, d);
            }
        }
        for &((x0, y0), (x1, y1), hw, op) in &self.strands {
            let (bx0, bx1) = (x0.min(x1) - hw - 1.0, x0.max(x1) + hw + 1.0);
            let (by0, by1) = (y0.min(y1) - hw - 1.0, y0.max(y1) + hw + 1.0);
            let xs = (bx0.max(0.0) as usize)..(bx1.max(0.0) as usize).min(w);
            for y in (by0.max(0.0) as usize)..(by1.max(0.0) as usize).min(h) {
                for x in xs.clone() {
                    let d = segment_distance((x as f32 + 0.5, y as f32 + 0.5), (x0, y0), (x1, y1));
                    let a = op * (1.0 - d / (hw + 0.5)).clamp(0.0, 1.0);
                    let o = &mut out[y * w + x];
                    *o = 1.0 - (1.0 - *o) * (1.0 - a);
                }
            }
        }
        out
    }
}

fn smoothstep(e0: f32, e1: f32, x: f32) -> f32 {
    let t = ((x - e0) / (e1 - e0)).clamp(0.0, 1.0);
    t * t * (3.0 - 2.0 * t)
}

pub(crate) fn segment_distance(p: (f32, f32), a: (f32, f32), b: (f32, f32)) -> f32 {
    let (vx, vy) = (b.0 - a.0, b.1 - a.1);
    let len2 = (vx * vx + vy * vy).max(1e-9);
    let t = (((p.0 - a.0) * vx + (p.1 - a.1) * vy) / len2).clamp(0.0, 1.0);
    let (qx, qy) = (a.0 + t * vx - p.0, a.1 + t * vy - p.1);
    (qx * qx + qy * qy).sqrt()
}

/// `image` scaled to cover `w × h` and centred, packed RGB bytes.
pub(crate) fn cover(image: &RgbaImage, w: usize, h: usize) -> Result<Vec<u8>> {
    let (iw, ih) = (image.width as f64, image.height as f64);
    let aspect = w as f64 / h as f64;
    let (cw, ch) = if iw / ih > aspect {
        ((ih * aspect).round() as usize, image.height)
    } else {
        (image.width, (iw / aspect).round() as usize)
    };
    let (cw, ch) = (cw.clamp(1, image.width), ch.clamp(1, image.height));
    let (x, y) = ((image.width - cw) / 2, (image.height - ch) / 2);
    let src = rgba_view(&image.data, image.width, image.height, image.width * 4)?;
    let crop = src.slice(s![y..y + ch, x..x + cw, ..]);
    let mut planar = vec![0.0f32; 3 * w * h];
    RgbaToPlanar::new().run(&crop, w, h, 1.0, &mut planar);
    let plane = w * h;
    let mut rgb = vec![0u8; 3 * plane];
    for i in 0..plane {
        for c in 0..3 {
            rgb[3 * i + c] = (planar[c * plane + i] + 0.5).clamp(0.0, 255.0) as u8;
        }
    }
    Ok(rgb)
}

/// Centre and radius of Eileen Collins' head (hair included) in scikit-image's 512×512
/// `astronaut` photograph.
const ASTRONAUT_HEAD: (f32, f32, f32) = (225.0, 95.0, 75.0);

/// Whether a texture is the astronaut photograph (the person used as foreground).
pub(crate) fn is_person(name: &str) -> bool {
    name.starts_with("astronaut")
}

/// The astronaut photograph scaled and placed so her head fills the silhouette's head circle
/// (her shoulders then fill the torso), on a `cw × ch` canvas whose origin is at `-origin` in
/// frame coordinates. Packed RGB, bilinear, edges clamped.
pub(crate) fn person_canvas(
    image: &RgbaImage,
    head: (f32, f32, f32),
    cw: usize,
    ch: usize,
    origin: f32,
) -> Vec<u8> {
    let (ax, ay, ar) = ASTRONAUT_HEAD;
    let scale = image.width as f32 / 512.0;
    let k = head.2 / (ar * scale);
    let mut out = vec![0u8; 3 * cw * ch];
    let (iw, ih) = (image.width as f32, image.height as f32);
    for y in 0..ch {
        for x in 0..cw {
            let u =
                ((x as f32 + 0.5 - origin - head.0) / k + ax * scale - 0.5).clamp(0.0, iw - 1.0);
            let v =
                ((y as f32 + 0.5 - origin - head.1) / k + ay * scale - 0.5).clamp(0.0, ih - 1.0);
            let (x0, y0) = (u.floor() as usize, v.floor() as usize);
            let (x1, y1) = (
                (x0 + 1).min(image.width - 1),
                (y0 + 1).min(image.height - 1),
            );
            let (fx, fy) = (u - x0 as f32, v - y0 as f32);
            let px =
                |xx: usize, yy: usize, c: usize| image.data[4 * (yy * image.width + xx) + c] as f32;
            for c in 0..3 {
                let top = px(x0, y0, c) * (1.0 - fx) + px(x1, y0, c) * fx;
                let bot = px(x0, y1, c) * (1.0 - fx) + px(x1, y1, c) * fx;
                out[3 * (y * cw + x) + c] = (top * (1.0 - fy) + bot * fy + 0.5) as u8;
            }
        }
    }
    out
}

/// `I = α·F + (1−α)·B` with `F` and `B` packed RGB windows of larger pictures.
#[allow(clippy::too_many_arguments)]
pub(crate) fn composite(
    alpha: &[f32],
    w: usize,
    h: usize,
    fg: &[u8],
    fg_w: usize,
    (fx, fy): (usize, usize),
    bg: &[u8],
    bg_w: usize,
    (bx, by): (usize, usize),
) -> Vec<u8> {
    let mut out = vec![255u8; w * h * 4];
    for y in 0..h {
        for x in 0..w {
            let a = alpha[y * w + x];
            let f = &fg[3 * ((y + fy) * fg_w + x + fx)..][..3];
            let b = &bg[3 * ((y + by) * bg_w + x + bx)..][..3];
            let o = &mut out[4 * (y * w + x)..][..3];
            for c in 0..3 {
                o[c] = (a * f[c] as f32 + (1.0 - a) * b[c] as f32 + 0.5).clamp(0.0, 255.0) as u8;
            }
        }
    }
    out
}

/// Still `index` of the synthetic test set at `w × h`: each index picks its own silhouette,
/// foreground texture and background (deterministic).
pub fn still(textures: &[(String, RgbaImage)], index: usize, w: usize, h: usize) -> Result<Sample> {
    ensure!(textures.len() >= 2, "need at least two texture images");
    ensure!(w >= 16 && h >= 16, "synthetic images need at least 16×16");
    // The raw SplitMix64 state (not `Rng::new`'s mixed seed): the committed results are
    // computed on exactly these images.
    let mut rng = Rng::from_state(0x5EED_0000 + index as u64);
    let (fi, bi) = pick(textures, index);
    let sil = Silhouette::random(&mut rng, w, h);
    let fg = foreground(&textures[fi], sil.head, w, h, 0.0)?;
    let bg = cover(&textures[bi].1, w, h)?;
    let alpha = sil.alpha(w, h);
    let rgba = composite(&alpha, w, h, &fg, w, (0, 0), &bg, w, (0, 0));
    Ok(Sample {
        name: pair_name(&format!("synthetic_{index:03}"), textures, (fi, bi)),
        width: w,
        height: h,
        rgba,
        alpha,
        foreground: Some(fg),
    })
}

/// Foreground and background textures for item `index`: the astronaut (a person, so person
/// models such as RVM and MediaPipe see what they were made for) over every other picture in
/// turn; without the astronaut, pairs of the other pictures.
fn pick(textures: &[(String, RgbaImage)], index: usize) -> (usize, usize) {
    let n = textures.len();
    match textures.iter().position(|(name, _)| is_person(name)) {
        Some(p) => {
            let others: Vec<usize> = (0..n).filter(|&i| i != p).collect();
            (p, others[index % others.len()])
        }
        None => {
            let fi = index % n;
            let bi = (index / n + fi + 1) % n;
            (fi, if bi == fi { (bi + 1) % n } else { bi })
        }
    }
}

fn stem(name: &str) -> &str {
    name.split('.').next().unwrap_or(name)
}

/// `{prefix}_{foreground}_over_{background}` (picture names without extension).
pub(crate) fn pair_name(
    prefix: &str,
    textures: &[(String, RgbaImage)],
    (fi, bi): (usize, usize),
) -> String {
    format!(
        "{prefix}_{}_over_{}",
        stem(&textures[fi].0),
        stem(&textures[bi].0)
    )
}

/// The foreground canvas `w × h` (origin at `-origin` in frame coordinates): the astronaut
/// placed on the silhouette's `head`, any other picture scaled to cover the canvas.
fn foreground(
    (name, image): &(String, RgbaImage),
    head: (f32, f32, f32),
    w: usize,
    h: usize,
    origin: f32,
) -> Result<Vec<u8>> {
    if is_person(name) {
        Ok(person_canvas(image, head, w, h, origin))
    } else {
        cover(image, w, h)
    }
}

/// A moving synthetic sequence: the textured silhouette drifts sideways and bobs while the
/// background pans the other way; every frame has its exact alpha.
#[derive(Debug)]
pub struct MovingSequence {
    pub name: String,
    width: usize,
    height: usize,
    frames: usize,
    silhouette: Silhouette,
    margin: usize,
    fg: Vec<u8>,
    bg: Vec<u8>,
}

impl MovingSequence {
    pub fn new(
        textures: &[(String, RgbaImage)],
        index: usize,
        w: usize,
        h: usize,
        frames: usize,
    ) -> Result<Self> {
        ensure!(textures.len() >= 2, "need at least two texture images");
        ensure!(frames >= 2, "a sequence needs at least two frames");
        let mut rng = Rng::from_state(0xD7_55D0 + index as u64);
        let (fi, bi) = pick(textures, index * 3 + 1);
        let margin = (w / 8).max(4);
        let (mw, mh) = (w + 2 * margin, h + 2 * margin);
        let silhouette = Silhouette::random(&mut rng, w, h);
        let fg = foreground(&textures[fi], silhouette.head, mw, mh, margin as f32)?;
        Ok(Self {
            name: pair_name(&format!("moving_{index:02}"), textures, (fi, bi)),
            width: w,
            height: h,
            frames,
            silhouette,
            margin,
            fg,
            bg: cover(&textures[bi].1, mw, mh)?,
        })
    }

    pub fn len(&self) -> usize {
        self.frames
    }

    pub fn is_empty(&self) -> bool {
        self.frames == 0
    }

    /// Frame `t` (0-based) with its exact alpha.
    pub fn frame(&self, t: usize) -> Sample {
        let (w, h, m) = (self.width, self.height, self.margin as f32);
        let phase = t as f32 / (self.frames - 1).max(1) as f32;
        // Foreground offset in −m..m, background offset the other way (a camera pan).
        let dx = m * (2.0 * phase - 1.0) * 0.9;
        let dy = 0.15 * m * (phase * std::f32::consts::TAU).sin();
        let sil = self.silhouette.shifted(dx, dy);
        let alpha = sil.alpha(w, h);
        let mw = w + 2 * self.margin;
        // The texture moves with the silhouette: sample it at (x − dx, y − dy).
        let f_off = (
            (m - dx).round().clamp(0.0, 2.0 * m) as usize,
            (m - dy).round().clamp(0.0, 2.0 * m) as usize,
        );
        let b_off = (
            (m + 0.5 * dx).round().clamp(0.0, 2.0 * m) as usize,
            self.margin,
        );
        let rgba = composite(&alpha, w, h, &self.fg, mw, f_off, &self.bg, mw, b_off);
        Sample {
            name: format!("{}_{t:03}", self.name),
            width: w,
            height: h,
            rgba,
            alpha,
            foreground: None,
        }
    }
}

/// The standard evaluation trimap of a ground-truth alpha: pixels with 0 < α < 1 (beyond
/// 1/255 of either end) are unknown, grown by a square dilation of `radius` pixels; the rest is
/// foreground (255) or background (0). Unknown is 128, as `metrics` expects.
pub fn trimap_from_alpha(alpha: &[f32], w: usize, h: usize, radius: usize) -> Vec<u8> {
    assert_eq!(alpha.len(), w * h, "alpha size");
    let eps = 1.0 / 255.0;
    let soft: Vec<bool> = alpha.iter().map(|&a| a > eps && a < 1.0 - eps).collect();
    // Separable dilation with a (2r+1)² square: prefix counts along rows, then columns.
    let mut rows = vec![false; w * h];
    for y in 0..h {
        let mut prefix = vec![0u32; w + 1];
        for x in 0..w {
            prefix[x + 1] = prefix[x] + soft[y * w + x] as u32;
        }
        for x in 0..w {
            let (lo, hi) = (x.saturating_sub(radius), (x + radius + 1).min(w));
            rows[y * w + x] = prefix[hi] > prefix[lo];
        }
    }
    let mut out = vec![0u8; w * h];
    let mut prefix = vec![0u32; h + 1];
    for x in 0..w {
        for y in 0..h {
            prefix[y + 1] = prefix[y] + rows[y * w + x] as u32;
        }
        for y in 0..h {
            let (lo, hi) = (y.saturating_sub(radius), (y + radius + 1).min(h));
            let i = y * w + x;
            out[i] = if prefix[hi] > prefix[lo] {
                128
            } else if alpha[i] >= 0.5 {
                255
            } else {
                0
            };
        }
    }
    out
}

/// dtSSD of a predicted sequence against the truth, as in RVM's evaluation code: per frame
/// `t ≥ 1`, `sqrt(Σ((p_t − p_{t−1}) − (g_t − g_{t−1}))² / N) · 100` over all N pixels (alpha
/// 0..1), averaged over the frames t ≥ 1 (RVM's `evaluate_lr.py` also counts a 0 for frame 0 in
/// its average, i.e. its value is ours × (T−1)/T). Lower is more temporally coherent.
pub fn dtssd(pred: &[Vec<f32>], gt: &[Vec<f32>]) -> f64 {
    assert_eq!(pred.len(), gt.len(), "sequence lengths differ");
    if pred.len() < 2 {
        return 0.0;
    }
    let mut total = 0.0f64;
    for t in 1..pred.len() {
        let n = gt[t].len();
        assert!(pred[t].len() == n && pred[t - 1].len() == n && gt[t - 1].len() == n);
        let mut s = 0.0f64;
        for i in 0..n {
            let d = (pred[t][i] as f64 - pred[t - 1][i] as f64)
                - (gt[t][i] as f64 - gt[t - 1][i] as f64);
            s += d * d;
        }
        total += (s / n as f64).sqrt() * 100.0;
    }
    total / (pred.len() - 1) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tex() -> Vec<(String, RgbaImage)> {
        let solid = |v: u8| RgbaImage {
            width: 32,
            height: 32,
            data: (0..32 * 32 * 4)
                .map(|i| if i % 4 == 3 { 255 } else { v ^ (i as u8) })
                .collect(),
        };
        vec![("a.png".into(), solid(10)), ("b.png".into(), solid(200))]
    }

    #[test]
    fn stills_have_soft_and_hard_alpha_and_are_deterministic() {
        let t = tex();
        let a = still(&t, 3, 96, 64).unwrap();
        let b = still(&t, 3, 96, 64).unwrap();
        assert_eq!(a.rgba, b.rgba);
        assert!(a.alpha.contains(&1.0));
        assert!(a.alpha.contains(&0.0));
        assert!(a.alpha.iter().any(|&v| v > 0.05 && v < 0.95));
    }

    #[test]
    fn composite_is_exact_where_alpha_is_known() {
        let t = tex();
        let s = still(&t, 0, 64, 48).unwrap();
        let fg = cover(&t[0].1, 64, 48).unwrap();
        let bg = cover(&t[1].1, 64, 48).unwrap();
        for i in 0..64 * 48 {
            let want = if s.alpha[i] == 1.0 {
                &fg[3 * i..3 * i + 3]
            } else if s.alpha[i] == 0.0 {
                &bg[3 * i..3 * i + 3]
            } else {
                continue;
            };
            assert_eq!(&s.rgba[4 * i..4 * i + 3], want);
        }
    }

    #[test]
    fn sequences_move() {
        let seq = MovingSequence::new(&tex(), 0, 80, 48, 5).unwrap();
        let (a, b) = (seq.frame(0), seq.frame(4));
        assert_ne!(a.alpha, b.alpha);
        assert_ne!(a.rgba, b.rgba);
    }

    #[test]
    fn trimap_dilates_the_soft_region() {
        // A 9×1 alpha with one soft pixel in the middle; radius 2 makes 5 unknown pixels.
        let a = [0.0, 0.0, 0.0, 0.0, 0.5, 1.0, 1.0, 1.0, 1.0];
        let t = trimap_from_alpha(&a, 9, 1, 2);
        assert_eq!(t, vec![0, 0, 128, 128, 128, 128, 128, 255, 255]);
    }

    #[test]
    fn dtssd_by_hand() {
        // Two frames of 4 pixels. Truth changes by +0.5 at pixel 0; the prediction by +0.3 at
        // pixel 0 and +0.4 at pixel 1: residuals (-0.2, 0.4, 0, 0) → sqrt(0.2/4)·100 = 22.36.
        let gt = vec![vec![0.0, 0.0, 1.0, 1.0], vec![0.5, 0.0, 1.0, 1.0]];
        let pred = vec![vec![0.1, 0.0, 1.0, 1.0], vec![0.4, 0.4, 1.0, 1.0]];
        let d = dtssd(&pred, &gt);
        assert!((d - (0.2f64 / 4.0).sqrt() * 100.0).abs() < 1e-5, "{d}");
        assert_eq!(dtssd(&gt, &gt), 0.0);
    }
}
