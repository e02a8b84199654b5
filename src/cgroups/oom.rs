//! Out-of-memory notifications of a container's cgroup, as `runc events` streams them: on v1
//! an eventfd registered for `memory.oom_control` through `cgroup.event_control`, on v2 the
//! `oom` counter of `memory.events`, which the kernel signals to pollers as it changes.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};
use std::time::Duration;

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};

use super::{Cgroup, Version};
use crate::{Error, Result};

/// A registration for the OOM events of one cgroup.
pub struct OomWatch {
    source: Source,
}

enum Source {
    /// The eventfd and the `memory.oom_control` it is registered for (kept open: closing it
    /// ends the registration).
    V1 { efd: OwnedFd, _control: File },
    /// `memory.events` and the last `oom` count read from it.
    V2 { events: File, seen: u64 },
}

impl OomWatch {
    pub fn new(cg: &Cgroup) -> Result<Self> {
        let fail = |what: &str, e: std::io::Error| Error::Cgroup {
            path: cg.path().to_string(),
            reason: format!("OOM notifications: {what}: {e}"),
        };
        let source = match cg.version() {
            Version::V1 => {
                let dir = cg.dir(Some("memory"));
                let control = File::open(dir.join("memory.oom_control"))
                    .map_err(|e| fail("open memory.oom_control", e))?;
                // SAFETY: eventfd with valid flags; the returned fd is owned below.
                let raw = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC | libc::EFD_NONBLOCK) };
                if raw < 0 {
                    return Err(fail("eventfd", std::io::Error::last_os_error()));
                }
                // SAFETY: `raw` is a new fd of ours alone.
                let efd = unsafe { OwnedFd::from_raw_fd(raw) };
                std::fs::write(
                    dir.join("cgroup.event_control"),
                    format!("{} {}", efd.as_raw_fd(), control.as_raw_fd()),
                )
                .map_err(|e| fail("write cgroup.event_control", e))?;
                Source::V1 {
                    efd,
                    _control: control,
                }
            }
            Version::V2 => {
                let mut events = File::open(cg.dir(None).join("memory.events"))
                    .map_err(|e| fail("open memory.events", e))?;
                let seen = oom_count(&mut events).map_err(|e| fail("read memory.events", e))?;
                Source::V2 { events, seen }
            }
        };
        Ok(Self { source })
    }

    /// Waits up to `timeout` for OOM events; returns how many happened (0 on timeout).
    pub fn wait(&mut self, timeout: Duration) -> Result<u64> {
        let ms = u16::try_from(timeout.as_millis()).unwrap_or(u16::MAX);
        let io = |e: std::io::Error| Error::Other {
            context: "wait for OOM events".into(),
            reason: e.to_string(),
        };
        match &mut self.source {
            Source::V1 { efd, .. } => {
                let mut p = [PollFd::new(efd.as_fd(), PollFlags::POLLIN)];
                poll(&mut p, PollTimeout::from(ms)).map_err(|e| io(e.into()))?;
                let mut buf = [0u8; 8];
                match nix::unistd::read(efd.as_fd(), &mut buf) {
                    Ok(8) => Ok(u64::from_ne_bytes(buf)),
                    Ok(_) | Err(nix::errno::Errno::EAGAIN) => Ok(0),
                    Err(e) => Err(io(e.into())),
                }
            }
            Source::V2 { events, seen } => {
                let mut p = [PollFd::new(events.as_fd(), PollFlags::POLLPRI)];
                poll(&mut p, PollTimeout::from(ms)).map_err(|e| io(e.into()))?;
                let now = oom_count(events).map_err(io)?;
                let new = now.saturating_sub(*seen);
                *seen = now;
                Ok(new)
            }
        }
    }
}

/// The `oom` line of v2's `memory.events`, read from the start.
fn oom_count(events: &mut File) -> std::io::Result<u64> {
    events.seek(SeekFrom::Start(0))?;
    let mut text = String::new();
    events.read_to_string(&mut text)?;
    Ok(parse_oom(&text))
}

fn parse_oom(text: &str) -> u64 {
    text.lines()
        .find_map(|l| l.strip_prefix("oom "))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    #[test]
    fn reads_the_oom_counter() {
        let text = "low 0\nhigh 0\nmax 12\noom 3\noom_kill 3\noom_group_kill 0\n";
        assert_eq!(super::parse_oom(text), 3);
        assert_eq!(super::parse_oom(""), 0);
    }
}
