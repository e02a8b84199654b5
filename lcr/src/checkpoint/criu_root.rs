//! CRIU's root for a restore: the restore bundle's rootfs bound at a mount point that only
//! this lcr process sees.

use std::path::{Path, PathBuf};

use nix::mount::{mount, MsFlags};
use nix::sched::{unshare, CloneFlags};

use crate::error::Context;
use crate::Result;

/// The restore bundle's rootfs bound at `<state dir>/criu-root`; unmounted when dropped, which
/// must come before anything removes the state directory (else the removal walks into the
/// rootfs: declare it after the [`Rollback`]).
pub(super) struct CriuRoot(pub PathBuf);

impl Drop for CriuRoot {
    fn drop(&mut self) {
        if let Err(e) = nix::mount::umount2(&self.0, nix::mount::MntFlags::MNT_DETACH) {
            tracing::warn!(path = %self.0.display(), error = %e, "unmount of CRIU's root failed");
        }
        let _ = std::fs::remove_dir(&self.0);
    }
}

/// Gives CRIU a root that is a mount point (it requires one) in a private mount namespace of
/// this lcr process, so nothing is visible on the host and it vanishes when lcr exits.
pub(super) fn private_root(rootfs: &Path, at: &Path) -> Result<CriuRoot> {
    unshare(CloneFlags::CLONE_NEWNS).ctx(|| "unshare mount namespace".into())?;
    mount(
        None::<&str>,
        "/",
        None::<&str>,
        MsFlags::MS_REC | MsFlags::MS_PRIVATE,
        None::<&str>,
    )
    .ctx(|| "make / private".into())?;
    std::fs::create_dir_all(at).ctx(|| format!("mkdir {}", at.display()))?;
    mount(
        Some(rootfs),
        at,
        None::<&str>,
        MsFlags::MS_BIND | MsFlags::MS_REC,
        None::<&str>,
    )
    .ctx(|| format!("bind {} for CRIU", rootfs.display()))?;
    Ok(CriuRoot(at.to_path_buf()))
}
