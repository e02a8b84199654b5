//! Memory notifications of a container's cgroup, as `runc events` streams them: OOM (on v1
//! an eventfd registered for `memory.oom_control` through `cgroup.event_control`, on v2 the
//! `oom` counter of `memory.events`, which the kernel signals to pollers as it changes) and
//! memory pressure (v1 `memory.pressure_level`, v2 a PSI trigger on `memory.pressure`).

use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::path::Path;
use std::time::Duration;

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};

use super::{Cgroup, Version};
use crate::{Error, Result};

/// What the kernel told about the cgroup's memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Notice {
    /// A process of the cgroup hit its memory limit.
    Oom,
    /// Reclaim in the cgroup reached [`PRESSURE_LEVEL`] (v1) or stalled tasks for
    /// [`PSI_TRIGGER`] (v2).
    Pressure,
}

/// v1's level for pressure notices: "medium" (swapping or reclaiming hard), and above.
pub const PRESSURE_LEVEL: &str = "medium";
/// v2's: some task stalled on memory for 100 ms within a second.
pub const PSI_TRIGGER: &str = "some 100000 1000000";

/// The registrations for one cgroup's memory notifications.
pub struct MemoryWatch {
    oom: Source,
    /// Absent where the kernel offers none (v2 without PSI).
    pressure: Option<Source>,
}

enum Source {
    /// An eventfd and the file it is registered for (kept open: closing it ends the
    /// registration).
    EventFd { efd: OwnedFd, _file: File },
    /// `memory.events` and the last `oom` count read from it.
    Events { file: File, seen: u64 },
    /// `memory.pressure` holding a PSI trigger.
    Psi { file: File },
}

fn fail(cg: &Cgroup, what: &str, e: std::io::Error) -> Error {
    Error::Cgroup {
        path: cg.path().to_string(),
        reason: format!("memory notifications: {what}: {e}"),
    }
}

/// An eventfd registered through `cgroup.event_control` for `file` (with `args` after it).
fn event_fd(cg: &Cgroup, dir: &Path, file: &str, args: &str) -> Result<Source> {
    let f = File::open(dir.join(file)).map_err(|e| fail(cg, &format!("open {file}"), e))?;
    // SAFETY: eventfd with valid flags; the returned fd is owned below.
    let raw = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC | libc::EFD_NONBLOCK) };
    if raw < 0 {
        return Err(fail(cg, "eventfd", std::io::Error::last_os_error()));
    }
    // SAFETY: `raw` is a new fd of ours alone.
    let efd = unsafe { OwnedFd::from_raw_fd(raw) };
    let line = format!("{} {} {args}", efd.as_raw_fd(), f.as_raw_fd());
    std::fs::write(dir.join("cgroup.event_control"), line.trim_end())
        .map_err(|e| fail(cg, "write cgroup.event_control", e))?;
    Ok(Source::EventFd { efd, _file: f })
}

impl MemoryWatch {
    pub fn new(cg: &Cgroup) -> Result<Self> {
        Ok(match cg.version() {
            Version::V1 => {
                let dir = cg.dir(Some("memory"));
                Self {
                    oom: event_fd(cg, &dir, "memory.oom_control", "")?,
                    pressure: event_fd(cg, &dir, "memory.pressure_level", PRESSURE_LEVEL).ok(),
                }
            }
            Version::V2 => {
                let dir = cg.dir(None);
                let mut file = File::open(dir.join("memory.events"))
                    .map_err(|e| fail(cg, "open memory.events", e))?;
                let seen = oom_count(&mut file).map_err(|e| fail(cg, "read memory.events", e))?;
                let psi = std::fs::OpenOptions::new()
                    .read(true)
                    .write(true)
                    .open(dir.join("memory.pressure"))
                    .and_then(|mut f| f.write_all(PSI_TRIGGER.as_bytes()).map(|()| f));
                Self {
                    oom: Source::Events { file, seen },
                    pressure: psi.ok().map(|file| Source::Psi { file }),
                }
            }
        })
    }

    /// Waits up to `timeout` for notices; returns those that came (none on timeout).
    pub fn wait(&mut self, timeout: Duration) -> Result<Vec<Notice>> {
        let ms = u16::try_from(timeout.as_millis()).unwrap_or(u16::MAX);
        let io = |cause: std::io::Error| Error::Io {
            context: "wait for memory notifications".into(),
            cause,
        };
        let mut fds = vec![self.oom.poll_fd()];
        if let Some(p) = &self.pressure {
            fds.push(p.poll_fd());
        }
        poll(&mut fds, PollTimeout::from(ms)).map_err(|e| io(e.into()))?;
        let ready: Vec<bool> = fds
            .iter()
            .map(|f| f.revents().is_some_and(|r| !r.is_empty()))
            .collect();
        drop(fds);
        let mut out = Vec::new();
        if ready[0] {
            out.extend((0..self.oom.take().map_err(io)?).map(|_| Notice::Oom));
        }
        if let (Some(p), Some(true)) = (&mut self.pressure, ready.get(1)) {
            if p.take().map_err(io)? > 0 {
                out.push(Notice::Pressure);
            }
        }
        Ok(out)
    }
}

impl Source {
    fn poll_fd(&self) -> PollFd<'_> {
        let (fd, flags): (BorrowedFd<'_>, _) = match self {
            Self::EventFd { efd, .. } => (efd.as_fd(), PollFlags::POLLIN),
            Self::Events { file, .. } | Self::Psi { file } => (file.as_fd(), PollFlags::POLLPRI),
        };
        PollFd::new(fd, flags)
    }

    /// How many notices are pending, taking them.
    fn take(&mut self) -> std::io::Result<u64> {
        match self {
            Self::EventFd { efd, .. } => {
                let mut buf = [0u8; 8];
                match nix::unistd::read(efd.as_fd(), &mut buf) {
                    Ok(8) => Ok(u64::from_ne_bytes(buf)),
                    Ok(_) | Err(nix::errno::Errno::EAGAIN) => Ok(0),
                    Err(e) => Err(e.into()),
                }
            }
            Self::Events { file, seen } => {
                let now = oom_count(file)?;
                let new = now.saturating_sub(*seen);
                *seen = now;
                Ok(new)
            }
            // A PSI trigger that fired: one notice per wake-up.
            Self::Psi { .. } => Ok(1),
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
