//! Shared helpers of the element tests.
#![allow(dead_code)]

use std::path::PathBuf;

use gst::prelude::*;

pub fn init() {
    use std::sync::Once;
    static INIT: Once = Once::new();
    INIT.call_once(|| {
        gst::init().unwrap();
        gstslimmatte::plugin_register_static().expect("register the slimmatte plugin");
    });
}

pub fn repo_file(rel: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(rel)
}

/// Path of `tests/fixtures/<name>` (a fixture network), as a property value.
pub fn fixture(name: &str) -> String {
    repo_file(&format!("tests/fixtures/{name}"))
        .to_str()
        .unwrap()
        .to_string()
}

/// A new `factory` element with `props` set from strings, as `gst-launch-1.0` sets them.
pub fn element(factory: &str, props: &[(&str, &str)]) -> gst::Element {
    init();
    let mut builder = gst::ElementFactory::make(factory);
    for (k, v) in props {
        builder = builder.property_from_str(k, v);
    }
    builder.build().unwrap()
}

/// A Harness around `element`: buffers go into its sink pad and come out of its src pad.
pub fn harness_for(element: &gst::Element) -> gst_check::Harness {
    gst_check::Harness::with_element(element, Some("sink"), Some("src"))
}

/// A Harness around a new `factory` element with `props` (see [`element`]).
pub fn element_harness(factory: &str, props: &[(&str, &str)]) -> gst_check::Harness {
    harness_for(&element(factory, props))
}

/// How many buffers the `gst-launch-1.0` description `launch` (its ends unlinked) puts out,
/// played in a Harness until EOS.
pub fn buffers_until_eos(launch: &str) -> usize {
    init();
    let mut h = gst_check::Harness::new_parse(launch);
    h.play();
    let mut n = 0;
    while let Some(_buf) = h.pull_until_eos().unwrap() {
        n += 1;
    }
    n
}

/// scikit-image's astronaut photograph stretched to `w × h`, as a packed RGBA buffer.
pub fn astronaut_buffer(w: u32, h: u32) -> gst::Buffer {
    let img = image::open(repo_file("assets/astronaut.jpg"))
        .unwrap()
        .resize_exact(w, h, image::imageops::FilterType::Triangle)
        .to_rgba8();
    gst::Buffer::from_mut_slice(img.into_raw())
}

pub fn rgba_caps(w: i32, h: i32) -> gst::Caps {
    gst_video::VideoCapsBuilder::new()
        .format(gst_video::VideoFormat::Rgba)
        .width(w)
        .height(h)
        .framerate(gst::Fraction::new(30, 1))
        .build()
}

/// Alpha channel of a packed RGBA buffer.
pub fn alpha_of(buf: &gst::BufferRef) -> Vec<u8> {
    let map = buf.map_readable().unwrap();
    map.chunks_exact(4).map(|p| p[3]).collect()
}

/// Colour channels of a packed RGBA buffer, packed RGB.
pub fn rgb_of(buf: &gst::BufferRef) -> Vec<u8> {
    let map = buf.map_readable().unwrap();
    map.chunks_exact(4)
        .flat_map(|p| [p[0], p[1], p[2]])
        .collect()
}

/// Puts `element` between videotestsrc and fakesink, sets the pipeline to PLAYING and returns
/// the error message posted when the state change failed.
pub fn start_error(element: &gst::Element) -> Option<String> {
    let pipeline = gst::Pipeline::new();
    let src = gst::ElementFactory::make("videotestsrc")
        .property("num-buffers", 1)
        .build()
        .unwrap();
    let convert = gst::ElementFactory::make("videoconvert").build().unwrap();
    let sink = gst::ElementFactory::make("fakesink").build().unwrap();
    pipeline.add_many([&src, &convert, element, &sink]).unwrap();
    gst::Element::link_many([&src, &convert, element, &sink]).unwrap();
    let bus = pipeline.bus().unwrap();
    let res = pipeline.set_state(gst::State::Playing);
    let mut msg = None;
    if res.is_err()
        && let Some(m) =
            bus.timed_pop_filtered(gst::ClockTime::from_seconds(5), &[gst::MessageType::Error])
        && let gst::MessageView::Error(e) = m.view()
    {
        msg = Some(format!(
            "{} | {}",
            e.error(),
            e.debug().map(|d| d.to_string()).unwrap_or_default()
        ));
    }
    pipeline.set_state(gst::State::Null).unwrap();
    msg
}

/// The error message a new `factory` element with `props` (see [`element`]) posts when it
/// cannot start (see [`start_error`]); panics when it starts.
pub fn start_failure(factory: &str, props: &[(&str, &str)]) -> String {
    start_error(&element(factory, props)).expect("start must fail")
}

/// Sets `pipeline` to PLAYING (a failure to is not checked: the bus tells), waits up to 10 s for
/// its first error or EOS message, sets it back to NULL and returns that message.
pub fn play_until_error_or_eos(pipeline: &impl IsA<gst::Element>) -> gst::Message {
    let bus = pipeline.bus().unwrap();
    let _ = pipeline.set_state(gst::State::Playing);
    let msg = bus
        .timed_pop_filtered(
            gst::ClockTime::from_seconds(10),
            &[gst::MessageType::Error, gst::MessageType::Eos],
        )
        .unwrap();
    pipeline.set_state(gst::State::Null).unwrap();
    msg
}

/// Folder holding libgstslimmatte.so for this build (target/<profile>).
pub fn plugin_dir() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let dir = exe.parent().unwrap().parent().unwrap().to_path_buf(); // target/<profile>/deps/..
    assert!(
        dir.join("libgstslimmatte.so").is_file(),
        "libgstslimmatte.so not built in {}",
        dir.display()
    );
    dir
}
