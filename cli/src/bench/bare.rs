//! The bare measurement: the core library's calls in a loop on one thread (decode, trimap
//! generator, matting stage with its network and guided upsampling timed separately on the same
//! shapes, compositing, encode), and the peers' model calls in place of the matting.

use std::time::{Duration, Instant};

use anyhow::Result;
use slimmatte::composite::Compositor;
use slimmatte::filter::GuidedUpsampler;
use slimmatte::frame::{RgbaViewMut, rgba_view_mut, write_alpha};
use slimmatte::matte::{self, MatteRefiner, MatteSettings, RefineStats};
use slimmatte::model::Model;
use slimmatte::trimap::{AlphaOutput, TrimapGenerator, TrimapSettings};

use super::report::Measured;
use super::{BAND, COMPOSITE, DECODE, E2E, ENCODE, MATTE, NET, REFINE, TRIMAP, UPSAMPLE};
use super::{Frames, Samples, Setup, decode_jpeg, encode_jpeg, ms};
use crate::peers::{CoarseMask, RvmSession};

/// What a bare run does with the frame between decode and compositing.
pub(super) enum BareSystem {
    Ours {
        trimap: Box<TrimapGenerator>,
        refiner: Box<MatteRefiner>,
        net: Box<Model>,
    },
    Rvm {
        session: Box<RvmSession>,
        ratio: f32,
    },
    Coarse(Box<CoarseMask>),
}

/// The buffers a bare run reuses from frame to frame, and its detail line.
struct Scratch {
    alpha: Vec<f32>,
    alpha_u8: Vec<u8>,
    upsampler: GuidedUpsampler,
    net_in: Vec<f32>,
    net_out: Vec<f32>,
    lr: Vec<f32>,
    hr: Vec<f32>,
    up_out: Vec<f32>,
    trimap_settings: TrimapSettings,
    detail: String,
}

/// The timings of one frame.
struct FrameTimes {
    decode: Duration,
    /// Stages timed inside the middle one (trimap, refinement, network, upsampling).
    extra: Vec<(&'static str, f64)>,
    /// The stage between decode and compositing, and its time.
    mid: (&'static str, Duration),
    composite: Duration,
    encode: Duration,
}

impl Scratch {
    fn new(w: usize, h: usize) -> Self {
        Self {
            alpha: vec![0.0f32; w * h],
            alpha_u8: vec![0u8; w * h],
            upsampler: GuidedUpsampler::new(),
            net_in: Vec::new(),
            net_out: Vec::new(),
            lr: Vec::new(),
            hr: Vec::new(),
            up_out: Vec::new(),
            trimap_settings: TrimapSettings::default(),
            detail: String::new(),
        }
    }

    /// Runs `system` on the decoded frame in `view`; returns the middle stage and its time.
    fn middle(
        &mut self,
        system: &mut BareSystem,
        view: &mut RgbaViewMut<'_>,
        matte_settings: &MatteSettings,
        extra: &mut Vec<(&'static str, f64)>,
    ) -> Result<(&'static str, Duration)> {
        match system {
            BareSystem::Ours {
                trimap,
                refiner,
                net,
            } => {
                let t = Instant::now();
                trimap.process(view, &self.trimap_settings, AlphaOutput::Trimap)?;
                extra.push((TRIMAP, ms(t.elapsed())));
                let t = Instant::now();
                let stats = refiner.process(view, matte_settings)?;
                let t_matte = t.elapsed();
                if stats.refine.is_some() {
                    extra.push((REFINE, ms(stats.refine_time)));
                }
                if stats.band_tiles.is_some() {
                    extra.push((BAND, ms(stats.band_time)));
                }
                if stats.net_ran {
                    self.net_and_upsampling(net, &stats, extra)?;
                } else if stats.crop.is_some() && self.detail.is_empty() {
                    self.detail = "crop net not run: the refinement does not depend on it".into();
                }
                Ok((MATTE, t_matte))
            }
            BareSystem::Rvm { session, ratio } => {
                let t = Instant::now();
                session.run(&view.view(), *ratio, &mut self.alpha)?;
                let d = t.elapsed();
                self.write_alpha(view);
                self.detail = format!("downsample_ratio {ratio}");
                Ok((NET, d))
            }
            BareSystem::Coarse(c) => {
                let t = Instant::now();
                c.run(&view.view(), &mut self.alpha)?;
                let d = t.elapsed();
                self.write_alpha(view);
                self.detail = "MediaPipe mask, threshold 0.5, feathered".into();
                Ok((TRIMAP, d))
            }
        }
    }

    /// The network and the upsampling alone, on the shapes the matting stage used this frame.
    fn net_and_upsampling(
        &mut self,
        net: &mut Model,
        stats: &RefineStats,
        extra: &mut Vec<(&'static str, f64)>,
    ) -> Result<()> {
        let Some((_, _, cw, ch)) = stats.crop else {
            return Ok(());
        };
        let (lw, lh) = stats.working;
        let (pw, ph) = (
            lw.div_ceil(matte::PAD_MULTIPLE) * matte::PAD_MULTIPLE,
            lh.div_ceil(matte::PAD_MULTIPLE) * matte::PAD_MULTIPLE,
        );
        self.net_in.resize(4 * pw * ph, 0.5f32);
        self.net_out.resize(pw * ph, 0.0f32);
        let t = Instant::now();
        if net.has_input(matte::PREV_INPUT_NAME) {
            // A temporal model: its previous matte as the stage feeds it without history, the
            // trimap channel.
            let prev = &self.net_in[3 * pw * ph..];
            net.run_with_extra(
                &self.net_in,
                &[1, 4, ph, pw],
                &[(matte::PREV_INPUT_NAME, prev, &[1, 1, ph, pw])],
                &mut self.net_out,
            )?;
        } else {
            net.run(&self.net_in, &[1, 4, ph, pw], &mut self.net_out)?;
        }
        extra.push((NET, ms(t.elapsed())));
        self.lr.resize(lw * lh, 0.5f32);
        self.hr.resize(cw * ch, 0.5f32);
        self.up_out.resize(cw * ch, 0.0f32);
        let t = Instant::now();
        self.upsampler.run(
            &self.lr,
            &self.net_out[..lw * lh],
            lw,
            lh,
            &self.hr,
            cw,
            ch,
            1,
            1e-3,
            &mut self.up_out,
        );
        extra.push((UPSAMPLE, ms(t.elapsed())));
        if self.detail.is_empty() {
            self.detail = format!("net input {pw}×{ph} for a {cw}×{ch} crop");
        }
        Ok(())
    }

    /// A peer's alpha (0..1) into the frame's alpha channel.
    fn write_alpha(&mut self, view: &mut RgbaViewMut<'_>) {
        for (o, a) in self.alpha_u8.iter_mut().zip(&self.alpha) {
            *o = (a * 255.0 + 0.5).clamp(0.0, 255.0) as u8;
        }
        write_alpha(view, &self.alpha_u8);
    }
}

impl Samples {
    /// Records one measured frame and its end-to-end time (the trimap counts towards it for
    /// ours, whose matting stage does not include it).
    fn push_frame(&mut self, t: FrameTimes, ours: bool) {
        self.push(DECODE, ms(t.decode));
        for (s, v) in t.extra {
            self.push(s, v);
        }
        let (mid_stage, t_mid) = t.mid;
        self.push(mid_stage, ms(t_mid));
        self.push(COMPOSITE, ms(t.composite));
        self.push(ENCODE, ms(t.encode));
        let trimap_ms = self
            .0
            .get(TRIMAP)
            .filter(|_| ours)
            .and_then(|v| v.last().copied())
            .unwrap_or(0.0);
        self.push(
            E2E,
            ms(t.decode) + trimap_ms + ms(t_mid) + ms(t.composite) + ms(t.encode),
        );
    }
}

/// Measures `system` on `frames` one after the other; fps = 1000 / mean end to end.
pub(super) fn run_bare(mut system: BareSystem, frames: &Frames, setup: &Setup) -> Result<Measured> {
    let (w, h) = (frames.width, frames.height);
    let budget = &setup.budget;
    let mut compositor = Compositor::new(setup.background.clone());
    compositor.set_estimate_foreground(setup.estimate_foreground);
    let mut samples = Samples::default();
    let mut rgba = Vec::new();
    let mut scratch = Scratch::new(w, h);
    scratch.trimap_settings.pose = setup.pose;
    scratch.trimap_settings.pose_interval = setup.pose_interval;
    let mut measured = 0usize;
    let started = Instant::now();
    let mut i = 0usize;
    while i < budget.warmup || budget.more(measured, started) {
        let jpeg = &frames.jpegs[i % frames.jpegs.len()];
        let warm = i < budget.warmup;
        let t0 = Instant::now();
        decode_jpeg(jpeg, &mut rgba)?;
        let decode = t0.elapsed();
        let mut view = rgba_view_mut(&mut rgba, w, h, w * 4)?;
        let mut extra: Vec<(&'static str, f64)> = Vec::new();
        let mid = scratch.middle(&mut system, &mut view, &setup.matte_settings, &mut extra)?;
        let t = Instant::now();
        compositor.apply(&mut view);
        let composite = t.elapsed();
        let t = Instant::now();
        let encoded = encode_jpeg(&rgba, w, h)?;
        let encode = t.elapsed();
        std::hint::black_box(encoded);
        if !warm {
            let times = FrameTimes {
                decode,
                extra,
                mid,
                composite,
                encode,
            };
            samples.push_frame(times, matches!(system, BareSystem::Ours { .. }));
            measured += 1;
        }
        setup.bar.inc(1);
        i += 1;
    }
    drop(system);
    let stages = samples.stats();
    let fps = 1000.0
        / stages
            .iter()
            .find(|s| s.stage == E2E)
            .map_or(f64::NAN, |s| s.mean);
    Ok(Measured {
        stages,
        frames: measured,
        fps,
        detail: scratch.detail,
    })
}
