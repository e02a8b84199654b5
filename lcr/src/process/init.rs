//! The container's init: runs in the new namespaces, builds the root filesystem, reports
//! `Created`, blocks on the exec fifo until `lcr start`, then becomes the user's process.

use std::convert::Infallible;
use std::io::Write;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::path::Path;

use nix::fcntl::{open, OFlag};
use nix::mount::{mount, MsFlags};
use nix::sys::stat::Mode;
use nix::unistd::{sethostname, setresgid, setresuid, setsid, Gid, Uid};
use oci_spec::runtime::{LinuxNamespaceType, Spec};

use super::console;
use super::sync::{Channel, Msg};
use crate::error::Context;
use crate::hooks::{self, Kind};
use crate::rootfs;
use crate::{Error, Result};

/// What the init needs to know; it lives in the parent's memory, copied by fork.
pub struct InitContext<'a> {
    pub id: &'a str,
    pub spec: &'a Spec,
    pub bundle: &'a Path,
    pub rootfs: &'a Path,
    pub fifo: &'a Path,
    pub cgroup_path: &'a str,
    /// A connected console socket, when the process has a terminal.
    pub console: Option<BorrowedFd<'a>>,
    pub no_pivot: bool,
    pub preserve_fds: u32,
}

fn has_new_ns(spec: &Spec, t: LinuxNamespaceType) -> bool {
    crate::spec::namespaces(spec).any(|n| n.typ() == t && n.path().is_none())
}

/// The init's phases: its session and user → its mounts → the hooks the parent runs →
/// into its root → the process's terminal, sysctls and path restrictions → report `Created`
/// → wait for `start` → exec.
pub fn run(ch: &Channel, ctx: &InitContext) -> Result<Infallible> {
    let spec = ctx.spec;
    let linux = spec.linux().as_ref();
    setsid().ctx(|| "setsid".into())?;
    if has_new_ns(spec, LinuxNamespaceType::User) {
        // Become the namespace's root so that the set-up below is allowed.
        setresgid(Gid::from_raw(0), Gid::from_raw(0), Gid::from_raw(0))
            .ctx(|| "setgid 0 in user namespace".into())?;
        setresuid(Uid::from_raw(0), Uid::from_raw(0), Uid::from_raw(0))
            .ctx(|| "setuid 0 in user namespace".into())?;
    }
    let new_mnt = has_new_ns(spec, LinuxNamespaceType::Mount);
    if new_mnt {
        mount_rootfs(ctx)?;
    }
    let fifo = ExecFifo::open(ctx.fifo)?;
    if let Some(h) = spec.hostname().as_deref().filter(|h| !h.is_empty()) {
        sethostname(h).ctx(|| format!("hostname {h}"))?;
    }
    if let Some(d) = spec.domainname().as_deref().filter(|d| !d.is_empty()) {
        std::fs::write("/proc/sys/kernel/domainname", d).ctx(|| format!("domainname {d}"))?;
    }
    if has_new_ns(spec, LinuxNamespaceType::Network) {
        super::loopback::up()?;
    }
    let state_json = await_hooks(ch, ctx)?;
    hooks::run(Kind::CreateContainer, spec.hooks().as_ref(), &state_json)?;
    if !new_mnt {
        // No mount namespace of its own (the config can then have no mounts): chrooted into
        // its rootfs, as runc does, never left in the host's `/`.
        rootfs::chroot_into(ctx.rootfs)?;
    } else if ctx.no_pivot {
        rootfs::no_pivot(ctx.rootfs)?;
    } else {
        rootfs::enter_root(ctx.rootfs)?;
    }
    let process = spec.process().as_ref().ok_or_else(|| Error::Init {
        id: ctx.id.into(),
        reason: "config has no process".into(),
    })?;
    if process.terminal().unwrap_or(false) {
        let sock = ctx.console.ok_or_else(|| Error::Init {
            id: ctx.id.into(),
            reason: "process.terminal is true but there is no console socket".into(),
        })?;
        setup_terminal(sock)?;
    }
    restrict(spec, new_mnt)?;
    // Everything that can fail fails `create`, as with runc: after `start` only the
    // startContainer hooks and exec are left.
    let ready = super::prepare_process(process, linux, ctx.preserve_fds)?;
    ch.send(&Msg::Created)?;
    // From here on nobody reads the channel: failures go to the container's stderr.
    let r = (|| {
        fifo.wait_for_start()?;
        hooks::run(Kind::StartContainer, spec.hooks().as_ref(), &state_json)?;
        ready.exec()
    })();
    let Err(e) = r;
    eprintln!("lcr: container {}: {e}", ctx.id);
    // SAFETY: _exit in the forked init; the parent's destructors are not ours to run.
    unsafe { libc::_exit(127) }
}

/// The rootfs prepared, the config's mounts, the devices and /dev's symlinks.
fn mount_rootfs(ctx: &InitContext) -> Result<()> {
    let spec = ctx.spec;
    let linux = spec.linux().as_ref();
    rootfs::prepare_root(
        ctx.rootfs,
        linux.and_then(|l| l.rootfs_propagation().as_deref()),
    )?;
    rootfs::mount_all(
        ctx.rootfs,
        ctx.bundle,
        spec.mounts().as_deref().unwrap_or_default(),
        ctx.cgroup_path,
    )?;
    let devices = linux.and_then(|l| l.devices().clone()).unwrap_or_default();
    rootfs::create_devices(
        ctx.rootfs,
        &devices,
        has_new_ns(spec, LinuxNamespaceType::User),
    )?;
    rootfs::create_dev_symlinks(ctx.rootfs)
}

/// Asks the parent to run the prestart and createRuntime hooks; returns the state they got.
fn await_hooks(ch: &Channel, ctx: &InitContext) -> Result<String> {
    ch.send(&Msg::NeedHooks)?;
    match ch.recv()? {
        Some(Msg::HooksDone(s)) => Ok(s),
        other => Err(Error::Init {
            id: ctx.id.into(),
            reason: format!("expected HooksDone, got {other:?}"),
        }),
    }
}

/// Inside the new root: the sysctls (first: /proc/sys is usually among the read-only paths),
/// the masked and read-only paths, a read-only root.
fn restrict(spec: &Spec, new_mnt: bool) -> Result<()> {
    if let Some(l) = spec.linux() {
        for (k, v) in l.sysctl().iter().flatten() {
            let path = format!("/proc/sys/{}", k.replace('.', "/"));
            std::fs::write(&path, v).ctx(|| format!("linux.sysctl {k}={v}"))?;
        }
        if new_mnt {
            rootfs::mask_paths(l.masked_paths().as_deref().unwrap_or_default())?;
            rootfs::readonly_paths(l.readonly_paths().as_deref().unwrap_or_default())?;
        }
    }
    let readonly_root = spec
        .root()
        .as_ref()
        .and_then(|r| r.readonly())
        .unwrap_or(false);
    if new_mnt && readonly_root {
        rootfs::remount_root_readonly()?;
    }
    Ok(())
}

/// The exec fifo, held across pivot_root (its host path is gone after it) by an O_PATH fd,
/// with this process's fd table to reopen it for writing through: the container may have no
/// /proc of its own (no mount namespace, or none mounted).
struct ExecFifo {
    fifo: OwnedFd,
    fd_dir: OwnedFd,
}

impl ExecFifo {
    fn open(path: &Path) -> Result<Self> {
        let fifo = open(path, OFlag::O_PATH | OFlag::O_CLOEXEC, Mode::empty())
            .ctx(|| format!("open {}", path.display()))?;
        let fd_dir = open(
            "/proc/self/fd",
            OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .ctx(|| "open /proc/self/fd".into())?;
        Ok(Self { fifo, fd_dir })
    }

    fn wait_for_start(&self) -> Result<()> {
        wait_for_start(self.fd_dir.as_fd(), self.fifo.as_fd())
    }
}

/// Blocks until `lcr start` opens the fifo for reading, then tells it we are going. The fd
/// stays open until exec closes it (close-on-exec): `start` waits for that.
fn wait_for_start(fd_dir: BorrowedFd<'_>, fifo: BorrowedFd<'_>) -> Result<()> {
    let name = fifo.as_raw_fd().to_string();
    let f = nix::fcntl::openat(
        fd_dir,
        name.as_str(),
        OFlag::O_WRONLY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .ctx(|| "open exec fifo".into())?;
    let mut f = std::fs::File::from(f);
    f.write_all(b"0").ctx(|| "write exec fifo".into())?;
    // Kept open on purpose: exec closes it.
    std::mem::forget(f);
    Ok(())
}

/// A new pty in the container's devpts: master to the console socket, slave as the
/// controlling terminal, stdio, and /dev/console.
pub(crate) fn setup_terminal(sock: BorrowedFd<'_>) -> Result<()> {
    use nix::pty::{grantpt, posix_openpt, ptsname_r, unlockpt};
    let master = posix_openpt(OFlag::O_RDWR | OFlag::O_NOCTTY | OFlag::O_CLOEXEC)
        .ctx(|| "open /dev/ptmx".into())?;
    grantpt(&master).ctx(|| "grantpt".into())?;
    unlockpt(&master).ctx(|| "unlockpt".into())?;
    let name = ptsname_r(&master).ctx(|| "ptsname".into())?;
    let slave: OwnedFd = open(
        Path::new(&name),
        OFlag::O_RDWR | OFlag::O_NOCTTY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .ctx(|| format!("open {name}"))?;
    if Path::new("/dev").is_dir() {
        let console = Path::new("/dev/console");
        if !console.exists() {
            let _ = std::fs::File::create(console);
        }
        mount(
            Some(name.as_str()),
            console,
            None::<&str>,
            MsFlags::MS_BIND,
            None::<&str>,
        )
        .ctx(|| format!("bind {name} on /dev/console"))?;
    }
    console::send_master(sock, &name, master.as_raw_fd())?;
    drop(master);
    // SAFETY: TIOCSCTTY on our own new session's terminal; integer argument.
    if unsafe { libc::ioctl(slave.as_raw_fd(), libc::TIOCSCTTY, 0) } != 0 {
        return Err(std::io::Error::last_os_error()).ctx(|| "TIOCSCTTY".into());
    }
    for fd in 0..3 as RawFd {
        // SAFETY: dup2 onto the stdio numbers, which this process owns.
        if unsafe { libc::dup2(slave.as_raw_fd(), fd) } < 0 {
            return Err(std::io::Error::last_os_error())
                .ctx(|| format!("dup2 terminal to fd {fd}"));
        }
    }
    Ok(())
}
