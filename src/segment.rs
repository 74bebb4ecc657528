//! The coarse person-segmentation network (MediaPipe selfie segmentation converted to ONNX).
//!
//! Input `image` `[1, 3, H, W]` RGB in 0..1, output `mask` `[1, 1, H, W]` person probability.
//! The frame is resized (antialiased) to the network's resolution; the mask comes back at that
//! resolution and the caller upsamples it.

use std::path::Path;

use crate::frame::RgbaView;
use crate::model::{Dim, Model, ModelError, ModelSpec, TensorSpec};
use crate::resize::RgbaToPlanar;
use crate::runtime::SHARED_POOL;

/// The input/output contract of a segmentation model.
pub fn spec() -> ModelSpec {
    ModelSpec {
        input: TensorSpec::new("image", &[Dim::Fixed(1), Dim::Fixed(3), Dim::Any, Dim::Any]),
        extra_inputs: Vec::new(),
        output: TensorSpec::new("mask", &[Dim::Fixed(1), Dim::Fixed(1), Dim::Any, Dim::Any]),
        extra_outputs: Vec::new(),
    }
}

/// The intra-op threads the segmentation network runs with for a `threads` setting: as
/// asked, except [`SHARED_POOL`] (the elements' and the command line's default), which runs it
/// on the calling thread alone. The 256×144 network is too small to gain from a pool: the
/// hand-offs to a second thread cost more than they save (measured on 2 cores, trimap stage
/// on the demo clip, medians of 4 alternating runs: 6.6 vs 7.4 ms at 640×360 and 7.9 vs
/// 9.2 ms at 1280×720 against the shared pool of 2), and the streaming thread then never
/// waits for the pool while the matting stage uses it.
pub fn intra_threads(threads: usize) -> usize {
    if threads == SHARED_POOL { 1 } else { threads }
}

/// Working size used when the model declares dynamic height/width.
const DYNAMIC_SIZE: (usize, usize) = (256, 144);

/// Runs the segmentation network on RGBA frames, reusing its buffers.
#[derive(Debug)]
pub struct PersonSegmenter {
    model: Model,
    width: usize,
    height: usize,
    input: Vec<f32>,
    mask: Vec<f32>,
    resizer: RgbaToPlanar,
    /// Average the mask with the mirrored frame's, mirrored back (two runs per frame).
    flip_average: bool,
    flipped: Vec<f32>,
    flipped_mask: Vec<f32>,
}

impl PersonSegmenter {
    /// Loads and validates the model at `path` with `threads` intra-op threads
    /// ([`SHARED_POOL`], the default, runs it on the calling thread: see [`intra_threads`]).
    pub fn load(path: &Path, threads: usize) -> Result<Self, ModelError> {
        let model = Model::load(path, &spec(), intra_threads(threads))?;
        let shape = model.input_shape();
        let (width, height) = if shape[2] > 0 && shape[3] > 0 {
            (shape[3] as usize, shape[2] as usize)
        } else {
            DYNAMIC_SIZE
        };
        let out = model.output_shape();
        if (out[2] > 0 && out[2] as usize != height) || (out[3] > 0 && out[3] as usize != width) {
            return Err(ModelError::WrongShape {
                path: path.to_path_buf(),
                name: "mask",
                expected: format!("[1, 1, {height}, {width}] (the input's height and width)"),
                found: format!("{out:?}"),
            });
        }
        Ok(Self {
            model,
            width,
            height,
            input: vec![0.0; 3 * width * height],
            mask: vec![0.0; width * height],
            resizer: RgbaToPlanar::new(),
            flip_average: false,
            flipped: Vec::new(),
            flipped_mask: Vec::new(),
        })
    }

    /// The network's working resolution (width, height).
    pub fn resolution(&self) -> (usize, usize) {
        (self.width, self.height)
    }

    pub fn model_path(&self) -> &Path {
        self.model.path()
    }

    /// Whether [`run`](Self::run) averages the mask with the mask of the mirrored frame
    /// (mirrored back): a steadier, left–right consistent mask for a second network run.
    pub fn set_flip_average(&mut self, on: bool) {
        self.flip_average = on;
    }

    /// The last frame [`run`](Self::run) segmented, as the network saw it: planar RGB 0..1 at
    /// the network's resolution (`3 × height × width`).
    pub fn input(&self) -> &[f32] {
        &self.input
    }

    /// The person probability of the last frame [`run`](Self::run) segmented.
    pub fn mask(&self) -> &[f32] {
        &self.mask
    }

    /// Segments `frame`; returns the person probability at the network's resolution.
    pub fn run(&mut self, frame: &RgbaView<'_>) -> Result<&[f32], ModelError> {
        self.resizer
            .run(frame, self.width, self.height, 1.0 / 255.0, &mut self.input);
        self.model.run(
            &self.input,
            &[1, 3, self.height, self.width],
            &mut self.mask,
        )?;
        if self.flip_average {
            let (w, h) = (self.width, self.height);
            self.flipped.resize(self.input.len(), 0.0);
            for (src, dst) in self
                .input
                .chunks_exact(w)
                .zip(self.flipped.chunks_exact_mut(w))
            {
                for (d, s) in dst.iter_mut().zip(src.iter().rev()) {
                    *d = *s;
                }
            }
            self.flipped_mask.resize(w * h, 0.0);
            self.model
                .run(&self.flipped, &[1, 3, h, w], &mut self.flipped_mask)?;
            for (m, f) in self
                .mask
                .chunks_exact_mut(w)
                .zip(self.flipped_mask.chunks_exact(w))
            {
                for (a, b) in m.iter_mut().zip(f.iter().rev()) {
                    *a = 0.5 * (*a + *b);
                }
            }
        }
        Ok(&self.mask)
    }
}
