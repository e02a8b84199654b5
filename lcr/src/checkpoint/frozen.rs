//! The container held still across a checkpoint: frozen while its files and memory are
//! saved, and thawed again by `Drop` unless the checkpoint is committed.

use std::path::PathBuf;

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
}

impl Frozen {
    /// Takes the container into the checkpoint; freezes it now when `freeze` (its files must
    /// be saved at the instant its memory is, or it must stay still until a commit).
    pub(super) fn hold(c: Container, freeze: bool) -> Result<Self> {
        let running = c.status() == container::Status::Running;
        let cgroup = c.cgroup()?;
        let marker = c.dir().join(container::CHECKPOINT_FREEZE_MARKER);
        if running {
            crate::fsutil::write_atomic(&marker, std::process::id().to_string().as_bytes())?;
        }
        let me = Self {
            container: Some(c),
            cgroup,
            thaw: running,
            marker,
        };
        if freeze && running {
            me.cgroup.freeze()?;
        }
        Ok(me)
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

    /// From now on an lcr killed while holding the container leaves it frozen: the marker that
    /// lets the next lcr thaw it goes. For a hand-over whose outcome the next lcr cannot
    /// know (a migration whose restore was asked for).
    pub(super) fn no_recovery(&self) {
        let _ = std::fs::remove_file(&self.marker);
    }

    fn take(&mut self) -> Container {
        self.container
            .take()
            .expect("the container stays in Frozen until it is released")
    }

    fn thaw_now(&self) -> Result<()> {
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
    }
}
