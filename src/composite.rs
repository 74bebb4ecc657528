//! Background compositing: `out = α·F + (1−α)·B`, with α taken from the frame's alpha channel.
//!
//! Backgrounds: transparent (the matte stays in alpha), a solid colour, an image file (scaled to
//! cover the frame, centred), or the frame itself blurred. The blur is computed at a reduced
//! resolution (three box passes ≈ a Gaussian) and upsampled, so its cost does not grow with the
//! radius.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, ensure};
use ndarray::{ArrayView3, s};

use crate::filter::box_blur;
use crate::foreground::BlurFusion;
use crate::frame::{RgbaViewMut, for_each_row_mut};
use crate::resize::{BilinearAxis, RgbaToPlanar};

/// An RGBA image held in memory (a decoded background picture).
#[derive(Debug, Clone)]
pub struct RgbaImage {
    pub width: usize,
    pub height: usize,
    pub data: Vec<u8>,
}

impl RgbaImage {
    /// Decodes a PNG or JPEG file.
    pub fn load(path: &Path) -> Result<Self> {
        ensure!(
            path.is_file(),
            "background image {} does not exist",
            path.display()
        );
        let img = image::open(path)
            .with_context(|| format!("cannot decode background image {}", path.display()))?
            .to_rgba8();
        let (width, height) = (img.width() as usize, img.height() as usize);
        Ok(Self {
            width,
            height,
            data: img.into_raw(),
        })
    }
}

/// Default standard deviation in pixels of [`Background::Blur`] (the `bgreplace` element's
/// `blur-sigma`, the command line's `--blur-sigma`).
pub const DEFAULT_BLUR_SIGMA: f32 = 12.0;
/// Default colour of [`Background::Color`] as 0xRRGGBB (`bgreplace`'s `color`, the command
/// line's `--color`): chroma-key green.
pub const DEFAULT_COLOR: u32 = 0x00_B1_40;

/// Default of [`Compositor::set_estimate_foreground`] (`bgreplace`'s `estimate-foreground`,
/// the command line's `--estimate-foreground`): composite the estimated foreground colour at
/// soft edges ([`BlurFusion`]) instead of the frame's own colour, which still holds the old
/// background. Given the true alpha it lowers the colour error on the soft pixels of the
/// tuning stills by a third (14.8 → 9.8 8-bit levels, `eval`'s foreground table) and removes
/// the old background's fringe from the real photo's leaves (`results/foreground/`), but with
/// the full pipeline's own matte it gains nothing on the test stills (21.58 vs 21.48 levels
/// of composite error on the matte's soft pixels). Off by default for that and for its cost,
/// which grows with the number of soft pixels: on the built-in clip (`bench
/// --estimate-foreground true`, 2 cores, two alternations, `results/foreground_cost.md`) the
/// composite stage took 1.8 ms instead of 0.2 at 640×360 and 6.9 instead of 0.8–0.9 at
/// 1280×720, and the pipeline delivered 137–146 instead of 168–170 fps and 60–64 instead of
/// 80–83 fps (criterion's disc with an 8 px ramp: +0.7 / +1.6 ms). Turn it on where the
/// matte is good and the edges matter more than the frame rate.
pub const DEFAULT_ESTIMATE_FOREGROUND: bool = false;

/// The `[r, g, b]` bytes of a 0xRRGGBB colour (higher bits are ignored).
pub const fn rgb(color: u32) -> [u8; 3] {
    [(color >> 16) as u8, (color >> 8) as u8, color as u8]
}

/// What replaces the background.
#[derive(Debug, Clone)]
pub enum Background {
    /// Keep the frame and its alpha (RGBA output for compositors and PNG/WebM with alpha).
    Transparent,
    /// A solid RGB colour.
    Color([u8; 3]),
    /// A picture, scaled to cover the frame and centred.
    Image { path: PathBuf, image: RgbaImage },
    /// The frame itself blurred with a Gaussian-like kernel of this standard deviation in pixels.
    Blur { sigma: f32 },
}

impl Background {
    /// Loads an image background from a file.
    pub fn image(path: &Path) -> Result<Self> {
        Ok(Background::Image {
            path: path.to_path_buf(),
            image: RgbaImage::load(path)?,
        })
    }
}

/// Applies a background to frames, keeping scaled images and blur buffers between frames.
#[derive(Debug)]
pub struct Compositor {
    background: Background,
    /// The image background fitted to the current frame size, packed RGB.
    fitted: Vec<u8>,
    fitted_size: (usize, usize),
    down: RgbaToPlanar,
    /// The blurred frame at reduced resolution, planar RGB, `small_size`.
    small: Vec<f32>,
    small_size: (usize, usize),
    scratch: Vec<f32>,
    /// One row of the blurred background interpolated vertically, packed RGB (`3 · sw`).
    row: Vec<f32>,
    xs: BilinearAxis,
    ys: BilinearAxis,
    /// Whether soft pixels get their estimated foreground colour first.
    estimate_foreground: bool,
    fusion: BlurFusion,
}

impl Compositor {
    pub fn new(background: Background) -> Self {
        Self {
            background,
            fitted: Vec::new(),
            fitted_size: (0, 0),
            down: RgbaToPlanar::new(),
            small: Vec::new(),
            small_size: (0, 0),
            scratch: Vec::new(),
            row: Vec::new(),
            xs: BilinearAxis::default(),
            ys: BilinearAxis::default(),
            estimate_foreground: DEFAULT_ESTIMATE_FOREGROUND,
            fusion: BlurFusion::new(),
        }
    }

    pub fn background(&self) -> &Background {
        &self.background
    }

    pub fn set_background(&mut self, background: Background) {
        self.background = background;
        self.fitted_size = (0, 0);
    }

    /// Whether pixels with a soft matte (0 < α < 255) get their estimated foreground colour
    /// before the blend ([`DEFAULT_ESTIMATE_FOREGROUND`]); off: the frame's own colour.
    pub fn set_estimate_foreground(&mut self, on: bool) {
        self.estimate_foreground = on;
    }

    /// Whether soft pixels get their estimated foreground colour.
    pub fn estimate_foreground(&self) -> bool {
        self.estimate_foreground
    }

    /// Replaces the background of `frame` using its alpha channel as the matte. Opaque modes
    /// set alpha to 255; the transparent mode keeps alpha (straight, not premultiplied). With
    /// foreground estimation on, soft pixels first get their estimated foreground colour (in
    /// the transparent mode too, as straight alpha expects); hard pixels keep theirs.
    pub fn apply(&mut self, frame: &mut RgbaViewMut<'_>) {
        let (width, height) = (frame.shape()[1], frame.shape()[0]);
        if self.estimate_foreground {
            self.fusion.apply(frame);
        }
        match &self.background {
            Background::Transparent => {}
            Background::Color(c) => {
                let c = *c;
                for_each_row_mut(frame, |_, row| {
                    for px in row.chunks_exact_mut(4) {
                        blend_known_px(px, &c);
                    }
                });
            }
            Background::Image { image, .. } => {
                if self.fitted_size != (width, height) {
                    fit_cover(image, width, height, &mut self.down, &mut self.fitted);
                    self.fitted_size = (width, height);
                }
                let fitted = &self.fitted;
                for_each_row_mut(frame, |y, row| {
                    let bg = &fitted[y * width * 3..(y + 1) * width * 3];
                    for (px, b) in row.chunks_exact_mut(4).zip(bg.chunks_exact(3)) {
                        blend_known_px(px, b);
                    }
                });
            }
            Background::Blur { sigma } => {
                let sigma = *sigma;
                self.blur_frame(frame, sigma);
                let (sw, sh) = self.small_size;
                let plane = sw * sh;
                let (small, xs, ys) = (&self.small, &self.xs, &self.ys);
                let line = &mut self.row;
                line.resize(3 * sw, 0.0);
                for_each_row_mut(frame, |y, row| {
                    // The person's inside needs no background: rows without a seen background
                    // pixel are only made opaque.
                    if row.chunks_exact(4).all(|px| px[3] == 255) {
                        return;
                    }
                    // The background row, interpolated vertically once per row (packed RGB);
                    // each pixel then only interpolates horizontally.
                    let (y0, y1, wy) = ys.at(y);
                    for c in 0..3 {
                        let (r0, r1) = (
                            &small[c * plane + y0 * sw..][..sw],
                            &small[c * plane + y1 * sw..][..sw],
                        );
                        for (i, (&a, &b)) in r0.iter().zip(r1).enumerate() {
                            line[3 * i + c] = a + wy * (b - a);
                        }
                    }
                    for (x, px) in row.chunks_exact_mut(4).enumerate() {
                        if px[3] == 255 {
                            continue;
                        }
                        let (x0, x1, wx) = xs.at(x);
                        let (l, r) = (&line[3 * x0..3 * x0 + 3], &line[3 * x1..3 * x1 + 3]);
                        let bg = [0, 1, 2].map(|c| l[c] + wx * (r[c] - l[c]));
                        if px[3] == 0 {
                            // The blend at α = 0 (the saturating cast clamps as it does).
                            for (v, b) in px[..3].iter_mut().zip(bg) {
                                *v = (b + 0.5) as u8;
                            }
                        } else {
                            let a = px[3] as f32 * (1.0 / 255.0);
                            for (v, b) in px[..3].iter_mut().zip(bg) {
                                *v = (b + a * (*v as f32 - b) + 0.5).clamp(0.0, 255.0) as u8;
                            }
                        }
                        px[3] = 255;
                    }
                });
            }
        }
    }

    /// Blurs the frame's RGB by `sigma` pixels at reduced resolution into `self.small`.
    fn blur_frame(&mut self, frame: &RgbaViewMut<'_>, sigma: f32) {
        let (width, height) = (frame.shape()[1], frame.shape()[0]);
        // Work at 1/factor resolution with a box radius of about 4 small pixels.
        let factor = (sigma / 4.0).floor().clamp(1.0, 16.0);
        let sw = ((width as f32 / factor).ceil() as usize).max(1);
        let sh = ((height as f32 / factor).ceil() as usize).max(1);
        let radius = ((sigma / factor).round() as usize).max(1);
        self.small.resize(3 * sw * sh, 0.0);
        self.down.run(&frame.view(), sw, sh, 1.0, &mut self.small);
        for p in self.small.chunks_exact_mut(sw * sh) {
            for _ in 0..3 {
                box_blur(p, sw, sh, radius, &mut self.scratch);
            }
        }
        self.small_size = (sw, sh);
        self.xs.ensure(sw, width);
        self.ys.ensure(sh, height);
    }
}

/// [`blend_px`] with the matte's two common values taken without arithmetic (most pixels of
/// a matte are 0 or 255, in long runs): the same bytes, 3–4× faster on a matte (criterion
/// `composite/color`: 0.57 → 0.15 ms at 640×360, 2.45 → 0.83 ms at 1280×720).
#[inline(always)]
fn blend_known_px(px: &mut [u8], bg: &[u8]) {
    match px[3] {
        255 => {}
        0 => {
            px[..3].copy_from_slice(&bg[..3]);
            px[3] = 255;
        }
        _ => blend_px(px, [bg[0], bg[1], bg[2]]),
    }
}

/// `px.rgb = α·px.rgb + (1−α)·bg`, α = px.a / 255, rounded; alpha becomes opaque.
#[inline]
fn blend_px(px: &mut [u8], bg: [u8; 3]) {
    let a = px[3] as u32;
    let na = 255 - a;
    for (v, b) in px[..3].iter_mut().zip(bg) {
        *v = div255(*v as u32 * a + b as u32 * na) as u8;
    }
    px[3] = 255;
}

/// Exact `round(x / 255)` for `x ≤ 255·255`.
#[inline]
fn div255(x: u32) -> u32 {
    let x = x + 128;
    (x + (x >> 8)) >> 8
}

/// Scales `image` to cover `width × height` (centre crop) into packed RGB.
fn fit_cover(
    image: &RgbaImage,
    width: usize,
    height: usize,
    resizer: &mut RgbaToPlanar,
    out: &mut Vec<u8>,
) {
    let view = ArrayView3::from_shape((image.height, image.width, 4), &image.data[..])
        .expect("decoded image size");
    let scale = (width as f64 / image.width as f64).max(height as f64 / image.height as f64);
    let cw = ((width as f64 / scale).round() as usize).clamp(1, image.width);
    let ch = ((height as f64 / scale).round() as usize).clamp(1, image.height);
    let x0 = (image.width - cw) / 2;
    let y0 = (image.height - ch) / 2;
    let crop = view.slice(s![y0..y0 + ch, x0..x0 + cw, ..]);
    let mut planar = vec![0.0f32; 3 * width * height];
    resizer.run(&crop, width, height, 1.0, &mut planar);
    let plane = width * height;
    out.resize(3 * plane, 0);
    for (i, px) in out.chunks_exact_mut(3).enumerate() {
        for (c, v) in px.iter_mut().enumerate() {
            *v = (planar[c * plane + i] + 0.5).clamp(0.0, 255.0) as u8;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frame::rgba_view_mut;

    fn frame_with(px: [u8; 4], w: usize, h: usize) -> Vec<u8> {
        px.repeat(w * h)
    }

    /// The row-wise blend (vertical interpolation once per row) equals sampling the blurred
    /// background bilinearly at every pixel, for any alpha; opaque pixels are untouched.
    #[test]
    fn blur_blend_matches_per_pixel_bilinear_sampling() {
        let (w, h) = (97, 61);
        let mut data = Vec::with_capacity(w * h * 4);
        let mut state = 12345u32;
        for i in 0..w * h {
            state = state.wrapping_mul(1664525).wrapping_add(1013904223);
            let (x, y) = (i % w, i / w);
            let a = if y > h / 2 && x > w / 3 {
                255
            } else {
                (state >> 24) as u8
            };
            data.extend_from_slice(&[(x * 2) as u8, (y * 4) as u8, (state >> 16) as u8, a]);
        }
        let src = data.clone();
        let mut comp = Compositor::new(Background::Blur { sigma: 9.0 });
        // The blend itself, on the frame's own colours.
        comp.set_estimate_foreground(false);
        comp.apply(&mut rgba_view_mut(&mut data, w, h, w * 4).unwrap());
        let (sw, sh) = comp.small_size;
        for (i, (out, inp)) in data.chunks_exact(4).zip(src.chunks_exact(4)).enumerate() {
            let (x, y) = (i % w, i / w);
            assert_eq!(out[3], 255);
            if inp[3] == 255 {
                assert_eq!(out[..3], inp[..3], "opaque pixel ({x}, {y}) changed");
                continue;
            }
            let a = inp[3] as f32 / 255.0;
            for c in 0..3 {
                let plane = &comp.small[c * sw * sh..];
                let b = crate::resize::sample_bilinear(plane, sw, &comp.xs, &comp.ys, x, y);
                let want = (b + a * (inp[c] as f32 - b) + 0.5).clamp(0.0, 255.0);
                assert!(
                    (out[c] as f32 - want).abs() <= 1.0,
                    "({x}, {y}) channel {c}: {} vs {want}",
                    out[c]
                );
            }
        }
    }

    #[test]
    fn div255_is_exact_rounding() {
        for x in 0..=(255 * 255) {
            assert_eq!(div255(x), ((x as f64) / 255.0).round() as u32, "x={x}");
        }
    }

    #[test]
    fn colour_background_blends_by_alpha() {
        for (a, want) in [
            (255u8, [200u8, 100, 50]),
            (0, [0, 255, 0]),
            (51, [40, 224, 10]),
        ] {
            let mut data = frame_with([200, 100, 50, a], 3, 2);
            let mut view = rgba_view_mut(&mut data, 3, 2, 12).unwrap();
            Compositor::new(Background::Color([0, 255, 0])).apply(&mut view);
            for px in data.chunks_exact(4) {
                assert_eq!(&px[..3], &want, "alpha {a}");
                assert_eq!(px[3], 255, "output is opaque");
            }
        }
    }

    #[test]
    fn known_alpha_shortcut_gives_the_blend_bytes() {
        let bg = [7u8, 130, 255];
        for a in 0..=255u8 {
            for v in [0u8, 1, 128, 254, 255] {
                let (mut fast, mut full) = ([v, 255 - v, v / 2, a], [v, 255 - v, v / 2, a]);
                blend_known_px(&mut fast, &bg);
                blend_px(&mut full, bg);
                assert_eq!(fast, full, "alpha {a}, value {v}");
            }
        }
    }

    /// Over a new colour, a soft edge between flat colours shows the old background with the
    /// observed colour and (within rounding) none of it with the estimated foreground.
    #[test]
    fn estimated_foreground_removes_the_old_background_at_soft_edges() {
        let (w, h) = (160, 90);
        let (f, b, new) = ([230u8, 200, 40], [30u8, 40, 220], [0u8, 255, 0]);
        let mut data = Vec::with_capacity(w * h * 4);
        for _ in 0..h {
            for x in 0..w {
                let a8 = ((90.0 - x as f32) * 32.0).clamp(0.0, 255.0) as u8;
                let a = a8 as f32 / 255.0;
                data.extend(
                    (0..3).map(|c| (a * f[c] as f32 + (1.0 - a) * b[c] as f32 + 0.5) as u8),
                );
                data.push(a8);
            }
        }
        let worst = |estimate: bool| {
            let mut out = data.clone();
            let mut comp = Compositor::new(Background::Color(new));
            comp.set_estimate_foreground(estimate);
            comp.apply(&mut rgba_view_mut(&mut out, w, h, w * 4).unwrap());
            let mut worst = 0.0f32;
            for (o, i) in out.chunks_exact(4).zip(data.chunks_exact(4)) {
                let a = i[3] as f32 / 255.0;
                for c in 0..3 {
                    let want = a * f[c] as f32 + (1.0 - a) * new[c] as f32;
                    worst = worst.max((o[c] as f32 - want).abs());
                }
            }
            worst
        };
        assert!(worst(true) <= 2.0, "estimated: {}", worst(true));
        assert!(worst(false) > 40.0, "observed: {}", worst(false));
    }

    #[test]
    fn hex_colours_split_into_bytes() {
        assert_eq!(rgb(DEFAULT_COLOR), [0x00, 0xB1, 0x40]);
        assert_eq!(rgb(0xFF_12_34_56), [0x12, 0x34, 0x56]);
    }

    #[test]
    fn transparent_keeps_frame_and_alpha() {
        let mut data = frame_with([1, 2, 3, 77], 4, 4);
        let before = data.clone();
        let mut view = rgba_view_mut(&mut data, 4, 4, 16).unwrap();
        Compositor::new(Background::Transparent).apply(&mut view);
        assert_eq!(data, before);
    }

    #[test]
    fn image_background_covers_the_frame() {
        // A 4×2 image, left half red, right half blue, fitted to a 2×2 frame: centre crop 2×2
        // keeps one red and one blue column.
        let mut img = Vec::new();
        for _y in 0..2 {
            for x in 0..4 {
                img.extend_from_slice(if x < 2 {
                    &[255, 0, 0, 255]
                } else {
                    &[0, 0, 255, 255]
                });
            }
        }
        let image = RgbaImage {
            width: 4,
            height: 2,
            data: img,
        };
        let mut data = frame_with([9, 9, 9, 0], 2, 2);
        let mut view = rgba_view_mut(&mut data, 2, 2, 8).unwrap();
        let bg = Background::Image {
            path: "mem".into(),
            image,
        };
        Compositor::new(bg).apply(&mut view);
        assert_eq!(&data[0..4], &[255, 0, 0, 255]);
        assert_eq!(&data[4..8], &[0, 0, 255, 255]);
    }

    #[test]
    fn blur_keeps_flat_images_flat_and_smooths_edges() {
        let (w, h) = (64, 40);
        let mut data = frame_with([120, 60, 30, 0], w, h);
        let mut view = rgba_view_mut(&mut data, w, h, w * 4).unwrap();
        Compositor::new(Background::Blur { sigma: 8.0 }).apply(&mut view);
        for px in data.chunks_exact(4) {
            assert!((px[0] as i32 - 120).abs() <= 1 && (px[2] as i32 - 30).abs() <= 1);
        }
        // A hard vertical edge: after blurring (alpha 0 = all background) it becomes a ramp.
        let mut data = Vec::new();
        for _y in 0..h {
            for x in 0..w {
                let v = if x < w / 2 { 0 } else { 255 };
                data.extend_from_slice(&[v, v, v, 0]);
            }
        }
        let mut view = rgba_view_mut(&mut data, w, h, w * 4).unwrap();
        Compositor::new(Background::Blur { sigma: 6.0 }).apply(&mut view);
        let row: Vec<u8> = (0..w).map(|x| data[(h / 2 * w + x) * 4]).collect();
        assert!(
            row[w / 2 - 2] > 20 && row[w / 2 + 1] < 235,
            "edge not smoothed: {row:?}"
        );
        assert!(
            row[0] < 5 && row[w - 1] > 250,
            "far pixels keep their value: {row:?}"
        );
        assert!(
            row.windows(2).all(|p| p[1] as i32 + 1 >= p[0] as i32),
            "ramp is monotone: {row:?}"
        );
    }
}
