use std::path::PathBuf;
use std::sync::{LazyLock, Mutex};

use gst::glib;
use gst::prelude::*;
use gst::subclass::prelude::*;
use gst_base::subclass::prelude::*;
use gst_video::subclass::prelude::*;

use slimmatte::composite::{
    Background, Compositor, DEFAULT_BLUR_SIGMA, DEFAULT_COLOR, DEFAULT_ESTIMATE_FOREGROUND,
    RgbaImage, rgb,
};

use super::BgReplaceMode;
use crate::latency::ProcessingLatency;
use crate::{property, video};

const DEFAULT_BACKGROUND: BgReplaceMode = BgReplaceMode::Blur;

static CAT: LazyLock<gst::DebugCategory> = LazyLock::new(|| {
    gst::DebugCategory::new(
        "bgreplace",
        gst::DebugColorFlags::empty(),
        Some("Background replacement by alpha matte"),
    )
});

#[derive(Debug, Clone, PartialEq)]
struct Settings {
    background: BgReplaceMode,
    color: u32,
    image_location: Option<PathBuf>,
    blur_sigma: f64,
    estimate_foreground: bool,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            background: DEFAULT_BACKGROUND,
            color: DEFAULT_COLOR,
            image_location: None,
            blur_sigma: property::double(DEFAULT_BLUR_SIGMA),
            estimate_foreground: DEFAULT_ESTIMATE_FOREGROUND,
        }
    }
}

/// Alive from `start()` to `stop()`.
struct State {
    compositor: Compositor,
    /// The settings the compositor was built from.
    built: Settings,
    /// The decoded image, kept while only other settings change.
    image: Option<(PathBuf, RgbaImage)>,
}

impl State {
    /// Builds the background for `settings`, decoding the image only when its path changed.
    fn configure(&mut self, settings: &Settings) -> anyhow::Result<()> {
        let background = match settings.background {
            BgReplaceMode::Transparent => Background::Transparent,
            BgReplaceMode::Color => Background::Color(rgb(settings.color)),
            BgReplaceMode::Blur => Background::Blur {
                sigma: settings.blur_sigma as f32,
            },
            BgReplaceMode::Image => {
                let Some(path) = settings.image_location.clone() else {
                    anyhow::bail!("background=image needs the image-location property");
                };
                let image = match &self.image {
                    Some((p, img)) if *p == path => img.clone(),
                    _ => {
                        let img = RgbaImage::load(&path)?;
                        self.image = Some((path.clone(), img.clone()));
                        img
                    }
                };
                Background::Image { path, image }
            }
        };
        self.compositor.set_background(background);
        self.compositor
            .set_estimate_foreground(settings.estimate_foreground);
        self.built = settings.clone();
        Ok(())
    }
}

#[derive(Default)]
pub struct BgReplace {
    settings: Mutex<Settings>,
    state: Mutex<Option<State>>,
    latency: ProcessingLatency,
}

#[glib::object_subclass]
impl ObjectSubclass for BgReplace {
    const NAME: &'static str = "GstBgReplace";
    type Type = super::BgReplace;
    type ParentType = gst_video::VideoFilter;
}

impl ObjectImpl for BgReplace {
    fn properties() -> &'static [glib::ParamSpec] {
        static PROPERTIES: LazyLock<Vec<glib::ParamSpec>> = LazyLock::new(|| {
            vec![
                glib::ParamSpecEnum::builder_with_default("background", DEFAULT_BACKGROUND)
                    .nick("Background")
                    .blurb("What replaces the background (where alpha < 255)")
                    .mutable_playing()
                    .build(),
                glib::ParamSpecUInt::builder("color")
                    .nick("Colour")
                    .blurb("Background colour for background=color, as 0xRRGGBB")
                    .minimum(0)
                    .maximum(0xFF_FF_FF)
                    .default_value(DEFAULT_COLOR)
                    .mutable_playing()
                    .build(),
                glib::ParamSpecString::builder("image-location")
                    .nick("Image location")
                    .blurb(
                        "PNG or JPEG file for background=image; scaled to cover the frame, \
                         centred",
                    )
                    .mutable_playing()
                    .build(),
                glib::ParamSpecDouble::builder("blur-sigma")
                    .nick("Blur strength")
                    .blurb(
                        "Standard deviation in pixels of the background blur for background=blur",
                    )
                    .minimum(1.0)
                    .maximum(200.0)
                    .default_value(property::double(DEFAULT_BLUR_SIGMA))
                    .mutable_playing()
                    .build(),
                glib::ParamSpecBoolean::builder("estimate-foreground")
                    .nick("Estimate foreground colour")
                    .blurb(
                        "At soft matte edges (hair, motion blur) composite the estimated \
                         foreground colour (blur fusion, Forte & Pitie 2021) instead of the \
                         frame's own colour, which still holds the old background; also \
                         written into RGB for background=transparent",
                    )
                    .default_value(DEFAULT_ESTIMATE_FOREGROUND)
                    .mutable_playing()
                    .build(),
            ]
        });
        PROPERTIES.as_ref()
    }

    fn set_property(&self, _id: usize, value: &glib::Value, pspec: &glib::ParamSpec) {
        let set = property::Setter::new(&CAT, self, pspec, value);
        let mut settings = self.settings.lock().unwrap();
        match pspec.name() {
            "background" => set.store(&mut settings.background),
            "color" => set.store_with(&mut settings.color, |c| format!("{c:#08x}")),
            "image-location" => set.store_path(&mut settings.image_location),
            "blur-sigma" => set.store(&mut settings.blur_sigma),
            "estimate-foreground" => set.store(&mut settings.estimate_foreground),
            _ => unimplemented!(),
        }
    }

    fn property(&self, _id: usize, pspec: &glib::ParamSpec) -> glib::Value {
        let settings = self.settings.lock().unwrap();
        match pspec.name() {
            "background" => settings.background.to_value(),
            "color" => settings.color.to_value(),
            "image-location" => settings
                .image_location
                .as_ref()
                .and_then(|p| p.to_str())
                .to_value(),
            "blur-sigma" => settings.blur_sigma.to_value(),
            "estimate-foreground" => settings.estimate_foreground.to_value(),
            _ => unimplemented!(),
        }
    }
}

impl GstObjectImpl for BgReplace {}

impl ElementImpl for BgReplace {
    fn metadata() -> Option<&'static gst::subclass::ElementMetadata> {
        static ELEMENT_METADATA: LazyLock<gst::subclass::ElementMetadata> = LazyLock::new(|| {
            gst::subclass::ElementMetadata::new(
                "Background replacement",
                "Filter/Effect/Video",
                "Composites the frame over a blurred, coloured or image background using \
                 its alpha channel as the matte",
                "slimmatte developers",
            )
        });
        Some(&*ELEMENT_METADATA)
    }

    fn pad_templates() -> &'static [gst::PadTemplate] {
        video::rgba_pad_templates()
    }
}

impl BaseTransformImpl for BgReplace {
    const MODE: gst_base::subclass::BaseTransformMode =
        gst_base::subclass::BaseTransformMode::AlwaysInPlace;
    const PASSTHROUGH_ON_SAME_CAPS: bool = false;
    const TRANSFORM_IP_ON_PASSTHROUGH: bool = false;

    fn start(&self) -> Result<(), gst::ErrorMessage> {
        let settings = self.settings.lock().unwrap().clone();
        let mut state = State {
            compositor: Compositor::new(Background::Transparent),
            built: settings.clone(),
            image: None,
        };
        state.configure(&settings).map_err(|e| {
            gst::error_msg!(
                gst::ResourceError::OpenRead,
                ["Cannot set up the background: {e:#}"]
            )
        })?;
        self.latency.reset();
        *self.state.lock().unwrap() = Some(state);
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
}

impl VideoFilterImpl for BgReplace {
    fn set_info(
        &self,
        incaps: &gst::Caps,
        in_info: &gst_video::VideoInfo,
        outcaps: &gst::Caps,
        out_info: &gst_video::VideoInfo,
    ) -> Result<(), gst::LoggableError> {
        video::require_rgba(&CAT, incaps, in_info)?;
        gst::debug!(CAT, imp = self, "caps {incaps:?}");
        self.parent_set_info(incaps, in_info, outcaps, out_info)
    }

    fn transform_frame_ip(
        &self,
        frame: &mut gst_video::VideoFrameRef<&mut gst::BufferRef>,
    ) -> Result<gst::FlowSuccess, gst::FlowError> {
        video::transform_in_place(self, &self.state, &self.latency, frame, |state, view| {
            // Rebuild the background only when a property changed (compared under the
            // lock, so nothing is cloned per buffer). Lock order: state, then settings; no
            // path takes them the other way round.
            let changed = {
                let settings = self.settings.lock().unwrap();
                (state.built != *settings).then(|| settings.clone())
            };
            if let Some(settings) = changed {
                state.configure(&settings).map_err(|e| {
                    gst::element_imp_error!(
                        self,
                        gst::ResourceError::OpenRead,
                        ["Cannot set up the background: {e:#}"]
                    );
                    gst::FlowError::Error
                })?;
            }
            state.compositor.apply(view);
            Ok(())
        })?;
        Ok(gst::FlowSuccess::Ok)
    }
}
