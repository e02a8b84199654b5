//! A container as lcr keeps it: `state.json` and a copy of its config in `--root/<id>/`,
//! a lock held while a command works on it, and one file per operation.

mod create;
mod delete;
mod exec;
mod kill;
mod pause;
mod rollback;
mod start;
mod state;
mod store;
mod update;

use std::path::{Path, PathBuf};

use oci_spec::runtime::Spec;

use crate::fsutil::{write_atomic, write_json};
pub(crate) use create::write_pid_file;
pub use create::{create, CreateOpts};
pub use delete::{delete, delete_if_same};
pub use exec::{exec, ExecOpts};
pub use kill::{kill, parse_signal};
pub use pause::{pause, resume};
pub use rollback::Rollback;
pub use start::start;
pub use state::{Action, OciState, State, Status};
pub use store::{validate_id, Lock, Store, MAX_ID_LEN};
pub use update::update;

use crate::cgroups::Cgroup;
use crate::procfs;
use crate::{Error, Result};

pub(crate) const STATE_FILE: &str = "state.json";
pub(crate) const CONFIG_FILE: &str = "config.json";
pub(crate) const FIFO_FILE: &str = "exec.fifo";
/// Present while a checkpoint may hold the container frozen (it names that lcr's pid).
pub(crate) const CHECKPOINT_FREEZE_MARKER: &str = "checkpoint-freeze";

/// A loaded container: locked ([`Container::load`], to change it) or not
/// ([`Container::read`], to look at it).
pub struct Container {
    pub state: State,
    pub spec: Spec,
    dir: PathBuf,
    _lock: Option<Lock>,
}

impl Container {
    /// Locks and reads container `id`, for a command that changes it.
    pub fn load(store: &Store, id: &str) -> Result<Self> {
        let lock = store.lock(id)?;
        let c = Self::read_locked(store, id, Some(lock))?;
        c.recover_checkpoint_freeze();
        Ok(c)
    }

    /// Reads container `id` without its lock, for commands that only look (state, list, ps,
    /// events, kill): they never wait for a checkpoint or restore in progress. state.json is
    /// replaced atomically, so what is read is one whole version of it.
    pub fn read(store: &Store, id: &str) -> Result<Self> {
        validate_id(id)?;
        let c = Self::read_locked(store, id, None)?;
        // A checkpoint's freeze left behind is undone here too when nobody holds the lock.
        if c.dir.join(CHECKPOINT_FREEZE_MARKER).exists() {
            if let Ok(lock) = store.try_lock(id) {
                let locked = Self::read_locked(store, id, Some(lock))?;
                locked.recover_checkpoint_freeze();
                return Ok(locked);
            }
        }
        Ok(c)
    }

    /// A checkpoint freezes the container while it holds the lock and leaves a marker; a
    /// marker seen by whoever holds the lock now was left by an lcr that was killed: its
    /// freeze (not a user's `pause`, which leaves none) is undone.
    fn recover_checkpoint_freeze(&self) {
        let marker = self.dir.join(CHECKPOINT_FREEZE_MARKER);
        if !marker.exists() {
            return;
        }
        if let Ok(cg) = self.cgroup() {
            if cg.exists() && cg.is_frozen() {
                match cg.thaw() {
                    Ok(()) => tracing::warn!(
                        id = %self.state.id,
                        "thawed: a checkpoint that was interrupted had left it frozen"
                    ),
                    Err(e) => {
                        tracing::warn!(error = %e, "could not thaw after an interrupted checkpoint");
                        return;
                    }
                }
            }
        }
        let _ = std::fs::remove_file(marker);
    }

    fn read_locked(store: &Store, id: &str, lock: Option<Lock>) -> Result<Self> {
        let dir = store.dir(id);
        // A directory without a record, left by an lcr killed right after making it, is
        // removed when nobody holds it: the container never existed.
        if lock.is_none() && !dir.join(STATE_FILE).exists() && dir.exists() {
            store.remove_if_abandoned(id);
        }
        let read = |name: &str| {
            std::fs::read_to_string(dir.join(name)).map_err(|e| match e.kind() {
                std::io::ErrorKind::NotFound => Error::NotFound(id.to_string()),
                _ => Error::Io {
                    context: format!("read {}", dir.join(name).display()),
                    cause: e,
                },
            })
        };
        let state: State = serde_json::from_str(&read(STATE_FILE)?).map_err(|e| Error::Config {
            file: dir.join(STATE_FILE),
            field: "(document)".into(),
            reason: e.to_string(),
        })?;
        let spec = crate::spec::parse_config_text(&dir.join(CONFIG_FILE), &read(CONFIG_FILE)?)?;
        Ok(Self {
            state,
            spec,
            dir,
            _lock: lock,
        })
    }

    pub fn id(&self) -> &str {
        &self.state.id
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The live status: derived from the init process (pid and start time), the exec fifo
    /// and the freezer, with the recorded status as the starting point.
    pub fn status(&self) -> Status {
        if !procfs::is_alive(self.state.pid, self.state.init_start_time) {
            return Status::Stopped;
        }
        match self.state.status {
            Status::Created if self.dir.join(FIFO_FILE).exists() => Status::Created,
            Status::Created => Status::Running,
            Status::Paused => {
                if self.cgroup().map(|c| c.is_frozen()).unwrap_or(false) {
                    Status::Paused
                } else {
                    Status::Running
                }
            }
            Status::Running if self.cgroup().map(|c| c.is_frozen()).unwrap_or(false) => {
                Status::Paused
            }
            s => s,
        }
    }

    pub fn cgroup(&self) -> Result<Cgroup> {
        Cgroup::load(&self.state.cgroup_path)
    }

    /// The OCI state JSON with the live status (what `lcr state` prints and hooks read).
    pub fn oci_state_json(&self) -> String {
        serde_json::to_string(&self.state.oci(self.status())).unwrap_or_default()
    }

    /// The state machine, first half: `action` checked against the live status (which it
    /// returns), an error naming the container, its status and the action otherwise.
    pub fn allow(&self, action: Action) -> Result<Status> {
        let status = self.status();
        status.check(self.id(), action)?;
        Ok(status)
    }

    /// Second half, once the action succeeded: the status it leads to, recorded.
    pub fn complete(&mut self, action: Action) -> Result<()> {
        match action.next() {
            Some(next) => {
                self.state.status = next;
                self.save()
            }
            None => Ok(()),
        }
    }

    pub fn save(&self) -> Result<()> {
        write_json(&self.dir.join(STATE_FILE), &self.state)
    }

    pub fn save_spec(&self) -> Result<()> {
        write_json(&self.dir.join(CONFIG_FILE), &self.spec)
    }

    /// Processes of the container (from its cgroup).
    pub fn pids(&self) -> Vec<i32> {
        self.cgroup().map(|c| c.pids()).unwrap_or_default()
    }
}
