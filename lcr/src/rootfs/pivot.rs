use std::path::Path;

use nix::fcntl::{open, OFlag};
use nix::mount::{mount, umount2, MntFlags, MsFlags};
use nix::sys::stat::Mode;
use nix::unistd::{chdir, chroot, fchdir, pivot_root};

use crate::error::Context;
use crate::Result;

/// Makes `rootfs` the root with pivot_root(".", "."): the old root is stacked under the new
/// one and detached at once, so no directory for it is needed in the rootfs.
pub fn enter_root(rootfs: &Path) -> Result<()> {
    let flags = OFlag::O_DIRECTORY | OFlag::O_RDONLY | OFlag::O_CLOEXEC;
    let old = open("/", flags, Mode::empty()).ctx(|| "open /".into())?;
    let new = open(rootfs, flags, Mode::empty()).ctx(|| format!("open {}", rootfs.display()))?;
    fchdir(&new).ctx(|| "chdir to rootfs".into())?;
    pivot_root(".", ".").ctx(|| format!("pivot_root into {}", rootfs.display()))?;
    fchdir(&old).ctx(|| "chdir to old root".into())?;
    // Keep the unmount below from propagating to the host.
    mount(
        None::<&str>,
        ".",
        None::<&str>,
        MsFlags::MS_SLAVE | MsFlags::MS_REC,
        None::<&str>,
    )
    .ctx(|| "make old root rslave".into())?;
    umount2(".", MntFlags::MNT_DETACH).ctx(|| "detach old root".into())?;
    chdir("/").ctx(|| "chdir /".into())
}

/// `--no-pivot`: move the rootfs over / and chroot (for roots where pivot_root is refused,
/// such as an initramfs). Less isolated: the old root stays reachable to CAP_SYS_CHROOT.
pub fn no_pivot(rootfs: &Path) -> Result<()> {
    chdir(rootfs).ctx(|| format!("chdir {}", rootfs.display()))?;
    mount(
        Some(rootfs),
        "/",
        None::<&str>,
        MsFlags::MS_MOVE,
        None::<&str>,
    )
    .ctx(|| "move rootfs to /".into())?;
    chroot(".").ctx(|| "chroot".into())?;
    chdir("/").ctx(|| "chdir /".into())
}

/// The container shares the host's mount namespace: a chroot into `rootfs`, nothing mounted.
pub fn chroot_into(rootfs: &Path) -> Result<()> {
    chdir(rootfs).ctx(|| format!("chdir {}", rootfs.display()))?;
    chroot(".").ctx(|| format!("chroot into {}", rootfs.display()))?;
    chdir("/").ctx(|| "chdir /".into())
}
