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
    private_mount_point(at)?;
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

/// A clone's root for CRIU: an overlay of `lowers` (the topmost first) with `upper` (and its
/// overlayfs work directory `work`) taking the clone's writes, mounted at `at` in a private
/// mount namespace of this lcr process. The restored container's mount namespace keeps the
/// overlay for as long as it lives; nothing of it is mounted on the host.
pub(super) fn overlay_root(
    lowers: &[PathBuf],
    upper: &Path,
    work: &Path,
    at: &Path,
) -> Result<CriuRoot> {
    private_mount_point(at)?;
    for d in [upper, work] {
        std::fs::create_dir_all(d).ctx(|| format!("mkdir {}", d.display()))?;
    }
    let lower: Vec<String> = lowers.iter().map(|p| p.display().to_string()).collect();
    let data = format!(
        "lowerdir={},upperdir={},workdir={}",
        lower.join(":"),
        upper.display(),
        work.display()
    );
    mount(
        Some("overlay"),
        at,
        Some("overlay"),
        MsFlags::empty(),
        Some(data.as_str()),
    )
    .ctx(|| format!("mount the clone's overlay ({data}) at {}", at.display()))?;
    Ok(CriuRoot(at.to_path_buf()))
}

/// This process's own mount namespace, private, with `at` made.
fn private_mount_point(at: &Path) -> Result<()> {
    unshare(CloneFlags::CLONE_NEWNS).ctx(|| "unshare mount namespace".into())?;
    mount(
        None::<&str>,
        "/",
        None::<&str>,
        MsFlags::MS_REC | MsFlags::MS_PRIVATE,
        None::<&str>,
    )
    .ctx(|| "make / private".into())?;
    std::fs::create_dir_all(at).ctx(|| format!("mkdir {}", at.display()))
}
