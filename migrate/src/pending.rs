//! The record a source keeps, in the container's directory, of a migration whose outcome it
//! may not learn: written before the destination is asked to restore, gone with the
//! container once it moved, removed when the destination refused. An lcr killed (or a
//! connection cut) in between leaves it for `lcr migrate --resolve`, which asks the
//! destination what became of the container.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::ssh::Ssh;
use crate::{Error, Result};

const FILE: &str = "migration.json";

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Pending {
    /// `ssh://[user@]host[:port]`.
    pub dest: String,
    pub ssh: Ssh,
    pub dest_lcr: String,
    pub dest_root: PathBuf,
    pub dest_id: String,
}

impl Pending {
    pub fn write(&self, container_dir: &Path) -> Result<()> {
        let text = serde_json::to_vec_pretty(self).expect("a plain record serialises");
        lcr::fsutil::write_atomic(&container_dir.join(FILE), &text).map_err(Error::Lcr)
    }

    /// The record in `container_dir`, if a hand-over left one.
    pub fn read(container_dir: &Path) -> Result<Option<Self>> {
        let path = container_dir.join(FILE);
        match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map(Some)
                .map_err(|e| Error::Invalid {
                    what: "migration record",
                    value: path.display().to_string(),
                    reason: e.to_string(),
                }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(cause) => Err(Error::Io {
                context: format!("read {}", path.display()),
                cause,
            }),
        }
    }

    pub fn remove(container_dir: &Path) {
        let _ = std::fs::remove_file(container_dir.join(FILE));
    }
}
