//! The built-in demo clip: a slow pan and zoom over scikit-image's `astronaut` photograph
//! (Eileen Collins, NASA, public domain), so the person moves through the frame. Embedded in the
//! binary, so the main job runs without any input file.

use anyhow::{Context, Result, ensure};
use ndarray::s;

use slimmatte::composite::RgbaImage;
use slimmatte::frame::rgba_view;
use slimmatte::resize::RgbaToPlanar;

/// JPEG of the source photograph (512×512).
pub static ASTRONAUT_JPEG: &[u8] = include_bytes!("../../assets/astronaut.jpg");

/// Renders frames of the demo clip at any resolution.
#[derive(Debug)]
pub struct DemoClip {
    image: RgbaImage,
    width: usize,
    height: usize,
    frames: u64,
    resizer: RgbaToPlanar,
    planar: Vec<f32>,
}

impl DemoClip {
    pub fn new(width: usize, height: usize, frames: u64) -> Result<Self> {
        ensure!(
            width >= 16 && height >= 16,
            "demo clip needs at least 16×16"
        );
        ensure!(frames > 0, "demo clip needs at least one frame");
        let img = image::load_from_memory(ASTRONAUT_JPEG)
            .context("decoding the embedded astronaut photograph")?
            .to_rgba8();
        let image = RgbaImage {
            width: img.width() as usize,
            height: img.height() as usize,
            data: img.into_raw(),
        };
        Ok(Self {
            image,
            width,
            height,
            frames,
            resizer: RgbaToPlanar::new(),
            planar: vec![0.0; 3 * width * height],
        })
    }

    pub fn frames(&self) -> u64 {
        self.frames
    }

    pub fn size(&self) -> (usize, usize) {
        (self.width, self.height)
    }

    /// The crop window (x, y, w, h) of the photograph shown in frame `index`.
    pub fn window(&self, index: u64) -> (usize, usize, usize, usize) {
        let (iw, ih) = (self.image.width as f64, self.image.height as f64);
        let aspect = self.width as f64 / self.height as f64;
        // The largest window of the output aspect that fits, then zoomed in by up to 1.3×.
        let (mut cw, mut ch) = if iw / ih > aspect {
            (ih * aspect, ih)
        } else {
            (iw, iw / aspect)
        };
        let t = index as f64 / self.frames.max(2) as f64;
        let phase = (t * std::f64::consts::TAU).sin() * 0.5 + 0.5; // 0 → 1 → 0
        let zoom = 1.0 + 0.3 * phase;
        cw /= zoom;
        ch /= zoom;
        // Pan: down from the top and back (the face stays in view), drifting sideways.
        let fx = 0.5 + 0.5 * (t * std::f64::consts::TAU * 1.5).sin();
        let fy = 0.3 - 0.3 * (t * std::f64::consts::TAU).cos();
        let x = (iw - cw) * fx;
        let y = (ih - ch) * fy;
        (
            x.floor() as usize,
            y.floor() as usize,
            (cw.round() as usize).max(1),
            (ch.round() as usize).max(1),
        )
    }

    /// Renders frame `index` into `out` (packed RGBA, `width·height·4` bytes, alpha 255).
    pub fn render(&mut self, index: u64, out: &mut [u8]) -> Result<()> {
        ensure!(
            out.len() == self.width * self.height * 4,
            "frame buffer has {} bytes, expected {}",
            out.len(),
            self.width * self.height * 4
        );
        let (x, y, w, h) = self.window(index);
        let src = rgba_view(
            &self.image.data,
            self.image.width,
            self.image.height,
            self.image.width * 4,
        )?;
        let x = x.min(self.image.width - w);
        let y = y.min(self.image.height - h);
        let crop = src.slice(s![y..y + h, x..x + w, ..]);
        self.resizer
            .run(&crop, self.width, self.height, 1.0, &mut self.planar);
        let plane = self.width * self.height;
        for (i, px) in out.chunks_exact_mut(4).enumerate() {
            for (c, v) in px[..3].iter_mut().enumerate() {
                *v = (self.planar[c * plane + i] + 0.5).clamp(0.0, 255.0) as u8;
            }
            px[3] = 255;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_move_and_stay_inside_the_photo() {
        let mut clip = DemoClip::new(64, 36, 30).unwrap();
        let mut a = vec![0u8; 64 * 36 * 4];
        let mut b = a.clone();
        clip.render(0, &mut a).unwrap();
        clip.render(10, &mut b).unwrap();
        assert_ne!(a, b, "the camera moves");
        for i in 0..30 {
            let (x, y, w, h) = clip.window(i);
            assert!(x + w <= 512 && y + h <= 512, "window {i} leaves the photo");
        }
        assert!(a.chunks_exact(4).all(|p| p[3] == 255));
    }
}
