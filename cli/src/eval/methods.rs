//! The matting methods `eval` compares (each row of the tables), and running them over the
//! stills and the moving sequences.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::Result;
use indicatif::ProgressBar;

use super::report::{Region, Row, Scores, SequenceRow, mean_of_some};
use super::{EvalArgs, EvalImage, alpha_of, images};
use crate::peers::{self, CoarseMask, RvmSession};
use crate::sequence;
use slimmatte::composite::RgbaImage;
use slimmatte::frame::{rgba_view, rgba_view_mut};
use slimmatte::matte::{MatteRefiner, MatteSettings};
use slimmatte::refine::RefineSettings;
use slimmatte::resize::PlaneResizer;
use slimmatte::trimap::{AlphaOutput, TrimapGenerator, TrimapSettings};
use slimmatte_measure::metrics::{self, MatteErrors};

use super::models::model_label;

/// A perfect person segmenter at the segmentation network's resolution: the ground-truth
/// alpha reduced to it (the same resampling as the network's input), given to the trimap stage
/// in place of the network's mask. Its rows show what the rest of the pipeline (temporal
/// mixing, band, matting) makes of a segmenter without semantic errors.
#[derive(Default)]
pub(super) struct OracleMask {
    resizer: PlaneResizer,
    mask: Vec<f32>,
}

/// The person mask of a `trimapgen` row.
pub(super) enum MaskSource {
    /// The networks': the selfie network's averaged with the pose network's (`trimapgen
    /// pose=true`, the shipped default: rows `…/trimapgen`) or the selfie network's alone
    /// (`pose=false`: rows `…/trimapgen-selfie`).
    Networks { pose: bool },
    /// The ground truth at the selfie network's resolution (`--oracle-mask`): rows
    /// `…/oracle-mask`.
    Oracle(Box<OracleMask>),
}

/// A matting method applied to one image.
pub(super) enum Method {
    Ours {
        label: String,
        refiner: Box<MatteRefiner>,
        trimapgen: Option<Box<TrimapGenerator>>,
        /// The trimap stage's settings (for `trimapgen` rows).
        trimap: TrimapSettings,
        refine: RefineSettings,
        /// The band net is loaded and runs after the refinement.
        band: bool,
        /// With `trimapgen`: where its person mask comes from.
        mask: MaskSource,
    },
    Rvm(Box<RvmSession>),
    Coarse(Box<CoarseMask>),
}

impl Method {
    fn name(&self) -> String {
        match self {
            Method::Ours {
                label,
                trimapgen,
                refine,
                band,
                mask,
                ..
            } => format!(
                "ours:{label}{}/{}",
                match (refine.enabled(), band) {
                    (false, _) => "",
                    (true, false) => "+refine",
                    (true, true) => "+refine+band",
                },
                match (trimapgen.is_some(), mask) {
                    (false, _) => "gt-trimap",
                    (true, MaskSource::Networks { pose: true }) => "trimapgen",
                    (true, MaskSource::Networks { pose: false }) => "trimapgen-selfie",
                    (true, MaskSource::Oracle(_)) => "oracle-mask",
                }
            ),
            Method::Rvm(_) => "rvm".into(),
            Method::Coarse(_) => "coarse-mask".into(),
        }
    }

    /// Where this method's errors are measured: the methods given the evaluation trimap over
    /// its unknown band, the trimap-free ones over the whole image.
    fn region(&self) -> Region {
        match self {
            Method::Ours {
                trimapgen: None, ..
            } => Region::Band,
            Method::Ours {
                trimapgen: Some(_), ..
            }
            | Method::Rvm(_)
            | Method::Coarse(_) => Region::Image,
        }
    }

    fn reset(&mut self) {
        match self {
            Method::Ours {
                refiner, trimapgen, ..
            } => {
                refiner.reset();
                if let Some(t) = trimapgen {
                    t.reset();
                }
            }
            Method::Rvm(r) => r.reset(),
            Method::Coarse(_) => {}
        }
    }

    /// Predicts the alpha of `img` (its evaluation trimap is used only by `gt-trimap`).
    fn predict(
        &mut self,
        img: &EvalImage,
        settings: &MatteSettings,
        out: &mut Vec<f32>,
    ) -> Result<()> {
        let (w, h) = (img.sample.width, img.sample.height);
        out.resize(w * h, 0.0);
        match self {
            Method::Ours {
                refiner,
                trimapgen,
                refine,
                trimap,
                mask,
                ..
            } => {
                let settings = &MatteSettings {
                    refine: *refine,
                    ..*settings
                };
                let mut frame = match trimapgen {
                    Some(_) => img.sample.rgba.clone(),
                    None => img.with_trimap(),
                };
                let mut view = rgba_view_mut(&mut frame, w, h, w * 4)?;
                match (trimapgen, mask) {
                    (Some(t), MaskSource::Oracle(o)) => {
                        let (mw, mh) = t.segmenter().resolution();
                        o.mask.resize(mw * mh, 0.0);
                        o.resizer.run(&img.sample.alpha, w, h, &mut o.mask, mw, mh);
                        t.process_with_mask(
                            &mut view,
                            &o.mask,
                            (mw, mh),
                            trimap,
                            AlphaOutput::Trimap,
                        );
                    }
                    // The core's defaults are trimapgen's (plugins/tests/defaults.rs).
                    (Some(t), MaskSource::Networks { pose }) => {
                        let settings = TrimapSettings {
                            pose: *pose,
                            ..*trimap
                        };
                        t.process(&mut view, &settings, AlphaOutput::Trimap)?;
                    }
                    (None, _) => {}
                }
                refiner.process(&mut view, settings)?;
                alpha_of(&frame, out);
            }
            Method::Rvm(r) => {
                let view = rgba_view(&img.sample.rgba, w, h, w * 4)?;
                r.run(&view, peers::rvm_recommended_ratio(w, h), out)?;
            }
            Method::Coarse(c) => {
                let view = rgba_view(&img.sample.rgba, w, h, w * 4)?;
                c.run(&view, out)?;
            }
        }
        Ok(())
    }
}

/// The trimap stage's settings of the `…/trimapgen` rows: `trimapgen`'s defaults but for the
/// band options eval takes.
pub fn trimap_settings(args: &EvalArgs) -> TrimapSettings {
    TrimapSettings {
        adaptive_band: args.adaptive_band,
        band: slimmatte::trimap::BandWidth::Fraction(args.band_fraction.max(0.0)),
        band_bias: args.band_bias,
        pose_interval: args.pose_interval.max(1),
        ..TrimapSettings::default()
    }
}

/// The methods of a run: for each model and refinement, `gt-trimap` and `trimapgen`; RVM when
/// found; the coarse mask.
pub(super) fn build_methods(
    args: &EvalArgs,
    models: &[PathBuf],
    rvm: Option<&Path>,
) -> Result<Vec<Method>> {
    let seg = slimmatte::paths::default_segmentation_model();
    let mut methods = Vec::new();
    let trimap = trimap_settings(args);
    // (refinement, band net): the net alone, the classical refinement, and the refinement with
    // the band net (the shipped configuration, last).
    let mut refines = vec![(RefineSettings::none(), false)];
    if args.refine.settings().enabled() {
        refines.push((args.refine.settings(), false));
        if args.refine.band_net {
            refines.push((args.refine.settings(), true));
        }
    }
    let refiner = |m: &Path, band: bool| -> Result<Box<MatteRefiner>> {
        let mut r = MatteRefiner::load(m, args.threads)?;
        if band {
            args.refine.load_band_net(&mut r, args.threads)?;
        }
        Ok(Box::new(r))
    };
    for (k, m) in models.iter().enumerate() {
        let label = model_label(m);
        for (r, &(refine, band)) in refines.iter().enumerate() {
            methods.push(Method::Ours {
                label: label.clone(),
                refiner: refiner(m, band)?,
                trimapgen: None,
                trimap,
                refine,
                band,
                mask: MaskSource::Networks { pose: args.pose },
            });
            // The pipeline on the networks' mask (`--pose`) for every variant; in one row each
            // (the first model with the last variant, the shipped configuration unless told
            // otherwise), with the other `pose` setting and on the oracle mask.
            let extra_rows = k == 0 && r + 1 == refines.len();
            let mut sources = vec![MaskSource::Networks { pose: args.pose }];
            if extra_rows && args.compare_pose {
                sources.push(MaskSource::Networks { pose: !args.pose });
            }
            if extra_rows && args.oracle_mask {
                sources.push(MaskSource::Oracle(Box::default()));
            }
            for mask in sources {
                let mut generator = TrimapGenerator::load(&seg, args.threads)?;
                if matches!(mask, MaskSource::Networks { pose: true }) {
                    generator.load_default_pose(slimmatte::runtime::SHARED_POOL)?;
                }
                methods.push(Method::Ours {
                    label: label.clone(),
                    refiner: refiner(m, band)?,
                    trimapgen: Some(Box::new(generator)),
                    trimap,
                    refine,
                    band,
                    mask,
                });
            }
        }
    }
    if let Some(r) = rvm {
        methods.push(Method::Rvm(Box::new(RvmSession::load(r, args.threads)?)));
    }
    methods.push(Method::Coarse(Box::new(CoarseMask::load(
        &seg,
        args.threads,
    )?)));
    Ok(methods)
}

/// The errors of `pred` against `img`'s ground truth over its evaluation trimap's unknown
/// region (Composition-1k).
pub fn errors(pred: &[f32], img: &EvalImage) -> MatteErrors {
    MatteErrors::compute(
        pred,
        &img.sample.alpha,
        &img.trimap,
        img.sample.width,
        img.sample.height,
    )
}

/// The scores of `pred` against `img`'s ground truth over `region`: the band errors, or the
/// whole-image errors and the IoU of the foregrounds. `ms` is 0, for the caller to fill in.
pub fn scores(pred: &[f32], img: &EvalImage, region: Region) -> Scores {
    let (gt, w, h) = (&img.sample.alpha, img.sample.width, img.sample.height);
    let (e, iou) = match region {
        Region::Band => (errors(pred, img), None),
        Region::Image => (
            MatteErrors::compute_image(pred, gt, w, h),
            Some(metrics::iou(pred, gt)),
        ),
    };
    Scores {
        sad: e.sad,
        mse: e.mse,
        grad: e.grad,
        conn: e.conn,
        iou,
        ms: 0.0,
    }
}

/// What a sequence row keeps of each frame (SAD, MSE and, over the image, IoU) — without the
/// Grad and Conn passes of [`scores`], which a sequence row does not report.
fn frame_scores(pred: &[f32], img: &EvalImage, region: Region) -> Scores {
    let gt = &img.sample.alpha;
    let (sad, mse, iou) = match region {
        Region::Band => (
            metrics::sad(pred, gt, &img.trimap),
            metrics::mse(pred, gt, &img.trimap),
            None,
        ),
        Region::Image => (
            metrics::sad_image(pred, gt),
            metrics::mse_image(pred, gt),
            Some(metrics::iou(pred, gt)),
        ),
    };
    Scores {
        sad,
        mse,
        grad: 0.0,
        conn: 0.0,
        iou,
        ms: 0.0,
    }
}

/// The eval.csv row of `method` on `img`, measured over `region` and taking `ms`.
pub(crate) fn row(img: &EvalImage, method: &str, region: Region, pred: &[f32], ms: f64) -> Row {
    Row {
        set: img.set.clone(),
        image: img.sample.name.clone(),
        method: method.to_string(),
        region,
        scores: Scores {
            ms,
            ..scores(pred, img, region)
        },
    }
}

/// What running methods needs besides the methods: the matting settings, a prediction buffer
/// reused from image to image, and the progress bar.
pub(super) struct Runner<'a> {
    pub settings: MatteSettings,
    pub pred: Vec<f32>,
    pub bar: &'a ProgressBar,
}

impl Runner<'_> {
    /// Every method on every still, each from a fresh state: one row per (image, method).
    pub fn stills(&mut self, images: &[EvalImage], methods: &mut [Method]) -> Result<Vec<Row>> {
        let mut rows = Vec::new();
        for img in images {
            for m in methods.iter_mut() {
                self.bar.set_message(m.name());
                m.reset();
                let t = Instant::now();
                m.predict(img, &self.settings, &mut self.pred)?;
                let ms = t.elapsed().as_secs_f64() * 1000.0;
                rows.push(row(img, &m.name(), m.region(), &self.pred, ms));
                self.bar.inc(1);
            }
        }
        Ok(rows)
    }

    /// Moving sequences: temporal state is kept within a sequence. One row per (sequence,
    /// method).
    pub fn sequences(
        &mut self,
        args: &EvalArgs,
        textures: &[(String, RgbaImage)],
        methods: &mut [Method],
    ) -> Result<Vec<SequenceRow>> {
        let mut seq_rows = Vec::new();
        for si in args.sequence_offset..args.sequence_offset + args.sequences {
            let seq = sequence::MovingSequence::new(
                textures,
                si,
                args.width,
                args.height,
                args.sequence_frames.max(2),
            )?;
            let frames: Vec<EvalImage> = (0..seq.len())
                .map(|t| images::with_gt_trimap("moving", seq.frame(t), args.trimap_radius))
                .collect();
            let gts: Vec<Vec<f32>> = frames.iter().map(|f| f.sample.alpha.clone()).collect();
            for m in methods.iter_mut() {
                self.bar
                    .set_message(format!("{} on {}", m.name(), seq.name));
                m.reset();
                let region = m.region();
                let mut preds = Vec::new();
                let mut per_frame = Vec::new();
                for f in &frames {
                    m.predict(f, &self.settings, &mut self.pred)?;
                    per_frame.push(frame_scores(&self.pred, f, region));
                    preds.push(self.pred.clone());
                    self.bar.inc(1);
                }
                let n = per_frame.len().max(1) as f64;
                seq_rows.push(SequenceRow {
                    sequence: seq.name.clone(),
                    method: m.name(),
                    region,
                    frames: frames.len(),
                    dtssd: sequence::dtssd(&preds, &gts),
                    sad: per_frame.iter().map(|s| s.sad).sum::<f64>() / n,
                    mse: per_frame.iter().map(|s| s.mse).sum::<f64>() / n,
                    iou: mean_of_some(per_frame.iter().map(|s| s.iou)),
                    frame_sad: per_frame.iter().map(|s| s.sad).collect(),
                });
            }
        }
        Ok(seq_rows)
    }
}
