//! The elements ship the core's defaults: every property whose default the core defines (the
//! `DEFAULT_*` constants, and the settings' `Default` impls that `eval` and `bench` run) has that
//! default in its spec and as the value of a new element, in the elements and in `mattebin`.

mod common;

use common::element;
use gst::glib;
use gst::prelude::*;

use slimmatte::composite::{DEFAULT_BLUR_SIGMA, DEFAULT_COLOR, DEFAULT_ESTIMATE_FOREGROUND};
use slimmatte::matte::{self, MatteSettings};
use slimmatte::refine::{self, RefineMethod, RefineSettings};
use slimmatte::runtime::DEFAULT_THREADS;
use slimmatte::trimap::{self, BandWidth, TrimapSettings};

/// The spec default of `name` on `e`, after checking that a new element reads the same value.
fn shipped(e: &gst::Element, name: &str) -> glib::Value {
    let spec = e
        .find_property(name)
        .unwrap_or_else(|| panic!("{} has no property {name}", e.name()));
    let default = spec.default_value().clone();
    assert_eq!(
        e.property_value(name).serialize().ok(),
        default.serialize().ok(),
        "{}: a new element's {name} is not its spec's default",
        e.name()
    );
    default
}

/// A double property's default, as the `f32` the core stores.
fn double(e: &gst::Element, name: &str) -> f32 {
    shipped(e, name).get::<f64>().unwrap() as f32
}

fn uint(e: &gst::Element, name: &str) -> u32 {
    shipped(e, name).get::<u32>().unwrap()
}

fn boolean(e: &gst::Element, name: &str) -> bool {
    shipped(e, name).get::<bool>().unwrap()
}

#[test]
fn trimapgen_ships_the_core_defaults() {
    let e = element("trimapgen", &[]);
    let core = TrimapSettings::default();
    assert_eq!(double(&e, "threshold"), trimap::DEFAULT_THRESHOLD);
    assert_eq!(double(&e, "threshold"), core.threshold);
    assert_eq!(double(&e, "smoothing"), trimap::DEFAULT_SMOOTHING);
    assert_eq!(double(&e, "smoothing"), core.smoothing);
    assert_eq!(double(&e, "band-fraction"), trimap::DEFAULT_BAND_FRACTION);
    assert_eq!(uint(&e, "band-width"), 0, "0 = band-fraction");
    assert_eq!(
        core.band,
        BandWidth::Fraction(double(&e, "band-fraction")),
        "the core's default band is the element's"
    );
    assert_eq!(uint(&e, "threads") as usize, DEFAULT_THREADS);
    assert_eq!(double(&e, "band-bias"), trimap::DEFAULT_BAND_BIAS);
    assert_eq!(double(&e, "band-bias"), core.band_bias);
    assert_eq!(boolean(&e, "adaptive-band"), core.adaptive_band);
    assert_eq!(boolean(&e, "flip-average"), core.flip_average);
    assert_eq!(boolean(&e, "pose"), trimap::DEFAULT_POSE);
    assert_eq!(boolean(&e, "pose"), core.pose);
    assert_eq!(
        uint(&e, "pose-interval") as usize,
        trimap::DEFAULT_POSE_INTERVAL
    );
    assert_eq!(uint(&e, "pose-interval") as usize, core.pose_interval);
    // The properties show the core's decimal, not the f32's binary expansion.
    assert_eq!(shipped(&e, "band-fraction").get::<f64>().unwrap(), 0.03);
}

#[test]
fn slimmatte_ships_the_core_defaults() {
    let e = element("slimmatte", &[]);
    let core = MatteSettings::default();
    assert_eq!(uint(&e, "working-size"), matte::DEFAULT_WORKING_SIZE);
    assert_eq!(uint(&e, "working-size"), core.working_size);
    assert_eq!(uint(&e, "margin"), matte::DEFAULT_MARGIN);
    assert_eq!(uint(&e, "margin"), core.margin);
    assert_eq!(double(&e, "smoothing"), matte::DEFAULT_SMOOTHING);
    assert_eq!(double(&e, "smoothing"), core.smoothing);
    assert_eq!(boolean(&e, "temporal"), matte::DEFAULT_TEMPORAL);
    assert_eq!(boolean(&e, "temporal"), core.temporal);
    assert_eq!(boolean(&e, "band-net"), matte::DEFAULT_BAND_NET);
    assert_eq!(boolean(&e, "band-net"), core.band_net);
    assert_eq!(uint(&e, "threads") as usize, DEFAULT_THREADS);

    let r = RefineSettings::default();
    assert_eq!(core.refine, r);
    let method: RefineMethod = shipped(&e, "refine")
        .get::<gstslimmatte::SlimMatteRefine>()
        .unwrap()
        .into();
    assert_eq!(method, r.method, "refine");
    assert_eq!(
        uint(&e, "refine-iterations"),
        refine::DEFAULT_REFINE_ITERATIONS
    );
    assert_eq!(uint(&e, "refine-iterations"), r.iterations);
    assert_eq!(
        uint(&e, "refine-coarse-iterations"),
        refine::DEFAULT_REFINE_COARSE_ITERATIONS
    );
    assert_eq!(uint(&e, "refine-coarse-iterations"), r.coarse_iterations);
    assert_eq!(uint(&e, "refine-radius"), refine::DEFAULT_REFINE_RADIUS);
    assert_eq!(uint(&e, "refine-radius"), r.radius);
    assert_eq!(uint(&e, "refine-levels"), refine::DEFAULT_REFINE_LEVELS);
    assert_eq!(uint(&e, "refine-levels"), r.levels);
    assert_eq!(uint(&e, "refine-size"), refine::DEFAULT_REFINE_SIZE);
    assert_eq!(uint(&e, "refine-size"), r.size);
    assert_eq!(double(&e, "refine-lambda"), refine::DEFAULT_REFINE_LAMBDA);
    assert_eq!(double(&e, "refine-lambda"), r.lambda);
    assert_eq!(double(&e, "refine-epsilon"), refine::DEFAULT_REFINE_EPSILON);
    assert_eq!(double(&e, "refine-epsilon"), r.epsilon);
    assert_eq!(double(&e, "refine-trust"), refine::DEFAULT_REFINE_TRUST);
    assert_eq!(double(&e, "refine-trust"), r.trust);
}

#[test]
fn bgreplace_ships_the_core_defaults() {
    let e = element("bgreplace", &[]);
    assert_eq!(double(&e, "blur-sigma"), DEFAULT_BLUR_SIGMA);
    assert_eq!(uint(&e, "color"), DEFAULT_COLOR);
    assert_eq!(
        boolean(&e, "estimate-foreground"),
        DEFAULT_ESTIMATE_FOREGROUND
    );
}

#[test]
fn mattebin_ships_the_core_defaults() {
    let e = element("mattebin", &[]);
    assert_eq!(uint(&e, "working-size"), matte::DEFAULT_WORKING_SIZE);
    assert_eq!(boolean(&e, "band-net"), matte::DEFAULT_BAND_NET);
    assert_eq!(boolean(&e, "temporal"), matte::DEFAULT_TEMPORAL);
    assert_eq!(uint(&e, "threads") as usize, DEFAULT_THREADS);
    assert_eq!(double(&e, "blur-sigma"), DEFAULT_BLUR_SIGMA);
    assert_eq!(uint(&e, "color"), DEFAULT_COLOR);
    assert_eq!(
        boolean(&e, "estimate-foreground"),
        DEFAULT_ESTIMATE_FOREGROUND
    );
    assert_eq!(uint(&e, "refine-size"), refine::DEFAULT_REFINE_SIZE);
    // Its trimap stage is a plain trimapgen: the same defaults as above.
    let bin = e.downcast::<gst::Bin>().unwrap();
    let t = bin.by_name("trimap").unwrap();
    assert_eq!(double(&t, "smoothing"), trimap::DEFAULT_SMOOTHING);
    assert_eq!(uint(&t, "threads") as usize, DEFAULT_THREADS);
}
