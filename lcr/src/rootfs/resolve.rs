//! Paths inside a rootfs, resolved inside it: every lookup goes through openat2 with
//! `RESOLVE_IN_ROOT`, so a symlink in the rootfs (`/etc/x -> /tmp`, `a -> ../../..`, chains)
//! is followed as the container would see it and never leads onto the host. Mounts then
//! target the resolved directory through `/proc/self/fd/N`, as runc does.

use std::ffi::OsString;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::{Component, Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{openat2, OFlag, OpenHow, ResolveFlag};
use nix::sys::stat::Mode;

use crate::{Error, Result};

/// A rootfs directory, held open so that every path is looked up from it.
pub struct RootDir {
    fd: OwnedFd,
    path: PathBuf,
}

/// A resolved file or directory inside a rootfs, held by an `O_PATH` fd.
pub struct InRoot {
    fd: OwnedFd,
    /// How the config named it, for errors.
    shown: PathBuf,
}

impl InRoot {
    /// The path by which mount(2) and friends reach exactly this file: the kernel follows the
    /// magic link to it without resolving any name again.
    pub fn proc_path(&self) -> PathBuf {
        PathBuf::from(format!("/proc/self/fd/{}", self.fd.as_raw_fd()))
    }

    pub fn fd(&self) -> &OwnedFd {
        &self.fd
    }

    pub fn shown(&self) -> &Path {
        &self.shown
    }
}

fn how(flags: OFlag) -> OpenHow {
    OpenHow::new()
        .flags(flags | OFlag::O_CLOEXEC)
        .resolve(ResolveFlag::RESOLVE_IN_ROOT | ResolveFlag::RESOLVE_NO_MAGICLINKS)
}

/// `inner`'s normal components: a leading `/` and `.` dropped; `..` kept, since only the
/// kernel knows where it leads once symlinks are followed (never above the root).
fn components(inner: &Path) -> Vec<OsString> {
    inner
        .components()
        .filter_map(|c| match c {
            Component::Normal(n) => Some(n.to_os_string()),
            Component::ParentDir => Some("..".into()),
            _ => None,
        })
        .collect()
}

impl RootDir {
    pub fn open(path: &Path) -> Result<Self> {
        let fd = nix::fcntl::open(
            path,
            OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| self::fail(path, "open the rootfs", e))?;
        Ok(Self {
            fd,
            path: path.to_path_buf(),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// `inner` shown as the host path it stands for (for messages only; never opened).
    pub fn shown(&self, inner: &Path) -> PathBuf {
        super::join_in(&self.path, inner)
    }

    /// Opens `inner` as it resolves inside the root (`O_PATH`): it must exist.
    pub fn resolve(&self, inner: &Path) -> std::result::Result<InRoot, Errno> {
        self.open_in(inner, OFlag::O_PATH)
    }

    fn open_in(&self, inner: &Path, flags: OFlag) -> std::result::Result<InRoot, Errno> {
        let rel = relative(inner);
        let fd = openat2(self.fd.as_fd(), rel.as_path(), how(flags))?;
        Ok(InRoot {
            fd,
            shown: self.shown(inner),
        })
    }

    /// `mkdir -p inner` inside the root: each component resolved inside it and created
    /// (0755) where missing.
    pub fn make_dirs(&self, inner: &Path) -> Result<InRoot> {
        let mut so_far = PathBuf::new();
        let mut dir = self
            .resolve(Path::new("/"))
            .map_err(|e| self.fail(inner, e))?;
        for name in components(inner) {
            so_far.push(&name);
            dir = match self.resolve_dir(&so_far) {
                Ok(d) => d,
                Err(Errno::ENOENT) => {
                    match nix::sys::stat::mkdirat(
                        dir.fd.as_fd(),
                        name.as_os_str(),
                        Mode::from_bits_truncate(0o755),
                    ) {
                        Ok(()) | Err(Errno::EEXIST) => {}
                        Err(e) => return Err(self.fail(&so_far, e)),
                    }
                    self.resolve_dir(&so_far)
                        .map_err(|e| self.fail(&so_far, e))?
                }
                Err(e) => return Err(self.fail(&so_far, e)),
            };
        }
        Ok(dir)
    }

    fn resolve_dir(&self, inner: &Path) -> std::result::Result<InRoot, Errno> {
        self.open_in(inner, OFlag::O_PATH | OFlag::O_DIRECTORY)
    }

    /// The directory `inner` is in (created inside the root if missing) and its last name:
    /// for the `*at` calls that make or remove that entry itself.
    pub fn parent_of(&self, inner: &Path) -> Result<(InRoot, OsString)> {
        let mut parts = components(inner);
        let name = match parts.pop() {
            Some(n) if n != ".." => n,
            _ => {
                return Err(Error::Value {
                    what: "path in the rootfs".into(),
                    value: inner.display().to_string(),
                    reason: "names no file".into(),
                })
            }
        };
        let parent: PathBuf = parts.iter().collect();
        Ok((self.make_dirs(&parent)?, name))
    }

    /// A mount point at `inner`: the directory, or for `dir == false` an empty file, made
    /// inside the root if missing; what is there already is used as it is.
    pub fn make_target(&self, inner: &Path, dir: bool) -> Result<InRoot> {
        if dir {
            return self.make_dirs(inner);
        }
        if let Ok(t) = self.resolve(inner) {
            return Ok(t);
        }
        let (parent, name) = self.parent_of(inner)?;
        match nix::fcntl::openat(
            parent.fd.as_fd(),
            name.as_os_str(),
            OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW | OFlag::O_WRONLY | OFlag::O_CLOEXEC,
            Mode::from_bits_truncate(0o644),
        ) {
            Ok(_) | Err(Errno::EEXIST) => {}
            Err(e) => return Err(self.fail(inner, e)),
        }
        self.resolve(inner).map_err(|e| self.fail(inner, e))
    }

    fn fail(&self, inner: &Path, e: Errno) -> Error {
        fail(&self.shown(inner), "resolve inside the rootfs", e)
    }
}

/// `inner` relative to the root (openat2 takes `/` as the root too, but `.` for nothing).
fn relative(inner: &Path) -> PathBuf {
    let parts = components(inner);
    if parts.is_empty() {
        PathBuf::from(".")
    } else {
        parts.iter().collect()
    }
}

fn fail(path: &Path, what: &str, e: Errno) -> Error {
    let reason = match e {
        Errno::ENOTDIR => "a component is not a directory (or a symlink to one)".to_string(),
        Errno::ELOOP => "too many symlinks".to_string(),
        other => other.desc().to_string(),
    };
    Error::InRoot {
        what: what.to_string(),
        path: path.to_path_buf(),
        reason,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    #[test]
    fn symlinks_lead_inside_the_root_only() {
        let t = tempfile::tempdir().unwrap();
        let root = t.path().join("root");
        let outside = t.path().join("outside");
        std::fs::create_dir_all(root.join("etc")).unwrap();
        std::fs::create_dir_all(root.join("data")).unwrap();
        std::fs::create_dir_all(&outside).unwrap();
        symlink("/data", root.join("etc/abs")).unwrap();
        symlink("../../../../data", root.join("etc/rel")).unwrap();
        symlink("rel", root.join("etc/chain")).unwrap();
        symlink(&outside, root.join("etc/host")).unwrap();
        let r = RootDir::open(&root).unwrap();
        for (link, made) in [
            ("/etc/abs/x", "data/x"),
            ("/etc/rel/y", "data/y"),
            ("/etc/chain/z", "data/z"),
        ] {
            r.make_dirs(Path::new(link)).unwrap();
            assert!(root.join(made).is_dir(), "{link}: made inside the root");
        }
        r.make_target(Path::new("/etc/abs/file"), false).unwrap();
        assert!(root.join("data/file").is_file());
        // A symlink to a host path names that path inside the root, where it is missing.
        assert!(r.make_dirs(Path::new("/etc/host/x")).is_err());
        assert!(r.make_target(Path::new("/etc/host/f"), false).is_err());
        assert_eq!(
            std::fs::read_dir(&outside).unwrap().count(),
            0,
            "nothing outside"
        );
        // `..` above the root stays at the root.
        r.make_dirs(Path::new("/../../a")).unwrap();
        assert!(root.join("a").is_dir());
        let (p, name) = r.parent_of(Path::new("/etc/abs/dev")).unwrap();
        assert_eq!(name, "dev");
        assert!(p.proc_path().starts_with("/proc/self/fd"));
    }
}
