//! Bind-mount contents in a checkpoint (`--with-volumes`): each bind mount's host source as a
//! tar under `volumes/`, written while the container is frozen, and put back into the restore
//! bundle's source for the same destination before the restore.

use std::path::Path;

use oci_spec::runtime::Spec;

use super::mounts::{restore_source, ExternalMount, MountKind};
use crate::cgroups::Cgroup;
use crate::error::Context;
use crate::image::layout::VOLUMES_DIR;
use crate::image::tree;
use crate::image::volumes::{Index, Volume, INDEX};
use crate::{Error, Result};

pub fn save(mounts: &[ExternalMount], image_dir: &Path) -> Result<Index> {
    let dir = image_dir.join(VOLUMES_DIR);
    std::fs::create_dir_all(&dir).ctx(|| format!("create {}", dir.display()))?;
    let mut index = Index::default();
    for m in mounts.iter().filter(|m| m.kind == MountKind::Bind) {
        let Ok(md) = std::fs::metadata(&m.source) else {
            continue;
        };
        // Device nodes and sockets bound in are the host's, not contents to carry.
        if !(md.is_dir() || md.is_file()) {
            continue;
        }
        let file = format!("{}.tar", index.volumes.len());
        let name = m
            .source
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "file".into());
        tree::write_tree(&m.source, &name, &dir.join(&file))?;
        index.volumes.push(Volume {
            destination: m.destination.display().to_string(),
            source: m.source.display().to_string(),
            file,
            is_file: md.is_file(),
        });
    }
    crate::fsutil::write_json(&dir.join(INDEX), &index)?;
    Ok(index)
}

/// Whether the restore bundle mounts `destination` read-only.
fn read_only_in(spec: &Spec, destination: &str) -> bool {
    spec.mounts().iter().flatten().any(|m| {
        m.destination() == Path::new(destination) && m.options().iter().flatten().any(|o| o == "ro")
    })
}

/// Puts saved volume contents into the restore bundle's bind sources (asked for with
/// `--with-volumes` on restore: an archive's author does not decide to overwrite host files).
/// A bind the bundle mounts read-only is refused before anything is written.
pub fn restore(image_dir: &Path, spec: &Spec, bundle: &Path, cgroup: &Cgroup) -> Result<usize> {
    let Some(index) = Index::read(image_dir) else {
        return Ok(0);
    };
    if let Some(v) = index
        .volumes
        .iter()
        .find(|v| read_only_in(spec, &v.destination))
    {
        return Err(Error::Volume {
            destination: v.destination.clone(),
            reason: format!(
                "{} mounts it read-only: the checkpoint's contents for it are not written into its source",
                bundle.join("config.json").display(),
            ),
        });
    }
    for v in &index.volumes {
        let m = ExternalMount {
            destination: v.destination.clone().into(),
            kind: MountKind::Bind,
            source: v.source.clone().into(),
            hierarchy: None,
        };
        let dest = restore_source(&m, spec, bundle, cgroup).ok_or_else(|| Error::Volume {
            destination: v.destination.clone(),
            reason: format!(
                "the checkpoint holds the contents of this bind mount, and {} has no bind mount there",
                bundle.join("config.json").display()
            ),
        })?;
        if v.file.contains('/') || v.file.starts_with('.') {
            return Err(Error::Value {
                what: format!("{}/{INDEX} file", VOLUMES_DIR),
                value: v.file.clone(),
                reason: "not a plain file name".into(),
            });
        }
        let tar = image_dir.join(VOLUMES_DIR).join(&v.file);
        if v.is_file {
            // One file: extracted beside it, then renamed over it.
            let parent = dest.parent().unwrap_or(Path::new("/"));
            let tmp = tempfile::Builder::new()
                .prefix(".lcr-volume-")
                .tempdir_in(parent)
                .ctx(|| format!("temporary directory in {}", parent.display()))?;
            tree::extract(&tar, tmp.path())?;
            let one = std::fs::read_dir(tmp.path())
                .ctx(|| format!("read {}", tmp.path().display()))?
                .flatten()
                .next()
                .ok_or_else(|| Error::Volume {
                    destination: v.destination.clone(),
                    reason: format!("{} is empty", tar.display()),
                })?;
            std::fs::rename(one.path(), &dest).ctx(|| format!("replace {}", dest.display()))?;
        } else {
            std::fs::create_dir_all(&dest).ctx(|| format!("create {}", dest.display()))?;
            tree::extract(&tar, &dest)?;
        }
    }
    Ok(index.volumes.len())
}
