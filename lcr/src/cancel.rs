//! Stopping long work from outside: a token the work checks between blocks (archive I/O, the
//! restore watchdog), set by a caught signal while a [`SignalGuard`] is installed, or by
//! whoever holds a clone (a migration whose peer went away). Either way the work unwinds
//! through its errors and the caller's clean-up runs: a container frozen for export is
//! thawed, a half-written archive vanishes, a half-made restore is undone.

use std::sync::atomic::{AtomicI32, AtomicPtr, Ordering};
use std::sync::Arc;

use nix::sys::signal::{sigaction, SaFlags, SigAction, SigHandler, SigSet, Signal};

/// What [`Cancel::cancel`] records: asked to stop, not by a signal.
const ASKED: i32 = -1;

/// A shared flag: zero while the work may go on, else why it must stop.
#[derive(Clone, Debug, Default)]
pub struct Cancel(Arc<AtomicI32>);

impl Cancel {
    pub fn new() -> Self {
        Self::default()
    }

    /// Asks the work to stop (the first reason recorded stays).
    pub fn cancel(&self) {
        let _ = self
            .0
            .compare_exchange(0, ASKED, Ordering::SeqCst, Ordering::SeqCst);
    }

    /// An error once the work must stop, so that it unwinds.
    pub fn check(&self) -> std::io::Result<()> {
        match self.0.load(Ordering::SeqCst) {
            0 => Ok(()),
            why => Err(std::io::Error::other(Interrupted(why))),
        }
    }
}

/// The error carried through I/O once the work must stop.
#[derive(Debug)]
pub struct Interrupted(i32);

impl std::fmt::Display for Interrupted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.0 == ASKED {
            return f.write_str("cancelled");
        }
        match Signal::try_from(self.0) {
            Ok(s) => write!(f, "interrupted by {}", s.as_str()),
            Err(_) => write!(f, "interrupted by signal {}", self.0),
        }
    }
}

impl std::error::Error for Interrupted {}

/// Whether an I/O error is a cancellation unwinding the work.
pub fn is_interrupt(e: &std::io::Error) -> bool {
    e.get_ref().is_some_and(|inner| inner.is::<Interrupted>())
}

/// The token a caught signal sets: a signal handler can reach only a static.
static TARGET: AtomicPtr<AtomicI32> = AtomicPtr::new(std::ptr::null_mut());

extern "C" fn note(sig: libc::c_int) {
    let target = TARGET.load(Ordering::SeqCst);
    if !target.is_null() {
        // SAFETY: TARGET points into the token a live SignalGuard holds (it is cleared before
        // that clone goes); storing to an atomic is async-signal-safe.
        unsafe { (*target).store(sig, Ordering::SeqCst) };
    }
}

const CAUGHT_SIGNALS: [Signal; 3] = [Signal::SIGINT, Signal::SIGTERM, Signal::SIGHUP];

/// While alive, SIGINT, SIGTERM and SIGHUP cancel `token` instead of ending the process, and
/// a closed output pipe is an error rather than death by SIGPIPE. One at a time per process.
pub struct SignalGuard {
    saved: Vec<(Signal, SigAction)>,
    _token: Cancel,
}

impl SignalGuard {
    pub fn install(token: &Cancel) -> Self {
        TARGET.store(Arc::as_ptr(&token.0).cast_mut(), Ordering::SeqCst);
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
        Self {
            saved,
            _token: token.clone(),
        }
    }
}

impl Drop for SignalGuard {
    fn drop(&mut self) {
        for (sig, old) in self.saved.drain(..) {
            // SAFETY: restores the disposition that was in place before.
            let _ = unsafe { sigaction(sig, &old) };
        }
        TARGET.store(std::ptr::null_mut(), Ordering::SeqCst);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cancelled_token_fails_the_check_with_its_reason() {
        let t = Cancel::new();
        assert!(t.check().is_ok());
        let clone = t.clone();
        clone.cancel();
        let e = t.check().unwrap_err();
        assert!(is_interrupt(&e) && e.to_string() == "cancelled", "{e}");
    }
}
