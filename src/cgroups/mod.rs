//! The container's cgroup: one manager over `cgroups-rs` for v1 and v2.
//!
//! Paths are always relative to the hierarchy roots: an absolute `cgroupsPath` is used as is,
//! anything else goes under [`ROOT`]. Never under the caller's own cgroup (see MACHINE.md:
//! that cgroup belongs to the machine).

mod devices;
mod limits;
mod notify;
mod path;
mod stats;

use std::path::{Path, PathBuf};

use cgroups_rs::fs::hierarchies;
use cgroups_rs::manager::{FsManager, Manager};
use cgroups_rs::FreezerState;
use oci_spec::runtime::LinuxResources;

pub use notify::{MemoryWatch, Notice};
pub use path::{container_cgroup_path, ROOT};
pub use stats::Stats;

use crate::{Error, Result};

/// Which cgroup layout the host has.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Version {
    V1,
    V2,
}

impl Version {
    pub fn detect() -> Self {
        if hierarchies::is_cgroup2_unified_mode() {
            Self::V2
        } else {
            Self::V1
        }
    }
}

/// A container's cgroup, at `path` (like `/lcr/<id>`) in every hierarchy.
pub struct Cgroup {
    path: String,
    version: Version,
    mgr: FsManager,
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
        let cg =
            cgroups_rs::fs::Cgroup::new(hierarchies::auto(), rel).map_err(|e| Error::Cgroup {
                path: path.to_string(),
                reason: format!("create: {e}"),
            })?;
        let me = Self::load(path)?;
        if let Some(r) = resources {
            if let Err(e) = me.set(r) {
                let _ = cg.delete();
                return Err(e);
            }
        }
        Ok(me)
    }

    /// The existing cgroup at `path`.
    pub fn load(path: &str) -> Result<Self> {
        let rel = path.trim_start_matches('/');
        let mgr = FsManager::new(rel).map_err(|e| Error::Cgroup {
            path: path.to_string(),
            reason: e.to_string(),
        })?;
        Ok(Self {
            path: format!("/{rel}"),
            version: Version::detect(),
            mgr,
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
        cgroup_dir(
            &hierarchies::auto().root(),
            self.version,
            controller,
            &self.path,
        )
    }

    /// Where the process list is read and written.
    fn procs_dir(&self) -> PathBuf {
        self.dir(procs_controller(self.version))
    }

    pub fn add(&self, pid: i32) -> Result<()> {
        let rel = self.path.trim_start_matches('/');
        let cg = cgroups_rs::fs::Cgroup::load(hierarchies::auto(), rel);
        cg.add_task_by_tgid(cgroups_rs::CgroupPid::from(pid as u64))
            .map_err(|e| self.err(&format!("add pid {pid}"), e))?;
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
        let unified = hierarchies::auto().root().join("unified");
        unified
            .join("cgroup.procs")
            .exists()
            .then(|| unified.join(self.path.trim_start_matches('/')))
    }

    /// Applies resource limits. On v2, device rules need an eBPF program, which lcr does not
    /// attach yet: they are skipped with a warning rather than failing every default config.
    pub fn set(&self, resources: &LinuxResources) -> Result<()> {
        let mut r = limits::checked(resources)?;
        if self.version == Version::V2 && r.devices().as_ref().is_some_and(|d| !d.is_empty()) {
            tracing::warn!(path = %self.path, "cgroup v2: device rules are not enforced");
            r.set_devices(None);
        }
        if let Some(d) = r.devices().clone() {
            r.set_devices(Some(devices::effective_device_rules(&d)));
        }
        let mut mgr = self.mgr.clone();
        mgr.set(&r).map_err(|e| self.err("set resources", e))
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

    pub fn freeze(&self) -> Result<()> {
        self.mgr
            .freeze(FreezerState::Frozen)
            .map_err(|e| self.err("freeze", e))
    }

    pub fn thaw(&self) -> Result<()> {
        self.mgr
            .freeze(FreezerState::Thawed)
            .map_err(|e| self.err("thaw", e))
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

    pub fn stats(&self) -> Stats {
        let mut st = Stats::from(self.mgr.stats());
        if self.version == Version::V2 {
            // v2 has no cpuacct: usage comes from cpu.stat, in microseconds.
            let text = std::fs::read_to_string(self.dir(None).join("cpu.stat")).unwrap_or_default();
            stats::fill_cpu_from_v2(&mut st, &text);
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

    /// Removes the cgroup from every hierarchy. The caller makes sure no process is left in it.
    pub fn destroy(&self) -> Result<()> {
        let rel = self.path.trim_start_matches('/');
        let cg = cgroups_rs::fs::Cgroup::load(hierarchies::auto(), rel);
        // What cgroups-rs cannot remove (a cgroup missing from some hierarchies, say) is
        // removed below, or named there.
        if let Err(e) = cg.delete() {
            tracing::debug!(error = %e, path = %self.path, "cgroups-rs delete");
        }
        // Sub-cgroups (CRIU may make some on restore), the hybrid unified one, and on v2 the
        // cgroup itself if cgroups-rs left it.
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
    let root = hierarchies::auto().root();
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
