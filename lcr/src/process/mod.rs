//! Creating the container's processes.
//!
//! lcr forks, it does not re-exec itself: the CLI is single-threaded, so after `fork` the
//! child may allocate and run ordinary Rust until it calls `execve`. Two forks are needed:
//! stage one enters the user namespace, is put in the cgroup by the parent, unshares the
//! other namespaces and forks the process that becomes pid 1 in the new pid namespace.
//! Children never return into the caller's code: they end in `exec` or `_exit`, so the
//! parent's guards (state dir, cgroup) never run twice.

pub mod console;
mod finalize;
pub mod init;
mod loopback;
pub mod namespaces;

mod spawn;
pub mod sync;
mod wait;

pub use finalize::{exec_process, find_executable, prepare_process, resolve_executable, Ready};
pub use spawn::{expect_msg as sync_expect, spawn, write_id_maps, Spawned};
pub use wait::{become_subreaper, wait_forwarding, Exit};

/// A copy of this process's stdin, stdout or stderr (`fd` 0, 1 or 2).
pub fn dup_stdio(fd: i32) -> crate::Result<std::os::fd::OwnedFd> {
    use crate::error::Context;
    assert!((0..3).contains(&fd), "dup_stdio takes 0, 1 or 2, not {fd}");
    // SAFETY: fd 0–2 are open for the life of the process; we only duplicate them.
    let b = unsafe { std::os::fd::BorrowedFd::borrow_raw(fd) };
    b.try_clone_to_owned().ctx(|| format!("dup fd {fd}"))
}
