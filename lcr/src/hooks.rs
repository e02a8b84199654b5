//! OCI hooks: each runs with the container state as JSON on stdin.

use std::os::fd::AsFd;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use oci_spec::runtime::{Hook, Hooks};

use crate::{Error, Result};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Prestart,
    CreateRuntime,
    CreateContainer,
    StartContainer,
    Poststart,
    Poststop,
}

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Self::Prestart => "prestart",
            Self::CreateRuntime => "createRuntime",
            Self::CreateContainer => "createContainer",
            Self::StartContainer => "startContainer",
            Self::Poststart => "poststart",
            Self::Poststop => "poststop",
        }
    }

    pub fn of(self, h: &Hooks) -> Vec<Hook> {
        #[allow(deprecated)]
        let v = match self {
            Self::Prestart => h.prestart(),
            Self::CreateRuntime => h.create_runtime(),
            Self::CreateContainer => h.create_container(),
            Self::StartContainer => h.start_container(),
            Self::Poststart => h.poststart(),
            Self::Poststop => h.poststop(),
        };
        v.clone().unwrap_or_default()
    }
}

/// Runs the hooks of `kind` in order; the first failure stops and is returned.
pub fn run(kind: Kind, hooks: Option<&Hooks>, state_json: &str) -> Result<()> {
    let Some(h) = hooks else { return Ok(()) };
    for hook in kind.of(h) {
        run_one(kind, &hook, state_json)?;
    }
    Ok(())
}

fn run_one(kind: Kind, hook: &Hook, state_json: &str) -> Result<()> {
    let err = |reason: String| Error::Hook {
        kind: kind.name(),
        path: hook.path().clone(),
        reason,
    };
    let mut cmd = Command::new(hook.path());
    if let Some(args) = hook.args() {
        if let Some((argv0, rest)) = args.split_first() {
            cmd.arg0(argv0).args(rest);
        }
    }
    cmd.env_clear();
    for e in hook.env().iter().flatten() {
        if let Some((k, v)) = e.split_once('=') {
            cmd.env(k, v);
        }
    }
    cmd.stdin(Stdio::piped());
    let mut child = cmd.spawn().map_err(|e| err(e.to_string()))?;
    // The state goes in as the hook takes it, between checks of its exit and timeout: a hook
    // that never reads cannot stall lcr (states can exceed a pipe's buffer), and one that exits
    // without reading is no error.
    let mut stdin = child.stdin.take().filter(|s| set_nonblocking(s).is_ok());
    let mut written = 0;
    let deadline = hook
        .timeout()
        .map(|t| Instant::now() + Duration::from_secs(t.max(1) as u64));
    loop {
        if let Some(pipe) = &stdin {
            match write_without_sigpipe(pipe, &state_json.as_bytes()[written..]) {
                Ok(n) => written += n,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                Err(_) => written = state_json.len(),
            }
            if written == state_json.len() {
                stdin = None;
            }
        }
        match child.try_wait().map_err(|e| err(e.to_string()))? {
            Some(st) if st.success() => return Ok(()),
            Some(st) => return Err(err(format!("exited with {st}"))),
            None => {}
        }
        if deadline.is_some_and(|d| Instant::now() > d) {
            let _ = child.kill();
            let _ = child.wait();
            return Err(err(format!(
                "timed out after {}s",
                hook.timeout().unwrap_or(0)
            )));
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn set_nonblocking(pipe: &impl AsFd) -> std::io::Result<()> {
    use nix::fcntl::{fcntl, FcntlArg, OFlag};
    let flags = fcntl(pipe.as_fd(), FcntlArg::F_GETFL)?;
    fcntl(
        pipe.as_fd(),
        FcntlArg::F_SETFL(OFlag::from_bits_truncate(flags) | OFlag::O_NONBLOCK),
    )?;
    Ok(())
}

/// write(2) with SIGPIPE blocked in this thread, so that a reader that is gone is EPIPE, not
/// the end of lcr (whose rollback would then never run); the signal the write raised is taken
/// off again before the mask is restored.
fn write_without_sigpipe(pipe: &impl AsFd, buf: &[u8]) -> std::io::Result<usize> {
    use nix::sys::signal::{pthread_sigmask, SigSet, SigmaskHow, Signal};
    let mut only_pipe = SigSet::empty();
    only_pipe.add(Signal::SIGPIPE);
    let mut old = SigSet::empty();
    pthread_sigmask(SigmaskHow::SIG_BLOCK, Some(&only_pipe), Some(&mut old))?;
    let r = nix::unistd::write(pipe.as_fd(), buf).map_err(std::io::Error::from);
    if matches!(&r, Err(e) if e.raw_os_error() == Some(libc::EPIPE))
        && !old.contains(Signal::SIGPIPE)
    {
        let zero = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: sigtimedwait with a valid set and a zero timeout; it only dequeues the
        // pending SIGPIPE this write raised (or returns EAGAIN).
        unsafe { libc::sigtimedwait(only_pipe.as_ref(), std::ptr::null_mut(), &zero) };
    }
    pthread_sigmask(SigmaskHow::SIG_SETMASK, Some(&old), None)?;
    r
}
