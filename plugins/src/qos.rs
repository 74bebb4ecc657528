//! Load shedding on QoS: when a synchronised sink downstream reports that a frame reached it
//! late (GStreamer's QoS event, sent upstream by every sink with `qos=true`, as display sinks
//! are), an element makes its next frames the cheaper way for a while instead of letting the
//! sink drop them. A sink that does not synchronise (`filesink`, `fakesink`'s default) sends no
//! QoS event, so files and throughput runs always get the configured settings.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

use gst::glib;
use gst::prelude::*;

/// Frames made the cheaper way after each late report: half a second at 30 fps, long enough
/// for a queue that fell behind to drain.
pub const RELIEF_FRAMES: u32 = 15;

/// An element's `qos-fallback` property (on by default): `cheaper` says what the element does
/// on the frames after a late report, `otherwise` what it does with the property off.
pub fn fallback_property(nick: &str, cheaper: &str, otherwise: &str) -> glib::ParamSpec {
    glib::ParamSpecBoolean::builder("qos-fallback")
        .nick(nick)
        .blurb(&format!(
            "When a synchronised sink downstream reports a late frame (QoS, as display sinks \
             do under load), {cheaper} for the next {RELIEF_FRAMES} frames rather than let \
             frames be dropped; files and sinks with sync=false never report lateness. \
             false = {otherwise}"
        ))
        .default_value(true)
        .mutable_playing()
        .build()
}

/// An element's read-only `late-frames` counter ([`LateRelief::relieved`]); `made` says how
/// those frames were made.
pub fn late_frames_property(made: &str) -> glib::ParamSpec {
    glib::ParamSpecUInt64::builder("late-frames")
        .nick("Frames made cheaper when late")
        .blurb(&format!(
            "Frames made {made} since start because downstream reported lateness \
             (qos-fallback)"
        ))
        .read_only()
        .build()
}

/// The countdown of frames to make the cheaper way, and how many were.
#[derive(Debug, Default)]
pub struct LateRelief {
    left: AtomicU32,
    relieved: AtomicU64,
}

impl LateRelief {
    /// Reads an upstream event: a QoS event saying a frame was late (a positive jitter, of any
    /// QoS type but throttling) starts [`RELIEF_FRAMES`] of relief. True if it did.
    pub fn observe(&self, event: &gst::Event) -> bool {
        let gst::EventView::Qos(qos) = event.view() else {
            return false;
        };
        let (kind, _proportion, jitter, _timestamp) = qos.get();
        let late = kind != gst::QOSType::Throttle && jitter > 0;
        if late {
            self.left.store(RELIEF_FRAMES, Ordering::Relaxed);
        }
        late
    }

    /// Whether the frame about to be made should be made the cheaper way; counts it if so.
    pub fn take(&self) -> bool {
        let relieve = self
            .left
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1))
            .is_ok();
        if relieve {
            self.relieved.fetch_add(1, Ordering::Relaxed);
        }
        relieve
    }

    /// Ends the relief (a flush or a new stream: lateness does not carry over).
    pub fn reset(&self) {
        self.left.store(0, Ordering::Relaxed);
    }

    /// Frames made the cheaper way so far.
    pub fn relieved(&self) -> u64 {
        self.relieved.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn qos(kind: gst::QOSType, jitter: i64) -> gst::Event {
        gst::event::Qos::new(kind, 1.0, jitter, gst::ClockTime::from_seconds(1))
    }

    #[test]
    fn a_late_frame_relieves_the_next_frames_only() {
        gst::init().unwrap();
        let relief = LateRelief::default();
        assert!(!relief.take(), "no relief before any report");
        assert!(!relief.observe(&qos(gst::QOSType::Underflow, -5_000_000)));
        assert!(!relief.take(), "an early frame is no reason");
        assert!(!relief.observe(&qos(gst::QOSType::Throttle, 5_000_000)));
        assert!(!relief.take(), "throttling is not lateness");
        assert!(!relief.observe(&gst::event::Eos::new()));
        assert!(relief.observe(&qos(gst::QOSType::Underflow, 5_000_000)));
        let relieved = (0..2 * RELIEF_FRAMES).filter(|_| relief.take()).count();
        assert_eq!(relieved, RELIEF_FRAMES as usize);
        assert_eq!(relief.relieved(), u64::from(RELIEF_FRAMES));
        relief.observe(&qos(gst::QOSType::Overflow, 1));
        relief.reset();
        assert!(!relief.take(), "a flush ends the relief");
    }
}
