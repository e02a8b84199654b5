//! The container held still across a checkpoint: frozen while its files and memory are
//! saved, and thawed again by `Drop` unless the checkpoint is committed.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use crate::cgroups::Cgroup;
use crate::container::{self, Container};
use crate::Result;

/// A container under checkpoint. While armed, dropping it thaws its cgroup if the container
/// was running and is frozen (by this checkpoint, or left so by CRIU): every failure leaves
/// a running container running. The container's directory carries a marker meanwhile, so
/// that if this lcr is killed the next command that locks the container thaws it (see
/// `Container::recover_checkpoint_freeze`).
pub struct Frozen {
    container: Option<Container>,
    cgroup: Cgroup,
    /// Whether to thaw when dropped: the container was running when the checkpoint began.
    thaw: bool,
    marker: PathBuf,
    hand_over: HandOver,
    /// When lcr froze the container itself, and how long the freeze took.
    froze: OnceLock<(Instant, Duration)>,
}

/// Whether another host may be running the container now: shared between a checkpoint that
/// holds it frozen (`CheckpointOpts::hand_over`) and a migration on another thread, which
/// says so before it asks the other host to restore, and takes it back if that host
/// refuses. While it is so, nothing thaws the container (a failure, a drop, an lcr killed
/// and the next lcr's recovery): two copies must never run.
#[derive(Clone, Default)]
pub struct HandOver {
    elsewhere: Arc<AtomicBool>,
    /// The recovery marker of the container held, once the checkpoint holds it.
    marker: Arc<Mutex<Option<PathBuf>>>,
    /// When the checkpoint froze the container: a migration's downtime starts there.
    frozen_at: Arc<Mutex<Option<Instant>>>,
}

impl HandOver {
    /// `true`: the container may run elsewhere from now on; `false`: it does not (the other
    /// host refused, having made nothing).
    pub fn may_run_elsewhere(&self, yes: bool) {
        self.elsewhere.store(yes, Ordering::SeqCst);
        let marker = self.marker.lock().ok().and_then(|m| m.clone());
        if let Some(m) = marker {
            if yes {
                let _ = std::fs::remove_file(&m);
            } else {
                let _ = crate::fsutil::write_atomic(&m, std::process::id().to_string().as_bytes());
            }
        }
    }

    pub fn elsewhere(&self) -> bool {
        self.elsewhere.load(Ordering::SeqCst)
    }

    /// When the checkpoint froze the container (`None` before, or if it was paused already).
    pub fn frozen_at(&self) -> Option<Instant> {
        self.frozen_at.lock().ok().and_then(|t| *t)
    }
}

impl Frozen {
    /// Takes the container into the checkpoint, still running: [`Frozen::freeze`] stops it
    /// once CRIU is ready to collect it, so that CRIU's own start (its kernel probes, some
    /// 50 to 90 ms here, where /run is no tmpfs to cache them) is not downtime.
    pub(super) fn hold(c: Container, hand_over: HandOver) -> Result<Self> {
        let running = c.status() == container::Status::Running;
        let cgroup = c.cgroup()?;
        let marker = c.dir().join(container::CHECKPOINT_FREEZE_MARKER);
        if running {
            crate::fsutil::write_atomic(&marker, std::process::id().to_string().as_bytes())?;
            if let Ok(mut m) = hand_over.marker.lock() {
                *m = Some(marker.clone());
            }
        }
        Ok(Self {
            container: Some(c),
            cgroup,
            thaw: running,
            marker,
            hand_over,
            froze: OnceLock::new(),
        })
    }

    /// Freezes the container now, if it runs and is not frozen yet: its files are saved at
    /// the instant its memory is, an export or a migration holds it still until a commit,
    /// and CRIU, finding the cgroup frozen, skips its own freeze. lcr waits for the freezer
    /// in 1 ms steps (about 1 ms for a small container here); CRIU's own freeze polls in
    /// 100 ms steps (about 100 ms of downtime for nothing, measured with `checkpoint
    /// --print-stats`).
    pub(super) fn freeze(&self) -> Result<()> {
        if !self.thaw || self.froze.get().is_some() {
            return Ok(());
        }
        let started = Instant::now();
        self.cgroup.freeze()?;
        let _ = self.froze.set((started, started.elapsed()));
        if let Ok(mut t) = self.hand_over.frozen_at.lock() {
            *t = Some(started);
        }
        Ok(())
    }

    /// When lcr froze the container, if it did.
    pub(super) fn frozen_at(&self) -> Option<Instant> {
        self.froze.get().map(|(at, _)| *at)
    }

    /// How long lcr's own freeze took, if it froze the container.
    pub(super) fn froze_in(&self) -> Option<Duration> {
        self.froze.get().map(|(_, took)| *took)
    }

    pub fn container(&self) -> &Container {
        self.container
            .as_ref()
            .expect("the container stays in Frozen until it is released")
    }

    pub(super) fn cgroup(&self) -> &Cgroup {
        &self.cgroup
    }

    /// Thaws the container now (if this checkpoint froze it) and gives it back, running.
    pub fn thaw(mut self) -> Result<Container> {
        self.thaw_now()?;
        self.thaw = false;
        Ok(self.take())
    }

    /// Gives the container back still frozen (or already killed by CRIU): the caller ends it.
    pub(super) fn release(mut self) -> Container {
        self.thaw = false;
        self.take()
    }

    fn take(&mut self) -> Container {
        self.container
            .take()
            .expect("the container stays in Frozen until it is released")
    }

    fn thaw_now(&self) -> Result<()> {
        if self.hand_over.elsewhere() {
            return Ok(());
        }
        if self.thaw && self.cgroup.is_frozen() {
            self.cgroup.thaw()?;
        }
        Ok(())
    }
}

impl Drop for Frozen {
    fn drop(&mut self) {
        if let Err(e) = self.thaw_now() {
            tracing::warn!(error = %e, "could not thaw the container after a failed checkpoint");
        }
        let _ = std::fs::remove_file(&self.marker);
        if let Ok(mut m) = self.hand_over.marker.lock() {
            *m = None;
        }
    }
}
