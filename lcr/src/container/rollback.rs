use std::path::PathBuf;
use std::time::Duration;

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use crate::cgroups::Cgroup;

/// Undoes a half-made container when dropped armed: kills its init (we are its subreaper),
/// empties and removes its cgroup, removes its state directory. Used by create and restore so
/// that a failure leaves nothing behind.
pub struct Rollback {
    pub dir: PathBuf,
    pub cgroup: Option<Cgroup>,
    pub pid: Option<i32>,
    pub armed: bool,
}

impl Rollback {
    pub fn new(dir: PathBuf) -> Self {
        Self {
            dir,
            cgroup: None,
            pid: None,
            armed: true,
        }
    }

    /// The container is complete: keep everything.
    pub fn disarm(&mut self) {
        self.armed = false;
    }
}

impl Drop for Rollback {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        if let Some(pid) = self.pid {
            let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
            let _ = nix::sys::wait::waitpid(Pid::from_raw(pid), None);
        }
        if let Some(cg) = &self.cgroup {
            for p in cg.pids() {
                let _ = kill(Pid::from_raw(p), Signal::SIGKILL);
            }
            for _ in 0..200 {
                if cg.pids().is_empty() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(10));
            }
            if let Err(e) = cg.destroy() {
                tracing::warn!(error = %e, "rollback: cgroup not removed");
            }
        }
        if let Err(e) = crate::fsutil::remove_tree(&self.dir) {
            tracing::warn!(error = %e, "rollback: state directory not removed");
        }
    }
}
