//! Waiting for a foreground container process: lcr is its subreaper, forwards the signals it
//! receives, and (with a terminal) copies between its own stdio and the pty master.

use std::os::fd::{AsFd, AsRawFd, OwnedFd};

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::{kill, SigSet, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;

use crate::error::Context;
use crate::Result;

/// How a process ended, and the exit code a shell would report for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    Code(i32),
    Signal(i32),
}

impl Exit {
    pub fn code(self) -> i32 {
        match self {
            Self::Code(c) => c,
            Self::Signal(s) => 128 + s,
        }
    }
}

/// The signals a foreground `lcr run`/`exec` passes on to the container.
fn forwarded() -> SigSet {
    let mut s = SigSet::empty();
    for sig in Signal::iterator() {
        if !matches!(
            sig,
            Signal::SIGKILL
                | Signal::SIGSTOP
                | Signal::SIGSEGV
                | Signal::SIGBUS
                | Signal::SIGILL
                | Signal::SIGFPE
                | Signal::SIGTRAP
                | Signal::SIGABRT
                | Signal::SIGSYS
        ) {
            s.add(sig);
        }
    }
    s
}

/// Becomes the subreaper, so processes whose parent exits (stage one's child) come to us.
pub fn become_subreaper() -> Result<()> {
    // SAFETY: prctl with integer arguments only.
    if unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) } != 0 {
        return Err(std::io::Error::last_os_error()).ctx(|| "PR_SET_CHILD_SUBREAPER".into());
    }
    Ok(())
}

/// Waits for `pid` (a child of ours, by subreaping), forwarding signals to it. With `master`,
/// stdin goes to the terminal and the terminal to stdout until the process ends.
pub fn wait_forwarding(pid: i32, master: Option<OwnedFd>) -> Result<Exit> {
    let mask = forwarded();
    mask.thread_block().ctx(|| "block signals".into())?;
    let sfd = SignalFd::with_flags(&mask, SfdFlags::SFD_CLOEXEC | SfdFlags::SFD_NONBLOCK)
        .ctx(|| "signalfd".into())?;
    let _raw = master.as_ref().map(|_| RawTerminal::enter());
    let target = Pid::from_raw(pid);
    let mut stdin_open = master.is_some();
    let stdin = std::io::stdin();
    let result = loop {
        if let Some(exit) = reap(target)? {
            break exit;
        }
        let mut fds = vec![PollFd::new(sfd.as_fd(), PollFlags::POLLIN)];
        if let Some(m) = &master {
            fds.push(PollFd::new(m.as_fd(), PollFlags::POLLIN));
            if stdin_open {
                fds.push(PollFd::new(stdin.as_fd(), PollFlags::POLLIN));
            }
        }
        match poll(&mut fds, PollTimeout::from(500u16)) {
            Ok(_) | Err(nix::errno::Errno::EINTR) => {}
            Err(e) => return Err(e).ctx(|| "poll".into()),
        }
        let ready: Vec<bool> = fds
            .iter()
            .map(|f| f.revents().is_some_and(|r| !r.is_empty()))
            .collect();
        drop(fds);
        if ready[0] {
            while let Ok(Some(info)) = sfd.read_signal() {
                let sig = info.ssi_signo as i32;
                if sig != libc::SIGCHLD {
                    if let Ok(s) = Signal::try_from(sig) {
                        let _ = kill(target, s);
                    }
                }
            }
        }
        if let Some(m) = &master {
            if ready.get(1) == Some(&true) && !copy(m.as_raw_fd(), libc::STDOUT_FILENO) {
                // The terminal closed: the process is about to be reaped.
            }
            if ready.get(2) == Some(&true) && !copy(libc::STDIN_FILENO, m.as_raw_fd()) {
                stdin_open = false;
            }
        }
    };
    if let Some(m) = &master {
        while copy_nonblocking(m.as_raw_fd(), libc::STDOUT_FILENO) {}
    }
    mask.thread_unblock().ctx(|| "unblock signals".into())?;
    Ok(result)
}

/// Reaps every exited child; returns the target's end when it is among them.
fn reap(target: Pid) -> Result<Option<Exit>> {
    loop {
        match waitpid(None, Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::Exited(p, c)) if p == target => return Ok(Some(Exit::Code(c))),
            Ok(WaitStatus::Signaled(p, s, _)) if p == target => {
                return Ok(Some(Exit::Signal(s as i32)))
            }
            Ok(WaitStatus::StillAlive) => return Ok(None),
            Ok(_) => continue,
            Err(nix::errno::Errno::ECHILD) => {
                return Err(crate::Error::NotOurChild(target.as_raw()))
            }
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => return Err(e).ctx(|| "waitpid".into()),
        }
    }
}

fn copy(from: i32, to: i32) -> bool {
    let mut buf = [0u8; 8192];
    // SAFETY: read/write into a local buffer of the given length.
    let n = unsafe { libc::read(from, buf.as_mut_ptr().cast(), buf.len()) };
    if n <= 0 {
        return false;
    }
    let mut off = 0;
    while off < n as usize {
        // SAFETY: as above, within buf[..n].
        let w = unsafe { libc::write(to, buf[off..].as_ptr().cast(), n as usize - off) };
        if w <= 0 {
            return false;
        }
        off += w as usize;
    }
    true
}

fn copy_nonblocking(from: i32, to: i32) -> bool {
    let mut p = [PollFd::new(
        // SAFETY: `from` stays open for the duration of this call.
        unsafe { std::os::fd::BorrowedFd::borrow_raw(from) },
        PollFlags::POLLIN,
    )];
    matches!(poll(&mut p, PollTimeout::ZERO), Ok(n) if n > 0) && copy(from, to)
}

/// Puts our own terminal (if stdin is one) in raw mode for as long as it lives.
struct RawTerminal(Option<nix::sys::termios::Termios>);

impl RawTerminal {
    fn enter() -> Self {
        use nix::sys::termios::{cfmakeraw, tcgetattr, tcsetattr, SetArg};
        let stdin = std::io::stdin();
        let Ok(orig) = tcgetattr(&stdin) else {
            return Self(None);
        };
        let mut raw = orig.clone();
        cfmakeraw(&mut raw);
        let _ = tcsetattr(&stdin, SetArg::TCSANOW, &raw);
        Self(Some(orig))
    }
}

impl Drop for RawTerminal {
    fn drop(&mut self) {
        if let Some(t) = &self.0 {
            let _ = nix::sys::termios::tcsetattr(
                std::io::stdin(),
                nix::sys::termios::SetArg::TCSANOW,
                t,
            );
        }
    }
}
