//! lcr's own record in a checkpoint's image directory: what was dumped, from where, with what,
//! so that restore can check compatibility before CRIU sees anything.

use std::path::{Path, PathBuf};

use oci_spec::runtime::Spec;
use serde::{Deserialize, Serialize};

use super::mounts::ExternalMount;
use super::stats::DumpStats;
use super::stdio::StdioFile;
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
}

impl Record {
    pub fn write(&self, dir: &Path) -> Result<()> {
        crate::container::write_json(&dir.join(RECORD_FILE), self)
    }

    pub fn read(dir: &Path) -> Result<Self> {
        let file = dir.join(RECORD_FILE);
        let text = std::fs::read_to_string(&file).map_err(|e| Error::Other {
            context: format!("checkpoint {}", dir.display()),
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
