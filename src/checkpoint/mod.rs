//! Containers ↔ CRIU: `lcr checkpoint` builds one dump request from a container (rootfs as
//! root, external mounts keyed by destination, stdio declared external, the freezer cgroup,
//! joined namespaces as external) and `lcr restore` recreates a container from the images in
//! a new cgroup with the restore bundle's limits and mount sources.

mod dump;
mod mounts;
mod record;
mod restore;
mod stats;
mod stdio;

pub use dump::{checkpoint, CheckpointOpts, CheckpointReport};
pub use mounts::{ExternalMount, MountKind};
pub use record::{Record, RECORD_FILE};
pub use restore::{restore, RestoreOpts};
pub use stats::{DumpStats, RestoreStats};
pub use stdio::{StdioFile, StdioKind};

/// CRIU locks the container's network during dump and restore with iptables by default, which
/// needs the `iptables-restore` binary; without it, use CRIU's nftables method (libnftables).
pub(crate) fn network_lock(opts: criurpc::Options) -> criurpc::Options {
    let has_iptables = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).any(|d| d.join("iptables-restore").is_file()))
        .unwrap_or(false);
    if has_iptables {
        opts
    } else {
        opts.network_lock_nftables()
    }
}
