//! The container's cgroup, v1 or v2: made in every hierarchy (v1) or the unified tree (v2),
//! its limits written by one controller module each (`controllers/`), frozen, read for
//! statistics, removed.
//!
//! Paths are always relative to the hierarchy roots: an absolute `cgroupsPath` is used as is,
//! anything else goes under [`ROOT`]. Never under the caller's own cgroup (see MACHINE.md:
//! that cgroup belongs to the machine).

mod controllers;
mod hierarchy;
mod limits;
mod notify;
mod path;
mod stats;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use oci_spec::runtime::LinuxResources;

use hierarchy::{Dir, MOUNT};

pub use notify::{MemoryWatch, Notice};
pub use path::{container_cgroup_path, ROOT};
pub use stats::Stats;

use crate::{Error, Result};

/// How long a freeze or thaw may take to settle.
const FREEZE_WAIT: Duration = Duration::from_secs(10);

/// Which cgroup layout the host has.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Version {
    V1,
    V2,
}

impl Version {
    pub fn detect() -> Self {
        hierarchy::detect()
    }
}

/// A container's cgroup, at `path` (like `/lcr/<id>`) in every hierarchy.
pub struct Cgroup {
    path: String,
    version: Version,
}

impl Cgroup {
    /// Creates the cgroup (in every v1 hierarchy, or the unified one) and applies `resources`.
    /// A cgroup that already holds processes is refused: they belong to another container or
    /// service, and sharing it would let this container's delete kill them (runc refuses it
    /// too on v2). On failure nothing is left behind.
    pub fn create(path: &str, resources: Option<&LinuxResources>) -> Result<Self> {
        let rel = path.trim_start_matches('/');
        let present = populated(rel);
        if !present.is_empty() {
            let shown: Vec<String> = present.iter().take(5).map(|p| p.to_string()).collect();
            return Err(Error::Cgroup {
                path: path.to_string(),
                reason: format!(
                    "already holds processes (pid {}{}): another container or service uses it; \
                     give this container a linux.cgroupsPath of its own",
                    shown.join(", "),
                    if present.len() > 5 { ", …" } else { "" }
                ),
            });
        }
        let me = Self::load(path)?;
        let made = me.make_dirs().and_then(|()| match resources {
            Some(r) => me.set(r),
            None => Ok(()),
        });
        if let Err(e) = made {
            let _ = me.destroy();
            return Err(e);
        }
        Ok(me)
    }

    /// The cgroup's directory in every v1 hierarchy (a new cpuset given its parent's CPUs and
    /// memory nodes), or in the v2 tree with lcr's controllers enabled above it.
    fn make_dirs(&self) -> Result<()> {
        let rel = self.path.trim_start_matches('/');
        let mkdir = |d: &Path| {
            std::fs::create_dir_all(d).map_err(|e| self.err(&format!("create {}", d.display()), e))
        };
        match self.version {
            Version::V1 => {
                for h in hierarchy::v1_hierarchies() {
                    mkdir(&h.join(rel))?;
                    if h.join("cpuset.cpus").exists() {
                        controllers::cpuset_inherit(&h, rel)?;
                    }
                }
            }
            Version::V2 => {
                self.enable_v2_controllers()?;
                mkdir(&Path::new(MOUNT).join(rel))?;
            }
        }
        Ok(())
    }

    /// Enables lcr's controllers (those the host has) in the subtree_control of every
    /// ancestor, from the root down, so that the cgroup gets their files.
    fn enable_v2_controllers(&self) -> Result<()> {
        // (The walk makes the ancestors as it goes: each must exist before its
        // subtree_control can be written.)
        let mut at = PathBuf::from(MOUNT);
        let available = std::fs::read_to_string(at.join("cgroup.controllers")).unwrap_or_default();
        let wanted: Vec<&str> = controllers::V2_CONTROLLERS
            .iter()
            .copied()
            .filter(|c| available.split_whitespace().any(|a| a == *c))
            .collect();
        let parents: Vec<&str> = self.path.trim_start_matches('/').split('/').collect();
        for (i, part) in parents.iter().enumerate() {
            let control = at.join("cgroup.subtree_control");
            let enabled = std::fs::read_to_string(&control).unwrap_or_default();
            for c in &wanted {
                if enabled.split_whitespace().any(|e| e == *c) {
                    continue;
                }
                // Not fatal here: a limit that needs the controller then fails, naming it.
                if let Err(e) = std::fs::write(&control, format!("+{c}")) {
                    tracing::warn!(controller = c, file = %control.display(), error = %e, "cgroup v2 controller not enabled");
                }
            }
            if i + 1 < parents.len() {
                at.push(part);
                std::fs::create_dir_all(&at)
                    .map_err(|e| self.err(&format!("create {}", at.display()), e))?;
            }
        }
        Ok(())
    }

    /// The existing cgroup at `path`.
    pub fn load(path: &str) -> Result<Self> {
        let rel = path.trim_start_matches('/');
        Ok(Self {
            path: format!("/{rel}"),
            version: Version::detect(),
        })
    }

    pub fn path(&self) -> &str {
        &self.path
    }

    pub fn version(&self) -> Version {
        self.version
    }

    fn err(&self, what: &str, e: impl std::fmt::Display) -> Error {
        Error::Cgroup {
            path: self.path.clone(),
            reason: format!("{what}: {e}"),
        }
    }

    /// Host directory of this cgroup for a v1 controller (`None` on v2: the unified dir).
    pub fn dir(&self, controller: Option<&str>) -> PathBuf {
        cgroup_dir(Path::new(MOUNT), self.version, controller, &self.path)
    }

    /// Where the process list is read and written.
    fn procs_dir(&self) -> PathBuf {
        self.dir(procs_controller(self.version))
    }

    /// Moves process `pid` (all its threads) into the cgroup, in every hierarchy.
    pub fn add(&self, pid: i32) -> Result<()> {
        let rel = self.path.trim_start_matches('/');
        let dirs: Vec<PathBuf> = match self.version {
            Version::V1 => hierarchy::v1_hierarchies()
                .into_iter()
                .map(|h| h.join(rel))
                .collect(),
            Version::V2 => vec![Path::new(MOUNT).join(rel)],
        };
        for d in dirs {
            std::fs::write(d.join("cgroup.procs"), pid.to_string())
                .map_err(|e| self.err(&format!("add pid {pid} to {}", d.display()), e))?;
        }
        // On a hybrid host, the controller-less cgroup2 tree holds every process too: keep the
        // container at the same path there (as runc does), or CRIU restores it somewhere odd.
        if let Some(u) = self.hybrid_unified_dir() {
            std::fs::create_dir_all(&u).map_err(|e| self.err("create unified cgroup", e))?;
            std::fs::write(u.join("cgroup.procs"), pid.to_string())
                .map_err(|e| self.err(&format!("add pid {pid} to the unified cgroup"), e))?;
        }
        Ok(())
    }

    /// The cgroup's directory in the cgroup2 tree of a hybrid (v1 + unified) host.
    fn hybrid_unified_dir(&self) -> Option<PathBuf> {
        if self.version != Version::V1 {
            return None;
        }
        let unified = Path::new(MOUNT).join("unified");
        unified
            .join("cgroup.procs")
            .exists()
            .then(|| unified.join(self.path.trim_start_matches('/')))
    }

    /// Applies resource limits, checked first (see `limits`), each controller writing its
    /// own. On v2, device rules need an eBPF program, which lcr does not attach yet: they
    /// are skipped with a warning rather than failing every default config.
    pub fn set(&self, resources: &LinuxResources) -> Result<()> {
        let r = limits::checked(resources)?;
        if self.version == Version::V2 && r.devices().as_ref().is_some_and(|d| !d.is_empty()) {
            tracing::warn!(path = %self.path, "cgroup v2: device rules are not enforced");
        }
        for c in controllers::ALL
            .iter()
            .filter(|c| c.wanted(&r, self.version))
        {
            let dir = Dir::new(self.version, c.name(), &self.path);
            if !dir.exists() && !c.name().is_empty() {
                return Err(self.err(
                    &format!("set {}", c.name()),
                    match self.version {
                        Version::V1 => "its v1 hierarchy is not mounted on this host",
                        Version::V2 => "the controller is not enabled for this cgroup",
                    },
                ));
            }
            c.apply(&dir, &r)?;
        }
        Ok(())
    }

    /// Applies `res` again and reads the limits back: after a restore (CRIU's full mode puts
    /// the old values back; on v2 it restores none) the restore bundle's limits must hold.
    pub fn verify(&self, res: Option<&LinuxResources>) -> Result<()> {
        let Some(r) = res else { return Ok(()) };
        if self.limits_differ(r).is_empty() {
            return Ok(());
        }
        self.set(r)?;
        let wrong = self.limits_differ(r);
        if wrong.is_empty() {
            Ok(())
        } else {
            Err(self.err("limits after restore", wrong.join("; ")))
        }
    }

    /// The limits of `r` the cgroup does not have, described.
    fn limits_differ(&self, r: &LinuxResources) -> Vec<String> {
        let page = crate::procfs::page_size() as i64;
        let mut wrong = Vec::new();
        let read = |ctrl: &str, v1: &'static str, v2: &'static str| {
            let (dir, file) = match self.version {
                Version::V1 => (self.dir(Some(ctrl)), v1),
                Version::V2 => (self.dir(None), v2),
            };
            (
                file,
                std::fs::read_to_string(dir.join(file))
                    .unwrap_or_default()
                    .trim()
                    .to_string(),
            )
        };
        if let Some(limit) = r
            .memory()
            .as_ref()
            .and_then(|m| m.limit())
            .filter(|l| *l > 0)
        {
            let (file, got) = read("memory", "memory.limit_in_bytes", "memory.max");
            if got.parse::<i64>().ok() != Some(limit / page * page) {
                wrong.push(format!("{file} is {got}, config says {limit}"));
            }
        }
        if let Some(limit) = r.pids().as_ref().map(|p| p.limit()).filter(|l| *l > 0) {
            let (file, got) = read("pids", "pids.max", "pids.max");
            if got != limit.to_string() {
                wrong.push(format!("{file} is {got}, config says {limit}"));
            }
        }
        if let Some(quota) = r.cpu().as_ref().and_then(|c| c.quota()).filter(|q| *q > 0) {
            let (file, got) = read("cpu", "cpu.cfs_quota_us", "cpu.max");
            if got.split_whitespace().next() != Some(quota.to_string().as_str()) {
                wrong.push(format!("{file} is {got}, config says {quota}"));
            }
        }
        wrong
    }

    /// Freezes every process of the cgroup and waits until the kernel says they all are.
    pub fn freeze(&self) -> Result<()> {
        self.set_frozen(true)
    }

    pub fn thaw(&self) -> Result<()> {
        self.set_frozen(false)
    }

    fn set_frozen(&self, frozen: bool) -> Result<()> {
        let dir = Dir::new(self.version, "freezer", &self.path);
        let (file, value) = match (self.version, frozen) {
            (Version::V1, true) => ("freezer.state", "FROZEN"),
            (Version::V1, false) => ("freezer.state", "THAWED"),
            (Version::V2, true) => ("cgroup.freeze", "1"),
            (Version::V2, false) => ("cgroup.freeze", "0"),
        };
        dir.write(file, value)?;
        // v1 passes through FREEZING; v2 reports the settled state in cgroup.events.
        let settled = || match self.version {
            Version::V1 => dir.read("freezer.state").as_deref() == Some(value),
            Version::V2 => dir.keyed("cgroup.events").get("frozen") == Some(&u64::from(frozen)),
        };
        let deadline = Instant::now() + FREEZE_WAIT;
        while !settled() {
            if Instant::now() > deadline {
                return Err(self.err(
                    if frozen { "freeze" } else { "thaw" },
                    format!(
                        "{file} did not settle at {value} within {} s",
                        FREEZE_WAIT.as_secs()
                    ),
                ));
            }
            if self.version == Version::V1 && frozen {
                // A task in an uninterruptible sleep holds FREEZING; asking again retries it.
                dir.write(file, value)?;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        Ok(())
    }

    pub fn is_frozen(&self) -> bool {
        let (file, frozen) = freeze_file(self.version);
        std::fs::read_to_string(self.procs_dir().join(file)).is_ok_and(|s| s.trim() == frozen)
    }

    /// Processes in the cgroup (thread-group ids).
    pub fn pids(&self) -> Vec<i32> {
        read_pids(&self.procs_file())
    }

    /// The file that lists the cgroup's processes.
    pub fn procs_file(&self) -> PathBuf {
        self.procs_dir().join("cgroup.procs")
    }

    /// What each controller reports (runc's `stats` event data).
    pub fn stats(&self) -> Stats {
        let mut st = Stats::default();
        for c in controllers::ALL {
            let dir = Dir::new(self.version, c.name(), &self.path);
            if dir.exists() {
                c.stats(&dir, &mut st);
            }
        }
        st
    }

    pub fn exists(&self) -> bool {
        self.procs_dir().exists()
    }

    /// Whether any hierarchy has this cgroup: an lcr killed while creating it may have made
    /// it in some hierarchies only.
    pub fn present_anywhere(&self) -> bool {
        places(self.path.trim_start_matches('/')).any(|d| d.is_dir())
    }

    /// Removes the cgroup from every hierarchy, sub-cgroups first (CRIU may make some on
    /// restore), the hybrid unified one too. The caller makes sure no process is left in it.
    pub fn destroy(&self) -> Result<()> {
        let rel = self.path.trim_start_matches('/');
        for d in places(rel) {
            if d.is_dir() {
                remove_tree(&d).map_err(|e| self.err(&format!("remove {}", d.display()), e))?;
            }
        }
        Ok(())
    }
}

/// The directory of cgroup `path` for `controller`: per controller on v1, one tree on v2.
fn cgroup_dir(root: &Path, version: Version, controller: Option<&str>, path: &str) -> PathBuf {
    let rel = path.trim_start_matches('/');
    match (version, controller) {
        (Version::V1, Some(c)) => root.join(c).join(rel),
        _ => root.join(rel),
    }
}

/// The v1 controller whose tree lists the processes (every task is in exactly one freezer
/// cgroup); `None` on v2.
fn procs_controller(version: Version) -> Option<&'static str> {
    match version {
        Version::V1 => Some("freezer"),
        Version::V2 => None,
    }
}

/// The file that tells whether a cgroup is frozen, and its value when it is.
fn freeze_file(version: Version) -> (&'static str, &'static str) {
    match version {
        Version::V1 => ("freezer.state", "FROZEN"),
        Version::V2 => ("cgroup.freeze", "1"),
    }
}

/// Removes a cgroup directory and the cgroups below it, deepest first.
fn remove_tree(dir: &Path) -> std::io::Result<()> {
    for e in std::fs::read_dir(dir)?.flatten() {
        if e.file_type().map(|t| t.is_dir()).unwrap_or(false) {
            remove_tree(&e.path())?;
        }
    }
    std::fs::remove_dir(dir)
}

/// The processes in cgroup `rel` in any hierarchy: the unified one (v2), or each v1
/// controller's (a service may be in only some of them).
fn populated(rel: &str) -> Vec<i32> {
    let mut pids: Vec<i32> = places(rel)
        .flat_map(|d| read_pids(&d.join("cgroup.procs")))
        .collect();
    pids.sort_unstable();
    pids.dedup();
    pids
}

/// Every directory cgroup `rel` can have: in the v2 tree at the hierarchy root, and in each
/// v1 hierarchy (and the hybrid unified one) below it. Not all of them need exist.
fn places(rel: &str) -> impl Iterator<Item = PathBuf> + '_ {
    let root = PathBuf::from(MOUNT);
    let below: Vec<PathBuf> = std::fs::read_dir(&root)
        .into_iter()
        .flatten()
        .flatten()
        .map(|h| h.path().join(rel))
        .collect();
    std::iter::once(root.join(rel)).chain(below)
}

fn read_pids(file: &Path) -> Vec<i32> {
    std::fs::read_to_string(file)
        .unwrap_or_default()
        .split_whitespace()
        .filter_map(|p| p.parse().ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn v1_and_v2_layouts() {
        let root = Path::new("/sys/fs/cgroup");
        assert_eq!(
            cgroup_dir(root, Version::V1, Some("memory"), "/lcr/a"),
            PathBuf::from("/sys/fs/cgroup/memory/lcr/a")
        );
        assert_eq!(
            cgroup_dir(root, Version::V2, Some("memory"), "/lcr/a"),
            PathBuf::from("/sys/fs/cgroup/lcr/a")
        );
        assert_eq!(
            cgroup_dir(root, Version::V2, procs_controller(Version::V2), "/lcr/a"),
            PathBuf::from("/sys/fs/cgroup/lcr/a")
        );
        assert_eq!(procs_controller(Version::V1), Some("freezer"));
        assert_eq!(freeze_file(Version::V2), ("cgroup.freeze", "1"));
        assert_eq!(freeze_file(Version::V1), ("freezer.state", "FROZEN"));
    }
}
