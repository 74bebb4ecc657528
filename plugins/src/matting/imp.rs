use std::path::PathBuf;
use std::sync::{LazyLock, Mutex};

use gst::glib;
use gst::prelude::*;
use gst::subclass::prelude::*;
use gst_base::subclass::prelude::*;
use gst_video::subclass::prelude::*;

use slimmatte::band_net::BandNet;
use slimmatte::frame::alpha_as_grey;
use slimmatte::matte::{
    DEFAULT_BAND_NET, DEFAULT_MARGIN, DEFAULT_SMOOTHING, DEFAULT_TEMPORAL, DEFAULT_WORKING_SIZE,
    MatteRefiner, MatteSettings,
};
use slimmatte::refine::RefineSettings;

use super::{SlimMatteOutput, SlimMatteRefine};
use crate::latency::{ProcessingLatency, WARM_UP_SIZE};
use crate::qos::{self, LateRelief};
use crate::{property, video};

const DEFAULT_THREADS: u32 = slimmatte::runtime::DEFAULT_THREADS as u32;
const DEFAULT_OUTPUT: SlimMatteOutput = SlimMatteOutput::Matte;

static CAT: LazyLock<gst::DebugCategory> = LazyLock::new(|| {
    gst::DebugCategory::new(
        "slimmatte",
        gst::DebugColorFlags::empty(),
        Some("Trimap to alpha matte with the pruned student network"),
    )
});

#[derive(Debug, Clone, PartialEq)]
struct Settings {
    model: Option<PathBuf>,
    band_model: Option<PathBuf>,
    threads: u32,
    output: SlimMatteOutput,
    /// Make frames without the band net while downstream reports lateness.
    qos_fallback: bool,
    /// The matting stage's settings, its refinement included: the properties set its fields,
    /// and each buffer runs a copy of it.
    matte: MatteSettings,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            model: None,
            band_model: None,
            threads: DEFAULT_THREADS,
            output: DEFAULT_OUTPUT,
            qos_fallback: true,
            matte: MatteSettings::default(),
        }
    }
}

impl Settings {
    fn model_path(&self) -> PathBuf {
        self.model
            .clone()
            .unwrap_or_else(slimmatte::paths::default_matting_model)
    }

    fn band_model_path(&self) -> PathBuf {
        self.band_model
            .clone()
            .unwrap_or_else(slimmatte::paths::default_band_model)
    }
}

/// What the band net's file must hold, from the core's contract (`slimmatte::band_net`).
fn band_model_blurb() -> String {
    use slimmatte::band_net::{
        CELL, CELL_CHANNELS, CELL_OUTPUTS, CELLS, INPUT_NAME, MAX_RUN, OUT_CELLS, OUTPUT_NAME,
        TEMPORAL_CELL_CHANNELS, TILE, TILE_INPUT, TILE_MARGIN,
    };
    const MARGIN_CELLS: usize = 2 * TILE_MARGIN / CELL;
    format!(
        "Path of the band net, the pruned student that makes the full-resolution matte from the \
         refinement's coarse one, tile by tile (input '{INPUT_NAME}' [N,{TEMPORAL_CELL_CHANNELS} or \
         {CELL_CHANNELS},{CELLS},{CELLS}] = the RGB, trimap, coarse alpha and, for a temporal net, \
         previous matte of {TILE_INPUT}×{TILE_INPUT}-pixel tiles as 2×2 cells; output \
         '{OUTPUT_NAME}' [N,{CELL_OUTPUTS},{OUT_CELLS},{OUT_CELLS}], the correction of each pixel of \
         the tile's {TILE}×{TILE} centre; up to {MAX_RUN} soft tiles side by side run as one input \
         {OUT_CELLS}·k+{MARGIN_CELLS} cells wide, so the net must be fully convolutional); loaded \
         and checked at start when band-net is on. A plain chain of unpadded convolutions and \
         ReLUs (what slimmatte-train exports) is computed by the band net's own CPU kernel from \
         the file's weights when that answers a probe as ONNX Runtime does and faster (the \
         shipped student: about 3x faster; wide nets such as the teacher stay on ONNX Runtime); \
         any other graph runs through ONNX Runtime"
    )
}

/// Alive from `start()` to `stop()`.
struct State {
    refiner: MatteRefiner,
}

#[derive(Default)]
pub struct SlimMatte {
    settings: Mutex<Settings>,
    state: Mutex<Option<State>>,
    latency: ProcessingLatency,
    /// Frames to make without the band net after a late report (`qos-fallback`).
    late: LateRelief,
}

#[glib::object_subclass]
impl ObjectSubclass for SlimMatte {
    const NAME: &'static str = "GstSlimMatte";
    type Type = super::SlimMatte;
    type ParentType = gst_video::VideoFilter;
}

/// `qos-fallback` and `late-frames`: the band net left out while downstream reports lateness.
fn qos_properties() -> [glib::ParamSpec; 2] {
    [
        qos::fallback_property(
            "Cheaper matte when late",
            "make frames without the band net (the refinement's matte, about two thirds of \
             the matting stage's cost; in mattebin, trimapgen also runs the pose networks \
             half as often)",
            "always the band net",
        ),
        qos::late_frames_property("without the band net"),
    ]
}

impl ObjectImpl for SlimMatte {
    fn properties() -> &'static [glib::ParamSpec] {
        static PROPERTIES: LazyLock<Vec<glib::ParamSpec>> = LazyLock::new(|| {
            let mut properties = vec![
                property::model(
                    "Matting model",
                    "Path of the matting ONNX model (input 'input' [1,4,H,W] = RGB 0..1 + \
                     trimap 0/0.5/1, output 'alpha' [1,1,H,W]; a temporal model also has the \
                     input 'prev_alpha' [1,1,H,W], the previous frame's matte)",
                    "the shipped temporal student",
                    slimmatte::paths::MATTING_MODEL,
                ),
                property::model_named(
                    "band-model",
                    "Band net model",
                    &band_model_blurb(),
                    "the shipped band student",
                    slimmatte::paths::BAND_MODEL,
                ),
                glib::ParamSpecBoolean::builder("band-net")
                    .nick("Band net")
                    .blurb(
                        "Run the band net on the refinement's matte (on by default): the \
                         refinement solves the band at the size refine-size allows, the net makes \
                         the full-resolution matte where the band is soft. Off = the \
                         refinement's upsampled matte, the classical pipeline. Read at start; \
                         turning it on later needs a restart to load the net",
                    )
                    .default_value(DEFAULT_BAND_NET)
                    .mutable_playing()
                    .build(),
                glib::ParamSpecUInt::builder("working-size")
                    .nick("Working size")
                    .blurb(
                        "Longest side in pixels of the region around the unknown band that the \
                         network sees (larger regions are scaled down, the matte is upsampled \
                         with a guided filter); 0 = full resolution",
                    )
                    .minimum(0)
                    .maximum(4096)
                    .default_value(DEFAULT_WORKING_SIZE)
                    .mutable_playing()
                    .build(),
                glib::ParamSpecUInt::builder("margin")
                    .nick("Context margin")
                    .blurb("Pixels of context added around the unknown band's bounding box")
                    .minimum(0)
                    .maximum(256)
                    .default_value(DEFAULT_MARGIN)
                    .mutable_playing()
                    .build(),
                glib::ParamSpecDouble::builder("smoothing")
                    .nick("Temporal smoothing")
                    .blurb(
                        "Weight of the previous frame's matte inside the unknown band \
                         (0 = off; higher = steadier edges, more lag)",
                    )
                    .minimum(0.0)
                    .maximum(0.95)
                    .default_value(property::double(DEFAULT_SMOOTHING))
                    .mutable_playing()
                    .build(),
                glib::ParamSpecBoolean::builder("temporal")
                    .nick("Temporal model input")
                    .blurb(
                        "Feed the previous frame's matte to temporal nets: the shipped band net \
                         (24 input channels) and crop models with a prev_alpha input. Without \
                         history (first frame, flush, caps change, scene cut, or off) the band \
                         net gets the coarse alpha again and a crop model the trimap; \
                         single-frame nets ignore it",
                    )
                    .default_value(DEFAULT_TEMPORAL)
                    .mutable_playing()
                    .build(),
                glib::ParamSpecUInt::builder("threads")
                    .nick("Threads")
                    .blurb("Intra-op threads of the matting network's own ONNX Runtime pool; 0 = run on \
                     the process-wide pool that every network shares, sized to the machine's \
                     cores (SLIMMATTE_POOL_THREADS overrides), so pipelines and streams do not \
                     oversubscribe the CPU")
                    .minimum(0)
                    .maximum(64)
                    .default_value(DEFAULT_THREADS)
                    .mutable_ready()
                    .build(),
                glib::ParamSpecEnum::builder_with_default("output", DEFAULT_OUTPUT)
                    .nick("Output")
                    .blurb("The matte in alpha, or as a grey picture for debugging")
                    .mutable_playing()
                    .build(),
            ];
            properties.extend(qos_properties());
            properties.extend(super::refine_properties());
            properties
        });
        PROPERTIES.as_ref()
    }

    fn set_property(&self, _id: usize, value: &glib::Value, pspec: &glib::ParamSpec) {
        let set = property::Setter::new(&CAT, self, pspec, value);
        let mut guard = self.settings.lock().unwrap();
        let settings = &mut *guard;
        let matte = &mut settings.matte;
        let refine = &mut matte.refine;
        match pspec.name() {
            "model" => set.store_path(&mut settings.model),
            "band-model" => set.store_path(&mut settings.band_model),
            "band-net" => set.store(&mut matte.band_net),
            "threads" => set.store(&mut settings.threads),
            "output" => set.store(&mut settings.output),
            "qos-fallback" => set.store(&mut settings.qos_fallback),
            "working-size" => set.store(&mut matte.working_size),
            "margin" => set.store(&mut matte.margin),
            "smoothing" => set.store_f32(&mut matte.smoothing),
            "temporal" => set.store(&mut matte.temporal),
            "refine" => set.store_into(&mut refine.method, |r: SlimMatteRefine| r.into()),
            "refine-iterations" => set.store(&mut refine.iterations),
            "refine-coarse-iterations" => set.store(&mut refine.coarse_iterations),
            "refine-radius" => set.store(&mut refine.radius),
            "refine-lambda" => set.store_f32(&mut refine.lambda),
            "refine-levels" => set.store(&mut refine.levels),
            "refine-size" => set.store(&mut refine.size),
            "refine-epsilon" => set.store_f32(&mut refine.epsilon),
            "refine-trust" => set.store_f32(&mut refine.trust),
            _ => unimplemented!(),
        }
    }

    fn property(&self, _id: usize, pspec: &glib::ParamSpec) -> glib::Value {
        let settings = self.settings.lock().unwrap();
        let matte = &settings.matte;
        let refine = &matte.refine;
        match pspec.name() {
            "model" => settings.model_path().to_str().to_value(),
            "band-model" => settings.band_model_path().to_str().to_value(),
            "band-net" => matte.band_net.to_value(),
            "threads" => settings.threads.to_value(),
            "output" => settings.output.to_value(),
            "qos-fallback" => settings.qos_fallback.to_value(),
            "late-frames" => self.late.relieved().to_value(),
            "working-size" => matte.working_size.to_value(),
            "margin" => matte.margin.to_value(),
            "smoothing" => property::double(matte.smoothing).to_value(),
            "temporal" => matte.temporal.to_value(),
            "refine" => SlimMatteRefine::from(refine.method).to_value(),
            "refine-iterations" => refine.iterations.to_value(),
            "refine-coarse-iterations" => refine.coarse_iterations.to_value(),
            "refine-radius" => refine.radius.to_value(),
            "refine-lambda" => property::double(refine.lambda).to_value(),
            "refine-levels" => refine.levels.to_value(),
            "refine-size" => refine.size.to_value(),
            "refine-epsilon" => property::double(refine.epsilon).to_value(),
            "refine-trust" => property::double(refine.trust).to_value(),
            _ => unimplemented!(),
        }
    }
}

impl GstObjectImpl for SlimMatte {}

impl ElementImpl for SlimMatte {
    fn metadata() -> Option<&'static gst::subclass::ElementMetadata> {
        static ELEMENT_METADATA: LazyLock<gst::subclass::ElementMetadata> = LazyLock::new(|| {
            gst::subclass::ElementMetadata::new(
                "Alpha matting",
                "Filter/Effect/Video",
                "Turns the trimap in the alpha channel into a soft alpha matte: closed-form \
                 matting solves the unknown band coarsely, the pruned student band net makes \
                 the full-resolution matte where it is soft (known regions stay exact)",
                "slimmatte developers",
            )
        });
        Some(&*ELEMENT_METADATA)
    }

    fn pad_templates() -> &'static [gst::PadTemplate] {
        video::rgba_pad_templates()
    }
}

impl BaseTransformImpl for SlimMatte {
    const MODE: gst_base::subclass::BaseTransformMode =
        gst_base::subclass::BaseTransformMode::AlwaysInPlace;
    const PASSTHROUGH_ON_SAME_CAPS: bool = false;
    const TRANSFORM_IP_ON_PASSTHROUGH: bool = false;

    fn start(&self) -> Result<(), gst::ErrorMessage> {
        let settings = self.settings.lock().unwrap().clone();
        let path = settings.model_path();
        let mut refiner = MatteRefiner::load(&path, settings.threads as usize).map_err(|e| {
            gst::error_msg!(
                gst::ResourceError::OpenRead,
                ["Failed to load matting model: {e}"]
            )
        })?;
        if settings.matte.band_net {
            let band = settings.band_model_path();
            let net = BandNet::load(&band, settings.threads as usize).map_err(|e| {
                gst::error_msg!(
                    gst::ResourceError::OpenRead,
                    ["Failed to load band net model: {e}"]
                )
            })?;
            gst::info!(
                CAT,
                imp = self,
                "loaded band net {}, run by {}",
                band.display(),
                if net.uses_own_kernel() {
                    "its own kernel (faster than ONNX Runtime on the probe)"
                } else {
                    "ONNX Runtime"
                }
            );
            refiner.set_band_net(Some(net));
        }
        // Warm up on a 640×360 frame with a person-sized unknown band: the first inference is
        // slow, and the timed second run primes the latency query before the first buffer.
        let (w, h) = WARM_UP_SIZE;
        let mut warm = vec![0u8; w * h * 4];
        for (i, px) in warm.chunks_exact_mut(4).enumerate() {
            let (x, y) = (i % w, i / w);
            let d = ((x as f32 - 320.0).powi(2) + (y as f32 - 220.0).powi(2)).sqrt();
            px[3] = if d < 120.0 {
                255
            } else if d < 140.0 {
                128
            } else {
                0
            };
        }
        // The first (untimed) warm-up run is the network alone, so it runs even when the
        // settings skip it (the default refinement does not depend on it,
        // `RefineSettings::uses_net`): a model that fails or outputs NaN is an error now, not
        // later when a property change brings the network in. The timed run is the settings'.
        let matte = settings.matte;
        let net_alone = MatteSettings {
            refine: RefineSettings::none(),
            ..matte
        };
        let mut first = true;
        self.latency.warm_up(&warm, |view| {
            let run = if std::mem::take(&mut first) {
                &net_alone
            } else {
                &matte
            };
            refiner.process(view, run).map(drop)
        })?;
        refiner.reset();
        gst::info!(
            CAT,
            imp = self,
            "loaded {} ({} model), warm-up frame {}×{} took {}",
            path.display(),
            if refiner.is_temporal() {
                "temporal"
            } else {
                "single-frame"
            },
            WARM_UP_SIZE.0,
            WARM_UP_SIZE.1,
            self.latency.current()
        );
        *self.state.lock().unwrap() = Some(State { refiner });
        Ok(())
    }

    fn stop(&self) -> Result<(), gst::ErrorMessage> {
        *self.state.lock().unwrap() = None;
        Ok(())
    }

    fn query(&self, direction: gst::PadDirection, query: &mut gst::QueryRef) -> bool {
        let answered = BaseTransformImplExt::parent_query(self, direction, query);
        self.latency.after_query(direction, query, answered)
    }

    fn sink_event(&self, event: gst::Event) -> bool {
        if video::restarts_stream(&event) {
            self.late.reset();
            if let Some(state) = self.state.lock().unwrap().as_mut() {
                state.refiner.reset();
            }
        }
        self.parent_sink_event(event)
    }

    fn src_event(&self, event: gst::Event) -> bool {
        if self.late.observe(&event) {
            gst::debug!(CAT, imp = self, "downstream reports lateness: {event:?}");
        }
        self.parent_src_event(event)
    }
}

impl VideoFilterImpl for SlimMatte {
    fn set_info(
        &self,
        incaps: &gst::Caps,
        in_info: &gst_video::VideoInfo,
        outcaps: &gst::Caps,
        out_info: &gst_video::VideoInfo,
    ) -> Result<(), gst::LoggableError> {
        video::require_rgba(&CAT, incaps, in_info)?;
        if let Some(state) = self.state.lock().unwrap().as_mut() {
            state.refiner.reset();
        }
        self.parent_set_info(incaps, in_info, outcaps, out_info)
    }

    fn transform_frame_ip(
        &self,
        frame: &mut gst_video::VideoFrameRef<&mut gst::BufferRef>,
    ) -> Result<gst::FlowSuccess, gst::FlowError> {
        // Copy out only the per-frame values: no allocation per buffer.
        let (mut matte, output, qos_fallback) = {
            let settings = self.settings.lock().unwrap();
            (settings.matte, settings.output, settings.qos_fallback)
        };
        // Late downstream: this frame without the band net (the countdown only runs while the
        // band net is on, the one thing there is to drop).
        if qos_fallback && matte.band_net && self.late.take() {
            matte.band_net = false;
        }
        let stats =
            video::transform_in_place(self, &self.state, &self.latency, frame, |state, view| {
                let stats = state.refiner.process(view, &matte).map_err(|e| {
                    gst::element_imp_error!(
                        self,
                        gst::LibraryError::Failed,
                        ["Matting failed: {e}"]
                    );
                    gst::FlowError::Error
                })?;
                if output == SlimMatteOutput::Grey {
                    alpha_as_grey(view);
                }
                Ok(stats)
            })?;
        gst::trace!(CAT, imp = self, "{stats:?}");
        Ok(gst::FlowSuccess::Ok)
    }
}
