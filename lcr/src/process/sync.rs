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

/// A message travels in datagrams of at most this much (plus a one-byte "more follows" mark),
/// well below any socket buffer: a state with a large annotation is still one message.
const CHUNK: usize = 32 * 1024;
const MORE: u8 = 1;
const LAST: u8 = 0;

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
        let bytes = serde_json::to_vec(m).ctx(|| "encode sync message".into())?;
        let mut chunks = bytes.chunks(CHUNK).peekable();
        let mut datagram = Vec::with_capacity(CHUNK + 1);
        while let Some(chunk) = chunks.next() {
            datagram.clear();
            datagram.push(if chunks.peek().is_some() { MORE } else { LAST });
            datagram.extend_from_slice(chunk);
            send(self.0.as_raw_fd(), &datagram, MsgFlags::MSG_NOSIGNAL)
                .ctx(|| "sync send".into())?;
        }
        Ok(())
    }

    /// The next message; `None` when the other side closed (exited).
    pub fn recv(&self) -> Result<Option<Msg>> {
        let mut buf = vec![0u8; CHUNK + 1];
        let mut message = Vec::new();
        loop {
            let n = loop {
                match recv(self.0.as_raw_fd(), &mut buf, MsgFlags::empty()) {
                    Err(nix::errno::Errno::EINTR) => continue,
                    r => break r.ctx(|| "sync recv".into())?,
                }
            };
            if n == 0 {
                return Ok(None);
            }
            message.extend_from_slice(&buf[1..n]);
            if buf[0] == LAST {
                break;
            }
        }
        serde_json::from_slice(&message)
            .map(Some)
            .ctx(|| "decode sync message".into())
    }

    /// Receives and requires exactly `want`.
    pub fn expect(&self, want: Msg) -> Result<()> {
        match self.recv()? {
            Some(m) if m == want => Ok(()),
            Some(Msg::Failed(e)) => Err(Error::Child(e)),
            other => Err(Error::Child(format!(
                "sync: expected {want:?}, got {other:?}"
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_larger_than_a_datagram_arrive_whole() {
        let (a, b) = Channel::pair().unwrap();
        let big = "x".repeat(5 * CHUNK + 7);
        let sender = std::thread::spawn(move || a.send(&Msg::HooksDone(big)).unwrap());
        let got = b.recv().unwrap();
        sender.join().unwrap();
        assert_eq!(got, Some(Msg::HooksDone("x".repeat(5 * CHUNK + 7))));
    }
}
