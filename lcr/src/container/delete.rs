use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use super::{Action, Container, Status, Store};
use crate::hooks::{self, Kind};
use crate::procfs;
use crate::{Error, Result};

/// Removes a container: a stopped or created one, or with `force` a running or paused one
/// (killed first). Its processes, cgroup and state directory are all gone afterwards.
pub fn delete(c: Container, force: bool) -> Result<()> {
    let status = c.allow(if force {
        Action::ForceDelete
    } else {
        Action::Delete
    })?;
    let state_json = c.oci_state_json();
    let cgroup = c.cgroup().ok().filter(|g| g.present_anywhere());
    if let Some(cg) = &cgroup {
        // SIGKILL first, thaw after: a frozen process dies on thaw without running again.
        for p in cg.pids() {
            let _ = kill(Pid::from_raw(p), Signal::SIGKILL);
        }
        if cg.is_frozen() {
            cg.thaw()?;
        }
    }
    if procfs::is_alive(c.state.pid, c.state.init_start_time) {
        let _ = kill(Pid::from_raw(c.state.pid), Signal::SIGKILL);
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let init_gone = !procfs::is_alive(c.state.pid, c.state.init_start_time);
        let empty = cgroup.as_ref().is_none_or(|g| g.pids().is_empty());
        if init_gone && empty {
            break;
        }
        if Instant::now() > deadline {
            return Err(Error::Timeout {
                what: format!("delete {}: its processes' exit", c.id()),
                within: std::time::Duration::from_secs(10),
            });
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    if let Some(cg) = &cgroup {
        cg.destroy()?;
    }
    if status != Status::Created || force {
        if let Err(e) = hooks::run(Kind::Poststop, c.spec.hooks().as_ref(), &state_json) {
            tracing::warn!(error = %e, "poststop hook failed");
        }
    }
    // Out of the way in one step, then removed: an lcr killed while removing leaves no
    // half-removed container (a state dir without its state), only a directory whose name
    // is no container id, which the next create sweeps.
    if let (Some(key), Some(root)) = (&c.state.snapshot_layer, c.dir().parent()) {
        crate::rootfs::snapshot_layer::Layers::in_root(root).release(key, c.id())?;
    }
    let trash = c.dir().with_file_name(super::store::trash_name(c.id()));
    std::fs::rename(c.dir(), &trash).map_err(|e| Error::Io {
        context: format!("rename {} to {}", c.dir().display(), trash.display()),
        cause: e,
    })?;
    crate::fsutil::remove_tree(&trash)
}

/// Deletes container `id` only if it is still the one whose init is `pid`, started at
/// `start_time`: a foreground `run` or `restore` that outlived its container must not delete
/// another made meanwhile under the same id (a checkpoint, then a restore). Whether it did.
pub fn delete_if_same(store: &Store, id: &str, pid: i32, start_time: u64) -> Result<bool> {
    match Container::load(store, id) {
        Ok(c) if c.state.pid == pid && c.state.init_start_time == start_time => {
            delete(c, true).map(|()| true)
        }
        Ok(_) => {
            tracing::info!(id, "the container was replaced meanwhile: left as it is");
            Ok(false)
        }
        Err(Error::NotFound(_)) => Ok(false),
        Err(e) => Err(e),
    }
}
