//! Per-buffer processing time, measured, and reported in the latency query.

use std::fmt::Display;
use std::panic::Location;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use gst::prelude::*;
use slimmatte::frame::{RgbaViewMut, rgba_view_mut};

/// Width and height of the packed RGBA frame an element warms its network up on in `start()`.
pub const WARM_UP_SIZE: (usize, usize) = (640, 360);

/// Tracks how long an element takes per buffer (a moving average that reacts quickly to
/// slow-downs) and adds it to upstream's latency when answering a latency query.
#[derive(Debug, Default)]
pub struct ProcessingLatency {
    /// Moving estimate of the processing time, nanoseconds.
    estimate_ns: AtomicU64,
    /// Latency last reported in a query, nanoseconds.
    reported_ns: AtomicU64,
}

impl ProcessingLatency {
    /// Sets the estimate directly (e.g. from a warm-up run in `start()`).
    pub fn prime(&self, d: Duration) {
        self.estimate_ns
            .store(d.as_nanos() as u64, Ordering::Relaxed);
    }

    pub fn reset(&self) {
        self.estimate_ns.store(0, Ordering::Relaxed);
        self.reported_ns.store(0, Ordering::Relaxed);
    }

    /// The warm-up of `start()`: the first inference is slow, so `run` processes a fresh copy
    /// of `frame` (packed RGBA of [`WARM_UP_SIZE`]) once, then a second time, timed; the
    /// estimate starts over from that time, so the latency query has a measured processing
    /// time before the first buffer. A failed run is a `LibraryError::Failed` error
    /// (`Warm-up inference failed: …`) from the caller. Resetting the network's temporal
    /// state afterwards is the caller's.
    #[track_caller]
    pub fn warm_up<E: Display>(
        &self,
        frame: &[u8],
        mut run: impl FnMut(&mut RgbaViewMut<'_>) -> Result<(), E>,
    ) -> Result<(), gst::ErrorMessage> {
        let at = Location::caller();
        let (w, h) = WARM_UP_SIZE;
        let mut warm = vec![0u8; frame.len()];
        let mut timed_run = || {
            warm.copy_from_slice(frame);
            let mut view = rgba_view_mut(&mut warm, w, h, w * 4).expect("warm-up frame");
            let t = Instant::now();
            run(&mut view).map_err(|e| {
                let debug = format!("Warm-up inference failed: {e}");
                crate::video::error_at(at, "start", gst::LibraryError::Failed, &debug)
            })?;
            Ok(t.elapsed())
        };
        timed_run()?;
        let took = timed_run()?;
        self.reset();
        self.prime(took);
        Ok(())
    }

    /// Records one buffer that started at `start`. Returns true when the estimate has grown
    /// more than 25 % (and 1 ms) past what was last reported, so the element should post a
    /// latency message and let the pipeline query again.
    pub fn record(&self, start: Instant) -> bool {
        let took = start.elapsed().as_nanos() as u64;
        let old = self.estimate_ns.load(Ordering::Relaxed);
        // Rise fast, decay slowly: a latency that is too low causes late frames.
        let new = if old == 0 || took > old {
            (old + 3 * took) / 4
        } else {
            (15 * old + took) / 16
        };
        self.estimate_ns.store(new, Ordering::Relaxed);
        let reported = self.reported_ns.load(Ordering::Relaxed);
        reported > 0 && new > reported + reported / 4 && new > reported + 1_000_000
    }

    /// The current estimate.
    pub fn current(&self) -> gst::ClockTime {
        gst::ClockTime::from_nseconds(self.estimate_ns.load(Ordering::Relaxed))
    }

    /// Records one buffer (see [`record`](Self::record)) and posts a latency message from
    /// `element` when the processing time has grown, so the pipeline asks again.
    pub fn finish_buffer(&self, start: Instant, element: &gst::Element) {
        if self.record(start) {
            let _ = element.post_message(gst::message::Latency::builder().src(element).build());
        }
    }

    /// To call after the parent answered `query` (`answered`): adds this element's processing
    /// time when it is a latency query on the src pad. Returns `answered`.
    pub fn after_query(
        &self,
        direction: gst::PadDirection,
        query: &mut gst::QueryRef,
        answered: bool,
    ) -> bool {
        if answered && direction == gst::PadDirection::Src {
            self.add_to_query(query);
        }
        answered
    }

    /// Adds this element's processing time to a latency query answered by upstream.
    pub fn add_to_query(&self, query: &mut gst::QueryRef) {
        if let gst::QueryViewMut::Latency(q) = query.view_mut() {
            let (live, min, max) = q.result();
            let ours = self.current();
            self.reported_ns
                .store(ours.nseconds().max(1), Ordering::Relaxed);
            q.set(live, min + ours, max.map(|m| m + ours));
        }
    }
}
