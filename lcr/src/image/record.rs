//! lcr's own record in a checkpoint's image directory: what was dumped, from where, with what,
//! so that restore can check compatibility before CRIU sees anything. The checkpoint code
//! writes and reads it; `image/` shows and verifies it.

use std::path::{Path, PathBuf};

use oci_spec::runtime::Spec;
use serde::{Deserialize, Serialize};

use super::stats::DumpStats;
use crate::{Error, Result};

pub const RECORD_FILE: &str = "lcr-checkpoint.json";
pub const FORMAT: u32 = 1;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Record {
    pub format: u32,
    pub id: String,
    pub lcr_version: String,
    pub criu_version: String,
    pub kernel: String,
    pub arch: String,
    pub cgroup_version: crate::cgroups::Version,
    pub cgroup_path: String,
    pub checkpointed: String,
    /// When the container was created (absent in records of older lcr versions).
    #[serde(default)]
    pub created: Option<String>,
    /// The container's config at checkpoint time.
    pub config: Spec,
    pub bundle: PathBuf,
    /// Mounts CRIU saved as external, by destination: restore must provide each.
    pub mounts: Vec<ExternalMount>,
    /// The init's stdio as it was: reconnected on restore.
    pub stdio: Vec<StdioFile>,
    /// Namespaces the container joined by path, saved as external (CRIU key per type).
    pub external_namespaces: Vec<(String, String)>,
    pub leave_running: bool,
    /// Whether this is a pre-dump (memory only; not restorable on its own).
    pub pre_dump: bool,
    pub parent: Option<PathBuf>,
    pub stats: Option<DumpStats>,
    /// Written before CRIU dumps (a lazy restore reads it while the dump serves pages) and
    /// cleared once CRIU reported success: a provisional record in a directory means the
    /// dump never finished, and its container may still be running.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub provisional: bool,
    /// The init that was dumped, as this host knew it: a restore on the same host refuses the
    /// images while that process still runs and was meant to end with the checkpoint (an lcr
    /// killed between CRIU's `post-dump` and the end of the dump leaves both behind).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub init: Option<InitProcess>,
}

/// A process named so that it cannot be mistaken for another: pid, start time and boot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InitProcess {
    pub pid: i32,
    pub start_time: u64,
    pub boot_id: String,
}

impl InitProcess {
    pub fn of(pid: i32, start_time: u64) -> Self {
        Self {
            pid,
            start_time,
            boot_id: boot_id(),
        }
    }

    /// Whether this very process still runs here.
    pub fn alive(&self) -> bool {
        self.boot_id == boot_id() && crate::procfs::is_alive(self.pid, self.start_time)
    }
}

/// This boot's id: pids and start times mean nothing across boots.
fn boot_id() -> String {
    std::fs::read_to_string("/proc/sys/kernel/random/boot_id")
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
}

impl Record {
    pub fn write(&self, dir: &Path) -> Result<()> {
        crate::fsutil::write_json(&dir.join(RECORD_FILE), self)
    }

    pub fn read(dir: &Path) -> Result<Self> {
        let file = dir.join(RECORD_FILE);
        let text = std::fs::read_to_string(&file).map_err(|e| Error::NotACheckpoint {
            dir: dir.to_path_buf(),
            reason: if e.kind() == std::io::ErrorKind::NotFound {
                format!("{RECORD_FILE} is missing: not an lcr checkpoint (or not a complete one)")
            } else {
                format!("{}: {e}", file.display())
            },
        })?;
        let r: Record = serde_json::from_str(&text).map_err(|e| Error::Config {
            file: file.clone(),
            field: "(document)".into(),
            reason: e.to_string(),
        })?;
        if r.format != FORMAT {
            return Err(Error::Value {
                what: format!("{} format", file.display()),
                value: r.format.to_string(),
                reason: format!("this lcr reads format {FORMAT}"),
            });
        }
        Ok(r)
    }
}

pub fn kernel_release() -> String {
    nix::sys::utsname::uname()
        .map(|u| u.release().to_string_lossy().into_owned())
        .unwrap_or_default()
}

pub fn machine_arch() -> String {
    std::env::consts::ARCH.to_string()
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MountKind {
    /// A bind mount from the config: the restore config's source for the same destination.
    Bind,
    /// One cgroup hierarchy under the cgroup mount: the new container's cgroup directory.
    Cgroup,
    /// /dev/null over a masked file.
    Masked,
    /// A host device node bound in (a container in a user namespace may not make one): the
    /// same node on the restoring host.
    Device,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExternalMount {
    /// Mount point in the container; also the key CRIU saves it under.
    pub destination: PathBuf,
    pub kind: MountKind,
    /// Host source at checkpoint time (for information and `inspect`).
    pub source: PathBuf,
    /// For cgroup binds: the hierarchy's mount point on the host.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hierarchy: Option<PathBuf>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StdioKind {
    Pipe,
    File,
    Tty,
    Socket,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StdioFile {
    pub fd: i32,
    pub kind: StdioKind,
    /// What /proc/PID/fd/N showed.
    pub path: String,
    /// CRIU's id for it: `pipe:[ino]`, `file[mnt:ino]`, `tty[rdev:dev]`, `socket:[ino]`.
    pub key: String,
    /// Whether it must be passed to CRIU as `--external` on dump (pipes and sockets need not).
    pub external: bool,
    /// What it was, as `checkpoint::stdio::classify` names it (absent in records of older lcr versions).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file_type: Option<String>,
}
