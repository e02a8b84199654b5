//! lcr checkpoint / lcr restore on real containers and real CRIU. Workloads verify themselves:
//! a counter must go on from where it stopped, files and limits must be there after restore.

mod common;

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use common::counter::*;
use common::*;
use serde_json::json;

fn a_restored_container_counts_on_under_a_new_id_and_cgroup() {
    let Some((c, log)) = counter("cr-count") else {
        return;
    };
    let img = c.tmp.path().join("img");
    let out = checkpoint(&c, &img, &[]);
    assert_success(&out);
    assert!(
        !c.state_dir().exists(),
        "a checkpointed container is removed"
    );
    assert!(!cgroup_exists(&c.cgroup), "and so is its cgroup");
    let at_dump = count(&c);
    let before = lines(&log);

    // Restore into a second bundle: another id, cgroup and /host directory.
    let r = Ctr::new("cr-count2").unwrap();
    r.host_dir();
    r.edit(|v| {
        v["linux"]["resources"]["memory"] = json!({"limit": 96u64 << 20});
        v["linux"]["resources"]["pids"] = json!({"limit": 32});
    });
    let log2 = r.tmp.path().join("app2.log");
    restore_into(&c, &r, &img, &log2);
    wait_until("restored counting", || count(&r) > at_dump + 3);
    let after = lines(&log2);
    // The count goes on from its own memory, on the restore's stdout.
    assert_eq!(
        after[0].0,
        before.last().unwrap().0 + 1,
        "log before {before:?} after {after:?}"
    );
    // Same pid 1, hostname, and the tmpfs file made before the checkpoint.
    assert_eq!(after[0].1, "1 counter keep", "{after:?}");
    let st = r.state();
    assert_eq!(st["status"], "running");
    assert_eq!(st["id"], r.id.as_str());
    // The restore bundle's limits, in the restore bundle's cgroup.
    assert_eq!(
        r.cgroup_read("memory", "memory.limit_in_bytes"),
        (96u64 << 20).to_string()
    );
    assert_eq!(r.cgroup_read("pids", "pids.max"), "32");
    let pid = r.pid();
    assert!(read(format!("/proc/{pid}/cgroup")).contains(&format!("memory:{}\n", r.cgroup)));
    // exec, ps and pause work on it.
    let out = r.lcr(&["exec", &r.id, "cat", "/dev/shm/mark"]);
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "keep");
    let ps: Vec<i32> = serde_json::from_str(&r.ok(&["ps", &r.id, "--format", "json"])).unwrap();
    assert!(ps.contains(&pid));
    r.ok(&["pause", &r.id]);
    let n = count(&r);
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(count(&r), n);
    r.ok(&["resume", &r.id]);
    // An exec'd process joins every namespace of the restored init, the time namespace CRIU
    // made for it too, and is checkpointed with it.
    let ns = |p: &str| std::fs::read_link(format!("/proc/{p}/ns/time")).unwrap();
    let pidf = r.tmp.path().join("exec.pid");
    r.ok(&[
        "exec",
        "-d",
        "--pid-file",
        pidf.to_str().unwrap(),
        &r.id,
        "sleep",
        "1000",
    ]);
    let epid = read(&pidf).trim().to_string();
    assert_eq!(
        ns(&epid),
        ns(&pid.to_string()),
        "exec in the init's time namespace"
    );

    // A second checkpoint of the restored container, and a third life.
    let img2 = r.tmp.path().join("img2");
    let out = checkpoint(&r, &img2, &["--print-stats"]);
    assert_success(&out);
    assert!(String::from_utf8_lossy(&out.stdout).contains("pages scanned"));
    let at_dump2 = count(&r);
    let r3 = Ctr::new("cr-count3").unwrap();
    r3.host_dir();
    let log3 = r3.tmp.path().join("app3.log");
    restore_into(&r, &r3, &img2, &log3);
    wait_until("third life", || count(&r3) > at_dump2 + 2);
    assert_eq!(lines(&log3)[0].0, lines(&log2).last().unwrap().0 + 1);
    r3.ok(&["delete", "--force", &r3.id]);
    assert!(!cgroup_exists(&r3.cgroup));
}

fn leave_running_keeps_the_container_and_two_restores_run_side_by_side() {
    let Some((c, _log)) = counter("cr-leave") else {
        return;
    };
    let img = c.tmp.path().join("img");
    let out = checkpoint(&c, &img, &["--leave-running"]);
    assert_success(&out);
    assert_eq!(c.state()["status"], "running");
    let n = count(&c);
    wait_until("still counting", || count(&c) > n + 3);

    // Two clones with their own bind-mount sources and limits.
    let mk = |name: &str, mem: u64, data: &str| {
        let r = Ctr::new(name).unwrap();
        r.host_dir();
        let d = r.tmp.path().join("data");
        std::fs::create_dir(&d).unwrap();
        std::fs::write(d.join("who"), data).unwrap();
        r.edit(|v| v["linux"]["resources"]["memory"] = json!({"limit": mem}));
        r
    };
    let a = mk("cr-clone-a", 64 << 20, "a");
    let b = mk("cr-clone-b", 80 << 20, "b");
    for r in [&a, &b] {
        restore_into(&c, r, &img, &r.tmp.path().join("log"));
    }
    for (r, mem) in [(&a, 64u64 << 20), (&b, 80 << 20)] {
        wait_until("clone counting", || count(r) > n + 2);
        assert_eq!(
            r.cgroup_read("memory", "memory.limit_in_bytes"),
            mem.to_string()
        );
        assert_ne!(r.pid(), c.pid());
    }
    assert_ne!(a.cgroup, b.cgroup);

    // A paused container is checkpointed as it is and stays paused: lcr has nothing to
    // freeze, and nothing to thaw afterwards.
    c.ok(&["pause", &c.id]);
    let paused_at = count(&c);
    let img = c.tmp.path().join("img-paused");
    assert_success(&checkpoint(&c, &img, &["--leave-running"]));
    assert_eq!(c.state()["status"], "paused");
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(count(&c), paused_at, "a paused container counted");
    c.ok(&["resume", &c.id]);
    wait_until("counting after resume", || count(&c) > paused_at + 2);
}

fn a_bind_mount_is_remapped_to_the_restore_bundles_source() {
    let Some(c) = Ctr::new("cr-bind") else { return };
    if !criu_ready() {
        return;
    }
    c.host_dir();
    let data = c.tmp.path().join("data");
    std::fs::create_dir(&data).unwrap();
    std::fs::write(data.join("who"), "old").unwrap();
    let add_data = |r: &Ctr, dir: &Path| {
        let src = dir.to_str().unwrap().to_string();
        r.edit(|v| {
            v["mounts"].as_array_mut().unwrap().push(json!({
                "destination": "/data", "type": "bind", "source": src, "options": ["rbind", "ro"]
            }))
        });
    };
    add_data(&c, &data);
    c.args("while :; do cat /data/who > /host/seen.tmp; mv /host/seen.tmp /host/seen; sleep 0.05; done");
    c.run_detached();
    wait_until("old source read", || {
        read(c.tmp.path().join("host/seen")) == "old"
    });
    let img = c.tmp.path().join("img");
    let out = checkpoint(&c, &img, &[]);
    assert_success(&out);

    let r = Ctr::new("cr-bind2").unwrap();
    r.host_dir();
    // Without /data in the restore bundle the restore is refused, naming the mount.
    let refused = r.try_restore(&img);
    assert_eq!(refused.status.code(), Some(1));
    let err = String::from_utf8_lossy(&refused.stderr);
    assert!(err.contains("bind mount at /data"), "{err}");
    assert!(!r.state_dir().exists());
    assert!(!cgroup_exists(&r.cgroup));

    let data2 = r.tmp.path().join("data2");
    std::fs::create_dir(&data2).unwrap();
    std::fs::write(data2.join("who"), "new").unwrap();
    add_data(&r, &data2);
    restore_into(&c, &r, &img, &r.tmp.path().join("log"));
    wait_until("new source read", || {
        read(r.tmp.path().join("host/seen")) == "new"
    });
}

fn a_bind_mount_inside_another_bind_mount_is_restored() {
    let Some(c) = Ctr::new("cr-nested") else {
        return;
    };
    if !criu_ready() {
        return;
    }
    c.host_dir();
    // /test from one source, /test/for/nested from another: the nested mount point lies in
    // the first source, which in the restore bundle is a fresh directory without it.
    let sources = |r: &Ctr, who: &str| {
        let outer = r.tmp.path().join("outer");
        let inner = r.tmp.path().join("inner");
        std::fs::create_dir(&outer).unwrap();
        std::fs::create_dir(&inner).unwrap();
        std::fs::write(inner.join("who"), who).unwrap();
        r.edit(|v| {
            let m = v["mounts"].as_array_mut().unwrap();
            m.push(json!({"destination": "/test", "type": "bind", "source": outer, "options": ["rbind"]}));
            m.push(json!({"destination": "/test/for/nested", "type": "bind", "source": inner, "options": ["rbind", "ro"]}));
        });
    };
    sources(&c, "old");
    c.args("while :; do cat /test/for/nested/who > /host/seen.tmp; mv /host/seen.tmp /host/seen; sleep 0.05; done");
    c.run_detached();
    wait_until("nested source read", || {
        read(c.tmp.path().join("host/seen")) == "old"
    });
    let img = c.tmp.path().join("img");
    assert_success(&checkpoint(&c, &img, &[]));
    let r = Ctr::new("cr-nested2").unwrap();
    r.host_dir();
    sources(&r, "new");
    restore_into(&c, &r, &img, &r.tmp.path().join("log"));
    wait_until("nested source read after restore", || {
        read(r.tmp.path().join("host/seen")) == "new"
    });
}

fn the_containers_criu_config_annotation_is_honoured() {
    let Some(c) = counter_bundle("cr-config") else {
        return;
    };
    // A configuration file CRIU cannot parse: the dump fails because CRIU read it, and the
    // container counts on.
    let conf = c.tmp.path().join("criu.conf");
    std::fs::write(&conf, "no-such-criu-option-xyz\n").unwrap();
    c.edit(|v| v["annotations"] = json!({"org.criu.config": conf}));
    start_counting(&c);
    let img = c.tmp.path().join("img");
    let out = checkpoint(&c, &img, &["--leave-running"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert_eq!(c.state()["status"], "running");
    let n = count(&c);
    wait_until("counting after the refused dump", || count(&c) > n + 2);
    // A missing file is named before CRIU runs.
    std::fs::remove_file(&conf).unwrap();
    let out = checkpoint(&c, &img, &["--leave-running"]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.contains("org.criu.config") && err.contains(conf.to_str().unwrap()),
        "{err}"
    );
    // And a valid one lets the dump through.
    std::fs::write(&conf, "tcp-established\n").unwrap();
    assert_success(&checkpoint(&c, &img, &["--leave-running"]));
}

fn a_failed_dump_leaves_the_container_running() {
    let Some(c) = Ctr::new("cr-fail") else { return };
    if !criu_ready() {
        return;
    }
    let host = c.host_dir();
    // A deleted 4 MiB file held open: above CRIU's ghost-file limit (1 MiB), so the dump fails.
    c.args("head -c 4194304 /dev/zero > /big; exec 3</big; rm /big; i=0; while :; do i=$((i+1)); echo $i > /host/n; sleep 0.05; done");
    c.run_detached();
    wait_until("counting", || {
        read(host.join("n")).trim().parse::<u64>().unwrap_or(0) > 3
    });
    let img = c.tmp.path().join("img");
    let out = checkpoint(&c, &img, &[]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("criu dump failed"), "{err}");
    assert!(
        err.to_lowercase().contains("ghost"),
        "CRIU's own reason is shown: {err}"
    );
    assert!(err.contains("dump.log"), "the log path is shown: {err}");
    assert_eq!(c.state()["status"], "running");
    assert_eq!(c.cgroup_read("freezer", "freezer.state"), "THAWED");
    let n: u64 = read(host.join("n")).trim().parse().unwrap();
    wait_until("counting after the failed dump", || {
        read(host.join("n")).trim().parse::<u64>().unwrap_or(0) > n + 3
    });
}

fn a_restore_from_a_broken_image_leaves_nothing_and_the_images_intact() {
    let Some((c, _)) = counter("cr-broken") else {
        return;
    };
    let img = c.tmp.path().join("img");
    assert!(checkpoint(&c, &img, &[]).status.success());
    // Break the image where only CRIU notices: the init's memory layout is empty.
    std::fs::write(img.join("mm-1.img"), b"").unwrap();
    let snapshot = |d: &Path| {
        let mut v: Vec<(String, Vec<u8>)> = std::fs::read_dir(d)
            .unwrap()
            .flatten()
            .filter(|e| !e.file_name().to_string_lossy().ends_with(".log"))
            .map(|e| {
                (
                    e.file_name().to_string_lossy().into_owned(),
                    std::fs::read(e.path()).unwrap(),
                )
            })
            .collect();
        v.sort();
        v
    };
    let before = snapshot(&img);
    let r = Ctr::new("cr-broken2").unwrap();
    r.host_dir();
    let out = r.try_restore(&img);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("criu restore failed"), "{err}");
    assert!(err.contains("restore.log"), "{err}");
    assert!(!r.state_dir().exists(), "state left");
    assert!(!cgroup_exists(&r.cgroup), "cgroup left");
    assert_eq!(r.lcr(&["list", "-q"]).stdout, b"");
    assert_eq!(snapshot(&img), before, "the images changed");
    // A missing image is caught before CRIU runs, and named.
    std::fs::rename(img.join("pstree.img"), img.join("pstree.bak")).unwrap();
    let out = r.try_restore(&img);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("incomplete: pstree.img is missing"), "{err}");
    assert!(!r.state_dir().exists() && !cgroup_exists(&r.cgroup));
    // Not an lcr image at all.
    let out = r.try_restore(Path::new("/nonexistent/img"));
    assert!(String::from_utf8_lossy(&out.stderr).contains("lcr-checkpoint.json"));
}

fn features_the_kernel_lacks_are_refused_before_touching_the_container() {
    let Some((c, _)) = counter("cr-kernel") else {
        return;
    };
    let f = criurpc::Criu::new().features().unwrap();
    let lazy_blocked = lcr::check::lazy_pages_blocker().is_some();
    if f.mem_track && !lazy_blocked {
        lcr_test_harness::skip("this kernel tracks dirty memory and fs.pipe-max-size allows lazy dumps: nothing is refused here (the kernel lane tests both)");
        return;
    }
    if !f.mem_track {
        let out = checkpoint(&c, &c.tmp.path().join("pre"), &["--pre-dump"]);
        assert_eq!(out.status.code(), Some(1));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("--pre-dump") && err.contains("dirty memory tracking"),
            "{err}"
        );
        assert!(!c.tmp.path().join("pre").exists(), "nothing was written");
        let out = checkpoint(
            &c,
            &c.tmp.path().join("final"),
            &["--parent-path", "../pre"],
        );
        assert!(String::from_utf8_lossy(&out.stderr).contains("--parent-path"));
    }
    if lazy_blocked {
        let out = checkpoint(&c, &c.tmp.path().join("lazy"), &["--lazy-pages"]);
        assert_eq!(out.status.code(), Some(1));
        assert!(String::from_utf8_lossy(&out.stderr).contains("fs.pipe-max-size"));
    }
    assert_eq!(c.state()["status"], "running");
    let n = count(&c);
    wait_until("counting", || count(&c) > n + 2);
}

fn an_established_tcp_connection_inside_the_container_survives() {
    let Some(c) = Ctr::new("cr-tcp") else { return };
    if !criu_ready() {
        return;
    }
    let host = c.host_dir();
    grant_net_admin(&c);
    c.args(TCP_ECHO);
    c.run_detached();
    let replies = || replies(&host);
    wait_until("echoes", || replies().len() > 3);
    let img = c.tmp.path().join("img");
    // Without --tcp-established CRIU refuses, and the container runs on.
    let out = checkpoint(&c, &img, &[]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("criu dump failed"));
    let n = replies().len();
    wait_until("echoes after refusal", || replies().len() > n + 2);
    // Half a checkpoint is not one: only CRIU's log stays in the image directory.
    let left: Vec<String> = std::fs::read_dir(&img)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| !n.ends_with(".log"))
        .collect();
    assert!(left.is_empty(), "partial images left: {left:?}");
    // A refused export keeps CRIU's log where it can still be read.
    let archive = c.tmp.path().join("tcp.tar.zst");
    let out = c.lcr(&["checkpoint", "--export", archive.to_str().unwrap(), &c.id]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    let kept = err
        .lines()
        .find_map(|l| l.trim_start().strip_prefix("CRIU's log is kept at "))
        .and_then(|l| l.split(" (").next())
        .unwrap_or_else(|| panic!("no kept log named: {err}"));
    assert!(read(kept).contains("Error"), "{kept}");
    let _ = std::fs::remove_file(kept);
    assert!(!archive.exists());

    let img = c.tmp.path().join("img-tcp");
    let out = checkpoint(&c, &img, &["--tcp-established"]);
    assert_success(&out);
    // inspect reads the connection pair out of the images.
    let i: serde_json::Value =
        serde_json::from_str(&c.ok(&["image", "inspect", "--json", img.to_str().unwrap()]))
            .unwrap();
    let conns: Vec<String> = i["connections"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            format!(
                "{} {} {} {}",
                t["protocol"], t["local"], t["remote"], t["state"]
            )
            .replace('"', "")
        })
        .collect();
    assert!(
        conns
            .iter()
            .any(|t| t.starts_with("tcp 127.0.0.1:5555 127.0.0.1:") && t.ends_with("ESTABLISHED")),
        "{conns:?}"
    );
    assert!(
        conns
            .iter()
            .any(|t| t.contains(" 127.0.0.1:5555 ESTABLISHED")),
        "{conns:?}"
    );
    let before = replies();
    let r = Ctr::new("cr-tcp2").unwrap();
    // The restore bundle must grant what the processes hold (lcr refuses wider images).
    grant_net_admin(&r);
    let rhost = r.host_dir();
    // The same file goes on in the restore's /host: copy what was there.
    std::fs::copy(host.join("replies"), rhost.join("replies")).unwrap();
    let out = r.lcr(&r.restore_args(&img, &["--tcp-established"]));
    assert_success(&out);
    let rreplies = || {
        read(rhost.join("replies"))
            .lines()
            .filter_map(|l| l.parse::<u64>().ok())
            .collect::<Vec<_>>()
    };
    wait_until("echoes over the restored connection", || {
        rreplies().len() > before.len() + 5
    });
    let all = rreplies();
    for w in all.windows(2) {
        assert_eq!(w[1], w[0] + 1, "the echoed sequence broke: {all:?}");
    }
}

fn a_network_namespace_joined_by_path_is_rejoined_on_restore() {
    let Some(c) = Ctr::new("cr-netns") else {
        return;
    };
    if !criu_ready() {
        return;
    }
    let ns = NetNs::new("lcr-crtest");
    c.join_netns(&ns);
    c.host_dir();
    c.args(COUNTER);
    let log = c.tmp.path().join("app.log");
    start_logging_to(
        &c,
        &["run", "-d", "--bundle", c.bundle.to_str().unwrap(), &c.id],
        &log,
    );
    wait_until("counting", || count(&c) > 2);
    let img = c.tmp.path().join("img");
    let out = checkpoint(&c, &img, &[]);
    assert_success(&out);
    let at = count(&c);
    // A restore bundle that does not join it is refused, naming why.
    let r = Ctr::new("cr-netns2").unwrap();
    r.host_dir();
    let out = r.try_restore(&img);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("network namespace"));
    r.join_netns(&ns);
    restore_into(&c, &r, &img, &r.tmp.path().join("log"));
    wait_until("counting again", || count(&r) > at + 2);
    let want = std::fs::metadata(&ns.path)
        .map(|m| std::os::unix::fs::MetadataExt::ino(&m))
        .unwrap();
    let got = std::fs::read_link(format!("/proc/{}/ns/net", r.pid())).unwrap();
    assert_eq!(got.to_string_lossy(), format!("net:[{want}]"));
}

fn a_terminal_container_is_restored_through_a_console_socket() {
    use std::io::{Read, Write};
    use std::os::fd::AsFd;
    use std::os::unix::net::UnixListener;
    let Some(c) = Ctr::new("cr-tty") else { return };
    if !criu_ready() {
        return;
    }
    c.edit(|v| v["process"]["terminal"] = json!(true));
    // No job control (+m): a shell that opens /dev/tty trips CRIU's ctty check when the
    // pty master is held outside the container (see the README's limits).
    c.args("export x=41; exec sh +m");
    let talk = |sock: &Path, run: &dyn Fn()| -> std::fs::File {
        let l = UnixListener::bind(sock).unwrap();
        run();
        let (conn, _) = l.accept().unwrap();
        std::fs::File::from(lcr::process::console::recv_master(conn.as_fd()).unwrap())
    };
    let read_until = |t: &mut std::fs::File, want: &str| {
        let mut seen = String::new();
        let mut buf = [0u8; 4096];
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while !seen.contains(want) && std::time::Instant::now() < deadline {
            let mut p = [nix::poll::PollFd::new(
                t.as_fd(),
                nix::poll::PollFlags::POLLIN,
            )];
            if nix::poll::poll(&mut p, nix::poll::PollTimeout::from(200u16)).unwrap_or(0) == 0 {
                continue;
            }
            match t.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => seen.push_str(&String::from_utf8_lossy(&buf[..n])),
            }
        }
        seen
    };
    let s1 = c.tmp.path().join("c1.sock");
    let mut t1 = talk(&s1, &|| {
        c.ok(&[
            "create",
            "--bundle",
            c.bundle.to_str().unwrap(),
            "--console-socket",
            s1.to_str().unwrap(),
            &c.id,
        ]);
    });
    c.ok(&["start", &c.id]);
    // Shell state that must survive: a variable set before the checkpoint.
    t1.write_all(b"y=1; echo ready-$((x+y))\n").unwrap();
    assert!(read_until(&mut t1, "ready-42").contains("ready-42"));
    let img = c.tmp.path().join("img");
    let out = checkpoint(&c, &img, &[]);
    assert_success(&out);
    drop(t1);

    let r = Ctr::new("cr-tty2").unwrap();
    r.edit(|v| v["process"]["terminal"] = json!(true));
    // A terminal container needs a console socket.
    let out = r.try_restore(&img);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--console-socket"));
    assert!(!r.state_dir().exists());
    let s2 = r.tmp.path().join("c2.sock");
    let mut t2 = talk(&s2, &|| {
        r.ok(&r.restore_args(&img, &["--console-socket", s2.to_str().unwrap()]));
    });
    t2.write_all(b"echo again-$((x+y+1))\n").unwrap();
    let seen = read_until(&mut t2, "again-43");
    assert!(seen.contains("again-43"), "{seen:?}");
}

fn stdio_pipes_are_reconnected_to_the_restores_pipes() {
    use std::io::{BufRead, BufReader};
    let Some(c) = Ctr::new("cr-pipe") else { return };
    if !criu_ready() {
        return;
    }
    c.host_dir();
    c.args(COUNTER);
    // As conmon does: the container's stdout and stderr are pipes held by the caller.
    let spawn_piped = |t: &Ctr, args: &[&str]| {
        let mut child = t
            .cmd()
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let out = child.stdout.take().unwrap();
        assert!(child.wait().unwrap().success(), "lcr {args:?}");
        BufReader::new(out)
    };
    let next = |r: &mut BufReader<std::process::ChildStdout>| {
        let mut l = String::new();
        r.read_line(&mut l).unwrap();
        l.split_whitespace()
            .next()
            .and_then(|n| n.parse::<u64>().ok())
            .unwrap_or(0)
    };
    let mut p1 = spawn_piped(
        &c,
        &["run", "-d", "--bundle", c.bundle.to_str().unwrap(), &c.id],
    );
    let mut last = 0;
    while last < 5 {
        last = next(&mut p1);
    }
    let img = c.tmp.path().join("img");
    let out = checkpoint(&c, &img, &[]);
    assert_success(&out);
    // Drain what was written before the checkpoint.
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut p1, &mut rest).unwrap();
    if let Some(n) = rest
        .lines()
        .last()
        .and_then(|l| l.split_whitespace().next()?.parse().ok())
    {
        last = n;
    }
    let r = Ctr::new("cr-pipe2").unwrap();
    r.host_dir();
    for e in std::fs::read_dir(c.tmp.path().join("host"))
        .unwrap()
        .flatten()
    {
        let _ = std::fs::copy(e.path(), r.tmp.path().join("host").join(e.file_name()));
    }
    let mut p2 = spawn_piped(&r, &r.restore_args(&img, &[]));
    assert_eq!(
        next(&mut p2),
        last + 1,
        "the count goes on through the new pipe"
    );
    assert_eq!(next(&mut p2), last + 2);
    r.ok(&["delete", "--force", &r.id]);
}

fn restore_runs_the_restore_bundles_hooks_with_the_new_state() {
    let Some((c, _)) = counter("cr-hooks") else {
        return;
    };
    let img = c.tmp.path().join("img");
    assert!(checkpoint(&c, &img, &[]).status.success());
    let r = Ctr::new("cr-hooks2").unwrap();
    let host = r.host_dir();
    let hd = host.to_str().unwrap().to_string();
    let hook = |name: &str| json!({"path": "/bin/sh", "args": ["sh", "-c", format!("cat > {hd}/{name}.json")]});
    r.edit(|v| {
        v["hooks"] = json!({
            "prestart": [hook("prestart")],
            "createRuntime": [hook("createRuntime")],
            "poststart": [hook("poststart")]
        })
    });
    restore_into(&c, &r, &img, &r.tmp.path().join("log"));
    let pid = r.pid();
    for name in ["prestart", "createRuntime", "poststart"] {
        let st: serde_json::Value = serde_json::from_str(&read(host.join(format!("{name}.json"))))
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(st["id"], r.id.as_str(), "{name}: {st}");
        assert_eq!(st["pid"].as_i64().unwrap() as i32, pid, "{name}: {st}");
    }
}

/// lcr freezes the container once CRIU has started and is ready to collect it (CRIU's
/// `pre-dump`), not before: CRIU's start (its kernel probes, tens of ms) is no downtime.
/// CRIU's own log says when it reached `pre-dump`; lcr froze no sooner, and the restore
/// counts on from the frozen instant.
fn the_container_runs_on_while_criu_starts_and_is_frozen_once_criu_collects_it() {
    let Some((c, log)) = counter("cr-late") else {
        return;
    };
    let img = c.tmp.path().join("img");
    let out = checkpoint(&c, &img, &["--print-stats"]);
    assert_success(&out);
    let stats = String::from_utf8_lossy(&out.stdout).into_owned();
    let lcr_ms: u64 = stats
        .split(" ms after CRIU started")
        .next()
        .and_then(|s| s.rsplit(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no freeze after CRIU's start said: {stats}"));
    // "(00.041234) Running pre-dump scripts": seconds since CRIU began its log.
    let dump_log = read(img.join("dump.log"));
    let criu_ms = dump_log
        .lines()
        .find(|l| l.contains("Running pre-dump scripts"))
        .and_then(|l| l.trim_start_matches('(').split(')').next())
        .and_then(|t| t.parse::<f64>().ok())
        .map(|s| (s * 1000.0) as u64)
        .expect("CRIU's log has its pre-dump");
    assert!(criu_ms > 0, "{criu_ms}");
    assert!(
        lcr_ms >= criu_ms,
        "lcr froze {lcr_ms} ms after CRIU started, CRIU reached pre-dump at {criu_ms} ms"
    );
    let at_dump = count(&c);
    let before = lines(&log);
    let r = Ctr::new("cr-late2").unwrap();
    r.host_dir();
    let log2 = r.tmp.path().join("app2.log");
    restore_into(&c, &r, &img, &log2);
    wait_until("restored counting", || count(&r) > at_dump + 2);
    assert_eq!(lines(&log2)[0].0, before.last().unwrap().0 + 1);
    r.ok(&["delete", "--force", &r.id]);
}

/// CRIU locks a container's network during its dump and restore (taking the rules out costs
/// tens of ms of downtime): lcr asks for no lock when no peer can tell, which the images
/// keep for the restore. A listening socket keeps the lock; a dump that leaves the tree
/// running needs none.
fn the_network_is_locked_only_where_a_socket_could_tell() {
    let Some(c) = counter_bundle("cr-lock") else {
        return;
    };
    let lock_of = |c: &Ctr, img: &Path| -> String {
        let i: serde_json::Value =
            serde_json::from_str(&c.ok(&["image", "inspect", "--json", img.to_str().unwrap()]))
                .unwrap();
        i["isolation"]["network_lock"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    };
    start_counting(&c);
    let img = c.tmp.path().join("img-alive");
    assert_success(&checkpoint(&c, &img, &["--leave-running"]));
    assert_eq!(lock_of(&c, &img), "skip", "the tree was left running");
    let img = c.tmp.path().join("img-quiet");
    assert_success(&checkpoint(&c, &img, &[]));
    assert_eq!(lock_of(&c, &img), "skip", "no socket in the namespace");

    let Some(l) = Ctr::new("cr-lock-listen") else {
        return;
    };
    grant_net_admin(&l);
    l.args("ip link set lo up; nc -l -p 5555 -e cat");
    l.run_detached();
    // busybox's nc listens on IPv6's any address (IPv4 too, through it).
    let listening = |c: &Ctr| {
        let p = c.pid();
        let tables = read(format!("/proc/{p}/net/tcp")) + &read(format!("/proc/{p}/net/tcp6"));
        // Port 5555, state 0A (LISTEN).
        tables
            .lines()
            .any(|l| l.contains(":15B3 ") && l.contains(" 0A "))
    };
    wait_until("the listener", || listening(&l));
    let img = l.tmp.path().join("img-listen");
    assert_success(&checkpoint(&l, &img, &[]));
    let method = lock_of(&l, &img);
    assert!(
        method == "iptables" || method == "nftables",
        "a listener keeps the lock: {method}"
    );
    // Restored with that lock, the listener is there again.
    let r = Ctr::new("cr-lock-listen2").unwrap();
    grant_net_admin(&r);
    assert_success(&r.lcr(&r.restore_args(&img, &[])));
    wait_until("the restored listener", || listening(&r));
    r.ok(&["delete", "--force", &r.id]);
}

/// A container in a user namespace has the host's device nodes bound in (it may not make
/// them): they are dumped as external mounts, and the checkpoint succeeds.
fn a_container_in_a_user_namespace_is_checkpointed_with_its_device_binds() {
    let Some(c) = Ctr::new("cr-userns") else {
        return;
    };
    if !criu_ready() {
        return;
    }
    c.in_user_namespace();
    c.args("while :; do sleep 0.05; done");
    c.run_detached();
    let img = c.tmp.path().join("img");
    assert_success(&checkpoint(&c, &img, &[]));
    let record: serde_json::Value =
        serde_json::from_str(&read(img.join("lcr-checkpoint.json"))).unwrap();
    let devices: Vec<&str> = record["mounts"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["kind"] == "device")
        .filter_map(|m| m["destination"].as_str())
        .collect();
    assert!(
        devices.contains(&"/dev/tty") && devices.contains(&"/dev/null"),
        "{devices:?}"
    );
}

lcr_test_harness::tests!(
    a_container_in_a_user_namespace_is_checkpointed_with_its_device_binds,
    a_restored_container_counts_on_under_a_new_id_and_cgroup,
    leave_running_keeps_the_container_and_two_restores_run_side_by_side,
    a_bind_mount_is_remapped_to_the_restore_bundles_source,
    a_bind_mount_inside_another_bind_mount_is_restored,
    the_containers_criu_config_annotation_is_honoured,
    a_failed_dump_leaves_the_container_running,
    a_restore_from_a_broken_image_leaves_nothing_and_the_images_intact,
    features_the_kernel_lacks_are_refused_before_touching_the_container,
    an_established_tcp_connection_inside_the_container_survives,
    a_network_namespace_joined_by_path_is_rejoined_on_restore,
    a_terminal_container_is_restored_through_a_console_socket,
    stdio_pipes_are_reconnected_to_the_restores_pipes,
    restore_runs_the_restore_bundles_hooks_with_the_new_state,
    the_container_runs_on_while_criu_starts_and_is_frozen_once_criu_collects_it,
    the_network_is_locked_only_where_a_socket_could_tell,
);
