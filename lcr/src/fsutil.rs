//! File-system helpers that must never reach past where they were pointed, and files
//! written atomically.

use std::ffi::CString;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use crate::error::Context;
use crate::{Error, Result};

/// The id of the mount `path` is on, the entry itself not followed if it is a symlink.
fn mount_id(path: &Path) -> io::Result<u64> {
    let c = CString::new(path.as_os_str().as_bytes())
        .map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    // SAFETY: statx is plain zeroed data; the kernel fills it.
    let mut stx: libc::statx = unsafe { std::mem::zeroed() };
    // SAFETY: `c` is a valid NUL-terminated path and `stx` a writable statx buffer.
    let rc = unsafe {
        libc::statx(
            libc::AT_FDCWD,
            c.as_ptr(),
            libc::AT_SYMLINK_NOFOLLOW,
            libc::STATX_MNT_ID,
            &mut stx,
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(stx.stx_mnt_id)
}

/// The mount point of the mount `path` is on: its highest ancestor on the same mount.
pub fn mount_point_of(path: &Path) -> io::Result<PathBuf> {
    let id = mount_id(path)?;
    let mut top = path.to_path_buf();
    while let Some(parent) = top.parent() {
        if parent.as_os_str().is_empty() || mount_id(parent)? != id {
            break;
        }
        top = parent.to_path_buf();
    }
    Ok(top)
}

/// Removes the directory tree at `dir` (or the file) without ever crossing a mount point: a
/// directory below it that is another mount — a bind mount of a rootfs still in place, say —
/// is left whole and the removal fails naming it. Symlinks are removed, never followed.
/// A missing `dir` is not an error.
pub fn remove_tree(dir: &Path) -> Result<()> {
    let md = match std::fs::symlink_metadata(dir) {
        Ok(m) => m,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(io_err(dir, "stat", e)),
    };
    if !md.is_dir() {
        return std::fs::remove_file(dir).map_err(|e| io_err(dir, "remove", e));
    }
    let mnt = mount_id(dir).map_err(|e| io_err(dir, "statx", e))?;
    remove_below(dir, mnt, dir)
}

fn remove_below(dir: &Path, mnt: u64, top: &Path) -> Result<()> {
    let entries = std::fs::read_dir(dir).map_err(|e| io_err(dir, "read", e))?;
    for e in entries {
        let e = e.map_err(|e| io_err(dir, "read", e))?;
        let path = e.path();
        let is_dir = e
            .file_type()
            .map_err(|err| io_err(&path, "stat", err))?
            .is_dir();
        if !is_dir {
            remove_file(&path)?;
            continue;
        }
        let here = mount_id(&path).map_err(|err| io_err(&path, "statx", err))?;
        if here != mnt {
            return Err(Error::MountInside {
                dir: top.to_path_buf(),
                mount: path,
            });
        }
        remove_below(&path, mnt, top)?;
    }
    match std::fs::remove_dir(dir) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(io_err(dir, "remove", e)),
        _ => Ok(()),
    }
}

fn remove_file(path: &Path) -> Result<()> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(io_err(path, "remove", e)),
        _ => Ok(()),
    }
}

fn io_err(path: &Path, what: &str, cause: io::Error) -> Error {
    Error::Io {
        context: format!("{what} {}", path.display()),
        cause,
    }
}

/// A private temporary directory `lcr-<kind>-<pid>-XXXXXX` (images of an export or import:
/// gigabytes, and process memory). Those an lcr killed before it could remove its own are
/// removed first: their pid is in the name, and a directory whose lcr is gone is nobody's.
pub fn work_dir(kind: &str) -> Result<WorkDir> {
    work_dir_in(&std::env::temp_dir(), kind)
}

/// As [`work_dir`], below `base`.
pub fn work_dir_in(base: &Path, kind: &str) -> Result<WorkDir> {
    let base = base.to_path_buf();
    let prefix = format!("lcr-{kind}-");
    remove_orphans(&base, |name| {
        name.strip_prefix(&prefix)?.split('-').next()?.parse().ok()
    });
    let dir = tempfile::Builder::new()
        .prefix(&format!("{prefix}{}-", std::process::id()))
        .tempdir_in(&base)
        .map_err(|e| io_err(&base, "create a temporary directory in", e))?;
    Ok(WorkDir(dir.keep()))
}

/// Removes the entries of `dir` that an lcr process left and no longer owns: those whose
/// name `owner` reads a pid out of that is not running.
pub fn remove_orphans(dir: &Path, owner: impl Fn(&str) -> Option<u32>) {
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let Some(pid) = owner(&e.file_name().to_string_lossy()) else {
            continue;
        };
        if Path::new(&format!("/proc/{pid}")).exists() {
            continue;
        }
        match remove_tree(&e.path()) {
            Ok(()) => {
                tracing::info!(path = %e.path().display(), "removed what an interrupted lcr left")
            }
            Err(err) => tracing::warn!(error = %err, "left by an interrupted lcr, not removed"),
        }
    }
}

/// A directory of lcr's own that CRIU worked in, removed when dropped: first what is still
/// mounted below it in this process (CRIU's cgroup yard, left mounted when CRIU was
/// stopped), then the tree, never crossing a mount (a walk into a cgroup hierarchy would
/// remove cgroups).
pub struct WorkDir(PathBuf);

impl WorkDir {
    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for WorkDir {
    fn drop(&mut self) {
        unmount_below(&self.0);
        if let Err(e) = remove_tree(&self.0) {
            tracing::warn!(error = %e, "temporary directory not removed");
        }
    }
}

/// Detaches every mount at or below `dir` in this process's mount namespace.
pub fn unmount_below(dir: &Path) {
    for m in mounts_below(dir) {
        if let Err(e) = nix::mount::umount2(&m, nix::mount::MntFlags::MNT_DETACH) {
            tracing::warn!(mount = %m.display(), error = %e, "could not unmount");
        }
    }
}

/// Mount points at or below `dir` in this process's mount namespace, deepest first.
pub fn mounts_below(dir: &Path) -> Vec<PathBuf> {
    let dir = dir.canonicalize().unwrap_or_else(|_| dir.to_path_buf());
    let mut found: Vec<PathBuf> = crate::procfs::mountinfo(None)
        .unwrap_or_default()
        .into_iter()
        .map(|m| m.mount_point)
        .filter(|p| p.starts_with(&dir))
        .collect();
    found.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
    found
}

/// The bytes an unprivileged writer may still put on the filesystem holding `dir`.
pub fn free_bytes(dir: &Path) -> io::Result<u64> {
    let st = nix::sys::statvfs::statvfs(dir)?;
    Ok(st.blocks_available() as u64 * st.fragment_size() as u64)
}

/// Writes `value` as pretty JSON to `path`, atomically.
pub fn write_json(path: &Path, value: &impl serde::Serialize) -> Result<()> {
    let data = serde_json::to_vec_pretty(value).ctx(|| format!("encode {}", path.display()))?;
    write_atomic(path, &data)
}

/// Writes `data` to `path` atomically: a temp file in the same directory, fsync, rename.
pub fn write_atomic(path: &Path, data: &[u8]) -> Result<()> {
    use std::io::Write;
    let dir = path.parent().unwrap_or(Path::new("."));
    let tmp = dir.join(format!(
        ".{}.tmp",
        path.file_name().unwrap_or_default().to_string_lossy()
    ));
    let mut f = std::fs::File::create(&tmp).ctx(|| format!("create {}", tmp.display()))?;
    f.write_all(data)
        .and_then(|_| f.sync_all())
        .ctx(|| format!("write {}", tmp.display()))?;
    std::fs::rename(&tmp, path).ctx(|| format!("rename {} to {}", tmp.display(), path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn atomic_write_replaces() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("f.json");
        write_atomic(&p, b"1").unwrap();
        write_atomic(&p, b"2").unwrap();
        assert_eq!(std::fs::read_to_string(&p).unwrap(), "2");
        assert_eq!(std::fs::read_dir(d.path()).unwrap().count(), 1);
    }

    #[test]
    fn removes_a_tree_with_symlinks_without_following_them() {
        let d = tempfile::tempdir().unwrap();
        let outside = d.path().join("outside");
        std::fs::create_dir(&outside).unwrap();
        std::fs::write(outside.join("keep"), "x").unwrap();
        let t = d.path().join("t");
        std::fs::create_dir_all(t.join("a/b")).unwrap();
        std::fs::write(t.join("a/b/f"), "x").unwrap();
        std::os::unix::fs::symlink(&outside, t.join("a/link")).unwrap();
        remove_tree(&t).unwrap();
        assert!(!t.exists());
        assert!(outside.join("keep").exists());
        remove_tree(&t).unwrap(); // already gone: fine
    }
}
