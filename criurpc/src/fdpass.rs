//! Starting a child with chosen fds at chosen numbers.

use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command};

/// Spawns `cmd` with `fds[i]` at fd number `first + i` in the child. All other fds of this
/// process are close-on-exec (Rust opens everything with `O_CLOEXEC`), so nothing else leaks.
pub(crate) fn spawn_with_fds(
    cmd: &mut Command,
    fds: &[OwnedFd],
    first: RawFd,
) -> std::io::Result<Child> {
    let srcs: Vec<RawFd> = fds.iter().map(|f| f.as_raw_fd()).collect();
    let mut tmp: Vec<RawFd> = vec![-1; srcs.len()];
    // Above every target number, so phase one cannot clobber a target or a source.
    let parking = first + srcs.len() as RawFd;
    // SAFETY: the closure runs between fork and exec and only calls fcntl/dup2, which are
    // async-signal-safe; it writes into `tmp`, allocated before the fork, and allocates nothing.
    unsafe {
        cmd.pre_exec(move || {
            // Phase 1: park every source above the target range, so that a source whose number
            // is itself a target is not overwritten before it is moved.
            for (i, &src) in srcs.iter().enumerate() {
                let t = libc::fcntl(src, libc::F_DUPFD_CLOEXEC, parking);
                if t < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                tmp[i] = t;
            }
            // Phase 2: dup2 clears FD_CLOEXEC on the target, so exactly these survive exec.
            for (i, &t) in tmp.iter().enumerate() {
                if libc::dup2(t, first + i as RawFd) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
            }
            Ok(())
        });
    }
    cmd.spawn()
}
