//! `mattebin` with an element missing: an element error on NULL→READY, never a panic. It
//! removes `videoconvert` from this process's registry, so it has a test binary of its own.

mod common;

use common::init;
use gst::prelude::*;

#[test]
fn a_missing_element_is_an_error_on_null_to_ready_not_a_panic() {
    init();
    let registry = gst::Registry::get();
    let feature = registry
        .find_feature("videoconvert", gst::ElementFactory::static_type())
        .expect("videoconvert (gst-plugins-base) is installed");
    registry.remove_feature(&feature);
    let bin = gst::ElementFactory::make("mattebin").build().unwrap();
    // Properties still work (defaults from the specs) without the children.
    assert_eq!(
        bin.property::<u32>("refine-iterations"),
        slimmatte::refine::DEFAULT_REFINE_ITERATIONS
    );
    bin.set_property("refine-iterations", 3u32);
    let pipeline = gst::Pipeline::new();
    pipeline.add(&bin).unwrap();
    assert!(pipeline.set_state(gst::State::Ready).is_err());
    let bus = pipeline.bus().unwrap();
    let msg = bus
        .timed_pop_filtered(gst::ClockTime::from_seconds(5), &[gst::MessageType::Error])
        .expect("an error message on the bus");
    let gst::MessageView::Error(err) = msg.view() else {
        unreachable!()
    };
    let text = err.error().to_string();
    assert!(text.contains("videoconvert"), "{text}");
    pipeline.set_state(gst::State::Null).unwrap();
}
