use std::fs;
use std::os::unix::fs::DirBuilderExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nix::fcntl::{Flock, FlockArg};

use crate::error::Context;
use crate::{Error, Result};

/// Longest container id accepted (a file name must hold it).
pub const MAX_ID_LEN: usize = 255;

/// Container ids: letters, digits and `_ + - .`, not `.` or `..`, at most 255 bytes.
pub fn validate_id(id: &str) -> Result<()> {
    let bad = |reason: &str| {
        Err(Error::InvalidId {
            id: id.to_string(),
            reason: reason.to_string(),
        })
    };
    if id.is_empty() {
        return bad("empty");
    }
    if id.len() > MAX_ID_LEN {
        return bad("longer than 255 bytes");
    }
    if id == "." || id == ".." {
        return bad("not a name");
    }
    if id.starts_with('-') {
        return bad("starts with '-' (it would read as a flag)");
    }
    if let Some(c) = id
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || "_+-.".contains(*c)))
    {
        return bad(&format!(
            "character {c:?} not allowed (use letters, digits, _ + - .)"
        ));
    }
    Ok(())
}

/// The directory that holds one subdirectory per container (`--root`, default /run/lcr).
#[derive(Debug, Clone)]
pub struct Store {
    root: PathBuf,
}

/// An exclusive lock on one container, held while a command works on it.
pub struct Lock(#[allow(dead_code)] Flock<fs::File>);

/// How long a command that changes a container waits for another that holds its lock (a
/// checkpoint of a large container, say) before it gives up naming the container: 60 s, or
/// `LCR_LOCK_TIMEOUT` seconds.
pub fn lock_wait() -> Duration {
    std::env::var("LCR_LOCK_TIMEOUT")
        .ok()
        .and_then(|s| s.parse().ok())
        .map(Duration::from_secs)
        .unwrap_or(Duration::from_secs(60))
}

const TRASH_MARK: &str = " deleting ";

/// A new container's directory before it is renamed into place: `<id> creating <pid>`.
const CREATING_MARK: &str = " creating ";

/// The name a container's directory is renamed to while it is removed: `<id> deleting <pid>`
/// (a space: never a container id, so never listed or loaded).
pub(crate) fn trash_name(id: &str) -> String {
    format!("{id}{TRASH_MARK}{}", std::process::id())
}

/// [`Store::acquire`] of the lock file in `dir`, container `id`'s directory or the one
/// [`Store::create`] makes for it.
fn acquire_in(dir: &Path, id: &str, wait: Duration, create: bool) -> Result<Lock> {
    let path = dir.join("lock");
    let deadline = Instant::now() + wait;
    loop {
        let mut f = fs::OpenOptions::new()
            .create(create)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|e| match e.kind() {
                std::io::ErrorKind::NotFound => Error::NotFound(id.to_string()),
                _ => Error::Io {
                    context: format!("lock {}", dir.display()),
                    cause: e,
                },
            })?;
        let locked = loop {
            match Flock::lock(f, FlockArg::LockExclusiveNonblock) {
                Ok(l) => break l,
                Err((back, nix::errno::Errno::EWOULDBLOCK)) if Instant::now() < deadline => {
                    f = back;
                    std::thread::sleep(Duration::from_millis(10));
                }
                Err((_, nix::errno::Errno::EWOULDBLOCK)) => {
                    return Err(Error::Busy {
                        id: id.to_string(),
                        waited: wait,
                    })
                }
                Err((_, e)) => {
                    return Err(Error::Sys {
                        context: format!("lock {}", dir.display()),
                        cause: e,
                    })
                }
            }
        };
        if same_file(&locked, &path) {
            return Ok(Lock(locked));
        }
        if !dir.exists() {
            return Err(Error::NotFound(id.to_string()));
        }
    }
}

/// Whether the open `file` is still the file at `path`.
fn same_file(file: &fs::File, path: &Path) -> bool {
    match (file.metadata(), fs::metadata(path)) {
        (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
        _ => false,
    }
}

impl Store {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn dir(&self, id: &str) -> PathBuf {
        self.root.join(id)
    }

    /// Makes the directory of a new container and locks it; fails if the id is taken. The
    /// directory is made under another name with its lock file locked, then renamed into
    /// place: no lcr ever sees it without a lock (which it would take for one abandoned by
    /// an lcr killed between the two), and one killed before the rename leaves only the
    /// staging directory, which the next `create` sweeps away.
    pub fn create(&self, id: &str) -> Result<(PathBuf, Lock)> {
        validate_id(id)?;
        self.sweep_trash();
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o711)
            .create(&self.root)
            .ctx(|| format!("create state root {}", self.root.display()))?;
        let dir = self.dir(id);
        if dir.exists() && !self.remove_if_abandoned(id) {
            return Err(Error::Exists(id.to_string()));
        }
        let staging = self
            .root
            .join(format!("{id}{CREATING_MARK}{}", std::process::id()));
        fs::DirBuilder::new()
            .mode(0o711)
            .create(&staging)
            .ctx(|| format!("create {}", staging.display()))?;
        let locked = acquire_in(&staging, id, Duration::ZERO, true);
        // A directory that another lcr made meanwhile holds its lock file: it is not empty,
        // and the rename fails instead of replacing it.
        let placed = locked.and_then(|l| match fs::rename(&staging, &dir) {
            Ok(()) => Ok(l),
            Err(_) => Err(Error::Exists(id.to_string())),
        });
        if placed.is_err() {
            let _ = crate::fsutil::remove_tree(&staging);
        }
        placed.map(|l| (dir, l))
    }

    /// Locks an existing container's directory, waiting at most [`lock_wait`] for another lcr
    /// command that holds it.
    pub fn lock(&self, id: &str) -> Result<Lock> {
        self.acquire(id, lock_wait(), true)
    }

    /// Locks container `id` if nobody holds its lock now; never waits.
    pub fn try_lock(&self, id: &str) -> Result<Lock> {
        self.acquire(id, Duration::ZERO, false)
    }

    /// The lock file lives in the directory `delete` removes, so a command that waited may
    /// end up holding the lock of a file that is gone (the container deleted meanwhile) or
    /// replaced (deleted and made anew under the same id): after locking, the file must
    /// still be the one at the path, else it looks again. `create` makes the lock file of a
    /// container that has none yet.
    fn acquire(&self, id: &str, wait: Duration, create: bool) -> Result<Lock> {
        validate_id(id)?;
        acquire_in(&self.dir(id), id, wait, create)
    }

    /// Removes what deletes and creates killed midway left (see [`trash_name`] and
    /// [`Store::create`]), once their lcr is gone.
    fn sweep_trash(&self) {
        crate::fsutil::remove_orphans(&self.root, |name| {
            let (_, pid) = name
                .rsplit_once(TRASH_MARK)
                .or_else(|| name.rsplit_once(CREATING_MARK))?;
            pid.parse().ok()
        });
    }

    /// A directory without state.json whose lock nobody holds was left by an lcr killed
    /// between making it and recording the container (nothing else exists yet then):
    /// removed, so the id can be used again. Whether it was.
    pub(crate) fn remove_if_abandoned(&self, id: &str) -> bool {
        let dir = self.dir(id);
        if dir.join(super::STATE_FILE).exists() {
            return false;
        }
        // Held while the directory is removed, when it has a lock file.
        let _held = match self.try_lock(id) {
            Ok(l) => Some(l),
            // No lock file (try_lock makes none): no create is midway, since a directory
            // appears with its lock (see `create`); an older lcr killed between its mkdir and
            // its lock left it.
            Err(Error::NotFound(_)) => None,
            Err(_) => return false,
        };
        !dir.join(super::STATE_FILE).exists() && crate::fsutil::remove_tree(&dir).is_ok()
    }

    /// Ids of all containers, sorted.
    pub fn ids(&self) -> Result<Vec<String>> {
        let mut ids = Vec::new();
        let entries = match fs::read_dir(&self.root) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(ids),
            Err(e) => return Err(e).ctx(|| format!("read {}", self.root.display())),
        };
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if e.path().join("state.json").exists() && validate_id(&name).is_ok() {
                ids.push(name);
            }
        }
        ids.sort();
        Ok(ids)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_checked() {
        for good in ["a", "web-1", "x_y.z+2", &"a".repeat(255)] {
            assert!(validate_id(good).is_ok(), "{good}");
        }
        for (bad, why) in [
            ("", "empty"),
            ("..", "not a name"),
            (".", "not a name"),
            ("a/b", "'/'"),
            ("a b", "' '"),
            ("-rf", "starts with '-'"),
            (&"a".repeat(256), "longer"),
        ] {
            let e = validate_id(bad).unwrap_err().to_string();
            assert!(e.contains(why), "{bad}: {e}");
        }
    }

    #[test]
    fn create_refuses_duplicates_and_lists() {
        let d = tempfile::tempdir().unwrap();
        let s = Store::new(d.path().join("root"));
        let (dir, _l) = s.create("one").unwrap();
        fs::write(dir.join("state.json"), "{}").unwrap();
        assert!(matches!(s.create("one"), Err(Error::Exists(_))));
        assert!(matches!(s.lock("two"), Err(Error::NotFound(_))));
        assert_eq!(s.ids().unwrap(), vec!["one".to_string()]);
    }

    /// What an lcr killed midway through `create` leaves never keeps the id: the directory
    /// is in place locked (its lock goes with the process), or it is the staging directory
    /// of a process that is gone, or (an older lcr) a directory without a lock file.
    #[test]
    fn a_create_killed_midway_leaves_the_id_free() {
        let d = tempfile::tempdir().unwrap();
        let s = Store::new(d.path().join("root"));
        let (dir, lock) = s.create("one").unwrap();
        assert!(dir.join("lock").exists(), "placed with its lock file");
        assert!(matches!(s.create("one"), Err(Error::Exists(_))), "held");
        drop(lock);
        let (_, lock) = s.create("one").unwrap();
        drop(lock);
        // A staging directory of a pid that no longer runs (the kernel's pid_max is below
        // this one), and a lockless directory.
        let gone = s.root().join(format!("two{CREATING_MARK}4294967295"));
        fs::create_dir_all(&gone).unwrap();
        fs::create_dir(s.dir("three")).unwrap();
        s.create("three").unwrap();
        assert!(
            !gone.exists(),
            "the staging directory of a killed create is swept"
        );
        assert!(s.ids().unwrap().is_empty(), "nothing is recorded");
    }
}
