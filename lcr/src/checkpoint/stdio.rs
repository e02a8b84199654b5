//! The init's stdio across a checkpoint. Whatever it was — pipes, /dev/null, a host log file,
//! a host tty — it lives outside the container, so CRIU is told it is external on dump, and on
//! restore the restoring command's own stdio is inherited in its place.

use std::os::unix::fs::{FileTypeExt, MetadataExt};

pub use crate::image::record::{StdioFile, StdioKind};

/// What an open fd is, by its /proc link: a pipe, a socket, or by file type a regular file,
/// a fifo, a terminal or another character device (such as /dev/null).
pub fn classify(link: &std::path::Path) -> String {
    let target = std::fs::read_link(link)
        .map(|t| t.to_string_lossy().into_owned())
        .unwrap_or_default();
    if target.starts_with("pipe:[") {
        return "pipe".into();
    }
    if target.starts_with("socket:[") {
        return "socket".into();
    }
    match std::fs::metadata(link) {
        Ok(m) if m.file_type().is_file() => "regular file".into(),
        Ok(m) if m.file_type().is_fifo() => "fifo".into(),
        Ok(m) if m.file_type().is_char_device() && is_tty_major(m.rdev()) => "terminal".into(),
        Ok(m) if m.file_type().is_char_device() => "character device".into(),
        Ok(m) if m.file_type().is_block_device() => "block device".into(),
        Ok(m) if m.file_type().is_dir() => "directory".into(),
        Ok(_) => "other".into(),
        Err(_) => "closed".into(),
    }
}

/// CRIU restores an external file's position and checks its mode, so a file must come back
/// as the same type of file: a log file replaced by a pipe fails with `Illegal seek`, by
/// /dev/null with a bad mode, a fifo by a file likewise. Says which fd of this process does
/// not match, before CRIU runs.
pub fn mismatch(files: &[StdioFile]) -> Option<String> {
    files.iter().find_map(|f| {
        let was = f.file_type.as_ref().filter(|_| f.kind == StdioKind::File)?;
        let now = classify(std::path::Path::new(&format!("/proc/self/fd/{}", f.fd)));
        (now != *was).then(|| {
            format!(
                "the container's fd {} was a {was} ({}) when it was checkpointed, and this \
                 restore's fd {} is a {now}: CRIU needs a {was} there (restore file stdio \
                 from a file, e.g. `>>log`, /dev/null from /dev/null, a fifo from a fifo)",
                f.fd, f.path, f.fd
            )
        })
    })
}

/// Describes fds 0–2 of `pid`. Files on mounts the container's mount namespace does not have
/// (the host's /dev/null, a log file) are external; files inside the container are not.
pub fn stdio_of(pid: i32) -> Vec<StdioFile> {
    let container_mounts: Vec<u64> = crate::procfs::mountinfo(Some(pid))
        .unwrap_or_default()
        .iter()
        .map(|m| m.id)
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
        let mnt_id = fdinfo_mnt_id(pid, fd).unwrap_or(0);
        let (kind, key, external) = if let Some(ino) = bracketed(&path, "pipe:[") {
            (StdioKind::Pipe, format!("pipe:[{ino}]"), false)
        } else if let Some(ino) = bracketed(&path, "socket:[") {
            (StdioKind::Socket, format!("socket:[{ino}]"), false)
        } else if container_mounts.contains(&mnt_id) {
            // On a mount of the container's own (its devpts terminal, a file in its rootfs):
            // CRIU saves and restores it with the rest; nothing to reconnect.
            continue;
        } else if meta.file_type().is_char_device() && is_tty_major(meta.rdev()) {
            (
                StdioKind::Tty,
                format!("tty[{:x}:{:x}]", meta.rdev(), meta.dev()),
                true,
            )
        } else {
            (
                StdioKind::File,
                format!("file[{:x}:{:x}]", mnt_id, meta.ino()),
                true,
            )
        };
        out.push(StdioFile {
            fd,
            kind,
            path,
            key,
            external,
            file_type: Some(classify(std::path::Path::new(&link))),
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
    fn pipes_are_described_by_inode_and_own_files_skipped() {
        use std::process::{Command, Stdio};
        let mut child = Command::new("sleep")
            .arg("5")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let d = stdio_of(child.id() as i32);
        let stdin_fd = std::os::fd::AsRawFd::as_raw_fd(child.stdin.as_ref().unwrap());
        let stdin_ino = std::fs::metadata(format!("/proc/self/fd/{stdin_fd}"))
            .unwrap()
            .ino();
        let _ = child.kill();
        let _ = child.wait();
        let f0 = d
            .iter()
            .find(|f| f.fd == 0)
            .unwrap_or_else(|| panic!("{d:?}"));
        assert_eq!(f0.kind, StdioKind::Pipe);
        assert_eq!(f0.key, format!("pipe:[{stdin_ino}]"));
        assert!(!f0.external);
        assert!(d.iter().any(|f| f.fd == 1 && f.kind == StdioKind::Pipe));
        // /dev/null is on a mount of the child's own mount namespace: nothing to reconnect.
        assert!(!d.iter().any(|f| f.fd == 2), "{d:?}");
        assert_eq!(bracketed("pipe:[123]", "pipe:["), Some("123"));
    }
}
