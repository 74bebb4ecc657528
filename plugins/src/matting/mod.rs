//! # element-slimmatte
//!
//! The matting element: turns the trimap in the alpha channel (as `trimapgen` writes it) into a
//! soft alpha matte. Known foreground and background stay exact. A real-time closed-form
//! matting solve (`refine`) solves the crop around the unknown band at the resolution
//! `refine-size` allows; the band net (`band-net`, on: the pruned student,
//! `slimmatte::band_net`) then makes the full-resolution matte on the tiles where the band is
//! soft, from the image, the coarse matte and the previous frame's matte (`temporal`; without
//! history — first frame, flush, caps change, scene cut — it gets the coarse matte again).
//!
//! The crop matting net (`model`) runs only when the refinement depends on it (`refine=none`,
//! a data term, `RefineSettings::uses_net`): on the crop at a working resolution, upsampled
//! with a guided filter; a temporal crop model also gets the previous matte.
//!
//! ```text
//! gst-launch-1.0 v4l2src ! videoconvert ! trimapgen ! slimmatte ! bgreplace background=blur ! videoconvert ! autovideosink
//! ```

use gst::glib;
use gst::prelude::*;
use slimmatte::refine::{RefineMethod, RefineSettings};

mod imp;

/// What `slimmatte` outputs.
#[derive(Debug, Eq, PartialEq, Ord, PartialOrd, Hash, Clone, Copy, Default, glib::Enum)]
#[repr(u32)]
#[enum_type(name = "GstSlimMatteOutput")]
pub enum SlimMatteOutput {
    #[default]
    #[enum_value(name = "Matte: colours unchanged, the matte in alpha", nick = "matte")]
    Matte = 0,
    #[enum_value(
        name = "Grey: the matte as a grey picture, opaque (debug view)",
        nick = "grey"
    )]
    Grey = 1,
}

/// Which classical refinement `slimmatte` runs after the network: the GLib mirror of the
/// core's [`RefineMethod`], converted only by the two `From` impls below (the element keeps a
/// `RefineMethod`; this type exists for the property).
#[derive(Debug, Eq, PartialEq, Ord, PartialOrd, Hash, Clone, Copy, glib::Enum)]
#[repr(u32)]
#[enum_type(name = "GstSlimMatteRefine")]
pub enum SlimMatteRefine {
    #[enum_value(name = "None: the network's matte as it is", nick = "none")]
    None = 0,
    #[enum_value(
        name = "Laplacian: closed-form matting warm-started from the network",
        nick = "laplacian"
    )]
    Laplacian = 1,
}

impl From<SlimMatteRefine> for RefineMethod {
    fn from(r: SlimMatteRefine) -> Self {
        match r {
            SlimMatteRefine::None => Self::None,
            SlimMatteRefine::Laplacian => Self::Laplacian,
        }
    }
}

impl From<RefineMethod> for SlimMatteRefine {
    fn from(m: RefineMethod) -> Self {
        match m {
            RefineMethod::None => Self::None,
            RefineMethod::Laplacian => Self::Laplacian,
        }
    }
}

/// The refinement properties of `slimmatte` (`mattebin` rebuilds its own from these), with
/// the core's defaults ([`RefineSettings::default`]).
pub(crate) fn refine_properties() -> Vec<glib::ParamSpec> {
    use slimmatte::refine::{
        MAX_REFINE_EPSILON, MAX_REFINE_LEVELS, MAX_REFINE_RADIUS, MIN_REFINE_EPSILON,
    };
    let default = RefineSettings::default();
    let mut properties = vec![
        glib::ParamSpecEnum::builder_with_default("refine", SlimMatteRefine::from(default.method))
            .nick("Refinement")
            .blurb(
                "Classical refinement of the network's matte inside the unknown band: \
                 none (the network's matte as it is), or closed-form matting (matting \
                 Laplacian), which recovers hair strands the network blurs; with its defaults \
                 the solve does not depend on the network, so the network is not run",
            )
            .mutable_playing()
            .build(),
        glib::ParamSpecUInt::builder("refine-iterations")
            .nick("Refinement iterations")
            .blurb(
                "Conjugate-gradient iterations of the refinement at full resolution \
                 (the finest level it solves); more = closer to closed-form matting, \
                 slower; 0 = off",
            )
            .minimum(0)
            .maximum(10_000)
            .default_value(default.iterations)
            .mutable_playing()
            .build(),
        glib::ParamSpecUInt::builder("refine-coarse-iterations")
            .nick("Refinement coarse-level iterations")
            .blurb(
                "Conjugate-gradient iterations of the pyramid level just below the finest \
                 (at a quarter of its cost per iteration); each level further down runs \
                 twice as many, and none fewer than twice refine-iterations. The coarse \
                 levels carry the matte across the band: more = sharper strands, slower",
            )
            .minimum(0)
            .maximum(100_000)
            .default_value(default.coarse_iterations)
            .mutable_playing()
            .build(),
        glib::ParamSpecUInt::builder("refine-radius")
            .nick("Refinement window radius")
            .blurb(
                "Radius in pixels of the refinement's local colour-model windows at \
                 full resolution ((2r+1)² pixels; coarser levels use half)",
            )
            .minimum(1)
            .maximum(MAX_REFINE_RADIUS)
            .default_value(default.radius)
            .mutable_playing()
            .build(),
        glib::ParamSpecUInt::builder("refine-levels")
            .nick("Refinement pyramid levels")
            .blurb(
                "Levels of the coarse-to-fine pyramid the refinement solves on \
                 (1 = full resolution only)",
            )
            .minimum(1)
            .maximum(MAX_REFINE_LEVELS)
            .default_value(default.levels)
            .mutable_playing()
            .build(),
        glib::ParamSpecUInt::builder("refine-size")
            .nick("Refinement size")
            .blurb(
                "Longest side in pixels of the finest level the refinement solves: larger \
                 crops are solved at a coarser pyramid level and brought back by guided upsampling \
                 (like working-size for the network), which bounds the cost at every frame \
                 size; 0 = always full resolution",
            )
            .minimum(0)
            .maximum(8192)
            .default_value(default.size)
            .mutable_playing()
            .build(),
        glib::ParamSpecDouble::builder("refine-epsilon")
            .nick("Refinement epsilon")
            .blurb(
                "Regularisation of the refinement's local colour model (colours in 0..1): \
                 1e-7 is closed-form matting's and, with refine-iterations=256, \
                 refine-size=512, refine-trust=0 and band-net=false, reaches its quality; \
                 larger values give a smoother matte",
            )
            .minimum(crate::property::double(MIN_REFINE_EPSILON))
            .maximum(crate::property::double(MAX_REFINE_EPSILON))
            .default_value(crate::property::double(default.epsilon))
            .mutable_playing()
            .build(),
    ];
    properties.extend(data_term_properties(&default));
    properties
}

/// The refinement's data-term properties: its pull towards the network's matte.
fn data_term_properties(default: &RefineSettings) -> [glib::ParamSpec; 2] {
    use slimmatte::refine::MAX_REFINE_TRUST;
    [
        glib::ParamSpecDouble::builder("refine-lambda")
            .nick("Refinement data weight")
            .blurb(
                "Weight of the term that keeps the refined matte near the network's (0, with \
                 refine-trust=0 and the full pyramid, = the result does not depend on the \
                 network, which is then not run at all)",
            )
            .minimum(0.0)
            .maximum(1000.0)
            .default_value(crate::property::double(default.lambda))
            .mutable_playing()
            .build(),
        glib::ParamSpecDouble::builder("refine-trust")
            .nick("Refinement trust in the network")
            .blurb(
                "Weight of the network's matte in the refinement where the network is sure of \
                 it (scaled by (2·alpha − 1)²: full at 0 or 1, none at 0.5), so the colour \
                 model decides only where the network hesitates; 0 = the network is only the \
                 starting point (with refine-lambda=0 and the full pyramid: not run at all)",
            )
            .minimum(0.0)
            .maximum(crate::property::double(MAX_REFINE_TRUST))
            .default_value(crate::property::double(default.trust))
            .mutable_playing()
            .build(),
    ]
}

glib::wrapper! {
    pub struct SlimMatte(ObjectSubclass<imp::SlimMatte>)
        @extends gst_video::VideoFilter, gst_base::BaseTransform, gst::Element, gst::Object;
}

pub fn register(plugin: &gst::Plugin) -> Result<(), glib::BoolError> {
    gst::Element::register(
        Some(plugin),
        "slimmatte",
        gst::Rank::NONE,
        SlimMatte::static_type(),
    )
}
