use std::path::PathBuf;
use std::sync::{LazyLock, Mutex};

use gst::glib;
use gst::prelude::*;
use gst::subclass::prelude::*;
use gst_base::subclass::prelude::*;
use gst_video::subclass::prelude::*;

use slimmatte::trimap::{AlphaOutput, BandWidth, TrimapGenerator, TrimapSettings};
use slimmatte::trimap::{
    DEFAULT_ADAPTIVE_BAND, DEFAULT_BAND_BIAS, DEFAULT_BAND_FRACTION, DEFAULT_FLIP_AVERAGE,
    DEFAULT_POSE, DEFAULT_POSE_INTERVAL, DEFAULT_SMOOTHING, DEFAULT_THRESHOLD, MAX_BAND_BIAS,
};

use super::TrimapGenOutput;
use crate::latency::{ProcessingLatency, WARM_UP_SIZE};
use crate::qos::{self, LateRelief};
use crate::{property, video};

/// 0 = the band is `band-fraction` of the frame's shorter side.
const DEFAULT_BAND_WIDTH: u32 = 0;
const DEFAULT_THREADS: u32 = slimmatte::runtime::DEFAULT_THREADS as u32;
const DEFAULT_OUTPUT: TrimapGenOutput = TrimapGenOutput::Trimap;

/// The pose cadence phase of the next element to start ([`TrimapGenerator::set_pose_phase`]).
static POSE_PHASE: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

static CAT: LazyLock<gst::DebugCategory> = LazyLock::new(|| {
    gst::DebugCategory::new(
        "trimapgen",
        gst::DebugColorFlags::empty(),
        Some("Coarse person mask to trimap"),
    )
});

#[derive(Debug, Clone, PartialEq)]
struct Settings {
    model: Option<PathBuf>,
    /// The core's settings of the stage, set field by field from the properties.
    trimap: TrimapSettings,
    /// `band-width` and `band-fraction`, the two properties behind `trimap.band` (a width in
    /// pixels when `band_width` > 0, else the fraction).
    band_width: u32,
    band_fraction: f32,
    pose_model: Option<PathBuf>,
    pose_detector_model: Option<PathBuf>,
    threads: u32,
    output: TrimapGenOutput,
    /// Run the pose networks half as often while downstream reports lateness.
    qos_fallback: bool,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            model: None,
            trimap: TrimapSettings::default(),
            band_width: DEFAULT_BAND_WIDTH,
            band_fraction: DEFAULT_BAND_FRACTION,
            pose_model: None,
            pose_detector_model: None,
            threads: DEFAULT_THREADS,
            output: DEFAULT_OUTPUT,
            qos_fallback: true,
        }
    }
}

impl Settings {
    fn model_path(&self) -> PathBuf {
        self.model
            .clone()
            .unwrap_or_else(slimmatte::paths::default_segmentation_model)
    }

    fn pose_model_path(&self) -> PathBuf {
        self.pose_model
            .clone()
            .unwrap_or_else(slimmatte::paths::default_pose_model)
    }

    fn pose_detector_model_path(&self) -> PathBuf {
        self.pose_detector_model
            .clone()
            .unwrap_or_else(slimmatte::paths::default_pose_detector_model)
    }

    /// Sets `trimap.band` from `band-width` and `band-fraction`.
    fn update_band(&mut self) {
        self.trimap.band = if self.band_width > 0 {
            BandWidth::Pixels(self.band_width)
        } else {
            BandWidth::Fraction(self.band_fraction)
        };
    }

    fn alpha_output(&self) -> AlphaOutput {
        match self.output {
            TrimapGenOutput::Trimap => AlphaOutput::Trimap,
            TrimapGenOutput::Mask => AlphaOutput::Mask,
        }
    }
}

/// Alive from `start()` to `stop()`.
struct State {
    generator: TrimapGenerator,
}

#[derive(Default)]
pub struct TrimapGen {
    settings: Mutex<Settings>,
    state: Mutex<Option<State>>,
    latency: ProcessingLatency,
    /// Frames to make with fewer pose runs after a late report (`qos-fallback`).
    late: LateRelief,
}

#[glib::object_subclass]
impl ObjectSubclass for TrimapGen {
    const NAME: &'static str = "GstTrimapGen";
    type Type = super::TrimapGen;
    type ParentType = gst_video::VideoFilter;
}

/// The band's properties: its radius (`band-width` or `band-fraction`) and `band-bias`.
fn band_properties() -> [glib::ParamSpec; 3] {
    [
        glib::ParamSpecUInt::builder("band-width")
            .nick("Band width (pixels)")
            .blurb(
                "Radius in pixels of the unknown band around the person's contour; \
                 0 = use band-fraction instead",
            )
            .minimum(0)
            .maximum(512)
            .default_value(DEFAULT_BAND_WIDTH)
            .mutable_playing()
            .build(),
        glib::ParamSpecDouble::builder("band-fraction")
            .nick("Band width (fraction)")
            .blurb(
                "Radius of the unknown band as a fraction of the frame's shorter side \
                 (used when band-width is 0)",
            )
            .minimum(0.0)
            .maximum(0.25)
            .default_value(property::double(DEFAULT_BAND_FRACTION))
            .mutable_playing()
            .build(),
        glib::ParamSpecDouble::builder("band-bias")
            .nick("Band bias")
            .blurb(
                "Shifts the unknown band outwards (> 0) or inwards (< 0) at the same \
                 total width: it reaches radius*(1+bias) outside the person mask's \
                 contour, where the mask misses hair and soft edges, and \
                 radius*(1-bias) inside it; 0 = centred on the contour",
            )
            .minimum(-property::double(MAX_BAND_BIAS))
            .maximum(property::double(MAX_BAND_BIAS))
            .default_value(property::double(DEFAULT_BAND_BIAS))
            .mutable_playing()
            .build(),
    ]
}

/// The pose stage's properties: `pose`, `pose-interval` and the two pose models.
fn pose_properties() -> [glib::ParamSpec; 6] {
    [
        glib::ParamSpecBoolean::builder("pose")
            .nick("Pose segmentation")
            .blurb(
                "Also run MediaPipe Pose: its detector finds the person on the first \
                 frame and after a loss, its landmark network segments the person (and up \
                 to two others found with them) in a region that follows the body, and that \
                 mask is mixed into the selfie \
                 mask inside the region once the landmarks confirm the body lies in it \
                 (outside it the selfie mask alone decides; it adds person only near the \
                 skeleton its landmarks draw): fewer missed heads, hair \
                 and limbs, steadier edges; false = the selfie network alone",
            )
            .default_value(DEFAULT_POSE)
            .mutable_ready()
            .build(),
        qos::fallback_property(
            "Fewer pose runs when late",
            "run the pose networks half as often (every 2 × pose-interval frames, the held \
             mask moved with the person)",
            "always pose-interval",
        ),
        qos::late_frames_property("with fewer pose runs"),
        glib::ParamSpecUInt::builder("pose-interval")
            .nick("Pose interval")
            .blurb(
                "Run the pose networks every this many frames while a person is \
                 confirmed, holding their mask in between, moved with the person (1 = \
                 every frame); after a miss they run on the next frame, then back off to \
                 this interval; the landmark network costs about 10 ms per run on 2 cores",
            )
            .minimum(1)
            .maximum(300)
            .default_value(DEFAULT_POSE_INTERVAL as u32)
            .mutable_playing()
            .build(),
        property::model_named(
            "pose-model",
            "Pose model",
            "Path of the pose-landmark ONNX model used with pose=true (input 'image' \
             [1,3,256,256], outputs 'mask', 'landmarks', 'presence')",
            "the shipped MediaPipe Pose model",
            slimmatte::paths::POSE_MODEL,
        ),
        property::model_named(
            "pose-detector-model",
            "Pose detector model",
            "Path of the person-detector ONNX model used with pose=true (input \
             'image' [1,3,224,224], outputs 'boxes' [1,2254,12], 'scores' [1,2254,1])",
            "the shipped MediaPipe pose detector",
            slimmatte::paths::POSE_DETECTOR_MODEL,
        ),
    ]
}

impl ObjectImpl for TrimapGen {
    fn properties() -> &'static [glib::ParamSpec] {
        static PROPERTIES: LazyLock<Vec<glib::ParamSpec>> = LazyLock::new(|| {
            let mut properties = vec![property::model(
                "Segmentation model",
                "Path of the person-segmentation ONNX model (input 'image' [1,3,H,W] RGB \
                 0..1, output 'mask' [1,1,H,W])",
                "the shipped MediaPipe model",
                slimmatte::paths::SEGMENTATION_MODEL,
            )];
            properties.extend(band_properties());
            properties.extend([
                glib::ParamSpecDouble::builder("threshold")
                    .nick("Threshold")
                    .blurb("Person probability at and above which a pixel counts as person")
                    .minimum(0.01)
                    .maximum(0.99)
                    .default_value(property::double(DEFAULT_THRESHOLD))
                    .mutable_playing()
                    .build(),
                glib::ParamSpecDouble::builder("smoothing")
                    .nick("Temporal smoothing")
                    .blurb(
                        "Weight of the previous frame's mask (moved with the person) where the \
                         new mask is unsure (mixed in proportion to its uncertainty, so confident motion is \
                         followed at once; 0 = off; higher = steadier hair and edges)",
                    )
                    .minimum(0.0)
                    .maximum(0.95)
                    .default_value(property::double(DEFAULT_SMOOTHING))
                    .mutable_playing()
                    .build(),
                glib::ParamSpecBoolean::builder("adaptive-band")
                    .nick("Adaptive band")
                    .blurb(
                        "Also put in the unknown band the pixels where the person mask is \
                         unsure (0.2-0.8) or changed by more than 0.3 since the previous \
                         frame, so the mask's misses reach the matting net instead of the \
                         background",
                    )
                    .default_value(DEFAULT_ADAPTIVE_BAND)
                    .mutable_playing()
                    .build(),
                glib::ParamSpecBoolean::builder("flip-average")
                    .nick("Flip average")
                    .blurb(
                        "Average the person mask with the mask of the mirrored frame (two \
                         segmentation runs per frame): a steadier mask, less flicker",
                    )
                    .default_value(DEFAULT_FLIP_AVERAGE)
                    .mutable_playing()
                    .build(),
                glib::ParamSpecUInt::builder("threads")
                    .nick("Threads")
                    .blurb(
                        "Intra-op threads of the segmentation network's own ONNX Runtime pool; 0 = run it \
                     on the streaming thread alone (the 256x144 network is too small to gain from a \
                     pool; the matting network keeps the process-wide pool to itself)",
                    )
                    .minimum(0)
                    .maximum(64)
                    .default_value(DEFAULT_THREADS)
                    .mutable_ready()
                    .build(),
                glib::ParamSpecEnum::builder_with_default("output", DEFAULT_OUTPUT)
                    .nick("Output")
                    .blurb("What is written into the alpha channel")
                    .mutable_playing()
                    .build(),
            ]);
            properties.extend(pose_properties());
            properties
        });
        PROPERTIES.as_ref()
    }

    fn set_property(&self, _id: usize, value: &glib::Value, pspec: &glib::ParamSpec) {
        let set = property::Setter::new(&CAT, self, pspec, value);
        let mut settings = self.settings.lock().unwrap();
        match pspec.name() {
            "model" => set.store_path(&mut settings.model),
            "band-width" => {
                set.store(&mut settings.band_width);
                settings.update_band();
            }
            "band-fraction" => {
                set.store_f32(&mut settings.band_fraction);
                settings.update_band();
            }
            "band-bias" => set.store_f32(&mut settings.trimap.band_bias),
            "threshold" => set.store_f32(&mut settings.trimap.threshold),
            "smoothing" => set.store_f32(&mut settings.trimap.smoothing),
            "adaptive-band" => set.store(&mut settings.trimap.adaptive_band),
            "flip-average" => set.store(&mut settings.trimap.flip_average),
            "pose" => set.store(&mut settings.trimap.pose),
            "pose-interval" => {
                set.store_into(&mut settings.trimap.pose_interval, |v: u32| v as usize)
            }
            "pose-model" => set.store_path(&mut settings.pose_model),
            "pose-detector-model" => set.store_path(&mut settings.pose_detector_model),
            "threads" => set.store(&mut settings.threads),
            "output" => set.store(&mut settings.output),
            "qos-fallback" => set.store(&mut settings.qos_fallback),
            _ => unimplemented!(),
        }
    }

    fn property(&self, _id: usize, pspec: &glib::ParamSpec) -> glib::Value {
        let settings = self.settings.lock().unwrap();
        match pspec.name() {
            "model" => settings.model_path().to_str().to_value(),
            "band-width" => settings.band_width.to_value(),
            "band-fraction" => property::double(settings.band_fraction).to_value(),
            "band-bias" => property::double(settings.trimap.band_bias).to_value(),
            "threshold" => property::double(settings.trimap.threshold).to_value(),
            "smoothing" => property::double(settings.trimap.smoothing).to_value(),
            "adaptive-band" => settings.trimap.adaptive_band.to_value(),
            "flip-average" => settings.trimap.flip_average.to_value(),
            "pose" => settings.trimap.pose.to_value(),
            "pose-interval" => (settings.trimap.pose_interval as u32).to_value(),
            "pose-model" => settings.pose_model_path().to_str().to_value(),
            "pose-detector-model" => settings.pose_detector_model_path().to_str().to_value(),
            "threads" => settings.threads.to_value(),
            "output" => settings.output.to_value(),
            "qos-fallback" => settings.qos_fallback.to_value(),
            "late-frames" => self.late.relieved().to_value(),
            _ => unimplemented!(),
        }
    }
}

impl GstObjectImpl for TrimapGen {}

impl ElementImpl for TrimapGen {
    fn metadata() -> Option<&'static gst::subclass::ElementMetadata> {
        static ELEMENT_METADATA: LazyLock<gst::subclass::ElementMetadata> = LazyLock::new(|| {
            gst::subclass::ElementMetadata::new(
                "Trimap generator",
                "Filter/Effect/Video",
                "Segments the person with a coarse network and writes a trimap \
                 (0 background, 128 unknown, 255 foreground) or the soft mask into alpha",
                "slimmatte developers",
            )
        });
        Some(&*ELEMENT_METADATA)
    }

    fn pad_templates() -> &'static [gst::PadTemplate] {
        video::rgba_pad_templates()
    }
}

impl BaseTransformImpl for TrimapGen {
    const MODE: gst_base::subclass::BaseTransformMode =
        gst_base::subclass::BaseTransformMode::AlwaysInPlace;
    const PASSTHROUGH_ON_SAME_CAPS: bool = false;
    const TRANSFORM_IP_ON_PASSTHROUGH: bool = false;

    fn start(&self) -> Result<(), gst::ErrorMessage> {
        let settings = self.settings.lock().unwrap().clone();
        let path = settings.model_path();
        let mut generator =
            TrimapGenerator::load(&path, settings.threads as usize).map_err(|e| {
                gst::error_msg!(
                    gst::ResourceError::OpenRead,
                    ["Failed to load segmentation model: {e}"]
                )
            })?;
        if settings.trimap.pose {
            let (pose, detector) = (
                settings.pose_model_path(),
                settings.pose_detector_model_path(),
            );
            generator
                .load_pose(&pose, &detector, slimmatte::runtime::SHARED_POOL)
                .map_err(|e| {
                    gst::error_msg!(
                        gst::ResourceError::OpenRead,
                        ["Failed to load pose model: {e}"]
                    )
                })?;
            // Each element started in this process takes the next cadence phase, so streams
            // that start together run their pose networks on different frames.
            generator.set_pose_phase(POSE_PHASE.fetch_add(1, std::sync::atomic::Ordering::Relaxed));
        }
        // One warm-up frame: the first inference is slow, and it gives the latency query a
        // measured processing time before the first buffer arrives.
        let (w, h) = WARM_UP_SIZE;
        let (trimap, output) = (settings.trimap, settings.alpha_output());
        self.latency.warm_up(&vec![0u8; w * h * 4], |view| {
            generator.process(view, &trimap, output)
        })?;
        generator.reset();
        gst::info!(
            CAT,
            imp = self,
            "loaded {} ({}×{} network), warm-up frame {}×{} took {}",
            path.display(),
            generator.segmenter().resolution().0,
            generator.segmenter().resolution().1,
            WARM_UP_SIZE.0,
            WARM_UP_SIZE.1,
            self.latency.current()
        );
        *self.state.lock().unwrap() = Some(State { generator });
        Ok(())
    }

    fn stop(&self) -> Result<(), gst::ErrorMessage> {
        *self.state.lock().unwrap() = None;
        gst::info!(CAT, imp = self, "stopped");
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
                gst::debug!(
                    CAT,
                    imp = self,
                    "resetting temporal smoothing on {:?}",
                    event.type_()
                );
                state.generator.reset();
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

impl VideoFilterImpl for TrimapGen {
    fn set_info(
        &self,
        incaps: &gst::Caps,
        in_info: &gst_video::VideoInfo,
        outcaps: &gst::Caps,
        out_info: &gst_video::VideoInfo,
    ) -> Result<(), gst::LoggableError> {
        video::require_rgba(&CAT, incaps, in_info)?;
        gst::debug!(CAT, imp = self, "caps {incaps:?} -> {outcaps:?}");
        if let Some(state) = self.state.lock().unwrap().as_mut() {
            state.generator.reset();
        }
        self.parent_set_info(incaps, in_info, outcaps, out_info)
    }

    fn transform_frame_ip(
        &self,
        frame: &mut gst_video::VideoFrameRef<&mut gst::BufferRef>,
    ) -> Result<gst::FlowSuccess, gst::FlowError> {
        // Copy out only the per-frame values: no allocation per buffer.
        let (mut trimap, output, qos_fallback) = {
            let settings = self.settings.lock().unwrap();
            (
                settings.trimap,
                settings.alpha_output(),
                settings.qos_fallback,
            )
        };
        // Late downstream: the pose networks half as often on this frame.
        if qos_fallback && trimap.pose && self.late.take() {
            trimap.pose_interval *= 2;
        }
        video::transform_in_place(self, &self.state, &self.latency, frame, |state, view| {
            state.generator.process(view, &trimap, output).map_err(|e| {
                gst::element_imp_error!(
                    self,
                    gst::LibraryError::Failed,
                    ["Segmentation failed: {e}"]
                );
                gst::FlowError::Error
            })
        })?;
        Ok(gst::FlowSuccess::Ok)
    }
}
