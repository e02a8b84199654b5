//! Changes to a writable rootfs since the container started, for `--with-rootfs-diff`.
//!
//! When a container with a writable rootfs is created (or restored), lcr records a baseline:
//! every path under the rootfs with its inode, size, mode and change times. At checkpoint the
//! tree is walked again: paths that are new or whose metadata changed go into
//! `rootfs-diff.tar`, paths that disappeared into `deleted.files`. Restore applies both to the
//! restore bundle's rootfs before CRIU runs, so a host with the original rootfs gets the
//! container's files back. The walk stays on the rootfs's filesystem (mounts inside the
//! container are not visible from the host, and their contents are CRIU's or the volumes').

use std::collections::BTreeMap;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::Context;
use crate::image::layout::{DELETED_FILES, ROOTFS_DIFF};
use crate::image::tree;
use crate::{Error, Result};

/// The baseline's file in the container's state directory.
pub const BASELINE_FILE: &str = "rootfs-baseline.json";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
struct Meta {
    ino: u64,
    size: u64,
    mode: u32,
    mtime_ns: i128,
    ctime_ns: i128,
}

impl Meta {
    fn of(md: &std::fs::Metadata) -> Self {
        Self {
            ino: md.ino(),
            size: md.size(),
            mode: md.mode(),
            mtime_ns: i128::from(md.mtime()) * 1_000_000_000 + i128::from(md.mtime_nsec()),
            ctime_ns: i128::from(md.ctime()) * 1_000_000_000 + i128::from(md.ctime_nsec()),
        }
    }
}

/// Every path under a rootfs (relative, `/`-separated) with its metadata.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Baseline {
    paths: BTreeMap<String, Meta>,
}

impl Baseline {
    /// The baseline of a container's rootfs when it is writable (else there is nothing to diff).
    pub fn for_spec(spec: &oci_spec::runtime::Spec, rootfs: &Path) -> Result<Option<Self>> {
        let readonly = spec
            .root()
            .as_ref()
            .and_then(|r| r.readonly())
            .unwrap_or(false);
        if readonly {
            return Ok(None);
        }
        Self::take(rootfs).map(Some)
    }

    pub fn take(rootfs: &Path) -> Result<Self> {
        let root_md =
            std::fs::symlink_metadata(rootfs).ctx(|| format!("stat {}", rootfs.display()))?;
        let mut paths = BTreeMap::new();
        walk(rootfs, "", root_md.dev(), &mut paths)?;
        Ok(Self { paths })
    }

    pub fn save(&self, container_dir: &Path) -> Result<()> {
        crate::container::write_json(&container_dir.join(BASELINE_FILE), self)
    }

    pub fn load(container_dir: &Path) -> Option<Self> {
        let text = std::fs::read(container_dir.join(BASELINE_FILE)).ok()?;
        serde_json::from_slice(&text).ok()
    }
}

fn walk(root: &Path, rel: &str, dev: u64, out: &mut BTreeMap<String, Meta>) -> Result<()> {
    let dir = if rel.is_empty() {
        root.to_path_buf()
    } else {
        root.join(rel)
    };
    let rd = match std::fs::read_dir(&dir) {
        Ok(rd) => rd,
        // Vanished while walking (the container is running): not part of either side.
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => {
            return Err(Error::Io {
                context: format!("read {}", dir.display()),
                source: e,
            })
        }
    };
    for e in rd.flatten() {
        let Some(name) = e.file_name().to_str().map(str::to_string) else {
            tracing::warn!(path = %e.path().display(), "not UTF-8: left out of the rootfs diff");
            continue;
        };
        let Ok(md) = e.path().symlink_metadata() else {
            continue;
        };
        let child = if rel.is_empty() {
            name
        } else {
            format!("{rel}/{name}")
        };
        out.insert(child.clone(), Meta::of(&md));
        if md.is_dir() && md.dev() == dev {
            walk(root, &child, dev, out)?;
        }
    }
    Ok(())
}

/// What changed under a rootfs since its baseline.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Diff {
    /// New or changed paths (parents before children).
    pub changed: Vec<String>,
    /// Paths gone since the baseline; a deleted directory's children are not listed.
    pub deleted: Vec<String>,
}

pub fn diff(rootfs: &Path, base: &Baseline) -> Result<Diff> {
    let now = Baseline::take(rootfs)?;
    let changed = now
        .paths
        .iter()
        .filter(|(p, m)| base.paths.get(*p) != Some(m))
        .map(|(p, _)| p.clone())
        .collect();
    let mut deleted: Vec<String> = Vec::new();
    for p in base.paths.keys().filter(|p| !now.paths.contains_key(*p)) {
        if !deleted.iter().any(|d| p.starts_with(&format!("{d}/"))) {
            deleted.push(p.clone());
        }
    }
    Ok(Diff { changed, deleted })
}

/// Writes `rootfs-diff.tar` and `deleted.files` into `image_dir`.
pub fn save(rootfs: &Path, base: &Baseline, image_dir: &Path) -> Result<Diff> {
    let d = diff(rootfs, base)?;
    tree::write_tar(rootfs, &d.changed, &image_dir.join(ROOTFS_DIFF))?;
    crate::container::write_json(&image_dir.join(DELETED_FILES), &d.deleted)?;
    Ok(d)
}

/// Applies a checkpoint's rootfs changes (if it has any) to `rootfs`: deletions first, then
/// the changed files. Returns (changed, deleted) counts.
pub fn apply(image_dir: &Path, rootfs: &Path) -> Result<Option<(usize, usize)>> {
    let diff_tar = image_dir.join(ROOTFS_DIFF);
    if !diff_tar.exists() {
        return Ok(None);
    }
    let deleted: Vec<String> = match std::fs::read(image_dir.join(DELETED_FILES)) {
        Ok(text) => serde_json::from_slice(&text).map_err(|e| Error::Config {
            file: image_dir.join(DELETED_FILES),
            field: "(document)".into(),
            reason: e.to_string(),
        })?,
        Err(_) => Vec::new(),
    };
    let canon_root = rootfs
        .canonicalize()
        .ctx(|| format!("resolve {}", rootfs.display()))?;
    for rel in &deleted {
        remove_inside(&canon_root, rel).map_err(|reason| Error::Value {
            what: format!("{} entry", image_dir.join(DELETED_FILES).display()),
            value: rel.clone(),
            reason,
        })?;
    }
    let n = tree::extract(&diff_tar, &canon_root)?;
    Ok(Some((n, deleted.len())))
}

/// Removes `root/rel` (file, link or whole directory), refusing paths that leave `root`.
fn remove_inside(root: &Path, rel: &str) -> std::result::Result<(), String> {
    if rel.is_empty()
        || rel.starts_with('/')
        || rel
            .split('/')
            .any(|c| c.is_empty() || c == "." || c == "..")
    {
        return Err("not a plain relative path".into());
    }
    let target = root.join(rel);
    let parent = target.parent().unwrap_or(root);
    match parent.canonicalize() {
        Ok(p) if p.starts_with(root) => {}
        Ok(p) => {
            return Err(format!(
                "its directory resolves to {}, outside the rootfs",
                p.display()
            ))
        }
        // The parent is gone already, and so is the path.
        Err(_) => return Ok(()),
    }
    let r = match target.symlink_metadata() {
        Ok(md) if md.is_dir() => std::fs::remove_dir_all(&target),
        Ok(_) => std::fs::remove_file(&target),
        Err(_) => return Ok(()),
    };
    r.map_err(|e| format!("remove {}: {e}", target.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_changed_added_and_deleted_paths_and_applies_them() {
        let t = tempfile::tempdir().unwrap();
        let root = t.path().join("root");
        std::fs::create_dir_all(root.join("etc/sub")).unwrap();
        std::fs::write(root.join("etc/keep"), "same").unwrap();
        std::fs::write(root.join("etc/change"), "old").unwrap();
        std::fs::write(root.join("etc/gone"), "x").unwrap();
        std::fs::write(root.join("etc/sub/f"), "x").unwrap();
        let copy = t.path().join("copy");
        std::process::Command::new("cp")
            .arg("-a")
            .arg(&root)
            .arg(&copy)
            .status()
            .unwrap();
        let base = Baseline::take(&root).unwrap();

        std::fs::write(root.join("etc/change"), "new content").unwrap();
        std::fs::write(root.join("new"), "hello").unwrap();
        std::fs::remove_file(root.join("etc/gone")).unwrap();
        std::fs::remove_dir_all(root.join("etc/sub")).unwrap();
        std::os::unix::fs::symlink("/etc/passwd", root.join("link")).unwrap();
        let images = t.path().join("img");
        std::fs::create_dir(&images).unwrap();
        let d = save(&root, &base, &images).unwrap();
        assert!(d.changed.contains(&"etc/change".to_string()));
        assert!(d.changed.contains(&"new".to_string()));
        assert!(!d.changed.contains(&"etc/keep".to_string()));
        assert_eq!(
            d.deleted,
            vec!["etc/gone".to_string(), "etc/sub".to_string()]
        );

        assert_eq!(apply(&images, &copy).unwrap().map(|(_, del)| del), Some(2));
        assert_eq!(
            std::fs::read_to_string(copy.join("etc/change")).unwrap(),
            "new content"
        );
        assert_eq!(std::fs::read_to_string(copy.join("new")).unwrap(), "hello");
        assert!(!copy.join("etc/gone").exists() && !copy.join("etc/sub").exists());
        assert_eq!(
            std::fs::read_link(copy.join("link")).unwrap(),
            Path::new("/etc/passwd")
        );
        assert_eq!(
            std::fs::read_to_string(copy.join("etc/keep")).unwrap(),
            "same"
        );
    }

    #[test]
    fn deletions_that_leave_the_rootfs_are_refused() {
        let t = tempfile::tempdir().unwrap();
        std::fs::create_dir(t.path().join("root")).unwrap();
        std::fs::write(t.path().join("outside"), "x").unwrap();
        let root = t.path().join("root").canonicalize().unwrap();
        assert!(remove_inside(&root, "../outside").is_err());
        std::os::unix::fs::symlink(t.path(), root.join("up")).unwrap();
        assert!(remove_inside(&root, "up/outside")
            .unwrap_err()
            .contains("outside the rootfs"));
        assert!(t.path().join("outside").exists());
    }
}
