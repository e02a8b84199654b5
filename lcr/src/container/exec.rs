use std::os::fd::{AsFd, OwnedFd};
use std::path::PathBuf;

use oci_spec::runtime::Process;

use super::{Action, Container};
use crate::process::namespaces::Plan;
use crate::process::sync::Msg;
use crate::process::{become_subreaper, console, spawn};
use crate::{Error, Result};

/// Options of `lcr exec`.
#[derive(Default)]
pub struct ExecOpts {
    pub process: Option<Process>,
    pub pid_file: Option<PathBuf>,
    pub console_socket: Option<PathBuf>,
    pub console_fd: Option<OwnedFd>,
    pub preserve_fds: u32,
}

/// Starts `process` in the container's namespaces and cgroup; returns its host pid once it
/// has exec'd. The caller becomes its subreaper, to wait for it in the foreground.
pub fn exec(c: &Container, mut opts: ExecOpts) -> Result<i32> {
    c.allow(Action::Exec)?;
    let process = opts.process.take().ok_or_else(|| Error::Option {
        option: "exec".into(),
        reason: "no process given".into(),
    })?;
    let linux = c.spec.linux().as_ref();
    // Every namespace the init is in, not only those of its config: a restored init also has
    // the time namespace CRIU made for it.
    let plan = Plan::join_all_of(c.state.pid, crate::process::namespaces::ALL)?;
    let cgroup = c.cgroup()?;
    let terminal = process.terminal().unwrap_or(false);
    let console: Option<OwnedFd> = match (&opts.console_socket, opts.console_fd.take()) {
        (_, Some(fd)) => Some(fd),
        (Some(p), None) if terminal => Some(console::connect(p)?.into()),
        (None, None) if terminal => {
            return Err(Error::Option {
                option: "exec --tty".into(),
                reason: "a terminal needs --console-socket or the foreground".into(),
            })
        }
        _ => None,
    };
    become_subreaper()?;
    let preserve = opts.preserve_fds;
    let spawned = spawn(
        &plan,
        |stage| cgroup.add(stage),
        |_ch| {
            nix::unistd::setsid().ok();
            if let Some(sock) = &console {
                crate::process::init::setup_terminal(sock.as_fd())?;
            }
            crate::process::exec_process(&process, linux, preserve)
        },
    )?;
    // The channel closes (close-on-exec) once the process has exec'd; a message means failure.
    match spawned.ch.recv()? {
        None => {}
        Some(Msg::Failed(e)) => {
            return Err(Error::Init {
                id: c.id().to_string(),
                reason: format!("exec: {e}"),
            })
        }
        Some(other) => return Err(Error::Child(format!("exec: unexpected message {other:?}"))),
    }
    if let Some(p) = &opts.pid_file {
        super::write_pid_file(p, spawned.pid)?;
    }
    Ok(spawned.pid)
}
