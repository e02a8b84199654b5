use std::convert::Infallible;

use nix::sys::wait::waitpid;
use nix::unistd::{fork, ForkResult, Pid};
use oci_spec::runtime::LinuxIdMapping;

use super::namespaces::Plan;
use super::sync::{Channel, Msg};
use crate::error::Context;
use crate::{Error, Result};

/// A process started by [`spawn`], with the channel to it.
pub struct Spawned {
    pub pid: i32,
    pub ch: Channel,
}

/// lcr forks without re-exec, and the child allocates and takes locks: that is sound only
/// while this process has one thread (another's lock, held at the fork, would never be
/// released in the child). Threads exist (archive compression, digests, the restore
/// watchdog); none may be running when a container process is forked.
pub fn ensure_single_threaded() -> Result<()> {
    let threads = std::fs::read_dir("/proc/self/task")
        .ctx(|| "read /proc/self/task".into())?
        .count();
    if threads != 1 {
        return Err(Error::Threaded(threads));
    }
    Ok(())
}

/// Forks stage one, which enters `plan`'s namespaces and forks `child`.
///
/// `on_stage_ready` runs in the parent once stage one is in its user namespace and before it
/// unshares the rest: the moment to write id maps and join the cgroup.
pub fn spawn(
    plan: &Plan,
    on_stage_ready: impl FnOnce(i32) -> Result<()>,
    child: impl FnOnce(&Channel) -> Result<Infallible>,
) -> Result<Spawned> {
    ensure_single_threaded()?;
    let (parent_ch, child_ch) = Channel::pair()?;
    // SAFETY: lcr is single-threaded when it forks (checked just above), so the child may
    // allocate; it never returns from `stage_one`.
    match unsafe { fork() }.ctx(|| "fork".into())? {
        ForkResult::Child => {
            drop(parent_ch);
            stage_one(child_ch, plan, child)
        }
        ForkResult::Parent { child: stage } => {
            drop(child_ch);
            match handshake(&parent_ch, stage.as_raw(), on_stage_ready) {
                Ok(pid) => {
                    drop_stage(stage);
                    Ok(Spawned { pid, ch: parent_ch })
                }
                Err(e) => {
                    // Stage one may be waiting for a word from us (a refused id map): it is
                    // ours and not yet reaped, so the pid is still its own to kill.
                    drop(parent_ch);
                    let _ = nix::sys::signal::kill(stage, nix::sys::signal::Signal::SIGKILL);
                    drop_stage(stage);
                    Err(e)
                }
            }
        }
    }
}

fn handshake(ch: &Channel, stage: i32, on_ready: impl FnOnce(i32) -> Result<()>) -> Result<i32> {
    expect_msg(ch, Msg::StageReady)?;
    on_ready(stage)?;
    ch.send(&Msg::Go)?;
    match ch.recv()? {
        Some(Msg::Child(pid)) => Ok(pid),
        Some(Msg::Failed(e)) => Err(child_error(e)),
        other => Err(child_error(format!("unexpected message {other:?}"))),
    }
}

fn drop_stage(stage: Pid) {
    let _ = waitpid(stage, None);
}

pub fn expect_msg(ch: &Channel, want: Msg) -> Result<()> {
    match ch.recv()? {
        Some(m) if m == want => Ok(()),
        Some(Msg::Failed(e)) => Err(child_error(e)),
        Some(other) => Err(child_error(format!("expected {want:?}, got {other:?}"))),
        None => Err(child_error("the child exited without a word".into())),
    }
}

fn child_error(reason: String) -> Error {
    Error::Child(reason)
}

fn stage_one(ch: Channel, plan: &Plan, child: impl FnOnce(&Channel) -> Result<Infallible>) -> ! {
    // Held open until `Child(pid)` is sent (stage one then exits): the child, which shares
    // the channel, speaks only after that, so the parent reads the messages in their order.
    let mut release = None;
    let r = (|| -> Result<i32> {
        plan.enter_user()?;
        ch.send(&Msg::StageReady)?;
        match ch.recv()? {
            Some(Msg::Go) => {}
            _ => return Err(child_error("parent gave up".into())),
        }
        plan.enter_rest()?;
        let (released, hold) = nix::unistd::pipe().ctx(|| "pipe".into())?;
        // SAFETY: still single-threaded; the child ends in exec or _exit.
        match unsafe { fork() }.ctx(|| "fork".into())? {
            ForkResult::Child => {
                drop(hold);
                wait_for_eof(released);
                child_main(&ch, child)
            }
            ForkResult::Parent { child } => {
                release = Some(hold);
                Ok(child.as_raw())
            }
        }
    })();
    match r {
        Ok(pid) => {
            let _ = ch.send(&Msg::Child(pid));
            drop(release);
            exit(0)
        }
        Err(e) => {
            let _ = ch.send(&Msg::Failed(e.to_string()));
            exit(1)
        }
    }
}

/// Blocks until every writer of `fd` has closed it.
fn wait_for_eof(fd: std::os::fd::OwnedFd) {
    let mut f = std::fs::File::from(fd);
    let mut buf = [0u8; 1];
    loop {
        match std::io::Read::read(&mut f, &mut buf) {
            Ok(0) => return,
            Ok(_) => continue,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(_) => return,
        }
    }
}

/// Runs `f` in a forked child: reports its error (or panic) on `ch`, never returns.
pub(crate) fn child_main(ch: &Channel, f: impl FnOnce(&Channel) -> Result<Infallible>) -> ! {
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(ch)));
    let msg = match r {
        Ok(Ok(never)) => match never {},
        Ok(Err(e)) => e.to_string(),
        Err(p) => format!(
            "panic: {}",
            p.downcast_ref::<String>()
                .cloned()
                .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default()
        ),
    };
    if ch.send(&Msg::Failed(msg.clone())).is_err() {
        // Nobody listens any more (after `Created`): the container's stderr is all we have.
        eprintln!("lcr: {msg}");
    }
    exit(1)
}

fn exit(code: i32) -> ! {
    // SAFETY: _exit ends the forked child without running the parent's destructors or atexit
    // handlers, which belong to the parent.
    unsafe { libc::_exit(code) }
}

/// Writes a user namespace's uid and gid maps from the parent side.
pub fn write_id_maps(pid: i32, uids: &[LinuxIdMapping], gids: &[LinuxIdMapping]) -> Result<()> {
    let fmt = |m: &[LinuxIdMapping]| {
        m.iter()
            .map(|x| format!("{} {} {}\n", x.container_id(), x.host_id(), x.size()))
            .collect::<String>()
    };
    for (field, file, maps) in [
        ("linux.uidMappings", "uid_map", uids),
        ("linux.gidMappings", "gid_map", gids),
    ] {
        if maps.is_empty() {
            continue;
        }
        std::fs::write(format!("/proc/{pid}/{file}"), fmt(maps)).ctx(|| {
            format!(
                "{field} ({} entries): the kernel refused them (overlapping ranges, a size \
                 beyond 2^32-1, more than 340 lines or a host id outside the caller's)",
                maps.len()
            )
        })?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_process_with_threads_may_not_fork_a_container() {
        // The test harness runs each test on a thread of its own beside the main thread.
        let e = super::ensure_single_threaded().unwrap_err().to_string();
        assert!(e.contains("threads") && e.contains("must have one"), "{e}");
    }
}
