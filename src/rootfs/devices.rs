use std::fs;
use std::os::unix::fs::symlink;
use std::path::Path;

use nix::mount::{mount, MsFlags};
use nix::sys::stat::{makedev, mknod, umask, Mode, SFlag};
use nix::unistd::{chown, Gid, Uid};
use oci_spec::runtime::{LinuxDevice, LinuxDeviceType};

use super::join_in;
use crate::error::Context;
use crate::Result;

/// The devices every container gets (OCI runtime spec, "Default Devices").
const DEFAULTS: &[(&str, u64, u64)] = &[
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
    let old = umask(Mode::empty());
    let r = (|| {
        for &(path, major, minor) in DEFAULTS {
            make(
                rootfs,
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
                rootfs,
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
    rootfs: &Path,
    path: &Path,
    kind: SFlag,
    major: u64,
    minor: u64,
    mode: u32,
    uid: u32,
    gid: u32,
    in_userns: bool,
) -> Result<()> {
    let dest = join_in(rootfs, path);
    if let Some(p) = dest.parent() {
        fs::create_dir_all(p).ctx(|| format!("mkdir {}", p.display()))?;
    }
    let _ = fs::remove_file(&dest);
    if in_userns {
        fs::File::create(&dest).ctx(|| format!("create {}", dest.display()))?;
        return mount(
            Some(path),
            &dest,
            None::<&str>,
            MsFlags::MS_BIND,
            None::<&str>,
        )
        .ctx(|| format!("bind device {}", path.display()));
    }
    mknod(
        &dest,
        kind,
        Mode::from_bits_truncate(mode),
        makedev(major, minor),
    )
    .ctx(|| format!("mknod {}", dest.display()))?;
    chown(&dest, Some(Uid::from_raw(uid)), Some(Gid::from_raw(gid)))
        .ctx(|| format!("chown {}", dest.display()))
}

/// /dev/fd, /dev/std{in,out,err} and /dev/ptmx, as the OCI spec asks.
pub fn create_dev_symlinks(rootfs: &Path) -> Result<()> {
    let dev = rootfs.join("dev");
    for (link, target) in [
        ("fd", "/proc/self/fd"),
        ("stdin", "/proc/self/fd/0"),
        ("stdout", "/proc/self/fd/1"),
        ("stderr", "/proc/self/fd/2"),
    ] {
        let l = dev.join(link);
        if l.symlink_metadata().is_err() {
            symlink(target, &l).ctx(|| format!("symlink {}", l.display()))?;
        }
    }
    if dev.join("pts/ptmx").exists() {
        let l = dev.join("ptmx");
        let _ = fs::remove_file(&l);
        symlink("pts/ptmx", &l).ctx(|| format!("symlink {}", l.display()))?;
    }
    Ok(())
}
