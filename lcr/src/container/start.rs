use std::io::Read;
use std::os::fd::AsFd;
use std::time::Duration;

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};

use super::{Action, Container, Status, FIFO_FILE};
use crate::error::Context;
use crate::hooks::{self, Kind};
use crate::procfs;
use crate::{Error, Result};

/// Releases a created container's init to exec the user's process.
pub fn start(c: &mut Container) -> Result<()> {
    c.allow(Action::Start)?;
    let fifo = c.dir().join(FIFO_FILE);
    // Non-blocking, so that an init that died cannot leave `start` hanging in open().
    let mut f = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(&fifo)
        .ctx(|| format!("open {}", fifo.display()))?;
    // The init's "0": it is set up and goes on to exec.
    while next_read(&mut f, &fifo)?.is_none_or(|n| n == 0) {
        if !procfs::is_alive(c.state.pid, c.state.init_start_time) {
            return Err(Error::Init {
                id: c.id().to_string(),
                reason: "the container's init exited before start".into(),
            });
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    // Then EOF: the init closes its end by exec (close-on-exec), after the startContainer
    // hooks. Once `start` returns, the user's program runs (or the init has died), so a
    // signal sent next meets the program, not lcr.
    while next_read(&mut f, &fifo)? != Some(0) {
        if !procfs::is_alive(c.state.pid, c.state.init_start_time) {
            break;
        }
    }
    let _ = std::fs::remove_file(&fifo);
    c.complete(Action::Start)?;
    // The state as `start` left it (running, with its pid), even when the program has
    // already exited: the hooks are told about the start they follow.
    let started = serde_json::to_string(&c.state.oci(Status::Running)).unwrap_or_default();
    if let Err(e) = hooks::run(Kind::Poststart, c.spec.hooks().as_ref(), &started) {
        tracing::warn!(error = %e, "poststart hook failed");
    }
    Ok(())
}

use std::os::unix::fs::OpenOptionsExt;

/// One wait (at most 100 ms) and read on the exec fifo: the bytes read, 0 at EOF, `None`
/// while the writer is there but wrote nothing.
fn next_read(f: &mut std::fs::File, fifo: &std::path::Path) -> Result<Option<usize>> {
    let mut p = [PollFd::new(f.as_fd(), PollFlags::POLLIN)];
    poll(&mut p, PollTimeout::from(100u16)).ctx(|| "poll exec fifo".into())?;
    let mut b = [0u8; 16];
    match f.read(&mut b) {
        Ok(n) => Ok(Some(n)),
        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => Ok(None),
        Err(e) => Err(e).ctx(|| format!("read {}", fifo.display())),
    }
}
