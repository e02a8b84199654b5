//! Migration between two "hosts" (network namespaces, the destination with its own sshd):
//! the way in (the user's ssh, a remote lcr started with its arguments intact, nothing a
//! remote shell reinterprets), and stop-and-copy of a counting container, which counts on
//! there from where it stopped, with no port opened.

mod common;

use common::counter::*;
use common::migration::*;
use common::outside_peer::{self, OutsidePeer};
use common::twohosts::{TwoHosts, DEST_ADDR};
use common::*;
use migrate::ssh::{RemoteCommand, Ssh};
use migrate::Destination;

fn the_receiving_lcr_gets_its_arguments_as_they_were() {
    let Some(h) = TwoHosts::new("mig-ssh") else {
        return;
    };
    let before = h.listening(&h.dest_ns);
    let ssh = Ssh {
        program: h.ssh.to_string_lossy().into_owned(),
        options: vec!["ConnectTimeout=10".into()],
    };
    let dest = Destination::parse(&format!("ssh://root@{DEST_ADDR}")).unwrap();
    // A bundle directory whose name a shell would split, expand and run (in root's home,
    // where the remote shell starts).
    let pwned = format!("lcr-pwned-{}", std::process::id());
    let marker = std::path::Path::new("/root").join(&pwned);
    let bundle = h
        .tmp
        .path()
        .join(format!("it's a $(touch {pwned}) `id` dir"));
    std::fs::create_dir(&bundle).unwrap();
    let remote = RemoteCommand::new(lcr_bin())
        .arg("spec")
        .arg("--bundle")
        .arg(bundle.to_string_lossy());
    let out = ssh.command(&dest, &remote).unwrap().output().unwrap();
    assert!(
        out.status.success(),
        "ssh: {}\nsshd: {}",
        String::from_utf8_lossy(&out.stderr),
        h.sshd_log()
    );
    assert!(
        bundle.join("config.json").exists(),
        "the bundle path arrived changed"
    );
    let ran = marker.exists();
    let _ = std::fs::remove_file(&marker);
    assert!(!ran, "the remote shell ran part of an argument");
    assert_eq!(h.listening(&h.dest_ns), before, "a port was opened");

    // Refused authentication is ssh's error, quoted, and nothing runs.
    let stranger = Ssh {
        program: h.ssh.to_string_lossy().into_owned(),
        options: vec!["IdentityFile=/dev/null".into(), "IdentitiesOnly=yes".into()],
    };
    std::fs::write(h.tmp.path().join("authorized_keys"), "").unwrap();
    let out = stranger.command(&dest, &remote).unwrap().output().unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("Permission denied"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn a_counting_container_moves_and_counts_on_there() {
    let Some(h) = TwoHosts::new("mig-sc") else {
        return;
    };
    let Some((c, log)) = counter("mig-sc") else {
        return;
    };
    // The same rootfs and the same /host (shared storage), another cgroup and state root.
    let r = bundle_on_same_rootfs(&c, "mig-sc2");
    let ports = h.watch_ports();
    // On a terminal, as a user runs it: the phases are shown as they come.
    let (out, shown) = output_on_a_terminal(&mut migrate_command(
        &h,
        &c,
        (&r.root, &r.id),
        &r.bundle,
        &["--print-stats"],
    ));
    let opened = ports.new_ones();
    for phase in [
        "pre-flight",
        "freeze and dump",
        "sending the images",
        "restoring there",
    ] {
        assert!(
            shown.contains(phase),
            "no {phase:?} on the terminal: {shown:?}"
        );
    }
    assert!(
        out.status.success(),
        "{}
sshd: {}",
        stderr(&out),
        h.sshd_log()
    );
    let stats = String::from_utf8_lossy(&out.stdout);
    assert!(stats.contains("downtime"), "{stats}");
    eprintln!("{}", stats.trim());
    // Gone here, running there, counting on from where it stopped.
    assert!(
        !c.lcr(&["state", &c.id]).status.success(),
        "still on the source"
    );
    assert_eq!(r.state()["status"], "running");
    counts_on_there(&r, &log);
    assert!(opened.is_empty(), "ports opened: {opened:?}");
    r.ok(&["delete", "--force", &r.id]);
}

fn a_failed_or_refused_destination_leaves_the_container_running_here() {
    let Some(h) = TwoHosts::new("mig-flt") else {
        return;
    };
    let Some((c, _log)) = counter("mig-flt") else {
        return;
    };
    // The destination's bundle binds nothing at /host: its restore fails, after the dump.
    let r = Ctr::new("mig-flt2").unwrap();
    let out = migrate(&h, &c, &r, &[]);
    stayed_here(&c, &r, &out, "failed restore");
    assert!(stderr(&out).contains("/host"), "{}", stderr(&out));
    // Not on a terminal: no progress display, only what is said.
    assert!(
        !stderr(&out).contains("freeze and dump"),
        "{}",
        stderr(&out)
    );

    // The id is taken there: refused before the container is touched.
    let r = bundle_on_same_rootfs(&c, "mig-flt3");
    let other = Ctr::new("mig-flt3b").unwrap();
    other.args("sleep 100");
    other.run_detached();
    let out = migrate_into(&h, &c, (&other.root, &other.id), &r.bundle, &[]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stderr(&out).contains("already exists"), "{}", stderr(&out));
    assert_eq!(c.state()["status"], "running");
    assert_eq!(
        other.state()["status"],
        "running",
        "the other container was touched"
    );

    // No room there for the images, or a bind source missing there: refused before the
    // freeze.
    let small = Tmpfs::mount(h.tmp.path().join("small"), "1m");
    let out = migrate(&h, &c, &r, &["--dest-images", small.dir.to_str().unwrap()]);
    drop(small);
    stayed_here(&c, &r, &out, "no room");
    assert!(stderr(&out).contains("MiB free"), "{}", stderr(&out));
    let r = bundle_on_same_rootfs(&c, "mig-flt4");
    r.edit(|v| {
        for m in v["mounts"].as_array_mut().unwrap() {
            if m["destination"] == "/host" {
                m["source"] = serde_json::json!("/nonexistent/lcr-host");
            }
        }
    });
    let out = migrate(&h, &c, &r, &[]);
    stayed_here(&c, &r, &out, "bind source missing");
    assert!(
        stderr(&out).contains("/nonexistent/lcr-host"),
        "{}",
        stderr(&out)
    );

    // Authentication refused: ssh's own words, and nothing touched.
    std::fs::write(h.tmp.path().join("authorized_keys"), "").unwrap();
    let out = migrate(&h, &c, &r, &[]);
    stayed_here(&c, &r, &out, "authentication refused");
    assert!(
        stderr(&out).contains("Permission denied"),
        "{}",
        stderr(&out)
    );
}

fn a_connection_cut_during_the_dump_leaves_the_container_running_here() {
    let Some(h) = TwoHosts::new("mig-cut") else {
        return;
    };
    let Some((c, _log)) = counter("mig-cut") else {
        return;
    };
    let r = bundle_on_same_rootfs(&c, "mig-cut2");
    // An ssh whose connection ends after 20 kB: amid the container's memory.
    let cut = cut_ssh(&h, 20_000);
    let started = std::time::Instant::now();
    let out = migrate(&h, &c, &r, &["--ssh", cut.to_str().unwrap()]);
    assert!(
        started.elapsed() < std::time::Duration::from_secs(60),
        "lcr waited on a dead connection"
    );
    stayed_here(&c, &r, &out, "connection cut");
}

fn an_established_tcp_connection_moves_with_tcp_established() {
    let Some(h) = TwoHosts::new("mig-tcp") else {
        return;
    };
    let Some(c) = Ctr::new("mig-tcp") else { return };
    if !criu_ready() {
        return;
    }
    let host = c.host_dir();
    grant_net_admin(&c);
    c.args(TCP_ECHO);
    start_logging_to(
        &c,
        &["run", "-d", "--bundle", c.bundle.to_str().unwrap(), &c.id],
        &c.tmp.path().join("app.log"),
    );
    let replies = || replies(&host);
    wait_until("echoes", || replies().len() > 3);
    let r = bundle_on_same_rootfs(&c, "mig-tcp2");
    grant_net_admin(&r);
    let out = migrate(&h, &c, &r, &["--tcp-established"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(r.state()["status"], "running");
    let n = replies().len();
    wait_until("echoes from the destination", || replies().len() > n + 3);
    // The same stream: every number once, in order.
    let got = replies();
    assert!(
        got.windows(2).all(|w| w[1] == w[0] + 1),
        "the stream broke: {got:?}"
    );
    r.ok(&["delete", "--force", &r.id]);
}

/// A connection to a peer outside the container, whose address moves with it. The peer sends
/// on while the container is frozen: the copy here must not acknowledge any of it (its
/// network stays locked until it ends) nor reset the connection as it ends; the peer's
/// retransmissions reach the copy there once the address has moved, and the stream goes on,
/// every number once and in order.
fn a_connection_to_a_peer_outside_goes_on_after_the_move() {
    let Some(h) = TwoHosts::new("mig-peer") else {
        return;
    };
    let Some(c) = Ctr::new("mig-peer") else {
        return;
    };
    if !criu_ready() {
        return;
    }
    let mut peer = OutsidePeer::new("lcr-mpeer", c.tmp.path());
    let host = c.host_dir();
    c.join_netns(&peer.here);
    c.args(outside_peer::CLIENT);
    start_logging_to(
        &c,
        &["run", "-d", "--bundle", c.bundle.to_str().unwrap(), &c.id],
        &c.tmp.path().join("app.log"),
    );
    let replies = || replies(&host);
    wait_until("numbers from the peer", || replies().len() > 10);
    let r = bundle_on_same_rootfs(&c, "mig-peer2");
    r.join_netns(&peer.there);
    let out = migrate(&h, &c, &r, &["--tcp-established"]);
    assert!(out.status.success(), "{}", stderr(&out));
    peer.move_address();
    assert_eq!(r.state()["status"], "running");
    let n = replies().len();
    wait_until("numbers at the destination", || replies().len() > n + 10);
    assert!(peer.serving(), "the peer's connection ended");
    let got = replies();
    let broke = got.windows(2).find(|w| w[1] != w[0] + 1);
    assert!(
        broke.is_none(),
        "the stream broke at {broke:?} ({} numbers)",
        got.len()
    );
    r.ok(&["delete", "--force", &r.id]);
}

/// The destination's disk fills while the memory arrives (room enough at the pre-flight, then
/// taken by another writer): the receiver's page server fails, the source counts on, and
/// nothing of the migration is left on that disk.
fn a_destination_disk_that_fills_mid_transfer_leaves_the_container_running_here() {
    let Some(h) = TwoHosts::new("mig-full") else {
        return;
    };
    // About 4 MiB of memory that does not compress, through a connection slowed to a byte
    // per write: seconds of transfer to fill the disk in.
    let Some((c, _log)) = counter_after("mig-full", &incompressible(3 << 20)) else {
        return;
    };
    let r = bundle_on_same_rootfs(&c, "mig-full2");
    let disk = Tmpfs::mount(h.tmp.path().join("disk"), "64m");
    let slow = byte_by_byte_ssh(&h, None);
    let child = spawn_via_files(&mut migrate_command(
        &h,
        &c,
        (&r.root, &r.id),
        &r.bundle,
        &[
            "--ssh",
            slow.to_str().unwrap(),
            "--dest-images",
            disk.dir.to_str().unwrap(),
        ],
    ));
    let pages_arriving = || {
        std::fs::read_dir(&disk.dir)
            .into_iter()
            .flatten()
            .flatten()
            .any(|d| {
                std::fs::read_dir(d.path())
                    .into_iter()
                    .flatten()
                    .flatten()
                    .any(|f| f.file_name().to_string_lossy().starts_with("pages-"))
            })
    };
    wait_until("pages arriving there", pages_arriving);
    let mut filler = std::fs::File::create(disk.dir.join("filler")).unwrap();
    let block = vec![0u8; 1 << 20];
    while std::io::Write::write_all(&mut filler, &block).is_ok() {}
    let out = child.finish();
    stayed_here(&c, &r, &out, "disk full");
    let left: Vec<_> = std::fs::read_dir(&disk.dir)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n != "filler")
        .collect();
    assert!(left.is_empty(), "left on the full disk: {left:?}");
    assert!(
        stderr(&out).contains("No space left on device"),
        "{}",
        stderr(&out)
    );
}

/// Waits until no CRIU and no receiving lcr is left (a killed source's helpers finish or give
/// up on their own).
fn helpers_gone() {
    wait_no_process("CRIU and the receiver to exit", |comm, cmdline| {
        comm == "criu" || cmdline.contains("migrate-receive")
    });
}

fn a_source_lcr_killed_at_any_moment_leaves_exactly_one_copy_running() {
    let Some(h) = TwoHosts::new("mig-kill") else {
        return;
    };
    let mut outcomes = Vec::new();
    for (round, delay_ms) in (0..1300).step_by(100).enumerate() {
        let Some((c, _log)) = counter(&format!("mig-kill{round}")) else {
            return;
        };
        let r = bundle_on_same_rootfs(&c, &format!("mig-kill{round}d"));
        let mut child = migrate_command(&h, &c, (&r.root, &r.id), &r.bundle, &[])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(std::time::Duration::from_millis(delay_ms));
        let _ = child.kill();
        let _ = child.wait();
        helpers_gone();
        // From fresh lcr processes: exactly one side has it, and it runs.
        let (here, there) = (c.status(), r.status());
        match (here.as_str(), there.as_str()) {
            ("running", "gone") => {
                let n = count(&c);
                wait_until("counting on here after a killed migration", || {
                    count(&c) > n + 2
                });
                outcomes.push("stayed");
            }
            ("gone", "running") => outcomes.push("moved"),
            // Killed after it asked for the restore: frozen here, running there, as the
            // message of an interrupted migration says; `--resolve` asks there and removes
            // the copy here.
            ("paused", "running") => {
                let said = c.ok(&["migrate", "--resolve", &c.id]);
                assert_eq!(c.status(), "gone", "{said}");
                outcomes.push("moved, frozen copy here resolved");
            }
            // Killed while it removed its copy (the processes killed, the record not yet
            // gone): a stopped container here says so truthfully, and `--resolve` finishes.
            ("stopped", "running") => {
                let said = c.ok(&["migrate", "--resolve", &c.id]);
                assert_eq!(c.status(), "gone", "{said}");
                outcomes.push("moved, stopped record here resolved");
            }
            other => panic!(
                "killed after {delay_ms} ms: here {}, there {}",
                other.0, other.1
            ),
        }
        let _ = r.lcr(&["delete", "--force", &r.id]);
    }
    eprintln!("kill sweep: {outcomes:?}");
}

/// The pid of the receiving lcr serving container `id`, once it runs.
fn receiver_of(id: &str) -> Option<i32> {
    find_process(|_, cmdline| {
        cmdline.contains("migrate-receive") && cmdline.contains(&format!("--id {id} "))
    })
}

fn a_receiver_killed_at_any_moment_leaves_one_copy_and_nothing_unknown_there() {
    let Some(h) = TwoHosts::new("mig-rk") else {
        return;
    };
    let mut outcomes = Vec::new();
    for (round, delay_ms) in (0..900).step_by(100).enumerate() {
        let Some((c, _log)) = counter(&format!("mig-rk{round}")) else {
            return;
        };
        let r = bundle_on_same_rootfs(&c, &format!("mig-rk{round}d"));
        let mut child = migrate_command(&h, &c, (&r.root, &r.id), &r.bundle, &[])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        wait_until("the receiver to start", || {
            receiver_of(&r.id).is_some() || child.try_wait().ok().flatten().is_some()
        });
        std::thread::sleep(std::time::Duration::from_millis(delay_ms));
        if let Some(pid) = receiver_of(&r.id) {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
        let code = child.wait().unwrap().code();
        helpers_gone();
        let (here, there) = (c.status(), r.status());
        match (code, here.as_str(), there.as_str()) {
            (Some(0), "gone", "running") => outcomes.push("moved"),
            (Some(1), "running", _) => outcomes.push("stayed"),
            // The connection broke during the restore: resolved as lcr's message says,
            // with `--resolve` (it asks there: running, so the copy here goes; absent, so
            // it runs here again).
            (Some(3), "paused", "running" | "gone") => {
                c.ok(&["migrate", "--resolve", &c.id]);
                let after = c.status();
                assert_eq!(after == "gone", there == "running", "resolved to {after}");
                outcomes.push(if there == "running" {
                    "undecided, resolved: moved"
                } else {
                    "undecided, resolved: stayed"
                });
            }
            (Some(3), "paused", _) => {
                c.ok(&["resume", &c.id]);
                outcomes.push("undecided, stayed");
            }
            other => panic!("receiver killed after {delay_ms} ms: {other:?}"),
        }
        // Whatever a killed receiver left there, lcr knows and removes it.
        if there != "gone" && !outcomes.last().unwrap().contains("moved") {
            r.ok(&["delete", "--force", &r.id]);
        }
        if outcomes.last().unwrap().contains("moved") {
            r.ok(&["delete", "--force", &r.id]);
        } else {
            let n = count(&c);
            wait_until("counting on here", || count(&c) > n + 2);
            assert!(!r.state_dir().exists(), "{delay_ms} ms: state left there");
            assert!(
                !cgroup_exists(&r.cgroup),
                "{delay_ms} ms: cgroup left there"
            );
        }
    }
    eprintln!("receiver kill sweep: {outcomes:?}");
}

lcr_test_harness::tests!(
    the_receiving_lcr_gets_its_arguments_as_they_were,
    a_receiver_killed_at_any_moment_leaves_one_copy_and_nothing_unknown_there,
    a_source_lcr_killed_at_any_moment_leaves_exactly_one_copy_running,
    an_established_tcp_connection_moves_with_tcp_established,
    a_connection_to_a_peer_outside_goes_on_after_the_move,
    a_counting_container_moves_and_counts_on_there,
    a_failed_or_refused_destination_leaves_the_container_running_here,
    a_connection_cut_during_the_dump_leaves_the_container_running_here,
    a_destination_disk_that_fills_mid_transfer_leaves_the_container_running_here,
);
