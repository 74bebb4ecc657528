//! `mattebin` construction: its properties are its children's (no copied defaults). A missing
//! element: `mattebin_missing.rs`.

mod common;

use common::init;
use gst::prelude::*;

fn mattebin() -> gst::Bin {
    gst::ElementFactory::make("mattebin")
        .build()
        .unwrap()
        .downcast::<gst::Bin>()
        .unwrap()
}

#[test]
fn bin_properties_are_the_childrens_with_their_defaults() {
    init();
    let bin = mattebin();
    let own: Vec<gst::glib::ParamSpec> = bin
        .list_properties()
        .iter()
        .filter(|p| p.owner_type() == bin.type_())
        .cloned()
        .collect();
    assert!(own.len() >= 12, "{} forwarded properties", own.len());
    for p in &own {
        let child = ["matte", "background", "trimap"]
            .iter()
            .filter_map(|c| bin.by_name(c))
            .find(|c| c.find_property(p.name()).is_some())
            .unwrap_or_else(|| panic!("{} belongs to no child", p.name()));
        let cp = child.find_property(p.name()).unwrap();
        assert_eq!(p.value_type(), cp.value_type(), "{}", p.name());
        assert_eq!(p.blurb(), cp.blurb(), "{}", p.name());
        assert_eq!(
            p.default_value().serialize().ok(),
            cp.default_value().serialize().ok(),
            "default of {}",
            p.name()
        );
        // Unset, the bin reads the child's current value.
        assert_eq!(
            bin.property_value(p.name()).serialize().ok(),
            child.property_value(p.name()).serialize().ok(),
            "{}",
            p.name()
        );
    }
    // threads sizes both networks.
    bin.set_property("threads", 1u32);
    for c in ["trimap", "matte"] {
        assert_eq!(bin.by_name(c).unwrap().property::<u32>("threads"), 1, "{c}");
    }
}

/// The network stages are decoupled by bounded queues (each stage its own streaming thread),
/// in this order: trimap → queue → matte → queue → background.
#[test]
fn network_stages_run_on_their_own_threads_behind_bounded_queues() {
    init();
    let bin = mattebin();
    let downstream_of = |name: &str| -> String {
        let e = bin.by_name(name).unwrap_or_else(|| panic!("no {name}"));
        let peer = e.static_pad("src").unwrap().peer().unwrap();
        peer.parent_element().unwrap().name().to_string()
    };
    assert_eq!(downstream_of("trimap"), "queue-matte");
    assert_eq!(downstream_of("queue-matte"), "matte");
    assert_eq!(downstream_of("matte"), "queue-background");
    assert_eq!(downstream_of("queue-background"), "background");
    for q in ["queue-matte", "queue-background"] {
        let q = bin.by_name(q).unwrap();
        assert_eq!(q.property::<u32>("max-size-buffers"), 2);
        assert_eq!(q.property::<u64>("max-size-time"), 0);
    }
}
