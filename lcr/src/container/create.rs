use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};

use nix::sys::stat::Mode;
use nix::unistd::mkfifo;

use super::{
    write_atomic, write_json, Container, Rollback, State, Status, Store, CONFIG_FILE, FIFO_FILE,
    STATE_FILE,
};
use crate::cgroups::{container_cgroup_path, Cgroup};
use crate::error::Context;
use crate::hooks::{self, Kind};
use crate::process::init::{self, InitContext};
use crate::process::namespaces::Plan;
use crate::process::sync::{Channel, Msg};
use crate::process::{become_subreaper, console, spawn, write_id_maps};
use crate::procfs;
use crate::spec::Bundle;
use crate::{Error, Result};

/// Options of `lcr create` (and the create half of `lcr run`).
#[derive(Default)]
pub struct CreateOpts {
    pub bundle: PathBuf,
    pub pid_file: Option<PathBuf>,
    pub console_socket: Option<PathBuf>,
    /// A console socket already connected (foreground `lcr run` with a terminal).
    pub console_fd: Option<OwnedFd>,
    pub no_pivot: bool,
    pub no_new_keyring: bool,
    pub preserve_fds: u32,
}

/// Creates container `id` from a bundle: its init is left blocked until `start`. The phases:
/// check the bundle → record the container (status `creating`) → make its cgroup → spawn the
/// init → run the create hooks → record it `created`. Until the end a [`Rollback`] undoes
/// what was made.
pub fn create(store: &Store, id: &str, mut opts: CreateOpts) -> Result<Container> {
    super::validate_id(id)?;
    let bundle = Bundle::load(&opts.bundle)?;
    let spec = &bundle.spec;
    let console = console_of(&bundle, &mut opts)?;
    let linux = spec.linux().as_ref();
    let namespaces: Vec<_> = crate::spec::namespaces(spec).cloned().collect();
    let plan = Plan::from_spec(&namespaces)?;

    let (dir, lock) = store.create(id)?;
    let mut rb = Rollback::new(dir.clone());
    write_json(&dir.join(CONFIG_FILE), spec)?;
    let fifo = make_exec_fifo(&dir, linux)?;
    let cgroup_path = container_cgroup_path(linux.and_then(|l| l.cgroups_path().as_deref()), id);
    // Recorded (status `creating`) before anything exists: if this lcr is killed, a later
    // `lcr delete` finds the cgroup and the processes to remove.
    let mut state = State::new(id, &bundle, &cgroup_path, None);
    write_json(&dir.join(STATE_FILE), &state)?;
    let cgroup = Cgroup::create(&cgroup_path, linux.and_then(|l| l.resources().as_ref()))?;
    rb.cgroup = Some(Cgroup::load(&cgroup_path)?);
    become_subreaper()?;

    let ctx = InitContext {
        id,
        spec,
        bundle: &bundle.dir,
        rootfs: &bundle.rootfs,
        fifo: &fifo,
        cgroup_path: &cgroup_path,
        console: console.as_ref().map(|c| c.as_fd()),
        no_pivot: opts.no_pivot,
        preserve_fds: opts.preserve_fds,
    };
    let spawned = spawn_init(&ctx, &plan, &cgroup, !opts.no_new_keyring)?;
    rb.pid = Some(spawned.pid);
    state.pid = spawned.pid;
    state.init_start_time = procfs::start_time_of(spawned.pid)?;
    write_json(&dir.join(STATE_FILE), &state)?;
    run_create_hooks(&spawned.ch, spec, &state)?;

    if let Some(b) = crate::rootfs::diff::Baseline::for_spec(spec, &bundle.rootfs)? {
        b.save(&dir)?;
    }
    state.status = Status::Created;
    write_json(&dir.join(STATE_FILE), &state)?;
    if let Some(p) = &opts.pid_file {
        write_pid_file(p, spawned.pid)?;
    }
    rb.disarm();
    Ok(Container {
        state,
        spec: bundle.spec.clone(),
        dir,
        _lock: Some(lock),
    })
}

/// The console the init gets, if its process has a terminal: the socket is connected first,
/// so that a bad one fails before anything is made.
fn console_of(bundle: &Bundle, opts: &mut CreateOpts) -> Result<Option<OwnedFd>> {
    let process = bundle
        .spec
        .process()
        .as_ref()
        .ok_or_else(|| Error::Config {
            file: bundle.dir.join("config.json"),
            field: "process".into(),
            reason: "missing".into(),
        })?;
    let terminal = process.terminal().unwrap_or(false);
    if terminal && opts.console_socket.is_none() && opts.console_fd.is_none() {
        return Err(Error::Config {
            file: bundle.dir.join("config.json"),
            field: "process.terminal".into(),
            reason: "is true: --console-socket is required (or run in the foreground)".into(),
        });
    }
    Ok(match (&opts.console_socket, opts.console_fd.take()) {
        (_, Some(fd)) => Some(fd),
        (Some(p), None) if terminal => Some(console::connect(p)?.into()),
        _ => None,
    })
}

/// The fifo `start` opens to release the init. Its mode is not left to the umask, and it is
/// owned by the container's root, which may be an unprivileged host uid in a user namespace:
/// the init must open it for writing.
fn make_exec_fifo(dir: &Path, linux: Option<&oci_spec::runtime::Linux>) -> Result<PathBuf> {
    let fifo = dir.join(FIFO_FILE);
    mkfifo(&fifo, Mode::from_bits_truncate(0o622)).ctx(|| format!("mkfifo {}", fifo.display()))?;
    std::fs::set_permissions(&fifo, std::os::unix::fs::PermissionsExt::from_mode(0o622))
        .ctx(|| format!("chmod {}", fifo.display()))?;
    let host_root = |maps: Option<&Vec<oci_spec::runtime::LinuxIdMapping>>| {
        maps.into_iter()
            .flatten()
            .find(|m| m.container_id() == 0)
            .map(|m| m.host_id())
    };
    if let Some(l) = linux {
        let uid = host_root(l.uid_mappings().as_ref());
        let gid = host_root(l.gid_mappings().as_ref());
        if uid.is_some() || gid.is_some() {
            nix::unistd::chown(
                &fifo,
                uid.map(nix::unistd::Uid::from_raw),
                gid.map(nix::unistd::Gid::from_raw),
            )
            .ctx(|| format!("chown {}", fifo.display()))?;
        }
    }
    Ok(fifo)
}

/// Forks the init into its namespaces: the parent puts it in the cgroup and writes its id
/// maps while it waits; the child joins a keyring of its own (unless told not to) and sets
/// itself up (see `process::init`).
fn spawn_init(
    ctx: &InitContext,
    plan: &Plan,
    cgroup: &Cgroup,
    new_keyring: bool,
) -> Result<crate::process::Spawned> {
    let linux = ctx.spec.linux().as_ref();
    let uid_maps = linux
        .and_then(|l| l.uid_mappings().clone())
        .unwrap_or_default();
    let gid_maps = linux
        .and_then(|l| l.gid_mappings().clone())
        .unwrap_or_default();
    spawn(
        plan,
        |stage| {
            cgroup.add(stage)?;
            if plan.new_user {
                write_id_maps(stage, &uid_maps, &gid_maps)?;
            }
            Ok(())
        },
        |ch| {
            if new_keyring {
                join_session_keyring(ctx.id);
            }
            init::run(ch, ctx)
        },
    )
}

/// The prestart and createRuntime hooks run once the init has its namespaces and waits for
/// them; then the init finishes its set-up and reports `Created`.
fn run_create_hooks(ch: &Channel, spec: &oci_spec::runtime::Spec, state: &State) -> Result<()> {
    crate::process::sync_expect(ch, Msg::NeedHooks)?;
    let creating = serde_json::to_string(&state.oci(Status::Created)).unwrap_or_default();
    hooks::run(Kind::Prestart, spec.hooks().as_ref(), &creating)?;
    hooks::run(Kind::CreateRuntime, spec.hooks().as_ref(), &creating)?;
    ch.send(&Msg::HooksDone(creating))?;
    crate::process::sync_expect(ch, Msg::Created)
}

pub(crate) fn write_pid_file(path: &Path, pid: i32) -> Result<()> {
    let path = std::path::absolute(path).ctx(|| format!("pid file {}", path.display()))?;
    write_atomic(&path, pid.to_string().as_bytes())
}

/// A session keyring of the container's own, so it does not share the caller's keys.
fn join_session_keyring(id: &str) {
    let name = std::ffi::CString::new(format!("_ses.{}", id)).unwrap_or_default();
    // SAFETY: keyctl(KEYCTL_JOIN_SESSION_KEYRING, name) reads a NUL-terminated string.
    let r = unsafe {
        libc::syscall(
            libc::SYS_keyctl,
            1, /* KEYCTL_JOIN_SESSION_KEYRING */
            name.as_ptr(),
        )
    };
    if r < 0 {
        tracing::debug!(
            "no new session keyring: {}",
            std::io::Error::last_os_error()
        );
    }
}
