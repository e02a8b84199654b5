//! Terminals: a new pty in the container, its master sent over the console socket (SCM_RIGHTS),
//! as runc does, so podman/conmon or `lcr run` can drive it.

use std::io::IoSlice;
use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::os::unix::net::UnixStream;
use std::path::Path;

use nix::sys::socket::{sendmsg, ControlMessage, MsgFlags};

use crate::error::Context;
use crate::Result;

/// Connects to the `--console-socket` path (in lcr, before the init changes its root).
pub fn connect(path: &Path) -> Result<UnixStream> {
    UnixStream::connect(path).ctx(|| format!("console socket {}", path.display()))
}

/// Sends `master` with the pty's name as payload, like runc's `utils.SendFd`.
pub fn send_master(sock: BorrowedFd<'_>, name: &str, master: RawFd) -> Result<()> {
    let fds = [master];
    let iov = [IoSlice::new(name.as_bytes())];
    sendmsg::<()>(
        sock.as_raw_fd(),
        &iov,
        &[ControlMessage::ScmRights(&fds)],
        MsgFlags::empty(),
        None,
    )
    .ctx(|| "send pty master over the console socket".into())?;
    Ok(())
}

/// Receives one fd sent with [`send_master`] (used by `lcr run` in the foreground).
pub fn recv_master(sock: BorrowedFd<'_>) -> Result<OwnedFd> {
    use nix::sys::socket::{recvmsg, ControlMessageOwned};
    use std::os::fd::FromRawFd;
    let mut buf = [0u8; 4096];
    let mut iov = [std::io::IoSliceMut::new(&mut buf)];
    let mut cmsg = nix::cmsg_space!([RawFd; 1]);
    let msg = recvmsg::<()>(
        sock.as_raw_fd(),
        &mut iov,
        Some(&mut cmsg),
        MsgFlags::MSG_CMSG_CLOEXEC,
    )
    .ctx(|| "receive pty master".into())?;
    for c in msg.cmsgs().ctx(|| "receive pty master".into())? {
        if let ControlMessageOwned::ScmRights(fds) = c {
            if let Some(&fd) = fds.first() {
                // SAFETY: the fd was just installed in this process by SCM_RIGHTS.
                return Ok(unsafe { OwnedFd::from_raw_fd(fd) });
            }
        }
    }
    Err(crate::Error::Console(
        "the container sent no pty master".into(),
    ))
}
