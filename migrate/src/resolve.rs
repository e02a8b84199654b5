//! Finishing a migration whose outcome the source did not learn (`lcr migrate --resolve
//! ID`): the source asks the destination, over the same ssh, what became of the container
//! (`lcr migrate-settle`, which first waits for any receiver of it there to end), then
//! removes its frozen copy if the destination has the container, or resumes it if not.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use lcr::container::{Container, Status, Store};
use nix::fcntl::{Flock, FlockArg};
use serde::{Deserialize, Serialize};

use crate::pending::Pending;
use crate::ssh::RemoteCommand;
use crate::{Destination, Error, Result};

/// What the destination says of the container, once no receiver of it runs there.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Settled {
    /// Its status there (`running`, `paused`, …), or `absent`.
    pub status: String,
}

/// How a pending migration ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resolved {
    /// The destination has it (status given): the frozen copy here was removed.
    MovedThere(String),
    /// The destination has nothing: the copy here runs on.
    StaysHere,
}

/// Resolves container `id`'s pending migration (see the module's text).
pub fn resolve(store: &Store, id: &str) -> Result<Resolved> {
    let mut c = Container::load(store, id)?;
    let Some(p) = Pending::read(c.dir())? else {
        return Err(Error::Invalid {
            what: "container",
            value: id.to_string(),
            reason: "no migration of it is pending here: nothing to resolve".into(),
        });
    };
    let dest = Destination::parse(&p.dest)?;
    let settled = ask(&p, &dest)?;
    match settled.status.as_str() {
        "absent" => {
            if c.status() == Status::Paused {
                lcr::container::resume(&mut c)?;
            }
            Pending::remove(c.dir());
            Ok(Resolved::StaysHere)
        }
        "running" | "paused" => {
            lcr::container::delete(c, true)?;
            Ok(Resolved::MovedThere(settled.status))
        }
        other => Err(Error::Refused {
            host: dest.to_string(),
            reason: format!(
                "container {} is {other} there: it was made there, so resuming it here could \
                 run it twice; decide by hand (`lcr delete --force {id}` here, or `lcr \
                 --root {} delete --force {}` there and `lcr resume {id}` here)",
                p.dest_id,
                p.dest_root.display(),
                p.dest_id
            ),
        }),
    }
}

/// `ssh DEST lcr --root R migrate-settle --id ID`.
fn ask(p: &Pending, dest: &Destination) -> Result<Settled> {
    let remote = RemoteCommand::new(&p.dest_lcr)
        .arg("--root")
        .arg(p.dest_root.to_string_lossy())
        .arg("migrate-settle")
        .arg("--id")
        .arg(&p.dest_id);
    let mut cmd = p.ssh.command(dest, &remote)?;
    cmd.stdin(std::process::Stdio::null());
    let out = cmd.output().map_err(|cause| Error::Io {
        context: format!("start {}", p.ssh.program),
        cause,
    })?;
    if !out.status.success() {
        return Err(Error::Refused {
            host: dest.to_string(),
            reason: format!(
                "could not ask what became of container {}: {}",
                p.dest_id,
                String::from_utf8_lossy(&out.stderr).trim()
            ),
        });
    }
    serde_json::from_slice(&out.stdout).map_err(|e| {
        Error::Protocol(format!(
            "migrate-settle answered {:?}: {e}",
            String::from_utf8_lossy(&out.stdout)
        ))
    })
}

/// The destination's side: waits (at most `wait`) until no receiver of `id` runs here, then
/// says what is of it.
pub fn settle(store: &Store, id: &str, wait: Duration) -> Result<Settled> {
    lcr::container::validate_id(id)?;
    let _quiet = ReceiverLock::wait(store.root(), id, wait)?;
    let status = match Container::read(store, id) {
        Ok(c) => c.status().to_string(),
        Err(lcr::Error::NotFound(_)) => "absent".into(),
        Err(e) => return Err(e.into()),
    };
    Ok(Settled { status })
}

/// Held by a receiver for its whole life, so that `settle` waits until it has finished
/// (made the container complete, or undone it).
pub(crate) struct ReceiverLock {
    _lock: Flock<File>,
    path: PathBuf,
}

impl ReceiverLock {
    fn path(root: &Path, id: &str) -> PathBuf {
        root.join(format!("migrate-in.{id}.lock"))
    }

    /// Taken by the receiver; refused while another receiver of `id` runs.
    pub(crate) fn take(root: &Path, id: &str) -> Result<Self> {
        let io = |what: String| {
            move |cause| Error::Io {
                context: what,
                cause,
            }
        };
        std::fs::create_dir_all(root).map_err(io(format!("create {}", root.display())))?;
        let path = Self::path(root, id);
        let f = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(io(format!("open {}", path.display())))?;
        match Flock::lock(f, FlockArg::LockExclusiveNonblock) {
            Ok(lock) => Ok(Self { _lock: lock, path }),
            Err(_) => Err(Error::Refused {
                host: "the destination".into(),
                reason: format!("another migration into container {id:?} is under way there"),
            }),
        }
    }

    /// Returns once no receiver of `id` holds the lock (none may have made it).
    fn wait(root: &Path, id: &str, wait: Duration) -> Result<Option<Flock<File>>> {
        let deadline = Instant::now() + wait;
        let path = Self::path(root, id);
        let mut f = match File::open(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(cause) => {
                return Err(Error::Io {
                    context: format!("open {}", path.display()),
                    cause,
                })
            }
        };
        loop {
            match Flock::lock(f, FlockArg::LockSharedNonblock) {
                Ok(lock) => return Ok(Some(lock)),
                Err((back, _)) if Instant::now() < deadline => {
                    f = back;
                    std::thread::sleep(Duration::from_millis(50));
                }
                Err(_) => {
                    return Err(Error::Refused {
                        host: "the destination".into(),
                        reason: format!(
                            "a receiver of container {id:?} still runs after {} s ({})",
                            wait.as_secs(),
                            path.display()
                        ),
                    })
                }
            }
        }
    }
}

impl Drop for ReceiverLock {
    fn drop(&mut self) {
        // Unlinked while held: a settle waiting on it gets the lock once this receiver is
        // gone, and the next receiver makes a file of its own.
        let _ = std::fs::remove_file(&self.path);
    }
}
