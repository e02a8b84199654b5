//! When CRIU need not lock the container's network. CRIU drops every packet of a container
//! with a network namespace of its own while it dumps it, and again while it restores it
//! (iptables rules put in and taken out by running `iptables-restore`), so that no peer
//! sees a socket vanish; the restore takes the dump's method from the images. Taking the
//! rules out costs 50 to 85 ms here, inside the downtime, each time. No lock is needed,
//! without `--tcp-established`, when
//!
//! - the dump leaves the tree alive (`--leave-running`, an export, a post-copy migration):
//!   CRIU unlocks as it ends, and the frozen tree's sockets go on being served by the kernel
//!   afterwards, so the lock only made the dump itself differ;
//! - or the container's network namespace has no inet socket: nothing there can answer a
//!   packet, locked or not, at the dump or at the restore. A socket made in the instant
//!   between this look and the freeze is dumped and restored unlocked: a peer connecting
//!   to it meanwhile is refused instead of left waiting.

use std::path::Path;

use super::CheckpointOpts;

/// Whether the dump of the container whose init is `pid` must lock the network.
pub(super) fn needed(pid: i32, opts: &CheckpointOpts) -> bool {
    if opts.settings.tcp_established {
        return true;
    }
    !opts.criu_leaves_running() && has_inet_sockets(&Path::new("/proc").join(pid.to_string()))
}

/// Whether the network namespace of the process at `proc_dir` holds an inet socket (TCP,
/// UDP or raw, IPv4 or IPv6); an unreadable table counts as holding one.
fn has_inet_sockets(proc_dir: &Path) -> bool {
    ["tcp", "tcp6", "udp", "udp6", "raw", "raw6"]
        .iter()
        .any(|t| {
            std::fs::read_to_string(proc_dir.join("net").join(t))
                // The first line names the columns.
                .map_or(true, |table| table.lines().nth(1).is_some())
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_socket_in_the_namespace_needs_the_lock() {
        // This process's namespace: a socket of its own makes it hold one, whatever else
        // runs there.
        let _listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        assert!(has_inet_sockets(Path::new("/proc/self")));
        let d = tempfile::tempdir().unwrap();
        let net = d.path().join("net");
        std::fs::create_dir(&net).unwrap();
        let header = "  sl  local_address rem_address   st tx_queue rx_queue\n";
        for t in ["tcp", "tcp6", "udp", "udp6", "raw", "raw6"] {
            std::fs::write(net.join(t), header).unwrap();
        }
        assert!(!has_inet_sockets(d.path()), "headers only");
        std::fs::write(
            net.join("udp6"),
            format!("{header}   0: 00000000000000000000000000000000:14E9 ...\n"),
        )
        .unwrap();
        assert!(has_inet_sockets(d.path()));
        std::fs::write(net.join("udp6"), header).unwrap();
        std::fs::remove_file(net.join("raw")).unwrap();
        assert!(has_inet_sockets(d.path()), "unreadable: locked");
    }
}
