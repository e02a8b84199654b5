use std::path::Path;

use nix::fcntl::AtFlags;
use nix::mount::{mount, MsFlags};
use nix::sys::stat::{fstatat, makedev, mknodat, umask, Mode, SFlag};
use nix::unistd::{fchownat, symlinkat, unlinkat, Gid, Uid, UnlinkatFlags};
use oci_spec::runtime::{LinuxDevice, LinuxDeviceType};

use super::RootDir;
use crate::error::Context;
use crate::Result;

/// The devices every container gets (OCI runtime spec, "Default Devices").
pub(crate) const DEFAULTS: &[(&str, u64, u64)] = &[
    ("/dev/null", 1, 3),
    ("/dev/zero", 1, 5),
    ("/dev/full", 1, 7),
    ("/dev/random", 1, 8),
    ("/dev/urandom", 1, 9),
    ("/dev/tty", 5, 0),
];

/// Creates the default devices and `extra` under `rootfs`. In a user namespace, where mknod
/// is refused, the host's node is bind-mounted instead.
pub fn create_devices(rootfs: &Path, extra: &[LinuxDevice], in_userns: bool) -> Result<()> {
    let root = RootDir::open(rootfs)?;
    let old = umask(Mode::empty());
    let r = (|| {
        for &(path, major, minor) in DEFAULTS {
            make(
                &root,
                Path::new(path),
                SFlag::S_IFCHR,
                major,
                minor,
                0o666,
                0,
                0,
                in_userns,
            )?;
        }
        for d in extra {
            let kind = match d.typ() {
                LinuxDeviceType::C | LinuxDeviceType::U => SFlag::S_IFCHR,
                LinuxDeviceType::B => SFlag::S_IFBLK,
                LinuxDeviceType::P => SFlag::S_IFIFO,
                LinuxDeviceType::A => continue,
            };
            make(
                &root,
                d.path(),
                kind,
                d.major() as u64,
                d.minor() as u64,
                d.file_mode().unwrap_or(0o666),
                d.uid().unwrap_or(0),
                d.gid().unwrap_or(0),
                in_userns,
            )?;
        }
        Ok(())
    })();
    umask(old);
    r
}

#[allow(clippy::too_many_arguments)]
fn make(
    root: &RootDir,
    path: &Path,
    kind: SFlag,
    major: u64,
    minor: u64,
    mode: u32,
    uid: u32,
    gid: u32,
    in_userns: bool,
) -> Result<()> {
    // The entry itself is made, removed and owned through its directory, resolved inside the
    // rootfs: a `dev` symlinked to the host's /dev is the rootfs's own /dev.
    let (dir, name) = root.parent_of(path)?;
    let shown = || root.shown(path).display().to_string();
    let _ = unlinkat(dir.fd(), name.as_os_str(), UnlinkatFlags::NoRemoveDir);
    if in_userns {
        let target = root.make_target(path, false)?;
        return mount(
            Some(path),
            &target.proc_path(),
            None::<&str>,
            MsFlags::MS_BIND,
            None::<&str>,
        )
        .ctx(|| format!("bind device {}", path.display()));
    }
    mknodat(
        dir.fd(),
        name.as_os_str(),
        kind,
        Mode::from_bits_truncate(mode),
        makedev(major, minor),
    )
    .ctx(|| format!("mknod {}", shown()))?;
    fchownat(
        dir.fd(),
        name.as_os_str(),
        Some(Uid::from_raw(uid)),
        Some(Gid::from_raw(gid)),
        AtFlags::AT_SYMLINK_NOFOLLOW,
    )
    .ctx(|| format!("chown {}", shown()))
}

/// /dev/fd, /dev/std{in,out,err} and /dev/ptmx, as the OCI spec asks.
pub fn create_dev_symlinks(rootfs: &Path) -> Result<()> {
    let root = RootDir::open(rootfs)?;
    let dev = root.make_dirs(Path::new("/dev"))?;
    let exists = |name: &str| fstatat(dev.fd(), name, AtFlags::AT_SYMLINK_NOFOLLOW).is_ok();
    for (link, target) in [
        ("fd", "/proc/self/fd"),
        ("stdin", "/proc/self/fd/0"),
        ("stdout", "/proc/self/fd/1"),
        ("stderr", "/proc/self/fd/2"),
    ] {
        if !exists(link) {
            symlinkat(target, dev.fd(), link).ctx(|| {
                format!(
                    "symlink {}",
                    root.shown(&Path::new("/dev").join(link)).display()
                )
            })?;
        }
    }
    if root.resolve(Path::new("/dev/pts/ptmx")).is_ok() {
        let _ = unlinkat(dev.fd(), "ptmx", UnlinkatFlags::NoRemoveDir);
        symlinkat("pts/ptmx", dev.fd(), "ptmx")
            .ctx(|| format!("symlink {}", root.shown(Path::new("/dev/ptmx")).display()))?;
    }
    Ok(())
}
