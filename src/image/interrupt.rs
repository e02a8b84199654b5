//! Long archive work stops cleanly on SIGINT, SIGTERM or SIGHUP, and a closed output pipe is
//! an error rather than death by SIGPIPE: either way the caller's clean-up runs (a container
//! frozen for export is thawed, a half-written archive vanishes).

use std::sync::atomic::{AtomicI32, Ordering};

use nix::sys::signal::{sigaction, SaFlags, SigAction, SigHandler, SigSet, Signal};

static CAUGHT: AtomicI32 = AtomicI32::new(0);

extern "C" fn note(sig: libc::c_int) {
    CAUGHT.store(sig, Ordering::SeqCst);
}

const CAUGHT_SIGNALS: [Signal; 3] = [Signal::SIGINT, Signal::SIGTERM, Signal::SIGHUP];

/// While alive, the signals above are noted instead of ending the process.
pub struct Guard {
    saved: Vec<(Signal, SigAction)>,
}

impl Guard {
    pub fn install() -> Self {
        CAUGHT.store(0, Ordering::SeqCst);
        let mut saved = Vec::new();
        let catch = SigAction::new(
            SigHandler::Handler(note),
            SaFlags::SA_RESTART,
            SigSet::empty(),
        );
        let ignore = SigAction::new(SigHandler::SigIgn, SaFlags::empty(), SigSet::empty());
        for (sig, act) in CAUGHT_SIGNALS
            .iter()
            .map(|s| (*s, &catch))
            .chain(std::iter::once((Signal::SIGPIPE, &ignore)))
        {
            // SAFETY: the handler only stores to an atomic, which is async-signal-safe.
            if let Ok(old) = unsafe { sigaction(sig, act) } {
                saved.push((sig, old));
            }
        }
        Self { saved }
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        for (sig, old) in self.saved.drain(..) {
            // SAFETY: restores the disposition that was in place before.
            let _ = unsafe { sigaction(sig, &old) };
        }
    }
}

/// The error carried through I/O once a signal was caught.
#[derive(Debug)]
pub struct Interrupted(i32);

impl std::fmt::Display for Interrupted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match Signal::try_from(self.0) {
            Ok(s) => write!(f, "interrupted by {}", s.as_str()),
            Err(_) => write!(f, "interrupted by signal {}", self.0),
        }
    }
}

impl std::error::Error for Interrupted {}

/// An error once a signal was caught, so that the work in progress unwinds.
pub fn check() -> std::io::Result<()> {
    match CAUGHT.load(Ordering::SeqCst) {
        0 => Ok(()),
        sig => Err(std::io::Error::other(Interrupted(sig))),
    }
}

/// Whether an I/O error is a caught signal unwinding the work.
pub fn is_interrupt(e: &std::io::Error) -> bool {
    e.get_ref().is_some_and(|inner| inner.is::<Interrupted>())
}
