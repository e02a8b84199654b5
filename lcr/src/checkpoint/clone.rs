//! `lcr restore --clone`: one of any number of restores of the same images, concurrent or
//! not, each its own container. What differs from a plain restore:
//!
//! - the rootfs is an overlay per clone: the restore bundle's rootfs with the checkpoint's
//!   rootfs changes on top (a layer extracted once and shared, see
//!   [`crate::rootfs::snapshot_layer`]) as lower layers, a fresh upper directory in the
//!   clone's state directory for its writes; the bundle's rootfs is never written;
//! - nothing is written into the image directory (CRIU's log and statistics go to a work
//!   directory of the clone's own), so a read-only image directory serves;
//! - optionally, the restored processes' memory is marked mergeable (KSM), so that pages
//!   identical across clones can be shared where KSM runs.

use std::path::{Path, PathBuf};

use super::criu_root::{overlay_root, CriuRoot};
use crate::rootfs::snapshot_layer::{Layer, Layers};
use crate::Result;

/// Options of a clone (`RestoreOpts::clone`).
#[derive(Debug, Clone, Default)]
pub struct CloneOpts {
    /// Mark the restored processes' memory mergeable (`PR_SET_MEMORY_MERGE`): KSM, where it
    /// runs (`/sys/kernel/mm/ksm/run`, which lcr never changes), shares identical pages.
    pub merge_memory: bool,
}

/// A clone's rootfs: its overlay mounted for CRIU, and its reference to the shared layer
/// (released if the restore fails).
pub(super) struct CloneRoot {
    /// Taken by the restore, which unmounts it once CRIU is done.
    pub root: Option<CriuRoot>,
    pub layer: Option<TakenLayer>,
}

/// A reference to a shared layer, released when dropped unless kept (the clone is complete:
/// its deletion releases it).
pub(super) struct TakenLayer {
    layers: Layers,
    pub layer: Layer,
    id: String,
    kept: bool,
}

impl TakenLayer {
    pub fn keep(&mut self) {
        self.kept = true;
    }
}

impl Drop for TakenLayer {
    fn drop(&mut self) {
        if !self.kept {
            if let Err(e) = self.layers.release(&self.layer.key, &self.id) {
                tracing::warn!(error = %e, layer = %self.layer.key, "clone layer not released");
            }
        }
    }
}

/// Mounts clone `id`'s overlay at `<dir>/criu-root`: the layer `layer_key` of the
/// checkpoint's rootfs changes in `image_dir` (if it has any) over `rootfs`, writes into
/// `<dir>/upper`.
pub(super) fn mount_root(
    (store_root, id): (&Path, &str),
    (image_dir, layer_key): (&Path, Option<&str>),
    rootfs: &Path,
    (dir, at): (&Path, &Path),
) -> Result<CloneRoot> {
    let layers = Layers::in_root(store_root);
    let layer = match layer_key {
        Some(key) => Some(TakenLayer {
            layer: layers.take(image_dir, key, id)?,
            layers,
            id: id.to_string(),
            kept: false,
        }),
        None => None,
    };
    let mut lowers: Vec<PathBuf> = layer.iter().map(|l| l.layer.path.clone()).collect();
    lowers.push(rootfs.to_path_buf());
    let root = overlay_root(&lowers, &dir.join("upper"), &dir.join("overlay-work"), at)?;
    Ok(CloneRoot {
        root: Some(root),
        layer,
    })
}

/// While alive, processes this one starts (CRIU, and the tree it restores by forking) have
/// their memory marked mergeable: the mark is inherited across fork and exec.
pub(super) struct MergeMemory;

impl MergeMemory {
    pub fn start() -> std::io::Result<Self> {
        set_memory_merge(1)?;
        Ok(Self)
    }
}

impl Drop for MergeMemory {
    fn drop(&mut self) {
        let _ = set_memory_merge(0);
    }
}

fn set_memory_merge(on: libc::c_ulong) -> std::io::Result<()> {
    // SAFETY: PR_SET_MEMORY_MERGE takes an integer argument and touches no memory of ours.
    let r = unsafe { libc::prctl(libc::PR_SET_MEMORY_MERGE, on, 0, 0, 0) };
    if r == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}
