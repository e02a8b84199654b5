//! The init's stdio across a checkpoint. Whatever it was — pipes, /dev/null, a host log file,
//! a host tty — it lives outside the container, so CRIU is told it is external on dump, and on
//! restore the restoring command's own stdio is inherited in its place.

use std::os::unix::fs::{FileTypeExt, MetadataExt};

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StdioKind {
    Pipe,
    File,
    Tty,
    Socket,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StdioFile {
    pub fd: i32,
    pub kind: StdioKind,
    /// What /proc/PID/fd/N showed.
    pub path: String,
    /// CRIU's id for it: `pipe:[ino]`, `file[mnt:ino]`, `tty[rdev:dev]`, `socket:[ino]`.
    pub key: String,
    /// Whether it must be passed to CRIU as `--external` on dump (pipes and sockets need not).
    pub external: bool,
}

/// Describes fds 0–2 of `pid`. Files on mounts the container's mount namespace does not have
/// (the host's /dev/null, a log file) are external; files inside the container are not.
pub fn describe(pid: i32) -> Vec<StdioFile> {
    let container_mounts: Vec<u64> = std::fs::read_to_string(format!("/proc/{pid}/mountinfo"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.split_whitespace().next()?.parse().ok())
        .collect();
    let mut out = Vec::new();
    for fd in 0..3 {
        let link = format!("/proc/{pid}/fd/{fd}");
        let Ok(target) = std::fs::read_link(&link) else {
            continue;
        };
        let path = target.to_string_lossy().into_owned();
        let Ok(meta) = std::fs::metadata(&link) else {
            continue;
        };
        let (kind, key, external) = if let Some(ino) = bracketed(&path, "pipe:[") {
            (StdioKind::Pipe, format!("pipe:[{ino}]"), false)
        } else if let Some(ino) = bracketed(&path, "socket:[") {
            (StdioKind::Socket, format!("socket:[{ino}]"), false)
        } else if meta.file_type().is_char_device() && is_tty_major(meta.rdev()) {
            (
                StdioKind::Tty,
                format!("tty[{:x}:{:x}]", meta.rdev(), meta.dev()),
                true,
            )
        } else {
            let mnt_id = fdinfo_mnt_id(pid, fd).unwrap_or(0);
            let external = !container_mounts.contains(&mnt_id);
            (
                StdioKind::File,
                format!("file[{:x}:{:x}]", mnt_id, meta.ino()),
                external,
            )
        };
        out.push(StdioFile {
            fd,
            kind,
            path,
            key,
            external,
        });
    }
    out
}

/// Puts write-only regular files among the stdio of `pid` in append mode, on the very open
/// file description the container uses (pidfd_getfd shares it). CRIU records the size of other
/// regular files and refuses to restore when the inherited file's size differs — which a log
/// file handed to the restore always does; for O_WRONLY|O_APPEND files it skips that check.
/// For a file the container only writes to, appending changes nothing it can observe.
pub fn make_logs_appendable(pid: i32, files: &[StdioFile]) {
    // SAFETY: pidfd_open/pidfd_getfd/fcntl on integer arguments; returned fds are owned below.
    unsafe {
        let pidfd = libc::syscall(libc::SYS_pidfd_open, pid, 0) as i32;
        if pidfd < 0 {
            return;
        }
        let pidfd = <std::os::fd::OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(pidfd);
        for f in files
            .iter()
            .filter(|f| f.kind == StdioKind::File && f.external)
        {
            let raw = libc::syscall(
                libc::SYS_pidfd_getfd,
                std::os::fd::AsRawFd::as_raw_fd(&pidfd),
                f.fd,
                0,
            ) as i32;
            if raw < 0 {
                continue;
            }
            let fd = <std::os::fd::OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(raw);
            let raw = std::os::fd::AsRawFd::as_raw_fd(&fd);
            let mut st: libc::stat = std::mem::zeroed();
            let flags = libc::fcntl(raw, libc::F_GETFL);
            if flags >= 0
                && libc::fstat(raw, &mut st) == 0
                && (st.st_mode & libc::S_IFMT) == libc::S_IFREG
                && (flags & libc::O_ACCMODE) == libc::O_WRONLY
                && flags & libc::O_APPEND == 0
            {
                libc::fcntl(raw, libc::F_SETFL, flags | libc::O_APPEND);
            }
        }
    }
}

fn bracketed<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    s.strip_prefix(prefix)?.strip_suffix(']')
}

/// Terminals: /dev/tty* (major 4, 5) and ptys (136–143).
fn is_tty_major(rdev: u64) -> bool {
    let major = nix::sys::stat::major(rdev);
    matches!(major, 4 | 5 | 136..=143)
}

fn fdinfo_mnt_id(pid: i32, fd: i32) -> Option<u64> {
    std::fs::read_to_string(format!("/proc/{pid}/fdinfo/{fd}"))
        .ok()?
        .lines()
        .find_map(|l| l.strip_prefix("mnt_id:"))?
        .trim()
        .parse()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn our_own_stdio_is_described() {
        let me = std::process::id() as i32;
        let d = describe(me);
        assert!(!d.is_empty());
        for f in &d {
            match f.kind {
                StdioKind::Pipe => assert!(f.key.starts_with("pipe:[") && !f.external),
                StdioKind::File => assert!(f.key.starts_with("file[")),
                StdioKind::Tty => assert!(f.key.starts_with("tty[") && f.external),
                StdioKind::Socket => assert!(f.key.starts_with("socket:[")),
            }
        }
        assert_eq!(bracketed("pipe:[123]", "pipe:["), Some("123"));
    }
}
