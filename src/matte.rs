//! The matting stage: refines the unknown band of a trimap into a soft alpha matte with the
//! pruned student network.
//!
//! The frame arrives with its trimap in alpha (as `trimapgen` writes it). Only the bounding box
//! of the unknown band (plus a margin of context) goes through the network, scaled so its longer
//! side is at most the working size; the predicted matte is brought back to full resolution with
//! a fast guided filter on the frame's luma, so edges follow the image. Known foreground and
//! background stay exactly 255 and 0.
//!
//! Model contract: input `input` `[1, 4, H, W]` (RGB 0..1, trimap 0 / 0.5 / 1), output `alpha`
//! `[1, 1, H, W]` in 0..1, H and W multiples of [`PAD_MULTIPLE`].
//!
//! A *temporal* model has a second input, [`PREV_INPUT_NAME`] (`prev_alpha`) `[1, 1, H, W]` in
//! 0..1: the previous frame's final matte (the full-resolution alpha this stage wrote, / 255)
//! on the same grid as the RGB planes — the current frame's crop, scaled to the working size
//! with the same filter and padded the same way (last row and column repeated). Without usable
//! history it is a copy of the trimap channel of `input` (0 / 0.5 / 1): on the first frame,
//! after [`MatteRefiner::reset`] (flush, seek, caps change), when the frame size changed, on a
//! scene cut (mean absolute luma change above [`SCENE_CUT_LUMA`], sampled every
//! [`SCENE_CUT_STEP`] pixels) and with [`MatteSettings::temporal`] off. Without history (and
//! `temporal` on) the net runs twice: the second pass gets the first pass's matte as the previous
//! one, which is what it would see on the next frame of a still scene (stills and first frames
//! get the net's steady state; the cost is one more pass on those frames only). Single-input
//! models load and run as before ([`MatteRefiner::is_temporal`] says which kind was loaded).

use std::path::Path;
use std::time::{Duration, Instant};

use ndarray::{Axis, s};

use crate::band_net::{BandNet, band_crop, coarse_matte};
use crate::filter::{GuidedUpsampler, luma};
use crate::frame::{RgbaView, RgbaViewMut, for_each_row_mut};
use crate::model::{Dim, Model, ModelError, ModelSpec, TensorSpec};
use crate::refine::{LaplacianSolver, MAX_REFINE_PIXELS, RefineSettings, SolveReport};
use crate::resize::{BilinearAxis, PlaneResizer, RgbaToPlanar};
use crate::trimap::{KNOWN_BG, KNOWN_FG, known_alpha};

/// Network input height and width are padded up to a multiple of this.
pub const PAD_MULTIPLE: usize = 16;

/// Name of the matting model's input tensor.
pub const INPUT_NAME: &str = "input";

/// Name of a temporal matting model's second input: the previous frame's matte on the crop.
pub const PREV_INPUT_NAME: &str = "prev_alpha";

/// Name of the matting model's output tensor.
pub const OUTPUT_NAME: &str = "alpha";

/// Mean absolute luma change (luma in 0..1) between two consecutive frames above which the
/// second is a scene cut: a temporal model gets no history for it.
pub const SCENE_CUT_LUMA: f32 = 0.12;

/// The scene-cut test compares the luma of every this many pixels in x and y.
pub const SCENE_CUT_STEP: usize = 8;

/// The input/output contract of a matting model (`prev_alpha` optional: temporal models).
pub fn spec() -> ModelSpec {
    ModelSpec {
        input: TensorSpec::new(
            INPUT_NAME,
            &[Dim::Fixed(1), Dim::Fixed(4), Dim::Any, Dim::Any],
        ),
        extra_inputs: vec![TensorSpec::new(
            PREV_INPUT_NAME,
            &[Dim::Fixed(1), Dim::Fixed(1), Dim::Any, Dim::Any],
        )],
        output: TensorSpec::new(
            OUTPUT_NAME,
            &[Dim::Fixed(1), Dim::Fixed(1), Dim::Any, Dim::Any],
        ),
        extra_outputs: Vec::new(),
    }
}

/// Default [`MatteSettings::working_size`] (the `slimmatte` element's `working-size`).
pub const DEFAULT_WORKING_SIZE: u32 = 512;
/// Default [`MatteSettings::margin`] (`slimmatte`'s `margin`).
pub const DEFAULT_MARGIN: u32 = 16;
/// Default [`MatteSettings::smoothing`] (`slimmatte`'s `smoothing`): off.
pub const DEFAULT_SMOOTHING: f32 = 0.0;
/// Default [`MatteSettings::temporal`] (`slimmatte`'s `temporal`): on.
pub const DEFAULT_TEMPORAL: bool = true;

/// Default [`MatteSettings::band_net`] (`slimmatte`'s `band-net`): on.
pub const DEFAULT_BAND_NET: bool = true;

/// Settings of the matting stage.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MatteSettings {
    /// Longest side, in pixels, of the region the network sees; 0 = full resolution.
    pub working_size: u32,
    /// Pixels of context added around the unknown band's bounding box.
    pub margin: u32,
    /// Weight of the previous frame's matte inside the unknown band, 0 (off) ..< 1.
    pub smoothing: f32,
    /// Feed the previous frame's matte to a temporal model (one with a `prev_alpha` input);
    /// false = always the trimap. Single-frame models ignore it.
    pub temporal: bool,
    /// Classical refinement of the net's matte inside the crop.
    pub refine: RefineSettings,
    /// Run the band net ([`crate::band_net`]) on the refinement's matte when one is loaded
    /// ([`MatteRefiner::set_band_net`]); false = the refinement's matte as it is.
    pub band_net: bool,
}

impl Default for MatteSettings {
    fn default() -> Self {
        Self {
            working_size: DEFAULT_WORKING_SIZE,
            margin: DEFAULT_MARGIN,
            smoothing: DEFAULT_SMOOTHING,
            temporal: DEFAULT_TEMPORAL,
            refine: RefineSettings::default(),
            band_net: DEFAULT_BAND_NET,
        }
    }
}

/// What one call of [`MatteRefiner::process`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct RefineStats {
    /// Unknown pixels in the trimap.
    pub unknown: usize,
    /// The region sent to the network (x, y, width, height), if any.
    pub crop: Option<(usize, usize, usize, usize)>,
    /// The network's input size before padding (width, height).
    pub working: (usize, usize),
    /// A temporal model (crop net or band net) had the previous frame's matte as history, fed
    /// to the network if it ran (false: no history, or the models are single-frame).
    pub history: bool,
    /// A temporal model's scene-cut test found this frame unlike the previous one.
    pub scene_cut: bool,
    /// What the refinement did, if it ran.
    pub refine: Option<SolveReport>,
    /// Time spent in the refinement (included in the stage's time).
    pub refine_time: Duration,
    /// The network ran on the crop. False when the refinement's result cannot depend on it
    /// ([`RefineSettings::uses_net`](crate::refine::RefineSettings::uses_net)): the
    /// refinement then starts from 0.5 and the net's cost is saved.
    pub net_ran: bool,
    /// Tiles the band net ran on, if it ran (after the refinement, with a band net loaded and
    /// [`MatteSettings::band_net`] on).
    pub band_tiles: Option<usize>,
    /// Time spent in the band net (included in the stage's time).
    pub band_time: Duration,
}

/// Runs the matting network on the unknown band of RGBA+trimap frames, reusing its buffers.
#[derive(Debug)]
pub struct MatteRefiner {
    model: Model,
    resizer: RgbaToPlanar,
    /// The crop at working resolution, planar RGBA (alpha = trimap), 0..1.
    planes: Vec<f32>,
    /// The padded network input, `4 × ph × pw`.
    input: Vec<f32>,
    output: Vec<f32>,
    alpha_lr: Vec<f32>,
    luma_lr: Vec<f32>,
    /// The crop's matte when the network ran at full resolution.
    alpha_hr: Vec<f32>,
    guided: GuidedUpsampler,
    solver: LaplacianSolver,
    /// Whether the last crop ran scaled down: its matte is then `a·luma + b` with the guided
    /// filter's coefficients sampled bilinearly at each unknown pixel.
    scaled: bool,
    xs: BilinearAxis,
    ys: BilinearAxis,
    working: (usize, usize),
    /// The last frame's matte as written (`previous_size`), valid if `has_previous`.
    previous: Vec<u8>,
    previous_size: (usize, usize),
    has_previous: bool,
    /// Whether the model has the `prev_alpha` input.
    temporal: bool,
    /// `previous` on the crop's working grid (`lw × lh`), 0..1.
    prev_lr: Vec<f32>,
    /// The padded `prev_alpha` input, `ph × pw`.
    prev_input: Vec<f32>,
    prev_resizer: PlaneResizer,
    /// Luma (0..1) of the last frame (`cut_size`) at every `SCENE_CUT_STEP`-th pixel.
    cut_luma: Vec<f32>,
    cut_size: (usize, usize),
    /// The full-resolution student run on the refinement's matte, if loaded.
    band_net: Option<BandNet>,
}

fn round_up(v: usize, m: usize) -> usize {
    v.div_ceil(m) * m
}

/// Copies the `lw × lh` plane `src` into the `pw × ph` plane `dst`, padding by repeating the
/// last row and column.
fn pad_plane(src: &[f32], (lw, lh): (usize, usize), dst: &mut [f32], (pw, ph): (usize, usize)) {
    for (y, d_row) in dst.chunks_exact_mut(pw).take(ph).enumerate() {
        let s_row = &src[y.min(lh - 1) * lw..y.min(lh - 1) * lw + lw];
        d_row[..lw].copy_from_slice(s_row);
        d_row[lw..].fill(s_row[lw - 1]);
    }
}

impl MatteRefiner {
    /// Loads and validates the matting model at `path` with `threads` intra-op threads.
    pub fn load(path: &Path, threads: usize) -> Result<Self, ModelError> {
        let model = Model::load(path, &spec(), threads)?;
        Ok(Self {
            temporal: model.has_input(PREV_INPUT_NAME),
            model,
            resizer: RgbaToPlanar::new(),
            planes: Vec::new(),
            input: Vec::new(),
            output: Vec::new(),
            alpha_lr: Vec::new(),
            luma_lr: Vec::new(),
            alpha_hr: Vec::new(),
            guided: GuidedUpsampler::new(),
            solver: LaplacianSolver::new(),
            scaled: false,
            xs: BilinearAxis::default(),
            ys: BilinearAxis::default(),
            working: (0, 0),
            previous: Vec::new(),
            previous_size: (0, 0),
            has_previous: false,
            prev_lr: Vec::new(),
            prev_input: Vec::new(),
            prev_resizer: PlaneResizer::new(),
            cut_luma: Vec::new(),
            cut_size: (0, 0),
            band_net: None,
        })
    }

    /// Sets (or removes) the band net that makes the full-resolution matte from the
    /// refinement's.
    pub fn set_band_net(&mut self, net: Option<BandNet>) {
        self.band_net = net;
    }

    /// The loaded band net, if any.
    pub fn band_net(&self) -> Option<&BandNet> {
        self.band_net.as_ref()
    }

    pub fn model_path(&self) -> &Path {
        self.model.path()
    }

    /// Whether the model is temporal: it has the [`PREV_INPUT_NAME`] input.
    pub fn is_temporal(&self) -> bool {
        self.temporal
    }

    /// Forgets the previous matte and frame (after a seek, a flush or a caps change): the next
    /// frame has no history.
    pub fn reset(&mut self) {
        self.has_previous = false;
        self.cut_size = (0, 0);
    }

    /// Replaces the trimap in `frame`'s alpha by the matte.
    pub fn process(
        &mut self,
        frame: &mut RgbaViewMut<'_>,
        settings: &MatteSettings,
    ) -> Result<RefineStats, ModelError> {
        let (width, height) = (frame.shape()[1], frame.shape()[0]);
        let mut stats = RefineStats::default();
        let band_temporal = self.band_net.as_ref().is_some_and(BandNet::is_temporal);
        if self.temporal || band_temporal {
            stats.scene_cut = self.scene_cut(&frame.view());
            stats.history = settings.temporal
                && !stats.scene_cut
                && self.has_previous
                && self.previous_size == (width, height);
        }
        if let Some((crop, unknown)) = band_crop(&frame.view(), settings.margin as usize) {
            let (_, _, cw, ch) = crop;
            stats.unknown = unknown;
            stats.crop = Some(crop);
            let refines = settings.refine.enabled() && cw * ch <= MAX_REFINE_PIXELS;
            if refines && !settings.refine.uses_net() {
                // The refinement from a flat start: the coarse matte exactly as the band net's
                // training data computes it.
                self.scaled = false;
                self.working = (cw, ch);
                stats.working = (cw, ch);
                let start = Instant::now();
                stats.refine = Some(coarse_matte(
                    &frame.view(),
                    crop,
                    &settings.refine,
                    &mut self.solver,
                    &mut self.alpha_hr,
                ));
                stats.refine_time = start.elapsed();
            } else {
                stats.working = self.run_net_on_crop(frame, crop, settings, stats.history)?;
                stats.net_ran = true;
                if refines {
                    let start = Instant::now();
                    stats.refine = Some(self.refine_laplacian(frame, crop, &settings.refine));
                    stats.refine_time = start.elapsed();
                }
            }
            if refines
                && settings.band_net
                && let Some(net) = self.band_net.as_mut()
            {
                let start = Instant::now();
                let previous = stats.history.then_some(self.previous.as_slice());
                stats.band_tiles =
                    Some(net.refine(&frame.view(), crop, &mut self.alpha_hr, previous)?);
                stats.band_time = start.elapsed();
            }
        }
        self.write_alpha(frame, stats.crop, settings.smoothing);
        Ok(stats)
    }

    /// Samples `frame`'s luma on the scene-cut grid into `cut_luma`; true if it differs from
    /// the previous frame's by more than [`SCENE_CUT_LUMA`] on average (false without a
    /// previous frame of the same size).
    fn scene_cut(&mut self, frame: &RgbaView<'_>) -> bool {
        let size = (frame.shape()[1], frame.shape()[0]);
        let comparable = self.cut_size == size;
        let grid = frame.slice(s![..;SCENE_CUT_STEP, ..;SCENE_CUT_STEP, ..]);
        self.cut_luma.resize(grid.shape()[0] * grid.shape()[1], 0.0);
        let mut change = 0.0f64;
        for (old, px) in self.cut_luma.iter_mut().zip(grid.lanes(Axis(2))) {
            let l = luma(px[0] as f32, px[1] as f32, px[2] as f32) * (1.0 / 255.0);
            change += (l - *old).abs() as f64;
            *old = l;
        }
        self.cut_size = size;
        comparable && change / self.cut_luma.len() as f64 > SCENE_CUT_LUMA as f64
    }

    /// Runs the network on one crop; leaves the full-resolution matte of the crop in
    /// `alpha_hr`. Returns the working size. `history`: a temporal model gets the previous
    /// matte on the crop, otherwise the trimap.
    fn run_net_on_crop(
        &mut self,
        frame: &RgbaViewMut<'_>,
        (cx, cy, cw, ch): (usize, usize, usize, usize),
        settings: &MatteSettings,
        history: bool,
    ) -> Result<(usize, usize), ModelError> {
        let scale = if settings.working_size == 0 {
            1.0
        } else {
            (settings.working_size as f64 / cw.max(ch) as f64).min(1.0)
        };
        let lw = ((cw as f64 * scale).round() as usize).max(1);
        let lh = ((ch as f64 * scale).round() as usize).max(1);
        let crop = frame.slice(s![cy..cy + ch, cx..cx + cw, ..]);
        let plane = lw * lh;
        self.planes.resize(4 * plane, 0.0);
        self.resizer
            .run_rgba(&crop, lw, lh, 1.0 / 255.0, &mut self.planes);
        // Re-quantise the resized trimap: any mixed value is unknown.
        for t in &mut self.planes[3 * plane..] {
            *t = if *t <= KNOWN_BG as f32 / 255.0 {
                0.0
            } else if *t >= KNOWN_FG as f32 / 255.0 {
                1.0
            } else {
                0.5
            };
        }
        // Pad to the network's multiple by repeating the last row and column.
        let (pw, ph) = (round_up(lw, PAD_MULTIPLE), round_up(lh, PAD_MULTIPLE));
        self.input.resize(4 * pw * ph, 0.0);
        for (src, dst) in self
            .planes
            .chunks_exact(plane)
            .zip(self.input.chunks_exact_mut(pw * ph))
        {
            pad_plane(src, (lw, lh), dst, (pw, ph));
        }
        self.output.resize(pw * ph, 0.0);
        if self.temporal {
            let width = frame.shape()[1];
            self.run_temporal(
                width,
                (cx, cy, cw, ch),
                (lw, lh),
                (pw, ph),
                history,
                settings,
            )?;
        } else {
            self.model
                .run(&self.input, &[1, 4, ph, pw], &mut self.output)?;
        }
        self.alpha_lr.resize(plane, 0.0);
        for y in 0..lh {
            self.alpha_lr[y * lw..(y + 1) * lw].copy_from_slice(&self.output[y * pw..y * pw + lw]);
        }
        self.scaled = (lw, lh) != (cw, ch);
        self.working = (lw, lh);
        if self.scaled {
            self.luma_lr.resize(plane, 0.0);
            for i in 0..plane {
                self.luma_lr[i] = luma(
                    self.planes[i],
                    self.planes[plane + i],
                    self.planes[2 * plane + i],
                );
            }
            self.guided
                .coefficients(&self.luma_lr, &self.alpha_lr, lw, lh, 1, 1e-3);
            self.xs.ensure(lw, cw);
            self.ys.ensure(lh, ch);
        } else {
            self.alpha_hr.clear();
            self.alpha_hr.extend_from_slice(&self.alpha_lr);
        }
        Ok((lw, lh))
    }

    /// Runs a temporal model on the padded input (`pw × ph`, the crop `(cx, cy, cw, ch)` of a
    /// frame `width` wide at `lw × lh`): the previous matte on the crop as `prev_alpha` with
    /// `history`, else the trimap and then a second pass on the first one's matte.
    #[allow(clippy::too_many_arguments)]
    fn run_temporal(
        &mut self,
        width: usize,
        (cx, cy, cw, ch): (usize, usize, usize, usize),
        (lw, lh): (usize, usize),
        (pw, ph): (usize, usize),
        history: bool,
        settings: &MatteSettings,
    ) -> Result<(), ModelError> {
        let plane = lw * lh;
        self.prev_input.resize(pw * ph, 0.0);
        if history {
            // The previous matte through the same crop, scaling and padding as the RGB.
            self.prev_lr.resize(plane, 0.0);
            if (lw, lh) == (cw, ch) {
                for (v, out) in self.prev_lr.chunks_exact_mut(cw).enumerate() {
                    let row = &self.previous[(cy + v) * width + cx..][..cw];
                    for (o, &a) in out.iter_mut().zip(row) {
                        *o = a as f32 * (1.0 / 255.0);
                    }
                }
            } else {
                self.prev_resizer.run_u8_window(
                    &self.previous,
                    width,
                    (cx, cy, cw, ch),
                    1.0 / 255.0,
                    &mut self.prev_lr,
                    lw,
                    lh,
                );
            }
            pad_plane(&self.prev_lr, (lw, lh), &mut self.prev_input, (pw, ph));
        } else {
            self.prev_input
                .copy_from_slice(&self.input[3 * pw * ph..4 * pw * ph]);
        }
        // No history: a second pass with the first pass's matte as the previous one (known
        // regions exact, as the stage would have written it) — what the net would see on the
        // next frame of a still scene.
        let passes = if !history && settings.temporal { 2 } else { 1 };
        for pass in 0..passes {
            if pass > 0 {
                let trimap = &self.input[3 * pw * ph..4 * pw * ph];
                for ((p, &o), &t) in self.prev_input.iter_mut().zip(&self.output).zip(trimap) {
                    *p = if t == 0.5 { o } else { t };
                }
            }
            self.model.run_with_extra(
                &self.input,
                &[1, 4, ph, pw],
                &[(PREV_INPUT_NAME, &self.prev_input, &[1, 1, ph, pw])],
                &mut self.output,
            )?;
        }
        Ok(())
    }

    /// Brings the net's matte of the crop to full resolution (if it ran scaled) and refines it
    /// with the matting Laplacian; afterwards `alpha_hr` holds the crop's matte.
    fn refine_laplacian(
        &mut self,
        frame: &RgbaViewMut<'_>,
        (cx, cy, cw, ch): (usize, usize, usize, usize),
        settings: &RefineSettings,
    ) -> SolveReport {
        let crop = frame.slice(s![cy..cy + ch, cx..cx + cw, ..]);
        if self.scaled {
            let lw = self.working.0;
            self.alpha_hr.resize(cw * ch, 0.0);
            for (v, row) in crop.outer_iter().enumerate() {
                let out = &mut self.alpha_hr[v * cw..(v + 1) * cw];
                for (u, px) in row.outer_iter().enumerate() {
                    out[u] = known_alpha(px[3]).unwrap_or_else(|| {
                        let l = luma(px[0] as f32, px[1] as f32, px[2] as f32) * (1.0 / 255.0);
                        self.guided.matte_at(lw, &self.xs, &self.ys, u, v, l)
                    });
                }
            }
            self.scaled = false;
        }
        self.solver
            .refine(&crop.view(), &mut self.alpha_hr, settings)
    }

    /// Writes the final alpha: the matte in the unknown band, exact 0/255 elsewhere.
    fn write_alpha(
        &mut self,
        frame: &mut RgbaViewMut<'_>,
        crop: Option<(usize, usize, usize, usize)>,
        smoothing: f32,
    ) {
        let (width, height) = (frame.shape()[1], frame.shape()[0]);
        let smooth = self.has_previous && self.previous_size == (width, height) && smoothing > 0.0;
        let s = smoothing.clamp(0.0, 0.99);
        self.previous.resize(width * height, 0);
        let (cx, cy, cw, ch) = crop.unwrap_or((0, 0, 0, 0));
        let alpha_hr = &self.alpha_hr;
        let (scaled, lw) = (self.scaled, self.working.0);
        let guided = &self.guided;
        let (xs, ys) = (&self.xs, &self.ys);
        let previous = &mut self.previous;
        for_each_row_mut(frame, |y, row| {
            let prev_row = &mut previous[y * width..(y + 1) * width];
            if y < cy || y >= cy + ch {
                // No unknown pixel outside the crop: only the trimap's two classes.
                for (px, p) in row.chunks_exact_mut(4).zip(prev_row.iter_mut()) {
                    let out = if px[3] >= KNOWN_FG { 255 } else { 0 };
                    px[3] = out;
                    *p = out;
                }
                return;
            }
            for (x, px) in row.chunks_exact_mut(4).enumerate() {
                let a = px[3];
                let out = if a <= KNOWN_BG {
                    0
                } else if a >= KNOWN_FG {
                    255
                } else {
                    // Unknown pixels are always inside the crop.
                    debug_assert!(x >= cx && x < cx + cw && y >= cy && y < cy + ch);
                    let (u, v) = (x - cx, y - cy);
                    let matte = if scaled {
                        let l = luma(px[0] as f32, px[1] as f32, px[2] as f32) * (1.0 / 255.0);
                        guided.matte_at(lw, xs, ys, u, v, l)
                    } else {
                        alpha_hr[v * cw + u]
                    };
                    let mut v = matte * 255.0;
                    if smooth {
                        v = s * prev_row[x] as f32 + (1.0 - s) * v;
                    }
                    (v + 0.5).clamp(0.0, 255.0) as u8
                };
                px[3] = out;
                prev_row[x] = out;
            }
        });
        self.previous_size = (width, height);
        self.has_previous = true;
    }
}
