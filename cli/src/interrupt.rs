//! Ctrl-C and SIGTERM for the long-running commands (`run`, `demo`, `soak`, `bench`): the first
//! signal asks the command to finish cleanly — send EOS through the pipeline, let the muxer
//! finalise the file, report what was written, exit 0 — and a second one quits at once
//! (exit status 130), for when finishing hangs.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::{Context, Result};
use signal_hook::consts::TERM_SIGNALS;

/// Exit status of the second signal (the shell's convention for SIGINT).
const FORCED_EXIT: i32 = 130;

/// Whether SIGINT or SIGTERM has arrived since [`Interrupt::install`].
#[derive(Clone)]
pub struct Interrupt(Arc<AtomicBool>);

impl Interrupt {
    /// Installs the handlers: the first SIGINT/SIGTERM sets the flag, the next one exits the
    /// process immediately.
    pub fn install() -> Result<Self> {
        let flag = Arc::new(AtomicBool::new(false));
        for &signal in TERM_SIGNALS {
            // Order matters: the conditional exit sees the flag set by an earlier signal only.
            signal_hook::flag::register_conditional_shutdown(signal, FORCED_EXIT, flag.clone())
                .context("installing the signal handler")?;
            signal_hook::flag::register(signal, flag.clone())
                .context("installing the signal handler")?;
        }
        Ok(Self(flag))
    }

    /// Whether a signal asked to stop.
    pub fn requested(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }
}
