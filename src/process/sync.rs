//! The channel between lcr and the processes it forks: one JSON message per datagram on a
//! SOCK_SEQPACKET socketpair, so a child that dies reads as EOF instead of a hang.

use std::os::fd::{AsRawFd, OwnedFd};

use nix::sys::socket::{recv, send, socketpair, AddressFamily, MsgFlags, SockFlag, SockType};
use serde::{Deserialize, Serialize};

use crate::error::Context;
use crate::{Error, Result};

#[derive(Debug, Serialize, Deserialize, PartialEq)]
pub enum Msg {
    /// Stage 1 made its user namespace (if any): map ids, put it in the cgroup, then `Go`.
    StageReady,
    Go,
    /// The pid (in lcr's pid namespace) of the process stage 1 forked.
    Child(i32),
    /// The init has its mounts and waits for the prestart/createRuntime hooks.
    NeedHooks,
    /// The runtime hooks ran; carries the OCI state (with the init's host pid) for the hooks
    /// the init runs itself.
    HooksDone(String),
    /// The init is set up and blocks on the exec fifo.
    Created,
    /// Something failed in the child; the text says what.
    Failed(String),
}

pub struct Channel(OwnedFd);

/// Largest message: error texts are cut to fit.
const MAX_MSG: usize = 64 * 1024;

impl Channel {
    pub fn pair() -> Result<(Channel, Channel)> {
        let (a, b) = socketpair(
            AddressFamily::Unix,
            SockType::SeqPacket,
            None,
            SockFlag::SOCK_CLOEXEC,
        )
        .ctx(|| "socketpair".into())?;
        Ok((Channel(a), Channel(b)))
    }

    pub fn send(&self, m: &Msg) -> Result<()> {
        let mut bytes = serde_json::to_vec(m).map_err(|e| Error::Other {
            context: "encode sync message".into(),
            reason: e.to_string(),
        })?;
        if bytes.len() > MAX_MSG {
            bytes = serde_json::to_vec(&Msg::Failed("(error text too long)".into()))
                .unwrap_or_default();
        }
        send(self.0.as_raw_fd(), &bytes, MsgFlags::MSG_NOSIGNAL).ctx(|| "sync send".into())?;
        Ok(())
    }

    /// The next message; `None` when the other side closed (exited).
    pub fn recv(&self) -> Result<Option<Msg>> {
        let mut buf = vec![0u8; MAX_MSG];
        let n = loop {
            match recv(self.0.as_raw_fd(), &mut buf, MsgFlags::empty()) {
                Err(nix::errno::Errno::EINTR) => continue,
                r => break r.ctx(|| "sync recv".into())?,
            }
        };
        if n == 0 {
            return Ok(None);
        }
        serde_json::from_slice(&buf[..n])
            .map(Some)
            .map_err(|e| Error::Other {
                context: "decode sync message".into(),
                reason: e.to_string(),
            })
    }

    /// Receives and requires exactly `want`.
    pub fn expect(&self, want: Msg) -> Result<()> {
        match self.recv()? {
            Some(m) if m == want => Ok(()),
            Some(Msg::Failed(e)) => Err(Error::Other {
                context: "child".into(),
                reason: e,
            }),
            other => Err(Error::Other {
                context: "sync".into(),
                reason: format!("expected {want:?}, got {other:?}"),
            }),
        }
    }
}
