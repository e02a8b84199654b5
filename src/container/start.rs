use std::io::Read;
use std::os::fd::AsFd;
use std::time::Duration;

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};

use super::{Action, Container, Status, FIFO_FILE};
use crate::error::Context;
use crate::hooks::{self, Kind};
use crate::process::procfs;
use crate::{Error, Result};

/// Releases a created container's init to exec the user's process.
pub fn start(c: &mut Container) -> Result<()> {
    c.status().check(c.id(), Action::Start)?;
    let fifo = c.dir().join(FIFO_FILE);
    // Non-blocking, so that an init that died cannot leave `start` hanging in open().
    let mut f = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(&fifo)
        .ctx(|| format!("open {}", fifo.display()))?;
    loop {
        let mut p = [PollFd::new(f.as_fd(), PollFlags::POLLIN)];
        poll(&mut p, PollTimeout::from(100u16)).ctx(|| "poll exec fifo".into())?;
        let mut b = [0u8; 1];
        match f.read(&mut b) {
            Ok(1) => break,
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(e) => return Err(e).ctx(|| format!("read {}", fifo.display())),
        }
        if !procfs::is_alive(c.state.pid, c.state.init_start_time) {
            return Err(Error::Init {
                id: c.id().to_string(),
                reason: "the container's init exited before start".into(),
            });
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    let _ = std::fs::remove_file(&fifo);
    c.state.status = Status::Running;
    c.save()?;
    if let Err(e) = hooks::run(
        Kind::Poststart,
        c.spec.hooks().as_ref(),
        &c.oci_state_json(),
    ) {
        tracing::warn!(error = %e, "poststart hook failed");
    }
    Ok(())
}

use std::os::unix::fs::OpenOptionsExt;
