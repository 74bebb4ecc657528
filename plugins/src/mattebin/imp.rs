use std::sync::LazyLock;

use gst::glib;
use gst::prelude::*;
use gst::subclass::prelude::*;

use crate::bgreplace::BgReplaceMode;

/// Bin properties and the child element (by name) each one is forwarded to.
const FORWARDED: &[(&str, &str)] = &[
    ("background", "background"),
    ("color", "background"),
    ("image-location", "background"),
    ("blur-sigma", "background"),
    ("working-size", "matte"),
    ("refine", "matte"),
    ("refine-iterations", "matte"),
    ("refine-radius", "matte"),
    ("refine-lambda", "matte"),
    ("refine-levels", "matte"),
    ("refine-size", "matte"),
    ("refine-epsilon", "matte"),
];

#[derive(Default)]
pub struct MatteBin {}

#[glib::object_subclass]
impl ObjectSubclass for MatteBin {
    const NAME: &'static str = "GstMatteBin";
    type Type = super::MatteBin;
    type ParentType = gst::Bin;
}

impl MatteBin {
    fn child(&self, name: &str) -> gst::Element {
        self.obj()
            .by_name(name)
            .unwrap_or_else(|| panic!("mattebin child {name} exists from construction"))
    }
}

impl ObjectImpl for MatteBin {
    fn properties() -> &'static [glib::ParamSpec] {
        static PROPERTIES: LazyLock<Vec<glib::ParamSpec>> = LazyLock::new(|| {
            let mut properties = vec![
                glib::ParamSpecEnum::builder_with_default("background", BgReplaceMode::Blur)
                    .nick("Background")
                    .blurb("What replaces the background (bgreplace's background)")
                    .mutable_playing()
                    .build(),
                glib::ParamSpecUInt::builder("color")
                    .nick("Colour")
                    .blurb("Background colour for background=color, as 0xRRGGBB")
                    .maximum(0xFF_FF_FF)
                    .default_value(0x00_B1_40)
                    .mutable_playing()
                    .build(),
                glib::ParamSpecString::builder("image-location")
                    .nick("Image location")
                    .blurb("PNG or JPEG file for background=image")
                    .mutable_playing()
                    .build(),
                glib::ParamSpecDouble::builder("blur-sigma")
                    .nick("Blur strength")
                    .blurb("Standard deviation in pixels of the background blur")
                    .minimum(1.0)
                    .maximum(200.0)
                    .default_value(12.0)
                    .mutable_playing()
                    .build(),
                glib::ParamSpecUInt::builder("working-size")
                    .nick("Working size")
                    .blurb(
                        "Longest side in pixels of the region the matting network sees; 0 = full",
                    )
                    .maximum(4096)
                    .default_value(512)
                    .mutable_playing()
                    .build(),
                glib::ParamSpecUInt::builder("threads")
                    .nick("Threads")
                    .blurb("Intra-op threads of each network (segmentation and matting)")
                    .maximum(64)
                    .default_value(2)
                    .mutable_ready()
                    .build(),
            ];
            properties.extend(crate::matting::refine_properties());
            properties
        });
        PROPERTIES.as_ref()
    }

    fn set_property(&self, _id: usize, value: &glib::Value, pspec: &glib::ParamSpec) {
        let name = pspec.name();
        if name == "threads" {
            self.child("trimap")
                .set_property_from_value("threads", value);
            self.child("matte")
                .set_property_from_value("threads", value);
            return;
        }
        let (_, child) = FORWARDED
            .iter()
            .find(|(p, _)| *p == name)
            .unwrap_or_else(|| unimplemented!());
        self.child(child).set_property_from_value(name, value);
    }

    fn property(&self, _id: usize, pspec: &glib::ParamSpec) -> glib::Value {
        let name = pspec.name();
        if name == "threads" {
            return self.child("matte").property_value("threads");
        }
        let (_, child) = FORWARDED
            .iter()
            .find(|(p, _)| *p == name)
            .unwrap_or_else(|| unimplemented!());
        self.child(child).property_value(name)
    }

    fn constructed(&self) {
        self.parent_constructed();
        let obj = self.obj();
        let make = |factory: &str, name: &str| {
            gst::ElementFactory::make(factory)
                .name(name)
                .build()
                .unwrap_or_else(|e| panic!("element {factory} is missing: {e}"))
        };
        let convert_in = make("videoconvert", "convert-in");
        let trimap = make("trimapgen", "trimap");
        let matte = make("slimmatte", "matte");
        let background = make("bgreplace", "background");
        let convert_out = make("videoconvert", "convert-out");
        let chain = [&convert_in, &trimap, &matte, &background, &convert_out];
        obj.add_many(chain).expect("add children");
        gst::Element::link_many(chain).expect("link children");
        let sink = gst::GhostPad::builder_from_template_with_target(
            &obj.pad_template("sink").expect("sink template"),
            &convert_in.static_pad("sink").expect("sink pad"),
        )
        .expect("sink ghost pad")
        .build();
        let src = gst::GhostPad::builder_from_template_with_target(
            &obj.pad_template("src").expect("src template"),
            &convert_out.static_pad("src").expect("src pad"),
        )
        .expect("src ghost pad")
        .build();
        obj.add_pad(&sink).expect("add sink pad");
        obj.add_pad(&src).expect("add src pad");
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

    fn pad_templates() -> &'static [gst::PadTemplate] {
        static PAD_TEMPLATES: LazyLock<Vec<gst::PadTemplate>> = LazyLock::new(|| {
            crate::video::pad_templates(&gst_video::VideoCapsBuilder::new().build())
        });
        PAD_TEMPLATES.as_ref()
    }
}

impl BinImpl for MatteBin {}
