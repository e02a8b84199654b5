//! A TCP peer outside a migrating container: a network namespace of its own, joined by a
//! veth pair to the container's network namespace on each "host". The container has the same
//! address in both; the peer's route to it goes to the source's until
//! [`OutsidePeer::move_address`] sends it to the destination's (the address moves with the
//! container, as a cluster's network moves it). The peer runs a server that sends the next
//! number every 10 ms to whoever connects, whether or not the container is frozen: what the
//! container receives shows whether anything sent meanwhile was lost. Dropping it stops the
//! server by pid and removes the namespaces.

use std::process::{Child, Command, Stdio};

use super::{rootfs_source, NetNs};

pub const PEER_ADDR: &str = "10.251.0.1";
pub const CONTAINER_ADDR: &str = "10.251.0.10";
const PORT: &str = "5555";

/// A client in the container: it connects to the peer's server and writes every number it
/// receives to /host/replies (see `counter::replies`).
pub const CLIENT: &str = "nc 10.251.0.1 5555 > /host/replies";

pub struct OutsidePeer {
    /// The container's network namespace on the source and on the destination.
    pub here: NetNs,
    pub there: NetNs,
    peer: NetNs,
    server: Child,
    /// The peer's end of the pair to the destination's namespace.
    to_there: String,
}

fn ip(args: &[&str]) {
    let out = Command::new("ip").args(args).output().unwrap();
    assert!(
        out.status.success(),
        "ip {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

impl OutsidePeer {
    /// The namespaces and the server; `tmp`: where its script goes.
    pub fn new(prefix: &str, tmp: &std::path::Path) -> Self {
        let (here, there, peer) = (
            NetNs::new(&format!("{prefix}-here")),
            NetNs::new(&format!("{prefix}-there")),
            NetNs::new(&format!("{prefix}-peer")),
        );
        let tag = std::process::id() % 100_000;
        let mut ends = Vec::new();
        for (ns, side) in [(&here, "h"), (&there, "t")] {
            let (inner, outer) = (format!("op{tag}{side}c"), format!("op{tag}{side}p"));
            ip(&[
                "link", "add", &inner, "type", "veth", "peer", "name", &outer,
            ]);
            ip(&["link", "set", &inner, "netns", &ns.name]);
            ip(&["link", "set", &outer, "netns", &peer.name]);
            let n = &ns.name;
            ip(&["-n", n, "link", "set", "lo", "up"]);
            ip(&["-n", n, "link", "set", &inner, "up"]);
            ip(&[
                "-n",
                n,
                "addr",
                "add",
                &format!("{CONTAINER_ADDR}/32"),
                "dev",
                &inner,
            ]);
            ip(&[
                "-n",
                n,
                "route",
                "add",
                &format!("{PEER_ADDR}/32"),
                "dev",
                &inner,
            ]);
            let p = &peer.name;
            ip(&["-n", p, "link", "set", &outer, "up"]);
            ip(&[
                "-n",
                p,
                "addr",
                "add",
                &format!("{PEER_ADDR}/32"),
                "dev",
                &outer,
            ]);
            ends.push(outer);
        }
        ip(&["-n", &peer.name, "link", "set", "lo", "up"]);
        ip(&[
            "-n",
            &peer.name,
            "route",
            "add",
            &format!("{CONTAINER_ADDR}/32"),
            "dev",
            &ends[0],
            "src",
            PEER_ADDR,
        ]);
        // The destination's copy answers from its own end before the route has moved.
        let st = Command::new("ip")
            .args(["netns", "exec", &peer.name, "sysctl", "-q", "-w"])
            .args(["all", "default", &ends[1]].map(|c| format!("net.ipv4.conf.{c}.rp_filter=0")))
            .status()
            .unwrap();
        assert!(st.success(), "rp_filter in {}", peer.name);
        let ticker = tmp.join("ticker");
        std::fs::write(
            &ticker,
            "#!/bin/sh\ni=0; while :; do i=$((i+1)); echo $i || exit; sleep 0.01; done\n",
        )
        .unwrap();
        std::fs::set_permissions(&ticker, std::os::unix::fs::PermissionsExt::from_mode(0o755))
            .unwrap();
        let server = Command::new("nsenter")
            .arg(format!("--net={}", peer.path))
            .arg(rootfs_source().join("bin/busybox"))
            .args(["nc", "-l", "-p", PORT, "-e"])
            .arg(&ticker)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        super::wait_until("the peer's server to listen", || {
            Command::new("nsenter")
                .arg(format!("--net={}", peer.path))
                .args(["ss", "-Hltn", "sport", &format!("= :{PORT}")])
                .output()
                .is_ok_and(|o| !o.stdout.is_empty())
        });
        Self {
            here,
            there,
            peer,
            server,
            to_there: ends.remove(1),
        }
    }

    /// The peer's route to the container's address goes to the destination's namespace.
    pub fn move_address(&self) {
        ip(&[
            "-n",
            &self.peer.name,
            "route",
            "replace",
            &format!("{CONTAINER_ADDR}/32"),
            "dev",
            &self.to_there,
            "src",
            PEER_ADDR,
        ]);
    }

    /// Whether the peer's server still serves its one connection (busybox `nc -l` ends with
    /// it).
    pub fn serving(&mut self) -> bool {
        self.server.try_wait().is_ok_and(|st| st.is_none())
    }
}

impl Drop for OutsidePeer {
    fn drop(&mut self) {
        let _ = self.server.kill();
        let _ = self.server.wait();
    }
}
