//! Where cgroups live: the v2 tree at [`MOUNT`], or one v1 hierarchy per controller below it;
//! and a cgroup's directory for one controller, whose files are read and written through
//! [`Dir`] so that every failure names the cgroup and the file.

use std::collections::BTreeMap;
use std::fmt::Display;
use std::path::{Path, PathBuf};

use super::Version;
use crate::{Error, Result};

/// Where the host mounts its cgroup hierarchies.
pub const MOUNT: &str = "/sys/fs/cgroup";

/// v2 when the unified hierarchy is mounted at [`MOUNT`] itself (a v2-only host), v1 else
/// (a v1 or hybrid host).
pub fn detect() -> Version {
    match nix::sys::statfs::statfs(MOUNT) {
        Ok(fs) if fs.filesystem_type() == nix::sys::statfs::CGROUP2_SUPER_MAGIC => Version::V2,
        _ => Version::V1,
    }
}

/// A cgroup's directory for one controller: per controller on v1, the one directory on v2.
pub fn dir_of(version: Version, controller: Option<&str>, rel: &str) -> PathBuf {
    let root = Path::new(MOUNT);
    match (version, controller) {
        (Version::V1, Some(c)) => root.join(c).join(rel),
        _ => root.join(rel),
    }
}

/// The v1 hierarchies mounted below [`MOUNT`] (by their directory names: `memory`, the
/// named `systemd` one, `cpu,cpuacct` and its `cpu` and `cpuacct` links resolved once), not
/// the hybrid unified tree.
pub fn v1_hierarchies() -> Vec<PathBuf> {
    let mut seen = std::collections::HashSet::new();
    let mut out = Vec::new();
    for e in std::fs::read_dir(MOUNT).into_iter().flatten().flatten() {
        let path = e.path();
        if e.file_name() == "unified" || !path.is_dir() {
            continue;
        }
        if let Ok(real) = std::fs::canonicalize(&path) {
            if seen.insert(real.clone()) {
                out.push(real);
            }
        }
    }
    out.sort();
    out
}

/// A cgroup's directory for one controller, with the cgroup's path for messages.
pub struct Dir {
    pub version: Version,
    pub path: PathBuf,
    pub cgroup: String,
}

impl Dir {
    pub fn new(version: Version, controller: &str, cgroup: &str) -> Self {
        Self {
            version,
            path: dir_of(version, Some(controller), cgroup.trim_start_matches('/')),
            cgroup: cgroup.to_string(),
        }
    }

    pub fn err(&self, reason: String) -> Error {
        Error::Cgroup {
            path: self.cgroup.clone(),
            reason,
        }
    }

    pub fn write(&self, file: &str, value: impl Display) -> Result<()> {
        let value = value.to_string();
        std::fs::write(self.path.join(file), &value)
            .map_err(|e| self.err(format!("write {value:?} to {file}: {e}")))
    }

    pub fn read(&self, file: &str) -> Option<String> {
        std::fs::read_to_string(self.path.join(file))
            .ok()
            .map(|s| s.trim().to_string())
    }

    /// A number; 0 when absent, unreadable or `max`.
    pub fn u64(&self, file: &str) -> u64 {
        self.read(file).and_then(|s| s.parse().ok()).unwrap_or(0)
    }

    /// A flat keyed file (`key value` per line).
    pub fn keyed(&self, file: &str) -> BTreeMap<String, u64> {
        self.read(file)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| {
                let (k, v) = l.split_once(' ')?;
                Some((k.to_string(), v.trim().parse().ok()?))
            })
            .collect()
    }

    pub fn exists(&self) -> bool {
        self.path.is_dir()
    }
}
