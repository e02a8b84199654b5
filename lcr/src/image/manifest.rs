//! The manifest: the first entry of every lcr archive. It says what the archive holds and
//! where it was made, so that `inspect` needs nothing else and import can check every entry
//! (name, size, SHA-256) as it arrives.

use std::collections::HashSet;

use serde::{Deserialize, Serialize};

use super::layout;

/// The manifest format this lcr writes and reads.
pub const FORMAT: u32 = 1;
/// A manifest larger than this is refused before it is parsed.
pub const MAX_SIZE: u64 = 16 << 20;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Manifest {
    pub format: u32,
    #[serde(flatten)]
    pub origin: Origin,
    /// When the archive was written (RFC 3339).
    pub packed: String,
    pub container: Summary,
    /// Every file of the archive after the manifest, in archive order.
    pub entries: Vec<Entry>,
}

/// Where and with what a checkpoint was made.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Origin {
    pub lcr_version: String,
    pub criu_version: String,
    pub kernel: String,
    pub arch: String,
    pub cgroup_version: String,
    pub page_size: u64,
}

/// What `lcr image inspect` shows without reading past the manifest.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Summary {
    pub id: String,
    pub command: Vec<String>,
    pub created: Option<String>,
    pub checkpointed: String,
    pub namespaces: Vec<String>,
    pub mounts: Vec<MountSummary>,
    pub cgroup_path: String,
    /// `linux.resources` of the container's config, as written there.
    pub limits: Option<serde_json::Value>,
    /// Bytes of memory CRIU wrote (pages written × page size), when it reported them.
    pub memory_dumped: Option<u64>,
    pub rootfs_diff: bool,
    pub volumes: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct MountSummary {
    pub destination: String,
    pub source: String,
    pub kind: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Entry {
    pub name: String,
    pub size: u64,
    pub sha256: String,
}

impl Manifest {
    /// Why this manifest cannot be trusted to guide an import, if it cannot.
    pub fn check(&self) -> std::result::Result<(), String> {
        if self.format != FORMAT {
            return Err(format!(
                "manifest format {} is unknown: this lcr reads format {FORMAT}",
                self.format
            ));
        }
        let mut seen = HashSet::new();
        for e in &self.entries {
            layout::dir_name(&e.name)
                .map_err(|why| format!("manifest entry {:?}: {why}", layout::shortened(&e.name)))?;
            if !seen.insert(layout::dir_name(&e.name).unwrap_or_default()) {
                return Err(format!("manifest lists {:?} twice", e.name));
            }
            if e.name == layout::MANIFEST {
                return Err("the manifest lists itself".into());
            }
            if e.sha256.len() != 64 || !e.sha256.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(format!(
                    "manifest entry {:?}: sha256 {:?} is not 64 hex digits",
                    e.name, e.sha256
                ));
            }
        }
        Ok(())
    }

    /// The sum of all entry sizes: what a well-formed archive decompresses to, headers aside.
    pub fn total_size(&self) -> u64 {
        self.entries.iter().map(|e| e.size).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn manifest(entries: Vec<Entry>) -> Manifest {
        Manifest {
            format: FORMAT,
            origin: Origin {
                lcr_version: "0.1.0".into(),
                criu_version: "4.2.1".into(),
                kernel: "6.18".into(),
                arch: "x86_64".into(),
                cgroup_version: "v1".into(),
                page_size: 4096,
            },
            packed: String::new(),
            container: Summary::default(),
            entries,
        }
    }

    fn entry(name: &str) -> Entry {
        Entry {
            name: name.into(),
            size: 1,
            sha256: "a".repeat(64),
        }
    }

    #[test]
    fn checks_format_names_and_duplicates() {
        assert!(
            manifest(vec![entry("checkpoint/a.img"), entry("stats-dump")])
                .check()
                .is_ok()
        );
        let mut m = manifest(vec![]);
        m.format = 9;
        assert!(m.check().unwrap_err().contains("format 9"));
        let e = manifest(vec![entry("checkpoint/a.img"), entry("checkpoint/a.img")]).check();
        assert!(e.unwrap_err().contains("twice"));
        assert!(manifest(vec![entry("../etc/passwd")]).check().is_err());
        let mut bad = entry("stats-dump");
        bad.sha256 = "zz".into();
        assert!(manifest(vec![bad]).check().unwrap_err().contains("hex"));
    }
}
