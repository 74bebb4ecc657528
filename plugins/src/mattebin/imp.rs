use std::sync::{LazyLock, Mutex};

use gst::glib;
use gst::prelude::*;
use gst::subclass::prelude::*;

use crate::bgreplace::BgReplaceMode;
use crate::matting::SlimMatteRefine;

/// Bin properties and the child element (by name) each one is forwarded to. The bin's
/// property specs are the children's own (same type, range, default and blurb): nothing is
/// copied, so a default changed in an element is the bin's default too.
const FORWARDED: &[(&str, &str)] = &[
    ("background", "background"),
    ("color", "background"),
    ("image-location", "background"),
    ("blur-sigma", "background"),
    ("estimate-foreground", "background"),
    ("pose", "trimap"),
    ("pose-interval", "trimap"),
    ("band-net", "matte"),
    ("band-model", "matte"),
    ("qos-fallback", "matte"),
    ("late-frames", "matte"),
    ("working-size", "matte"),
    ("temporal", "matte"),
    ("threads", "matte"),
    ("refine", "matte"),
    ("refine-iterations", "matte"),
    ("refine-coarse-iterations", "matte"),
    ("refine-radius", "matte"),
    ("refine-lambda", "matte"),
    ("refine-levels", "matte"),
    ("refine-size", "matte"),
    ("refine-epsilon", "matte"),
    ("refine-trust", "matte"),
];

/// Properties set on more than the named child: `threads` sizes both networks, and
/// `qos-fallback` makes both stages cheaper when late.
const ALSO_ON: &[(&str, &str)] = &[("threads", "trimap"), ("qos-fallback", "trimap")];

/// The chain, as (factory, child name). The queues give each network stage its own streaming
/// thread, so that frame n+1 is segmented while frame n is matted and composited: a plain
/// `gst-launch-1.0 … ! mattebin ! …` gets the stage overlap without the user adding queues.
const CHAIN: &[(&str, &str)] = &[
    ("videoconvert", "convert-in"),
    ("trimapgen", "trimap"),
    ("queue", "queue-matte"),
    ("slimmatte", "matte"),
    ("queue", "queue-background"),
    ("bgreplace", "background"),
    ("videoconvert", "convert-out"),
];

/// Frames a stage queue holds: enough to decouple the stages, few enough to add at most two
/// frames of latency under back-pressure (no time or byte limit).
const QUEUE_FRAMES: u32 = 2;

static CAT: LazyLock<gst::DebugCategory> = LazyLock::new(|| {
    gst::DebugCategory::new(
        "mattebin",
        gst::DebugColorFlags::empty(),
        Some("Background replacement chain"),
    )
});

#[derive(Default)]
pub struct MatteBin {
    /// Why the chain could not be built in `constructed()` (reported on NULL→READY).
    broken: Mutex<Option<String>>,
}

#[glib::object_subclass]
impl ObjectSubclass for MatteBin {
    const NAME: &'static str = "GstMatteBin";
    type Type = super::MatteBin;
    type ParentType = gst::Bin;
}

/// The element type that owns a forwarded property.
fn child_type(child: &str) -> Option<glib::Type> {
    match child {
        "background" => Some(crate::bgreplace::BgReplace::static_type()),
        "trimap" => Some(crate::trimapgen::TrimapGen::static_type()),
        "matte" => Some(crate::matting::SlimMatte::static_type()),
        _ => None,
    }
}

/// The child's property spec, re-made under the same name for the bin: type, range, default,
/// nick, blurb and flags come from the child (gst-inspect does not list override specs, so the
/// spec is rebuilt rather than overridden).
fn forwarded_pspec(name: &str, child: &str) -> Option<glib::ParamSpec> {
    let class = glib::object::ObjectClass::from_type(child_type(child)?)?;
    let original = class.find_property(name)?;
    let (nick, blurb, flags) = (original.nick(), original.blurb()?, original.flags());
    // A numeric spec (`ParamSpecUInt`, `ParamSpecDouble`: alike, but with no trait in common)
    // with the child's range and default.
    macro_rules! ranged {
        ($spec:ty) => {
            if let Some(p) = original.downcast_ref::<$spec>() {
                return Some(
                    <$spec>::builder(name)
                        .nick(nick)
                        .blurb(blurb)
                        .flags(flags)
                        .minimum(p.minimum())
                        .maximum(p.maximum())
                        .default_value(p.default_value())
                        .build(),
                );
            }
        };
    }
    ranged!(glib::ParamSpecUInt);
    ranged!(glib::ParamSpecUInt64);
    ranged!(glib::ParamSpecDouble);
    if let Some(p) = original.downcast_ref::<glib::ParamSpecBoolean>() {
        return Some(
            glib::ParamSpecBoolean::builder(name)
                .nick(nick)
                .blurb(blurb)
                .flags(flags)
                .default_value(p.default_value())
                .build(),
        );
    }
    if let Some(p) = original.downcast_ref::<glib::ParamSpecString>() {
        return Some(
            glib::ParamSpecString::builder(name)
                .nick(nick)
                .blurb(blurb)
                .flags(flags)
                .default_value(p.default_value())
                .build(),
        );
    }
    if let Some(p) = original.downcast_ref::<glib::ParamSpecEnum>() {
        let t = p.enum_class().type_();
        if t == BgReplaceMode::static_type() {
            return enum_pspec::<BgReplaceMode>(name, nick, blurb, flags, p);
        }
        if t == SlimMatteRefine::static_type() {
            return enum_pspec::<SlimMatteRefine>(name, nick, blurb, flags, p);
        }
    }
    None
}

fn enum_pspec<T>(
    name: &str,
    nick: &str,
    blurb: &str,
    flags: glib::ParamFlags,
    original: &glib::ParamSpecEnum,
) -> Option<glib::ParamSpec>
where
    T: StaticType + glib::translate::FromGlib<i32> + glib::translate::IntoGlib<GlibType = i32>,
{
    let default = original.default_value::<T>().ok()?;
    Some(
        glib::ParamSpecEnum::builder_with_default(name, default)
            .nick(nick)
            .blurb(blurb)
            .flags(flags)
            .build(),
    )
}

impl MatteBin {
    fn child(&self, name: &str) -> Option<gst::Element> {
        self.obj().by_name(name)
    }

    fn build_chain(&self) -> Result<(), String> {
        let obj = self.obj();
        let mut elements = Vec::with_capacity(CHAIN.len());
        for (factory, name) in CHAIN {
            let e = gst::ElementFactory::make(factory)
                .name(*name)
                .build()
                .map_err(|e| format!("element {factory} is not available: {e}"))?;
            if *factory == "queue" {
                e.set_property("max-size-buffers", QUEUE_FRAMES);
                e.set_property("max-size-bytes", 0u32);
                e.set_property("max-size-time", 0u64);
            }
            elements.push(e);
        }
        obj.add_many(&elements)
            .map_err(|e| format!("cannot add the chain: {e}"))?;
        gst::Element::link_many(&elements).map_err(|e| format!("cannot link the chain: {e}"))?;
        for (direction, element, pad) in [
            ("sink", elements.first(), "sink"),
            ("src", elements.last(), "src"),
        ] {
            let target = element
                .and_then(|e| e.static_pad(pad))
                .ok_or_else(|| format!("the chain has no {pad} pad"))?;
            let template = obj
                .pad_template(direction)
                .ok_or_else(|| format!("no {direction} pad template"))?;
            let ghost = gst::GhostPad::builder_from_template_with_target(&template, &target)
                .map_err(|e| format!("cannot ghost the {direction} pad: {e}"))?
                .build();
            obj.add_pad(&ghost)
                .map_err(|e| format!("cannot add the {direction} pad: {e}"))?;
        }
        Ok(())
    }
}

impl ObjectImpl for MatteBin {
    fn properties() -> &'static [glib::ParamSpec] {
        static PROPERTIES: LazyLock<Vec<glib::ParamSpec>> = LazyLock::new(|| {
            FORWARDED
                .iter()
                .filter_map(|(name, child)| forwarded_pspec(name, child))
                .collect()
        });
        PROPERTIES.as_ref()
    }

    fn set_property(&self, _id: usize, value: &glib::Value, pspec: &glib::ParamSpec) {
        let name = pspec.name();
        let targets = FORWARDED
            .iter()
            .chain(ALSO_ON)
            .filter(|(p, _)| *p == name)
            .map(|(_, child)| *child);
        for child in targets {
            match self.child(child) {
                Some(c) => c.set_property_from_value(name, value),
                None => gst::warning!(CAT, imp = self, "{name} not set: no {child} child"),
            }
        }
    }

    fn property(&self, _id: usize, pspec: &glib::ParamSpec) -> glib::Value {
        let name = pspec.name();
        FORWARDED
            .iter()
            .find(|(p, _)| *p == name)
            .and_then(|(_, child)| self.child(child))
            .map(|c| c.property_value(name))
            .unwrap_or_else(|| pspec.default_value().clone())
    }

    fn constructed(&self) {
        self.parent_constructed();
        if let Err(e) = self.build_chain() {
            gst::error!(CAT, imp = self, "{e}");
            *self.broken.lock().unwrap_or_else(|e| e.into_inner()) = Some(e);
        }
    }
}

impl GstObjectImpl for MatteBin {}

impl ElementImpl for MatteBin {
    fn metadata() -> Option<&'static gst::subclass::ElementMetadata> {
        static ELEMENT_METADATA: LazyLock<gst::subclass::ElementMetadata> = LazyLock::new(|| {
            gst::subclass::ElementMetadata::new(
                "Background replacement (matting chain)",
                "Filter/Effect/Video",
                "videoconvert ! trimapgen ! slimmatte ! bgreplace ! videoconvert in one element",
                "slimmatte developers",
            )
        });
        Some(&*ELEMENT_METADATA)
    }

    fn change_state(
        &self,
        transition: gst::StateChange,
    ) -> Result<gst::StateChangeSuccess, gst::StateChangeError> {
        if transition == gst::StateChange::NullToReady
            && let Some(why) = self
                .broken
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .as_ref()
        {
            gst::element_imp_error!(
                self,
                gst::CoreError::MissingPlugin,
                ("mattebin cannot run: {}", why),
                ["install the missing GStreamer elements (gst-plugins-base for videoconvert)"]
            );
            return Err(gst::StateChangeError);
        }
        self.parent_change_state(transition)
    }

    fn pad_templates() -> &'static [gst::PadTemplate] {
        static PAD_TEMPLATES: LazyLock<Vec<gst::PadTemplate>> = LazyLock::new(|| {
            crate::video::pad_templates(&gst_video::VideoCapsBuilder::new().build())
        });
        PAD_TEMPLATES.as_ref()
    }
}

impl BinImpl for MatteBin {}
