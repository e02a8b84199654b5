//! What a checkpoint refuses before anything is touched: options the kernel or CRIU cannot
//! serve, and options an archive cannot hold.

use super::CheckpointOpts;
use crate::{Error, Result};

/// Fails when the kernel or CRIU lacks what the options need.
pub(super) fn check_kernel(opts: &CheckpointOpts) -> Result<()> {
    let needs_dirty = opts.pre_dump || opts.parent_path.is_some();
    if !(needs_dirty || opts.settings.lazy_pages) {
        return Ok(());
    }
    let f = opts.settings.criu.features()?;
    if needs_dirty && !f.mem_track {
        let flag = if opts.pre_dump {
            "--pre-dump"
        } else {
            "--parent-path"
        };
        return Err(Error::KernelLacks {
            option: flag.into(),
            feature: "dirty memory tracking (soft-dirty, CONFIG_MEM_SOFT_DIRTY)".into(),
            remedy: "iterative pre-copy checkpoints are unavailable; use a plain checkpoint".into(),
        });
    }
    if opts.settings.lazy_pages {
        if !f.lazy_pages {
            return Err(Error::KernelLacks {
                option: "--lazy-pages".into(),
                feature: "non-cooperative userfaultfd".into(),
                remedy: "lazy pages are unavailable; use a plain checkpoint".into(),
            });
        }
        if let Some(why) = crate::check::lazy_pages_blocker() {
            return Err(Error::Option {
                option: "--lazy-pages".into(),
                reason: why,
            });
        }
    }
    Ok(())
}

/// CRIU reads every process's resource limits (prlimit), which the kernel allows on a process
/// of another user only with CAP_SYS_RESOURCE (in the process's user namespace). Without it
/// (this machine's bounding set lacks it), a container whose processes run as another user
/// in the host's user namespace cannot be dumped: refused here, naming the process, rather
/// than by CRIU's "Can't get rlimit 0: Operation not permitted" after the freeze.
pub(super) fn check_limits_readable(container: &crate::container::Container) -> Result<()> {
    if crate::check::has_capability(caps::Capability::CAP_SYS_RESOURCE) {
        return Ok(());
    }
    let host_userns = std::fs::read_link("/proc/self/ns/user").ok();
    let pids = container.cgroup().map(|g| g.pids()).unwrap_or_default();
    for pid in pids {
        let proc_dir = std::path::PathBuf::from(format!("/proc/{pid}"));
        if std::fs::read_link(proc_dir.join("ns/user")).ok() != host_userns {
            // A user namespace lcr made: root owns it, and so has every capability there.
            continue;
        }
        let status = std::fs::read_to_string(proc_dir.join("status")).unwrap_or_default();
        let ids = |key: &str| -> Vec<u32> {
            status
                .lines()
                .find_map(|l| l.strip_prefix(key))
                .map(|v| {
                    v.split_whitespace()
                        .filter_map(|n| n.parse().ok())
                        .collect()
                })
                .unwrap_or_default()
        };
        let (uids, gids) = (ids("Uid:"), ids("Gid:"));
        let me = (
            nix::unistd::geteuid().as_raw(),
            nix::unistd::getegid().as_raw(),
        );
        if uids.iter().any(|u| *u != me.0) || gids.iter().any(|g| *g != me.1) {
            return Err(Error::Host {
                what: format!("container {:?}", container.id()),
                reason: format!(
                    "its process {pid} runs as uid {} gid {}: CRIU must read its resource \
                     limits, which the kernel allows for another user only with \
                     CAP_SYS_RESOURCE, and lcr lacks it (not in this machine's bounding set); \
                     run the container's processes as root or in a user namespace of its own, \
                     or give lcr CAP_SYS_RESOURCE",
                    uids.get(1).unwrap_or(&0),
                    gids.get(1).unwrap_or(&0)
                ),
            });
        }
    }
    Ok(())
}

/// Refuses option combinations an archive cannot hold.
pub(super) fn check_export(opts: &CheckpointOpts) -> Result<()> {
    if opts.export.is_none() {
        return Ok(());
    }
    let conflict = if opts.pre_dump {
        Some("--pre-dump (a pre-dump is not restorable on its own)")
    } else if opts.settings.lazy_pages {
        Some("--lazy-pages (the memory stays behind, served on demand)")
    } else if opts.page_server.is_some() || opts.page_server_fd.is_some() {
        Some("--page-server (the memory goes to the page server)")
    } else {
        None
    };
    match conflict {
        Some(conflict) => Err(Error::Option {
            option: "--export".into(),
            reason: format!("cannot be combined with {conflict}"),
        }),
        None => Ok(()),
    }
}
