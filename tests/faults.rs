//! Faults and races that must never lose a container or a rootfs, nor let one container act
//! on another's processes (issue 16). Each test breaks something on purpose and then checks,
//! from a fresh lcr process, that nothing was lost and nothing was left.

mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use common::counter::*;
use common::*;
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use serde_json::json;

/// Every path below `dir` (not following symlinks).
fn tree(dir: &Path) -> BTreeSet<PathBuf> {
    let mut all = BTreeSet::new();
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        if e.file_type().map(|t| t.is_dir()).unwrap_or(false) {
            all.extend(tree(&e.path()));
        }
        all.insert(e.path());
    }
    all
}

/// A counting container and a checkpoint of it in `img` (taken with --leave-running: the
/// container counts on).
fn counter_and_images(name: &str) -> Option<(Ctr, PathBuf)> {
    let (c, _log) = counter(name)?;
    let img = c.tmp.path().join("img");
    assert_success(&checkpoint(&c, &img, &["--leave-running"]));
    Some((c, img))
}

/// A second bundle to restore `c`'s images into, its /host holding the files `c` had open.
fn restore_target(c: &Ctr, name: &str) -> Ctr {
    let r = Ctr::new(name).unwrap();
    carry_host_files(c, &r);
    r
}

fn a_failed_restore_never_removes_the_restore_bundles_rootfs() {
    let Some((c, img)) = counter_and_images("flt-rootfs") else {
        return;
    };
    let rootfs = c.bundle.join("rootfs");
    let before = tree(&rootfs);
    assert!(
        before.len() > 100,
        "the busybox rootfs has {} paths",
        before.len()
    );

    // CRIU cannot be started: the restore fails once the rootfs is bound for CRIU.
    let r = bundle_on_same_rootfs(&c, "flt-rootfs2");
    let out = r.lcr(&r.restore_args(&img, &["--criu", "/nonexistent/criu"]));
    assert!(!out.status.success(), "a restore without CRIU succeeded");
    // Mount points may have been made (as runc's restore does); nothing may be gone.
    let lost: Vec<_> = before.difference(&tree(&rootfs)).take(5).cloned().collect();
    assert!(
        lost.is_empty(),
        "the failed restore removed {lost:?}… from the rootfs it was given ({})",
        stderr(&out)
    );
    assert!(!r.state_dir().exists(), "the failed restore left its state");
    assert!(
        !cgroup_exists(&r.cgroup),
        "the failed restore left its cgroup"
    );
    // The original, whose rootfs it is, counts on.
    let n = count(&c);
    wait_until("the original counting on", || count(&c) > n + 2);
    assert_eq!(c.state()["status"], "running");
}

fn a_restore_into_a_populated_cgroup_is_refused_and_the_original_lives() {
    let Some((c, img)) = counter_and_images("flt-cgshare") else {
        return;
    };
    // Same bundle (so the same cgroupsPath), new id.
    let other = format!("{}-copy", c.id);
    let args = [
        "restore",
        "-d",
        "--bundle",
        c.bundle.to_str().unwrap(),
        "--image-path",
        img.to_str().unwrap(),
        &other,
    ];
    let out = c.lcr(&args);
    assert!(
        !out.status.success(),
        "a restore into the running original's cgroup succeeded"
    );
    let err = stderr(&out);
    assert!(err.contains("already holds processes"), "{err}");
    assert!(err.contains(&c.cgroup), "{err}");
    let n = count(&c);
    wait_until("the original counting on", || count(&c) > n + 2);
    assert!(
        !c.root.join(&other).exists(),
        "the refused restore left state"
    );
    let _ = c.lcr(&["delete", "--force", &other]);
}

/// A process of "another service" in its own cgroup (freezer and memory), killed and removed
/// when dropped.
struct Service {
    child: std::process::Child,
    cgroup: String,
}

impl Service {
    fn start(cgroup: &str) -> Self {
        let child = Command::new("sleep")
            .arg("300")
            .stdin(Stdio::null())
            .spawn()
            .unwrap();
        let controllers: &[&str] = if cgroup_v2() {
            &[""]
        } else {
            &["freezer", "memory"]
        };
        for ctrl in controllers {
            let d = Path::new("/sys/fs/cgroup")
                .join(ctrl)
                .join(cgroup.trim_start_matches('/'));
            std::fs::create_dir_all(&d).unwrap();
            std::fs::write(d.join("cgroup.procs"), child.id().to_string()).unwrap();
        }
        Self {
            child,
            cgroup: cgroup.to_string(),
        }
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        remove_cgroup(&self.cgroup);
    }
}

fn a_cgroups_path_naming_another_services_cgroup_is_refused() {
    let Some(c) = Ctr::new("flt-svc") else {
        return;
    };
    let svc = Service::start(&format!("{CGROUP_PARENT}/svc-{}", std::process::id()));
    c.edit(|v| v["linux"]["cgroupsPath"] = json!(svc.cgroup));
    c.args("sleep 100");
    let out = c.lcr(&["run", "-d", "--bundle", c.bundle.to_str().unwrap(), &c.id]);
    assert!(!out.status.success(), "lcr adopted a populated cgroup");
    let err = stderr(&out);
    assert!(err.contains("already holds processes"), "{err}");
    assert!(
        err.contains(&svc.child.id().to_string()),
        "names the pid: {err}"
    );
    assert!(pid_alive(svc.child.id() as i32), "the service was killed");
    assert!(!c.state_dir().exists());
}

fn cgroups_paths_with_dot_components_are_refused() {
    let Some(c) = Ctr::new("flt-cgdot") else {
        return;
    };
    c.args("true");
    for bad in ["/.", "/lcr-test/../x", "a/./b"] {
        c.edit(|v| v["linux"]["cgroupsPath"] = json!(bad));
        let out = c.lcr(&["create", "--bundle", c.bundle.to_str().unwrap(), &c.id]);
        assert!(!out.status.success(), "cgroupsPath {bad} accepted");
        let err = stderr(&out);
        assert!(
            err.contains("linux.cgroupsPath") && err.contains(bad),
            "{bad}: {err}"
        );
        assert!(!c.state_dir().exists(), "{bad}: state left");
    }
}

fn a_stale_foreground_run_never_deletes_a_newer_container_of_the_same_id() {
    let Some(c) = counter_bundle("flt-stale") else {
        return;
    };
    let log = c.tmp.path().join("run.log");
    let f = std::fs::File::create(&log).unwrap();
    let mut run = c
        .cmd()
        .args(["run", "--bundle", c.bundle.to_str().unwrap(), &c.id])
        .stdout(f.try_clone().unwrap())
        .stderr(f)
        .spawn()
        .unwrap();
    wait_until("counting", || count(&c) > 3);
    // The foreground lcr is held still while the container is checkpointed and restored
    // under the same id; then it sees its init gone and goes on.
    let run_pid = Pid::from_raw(run.id() as i32);
    kill(run_pid, Signal::SIGSTOP).unwrap();
    let img = c.tmp.path().join("img");
    let out = checkpoint(&c, &img, &[]);
    if !out.status.success() {
        let _ = kill(run_pid, Signal::SIGKILL);
        let _ = run.wait();
        panic!("checkpoint: {}", stderr(&out));
    }
    let log2 = c.tmp.path().join("restored.log");
    start_logging_to(&c, &c.restore_args(&img, &[]), &log2);
    let restored = c.pid();
    kill(run_pid, Signal::SIGCONT).unwrap();
    let st = run.wait().unwrap();
    assert!(st.code().is_some(), "lcr run died: {st:?}");
    assert!(
        pid_alive(restored),
        "the stale `lcr run` killed the restored container: {}",
        read(&log)
    );
    assert_eq!(c.state()["status"], "running");
    let n = count(&c);
    wait_until("the restored container counting", || count(&c) > n + 2);
}

fn reads_never_wait_for_a_busy_container_and_writers_give_up_naming_it() {
    let Some(c) = Ctr::new("flt-busy") else {
        return;
    };
    c.args("sleep 100");
    c.run_detached();
    // Another lcr command at work on the container: its lock held.
    let lock = std::fs::File::open(c.state_dir().join("lock")).unwrap();
    let held = nix::fcntl::Flock::lock(lock, nix::fcntl::FlockArg::LockExclusive).unwrap();
    let started = std::time::Instant::now();
    assert_eq!(c.state()["status"], "running");
    assert!(c.ok(&["list", "-q"]).contains(&c.id));
    let ps = c.lcr(&["ps", &c.id]);
    assert_success(&ps);
    assert!(
        started.elapsed() < std::time::Duration::from_secs(5),
        "reads waited for the lock: {:?}",
        started.elapsed()
    );
    // A delete waits, then says who is busy; the container is untouched.
    let out = c
        .cmd()
        .env("LCR_LOCK_TIMEOUT", "1")
        .args(["delete", "--force", &c.id])
        .output()
        .unwrap();
    assert!(!out.status.success(), "delete went past a held lock");
    let err = stderr(&out);
    assert!(err.contains("busy") && err.contains(&c.id), "{err}");
    assert!(pid_alive(c.pid()));
    drop(held);
    c.ok(&["delete", "--force", &c.id]);
    assert!(!c.state_dir().exists());
}

/// The processes in `c`'s cgroup (freezer hierarchy), with CRIU's own left to finish first.
fn settled_pids(c: &Ctr) -> Vec<i32> {
    let procs = c.cgroup_file("freezer", "cgroup.procs");
    let pids = || -> Vec<i32> {
        read(&procs)
            .split_whitespace()
            .filter_map(|p| p.parse().ok())
            .collect()
    };
    let is_criu = |p: &i32| read(format!("/proc/{p}/comm")).trim() == "criu";
    wait_until("CRIU to finish after lcr was killed", || {
        !pids().iter().any(is_criu)
    });
    pids().into_iter().filter(|p| pid_alive(*p)).collect()
}

fn a_restore_killed_at_any_moment_leaves_no_container_unknown_and_the_id_reusable() {
    let Some((c, img)) = counter_and_images("flt-killrst") else {
        return;
    };
    let r = restore_target(&c, "flt-killrst2");
    let mut outcomes = Vec::new();
    let log = r.tmp.path().join("restore.log");
    for delay_ms in (0..360).step_by(12).chain([600, 1500]) {
        // stdio of the same kind as at checkpoint time (a log file).
        let out = std::fs::File::create(&log).unwrap();
        let mut child = r
            .cmd()
            .args(r.restore_args(&img, &[]))
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .spawn()
            .unwrap();
        std::thread::sleep(std::time::Duration::from_millis(delay_ms));
        let _ = child.kill();
        let _ = child.wait();
        // From a fresh lcr: whatever runs in the container's cgroup, lcr knows about.
        let running = settled_pids(&r);
        let state = r.lcr(&["state", &r.id]);
        if !running.is_empty() {
            assert!(
                state.status.success(),
                "killed after {delay_ms} ms: pids {running:?} run, and lcr does not know them: {}",
                stderr(&state)
            );
            let st: serde_json::Value = serde_json::from_slice(&state.stdout).unwrap();
            let pid = st["pid"].as_i64().unwrap() as i32;
            assert!(
                running.contains(&pid),
                "{delay_ms} ms: state {st} vs {running:?}"
            );
        }
        outcomes.push(if running.is_empty() {
            "nothing ran"
        } else {
            "known"
        });
        // Every id is reusable: what is left is deleted, and then nothing remains.
        if state.status.success() {
            r.ok(&["delete", "--force", &r.id]);
        }
        assert!(
            !r.state_dir().exists(),
            "{delay_ms} ms: state left after delete"
        );
        assert!(!cgroup_exists(&r.cgroup), "{delay_ms} ms: cgroup left");
        assert!(r.ok(&["list", "-q"]).trim().is_empty());
    }
    // The images are intact and the id free: a last restore counts on.
    start_logging_to(&r, &r.restore_args(&img, &[]), &log);
    let n = count(&r);
    wait_until("the final restore counting", || count(&r) > n + 2);
    eprintln!("kill sweep: {outcomes:?}");
}

fn an_imported_checkpoint_never_gets_more_than_the_restore_bundle_allows() {
    // The archive's author: only a mount namespace (the host's pid and network), and more
    // capabilities than a default config grants.
    let Some(c) = counter_bundle("flt-iso") else {
        return;
    };
    let extra = [
        "CAP_SYS_ADMIN",
        "CAP_NET_ADMIN",
        "CAP_SYS_PTRACE",
        "CAP_DAC_READ_SEARCH",
    ];
    c.edit(|v| {
        v["linux"]["namespaces"] = json!([{"type": "mount"}]);
        v.as_object_mut().unwrap().remove("hostname");
        for k in ["bounding", "effective", "permitted"] {
            for cap in extra {
                v["process"]["capabilities"][k]
                    .as_array_mut()
                    .unwrap()
                    .push(json!(cap));
            }
        }
    });
    start_logging_to(
        &c,
        &["run", "-d", "--bundle", c.bundle.to_str().unwrap(), &c.id],
        &c.tmp.path().join("app.log"),
    );
    wait_until("counting", || count(&c) > 3);
    let archive = c.tmp.path().join("wide.tar.zst");
    let out = c.lcr(&["checkpoint", "--export", archive.to_str().unwrap(), &c.id]);
    assert_success(&out);

    // inspect shows what the images say, not only the manifest.
    let i: serde_json::Value =
        serde_json::from_str(&c.ok(&["image", "inspect", "--json", archive.to_str().unwrap()]))
            .unwrap();
    let host_ns = i["isolation"]["host_namespaces"].to_string();
    assert!(
        host_ns.contains("pid") && host_ns.contains("network"),
        "{i}"
    );

    let import = |r: &Ctr| {
        let log = std::fs::File::create(r.tmp.path().join("r.log")).unwrap();
        let out = r
            .cmd()
            .args(r.import_args(&archive, &[]))
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .status()
            .unwrap();
        (out, read(r.tmp.path().join("r.log")))
    };
    let nothing_left = |r: &Ctr, why: &str| {
        assert!(!r.state_dir().exists(), "{why}: state left");
        assert!(!cgroup_exists(&r.cgroup), "{why}: cgroup left");
    };
    // A default bundle: new pid and network namespaces, default capabilities.
    let r = restore_target(&c, "flt-iso2");
    let (st, err) = import(&r);
    assert!(!st.success(), "restored into the host's namespaces");
    assert!(
        err.contains("namespace") && err.contains("refused by"),
        "{err}"
    );
    nothing_left(&r, "namespaces");
    // The same namespaces as the image, default capabilities: the capabilities are refused.
    r.edit(|v| {
        v["linux"]["namespaces"] = json!([{"type": "mount"}]);
        v.as_object_mut().unwrap().remove("hostname");
    });
    let (st, err) = import(&r);
    assert!(
        !st.success(),
        "restored with capabilities the bundle does not grant"
    );
    assert!(err.contains("CAP_SYS_ADMIN"), "{err}");
    nothing_left(&r, "capabilities");
    // A bundle that asks for seccomp: the image has none.
    r.edit(|v| {
        for k in ["bounding", "effective", "permitted"] {
            for cap in extra {
                v["process"]["capabilities"][k]
                    .as_array_mut()
                    .unwrap()
                    .push(json!(cap));
            }
        }
        v["linux"]["seccomp"] = json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
            {"names": ["kexec_load"], "action": "SCMP_ACT_ERRNO"}]});
    });
    let (st, err) = import(&r);
    assert!(!st.success(), "restored without the bundle's seccomp");
    assert!(err.contains("seccomp"), "{err}");
    nothing_left(&r, "seccomp");
}

/// Waits until no CRIU process is left (a killed lcr's CRIU finishes or gives up on its own).
fn criu_gone() {
    wait_no_process("CRIU to exit", |comm, _| comm == "criu");
}

/// Runs `cmd`, SIGKILLs it after `delay_ms`, lets its CRIU finish, and says what `c` is now
/// from a fresh lcr: its status, or "gone".
fn kill_after(c: &Ctr, cmd: &mut Command, delay_ms: u64) -> String {
    let mut child = cmd
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(delay_ms));
    let _ = child.kill();
    let _ = child.wait();
    criu_gone();
    c.status()
}

fn a_checkpoint_killed_at_any_moment_leaves_one_live_copy_and_never_a_frozen_one() {
    let Some((c, _log)) = counter("flt-killck") else {
        return;
    };
    let r = Ctr::new("flt-killck2").unwrap();
    let mut outcomes = Vec::new();
    for (round, delay_ms) in (0..300).step_by(15).enumerate() {
        let img = c.tmp.path().join(format!("img-{round}"));
        let mut cmd = c.cmd();
        cmd.args(["checkpoint", "--image-path", img.to_str().unwrap(), &c.id]);
        let status = kill_after(&c, &mut cmd, delay_ms);
        match status.as_str() {
            "running" => {
                // Not dumped: it counts on, and its half-made images restore nothing.
                let n = count(&c);
                wait_until("counting on after a killed checkpoint", || {
                    count(&c) > n + 1
                });
                carry_host_files(&c, &r);
                let out = r.lcr(&r.restore_args(&img, &[]));
                assert!(
                    !out.status.success(),
                    "{delay_ms} ms: a second live copy was restored from a killed checkpoint"
                );
                assert!(!r.state_dir().exists());
                outcomes.push("running, images refused");
            }
            "gone" | "stopped" => {
                // Dumped: the images are complete and bring it back under its own id.
                if status == "stopped" {
                    c.ok(&["delete", "--force", &c.id]);
                }
                let log = c.tmp.path().join(format!("r{round}.log"));
                start_logging_to(&c, &c.restore_args(&img, &[]), &log);
                let n = count(&c);
                wait_until("counting after restore", || count(&c) > n + 1);
                outcomes.push("dumped, restored");
            }
            other => panic!("{delay_ms} ms: the container is {other} after a killed checkpoint"),
        }
        let _ = std::fs::remove_dir_all(&img);
    }
    eprintln!("checkpoint kill sweep: {outcomes:?}");
}

fn an_export_killed_at_any_moment_never_leaves_the_container_frozen_nor_its_images_for_good() {
    let Some((c, _log)) = counter("flt-killex") else {
        return;
    };
    let tmp = c.tmp.path().join("tmpdir");
    std::fs::create_dir(&tmp).unwrap();
    let mut outcomes = Vec::new();
    for (round, delay_ms) in (0..400).step_by(25).enumerate() {
        let archive = c.tmp.path().join(format!("a{round}.tar.zst"));
        let mut cmd = c.cmd();
        cmd.env("TMPDIR", &tmp);
        cmd.args(["checkpoint", "--export", archive.to_str().unwrap(), &c.id]);
        let status = kill_after(&c, &mut cmd, delay_ms);
        match status.as_str() {
            "running" => {
                assert!(
                    !archive.exists(),
                    "{delay_ms} ms: a partial archive is there"
                );
                let n = count(&c);
                wait_until("counting on after a killed export", || count(&c) > n + 1);
                outcomes.push("running");
            }
            "gone" | "stopped" => {
                // Exported whole (killed while removing the container, it is left stopped):
                // it comes back from the archive.
                assert!(archive.exists(), "{delay_ms} ms: {status}, and no archive");
                if status == "stopped" {
                    c.ok(&["delete", "--force", &c.id]);
                }
                let log = c.tmp.path().join(format!("r{round}.log"));
                start_logging_to(&c, &c.import_args(&archive, &[]), &log);
                let n = count(&c);
                wait_until("counting after import", || count(&c) > n + 1);
                outcomes.push("exported");
            }
            other => panic!("{delay_ms} ms: the container is {other} after a killed export"),
        }
        let _ = std::fs::remove_file(&archive);
    }
    // The next export removes the images killed ones left, and its own.
    let last = c.tmp.path().join("last.tar.zst");
    let out = c
        .cmd()
        .env("TMPDIR", &tmp)
        .args([
            "checkpoint",
            "--leave-running",
            "--export",
            last.to_str().unwrap(),
            &c.id,
        ])
        .output()
        .unwrap();
    assert_success(&out);
    let left: Vec<_> = std::fs::read_dir(&tmp)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .collect();
    assert!(left.is_empty(), "left in TMPDIR: {left:?}");
    eprintln!("export kill sweep: {outcomes:?}");
}

/// Waits up to `secs` for `child`; kills it and says `None` if it is still running then.
fn exit_within(child: &mut std::process::Child, secs: u64) -> Option<std::process::ExitStatus> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(secs);
    while std::time::Instant::now() < deadline {
        if let Some(st) = child.try_wait().unwrap() {
            return Some(st);
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
    None
}

fn a_uid_map_the_kernel_refuses_fails_create_at_once_and_leaves_nothing() {
    let Some(c) = Ctr::new("flt-uidmap") else {
        return;
    };
    c.args("true");
    let overlapping = json!([
        {"containerID": 0, "hostID": 100000, "size": 1000},
        {"containerID": 500, "hostID": 200000, "size": 1000}
    ]);
    let too_big = json!([{"containerID": 0, "hostID": 100000, "size": 4294967295u64}]);
    for (what, maps) in [("overlapping", overlapping), ("size 2^32-1", too_big)] {
        c.edit(|v| {
            let ns = v["linux"]["namespaces"].as_array_mut().unwrap();
            if !ns.iter().any(|n| n["type"] == "user") {
                ns.push(json!({"type": "user"}));
            }
            v["linux"]["uidMappings"] = maps.clone();
            v["linux"]["gidMappings"] =
                json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
        });
        let err = tempfile::NamedTempFile::new().unwrap();
        let mut child = c
            .cmd()
            .args(["create", "--bundle", c.bundle.to_str().unwrap(), &c.id])
            .stdout(Stdio::null())
            .stderr(err.reopen().unwrap())
            .spawn()
            .unwrap();
        let Some(status) = exit_within(&mut child, 10) else {
            let _ = c.lcr(&["delete", "--force", &c.id]);
            panic!("{what}: lcr create hangs on a uid map the kernel refuses");
        };
        let text = read(err.path());
        assert_eq!(status.code(), Some(1), "{what}: {text}");
        assert!(text.contains("linux.uidMappings"), "{what}: {text}");
        assert!(!c.state_dir().exists(), "{what}: state left");
        assert!(!cgroup_exists(&c.cgroup), "{what}: cgroup left");
    }
}

/// The varint fields of one protobuf message (pstree entries hold nothing else).
fn varint_fields(mut b: &[u8]) -> Vec<(u64, u64)> {
    let mut read = || {
        let (mut v, mut shift) = (0u64, 0);
        while let Some((&byte, rest)) = b.split_first() {
            b = rest;
            v |= u64::from(byte & 0x7f) << shift;
            shift += 7;
            if byte < 0x80 {
                return Some(v);
            }
        }
        None
    };
    let mut out = Vec::new();
    while let (Some(tag), Some(v)) = (read(), read()) {
        assert_eq!(tag & 7, 0, "a pstree entry holds varints only");
        out.push((tag >> 3, v));
    }
    out
}

fn put_varint(mut v: u64, out: &mut Vec<u8>) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// Rewrites pstree.img so that its second process is its own parent: a loop CRIU waits on
/// for ever.
fn make_ppid_loop(img: &Path) {
    let data = std::fs::read(img.join("pstree.img")).unwrap();
    let (head, mut rest) = data.split_at(8);
    let mut msgs = Vec::new();
    while rest.len() >= 4 {
        let n = u32::from_le_bytes(rest[..4].try_into().unwrap()) as usize;
        msgs.push(varint_fields(&rest[4..4 + n]));
        rest = &rest[4 + n..];
    }
    assert!(msgs.len() >= 2, "two processes to loop: {msgs:?}");
    let child = msgs[1].iter().find(|(k, _)| *k == 1).unwrap().1;
    for f in msgs[1].iter_mut().filter(|(k, _)| *k == 2) {
        f.1 = child;
    }
    let mut out = head.to_vec();
    for m in msgs {
        let mut body = Vec::new();
        for (k, v) in m {
            put_varint(k << 3, &mut body);
            put_varint(v, &mut body);
        }
        out.extend((body.len() as u32).to_le_bytes());
        out.extend(body);
    }
    std::fs::write(img.join("pstree.img"), out).unwrap();
}

fn images_crafted_to_hang_criu_end_in_an_error_within_the_timeout() {
    let Some(c) = counter_bundle("flt-hang") else {
        return;
    };
    c.args("sleep 1000 & wait");
    let log = c.tmp.path().join("app.log");
    start_logging_to(
        &c,
        &["run", "-d", "--bundle", c.bundle.to_str().unwrap(), &c.id],
        &log,
    );
    wait_until("the child", || c.ok(&["ps", &c.id]).lines().count() > 2);
    let img = c.tmp.path().join("img");
    assert_success(&checkpoint(&c, &img, &[]));
    make_ppid_loop(&img);
    let r = restore_target(&c, "flt-hang2");
    let out = std::fs::File::create(r.tmp.path().join("r.log")).unwrap();
    let mut child = r
        .cmd()
        .args(r.restore_args(&img, &["--timeout", "3"]))
        .stdout(out.try_clone().unwrap())
        .stderr(out)
        .spawn()
        .unwrap();
    let Some(status) = exit_within(&mut child, 30) else {
        panic!("restore of a looping process tree hangs past its timeout");
    };
    let text = read(r.tmp.path().join("r.log"));
    assert!(!status.success(), "restored a looping tree: {text}");
    assert!(text.contains("did not finish within 3 s"), "{text}");
    criu_gone();
    assert!(!r.state_dir().exists(), "state left");
    assert!(!cgroup_exists(&r.cgroup), "cgroup left");
}

fn a_pages_image_cut_short_ends_in_an_error_not_a_full_disk() {
    let Some((c, img)) = counter_and_images("flt-cutpages") else {
        return;
    };
    let pages = std::fs::read_dir(&img)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .find(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("pages-")
        })
        .unwrap();
    let len = std::fs::metadata(&pages).unwrap().len();
    let f = std::fs::OpenOptions::new()
        .write(true)
        .open(&pages)
        .unwrap();
    f.set_len(len / 2).unwrap();
    let r = restore_target(&c, "flt-cutpages2");
    let started = std::time::Instant::now();
    let out = r.lcr(&r.restore_args(&img, &["--timeout", "60"]));
    let err = stderr(&out);
    assert!(!out.status.success(), "restored from half the pages");
    assert!(
        started.elapsed() < std::time::Duration::from_secs(60),
        "took the whole timeout: {err}"
    );
    criu_gone();
    assert!(!r.state_dir().exists(), "state left");
    assert!(!cgroup_exists(&r.cgroup), "cgroup left");
    let logs: u64 = std::fs::read_dir(&img)
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().ends_with(".log"))
        .map(|e| e.metadata().unwrap().len())
        .sum();
    assert!(logs <= 16 << 20, "CRIU's log left at {logs} bytes: {err}");
    eprintln!("cut pages: {err}");
}

fn stdio_of_another_kind_at_restore_is_refused_before_criu_naming_the_fd() {
    // Checkpointed with stdout and stderr to a log file, stdin /dev/null.
    let Some((c, img)) = counter_and_images("flt-stdio") else {
        return;
    };
    let r = restore_target(&c, "flt-stdio2");
    let log = r.tmp.path().join("r.log");
    for (what, stdout) in [
        ("a pipe", Stdio::piped()),
        (
            "/dev/null",
            Stdio::from(std::fs::File::create("/dev/null").unwrap()),
        ),
    ] {
        let err = std::fs::File::create(&log).unwrap();
        let mut child = r
            .cmd()
            .args(r.restore_args(&img, &[]))
            .stdout(stdout)
            .stderr(err)
            .spawn()
            .unwrap();
        let status = exit_within(&mut child, 30).expect("restore hangs");
        let text = read(&log);
        assert!(!status.success(), "{what}: restored");
        assert!(
            text.contains("fd 1 was a regular file") && !text.contains("criu restore failed"),
            "{what}: {text}"
        );
        assert!(!r.state_dir().exists(), "{what}: state left");
        assert!(!cgroup_exists(&r.cgroup), "{what}: cgroup left");
    }
    // The same kinds as at checkpoint time: it restores.
    restore_into(&c, &r, &img, &log);
    assert_eq!(r.state()["status"], "running");
}

fn a_garbled_inventory_is_named_not_hidden_behind_criu_noise() {
    let Some((c, img)) = counter_and_images("flt-inv") else {
        return;
    };
    // The message claims more bytes than the file holds.
    let inv = img.join("inventory.img");
    let mut data = std::fs::read(&inv).unwrap();
    data[4] = data[4].wrapping_add(64);
    std::fs::write(&inv, &data).unwrap();
    let r = restore_target(&c, "flt-inv2");
    let out = r.lcr(&r.restore_args(&img, &[]));
    let err = stderr(&out);
    assert!(!out.status.success());
    assert!(err.contains("inventory.img"), "{err}");
    assert!(!err.contains("RLIMIT_NOFILE"), "{err}");
    assert!(!r.state_dir().exists());
}

fn a_restore_or_import_interrupted_at_any_moment_is_undone_whole() {
    let Some((c, img)) = counter_and_images("flt-term") else {
        return;
    };
    let archive = c.tmp.path().join("a.tar.zst");
    let out = c.lcr(&[
        "checkpoint",
        "--leave-running",
        "--export",
        archive.to_str().unwrap(),
        &c.id,
    ]);
    assert_success(&out);
    let r = restore_target(&c, "flt-term2");
    let tmp = r.tmp.path().join("tmpdir");
    std::fs::create_dir(&tmp).unwrap();
    let log = r.tmp.path().join("r.log");
    let mut outcomes = Vec::new();
    for import in [false, true] {
        for delay_ms in (0..400).step_by(25) {
            let args = if import {
                r.import_args(&archive, &[])
            } else {
                r.restore_args(&img, &[])
            };
            let out = std::fs::File::create(&log).unwrap();
            let mut child = r
                .cmd()
                .env("TMPDIR", &tmp)
                .args(&args)
                .stdout(out.try_clone().unwrap())
                .stderr(out)
                .spawn()
                .unwrap();
            std::thread::sleep(std::time::Duration::from_millis(delay_ms));
            let _ = kill(Pid::from_raw(child.id() as i32), Signal::SIGTERM);
            let status = exit_within(&mut child, 30).expect("an interrupted restore hangs");
            criu_gone();
            let what = format!(
                "{} after {delay_ms} ms",
                if import { "import" } else { "restore" }
            );
            if status.success() {
                // Finished before the signal: a whole container.
                assert_eq!(r.state()["status"], "running", "{what}");
                r.ok(&["delete", "--force", &r.id]);
                outcomes.push("done");
            } else {
                // Undone whole: nothing left, not even for delete to find.
                assert!(
                    !r.state_dir().exists(),
                    "{what}: state left: {}",
                    read(&log)
                );
                assert!(!cgroup_exists(&r.cgroup), "{what}: cgroup left");
                outcomes.push("undone");
            }
            // CRIU's log of a failed import is kept on purpose (named in the error).
            let left: Vec<_> = std::fs::read_dir(&tmp)
                .unwrap()
                .flatten()
                .map(|e| e.path())
                .filter(|p| !p.to_string_lossy().ends_with(".log"))
                .collect();
            assert!(left.is_empty(), "{what}: left in TMPDIR: {left:?}");
        }
    }
    assert!(
        outcomes.contains(&"undone"),
        "no restore was interrupted: {outcomes:?}"
    );
    eprintln!("SIGTERM sweep: {outcomes:?}");
}

fn an_export_onto_a_full_disk_names_the_archive_and_keeps_the_container() {
    let Some((c, _log)) = counter_after("flt-full", "head -c 2000000 /dev/urandom > /dev/shm/x; ")
    else {
        return;
    };
    let disk = Tmpfs::mount(c.tmp.path().join("small"), "256k");
    let archive = disk.dir.join("a.tar.zst");
    let out = c.lcr(&["checkpoint", "--export", archive.to_str().unwrap(), &c.id]);
    let err = stderr(&out);
    assert!(!out.status.success(), "exported 2 MB onto 256 KiB");
    assert!(
        err.contains(archive.to_str().unwrap()) && err.contains("No space left"),
        "{err}"
    );
    assert!(
        !err.contains("lcr-export-"),
        "names the image directory: {err}"
    );
    assert_eq!(c.state()["status"], "running");
    let n = count(&c);
    wait_until("counting on", || count(&c) > n + 1);
    assert!(
        std::fs::read_dir(&disk.dir).unwrap().next().is_none(),
        "a partial archive is left"
    );
}

fn a_checkpoint_restores_only_under_the_seccomp_filter_its_bundle_compiles_to() {
    let profile = |deny: &str| {
        json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
            {"names": [deny], "action": "SCMP_ACT_ERRNO"}]})
    };
    let Some(c) = counter_bundle("flt-seccomp") else {
        return;
    };
    c.edit(|v| v["linux"]["seccomp"] = profile("kexec_load"));
    start_logging_to(
        &c,
        &["run", "-d", "--bundle", c.bundle.to_str().unwrap(), &c.id],
        &c.tmp.path().join("app.log"),
    );
    wait_until("counting", || count(&c) > 3);
    let img = c.tmp.path().join("img");
    assert_success(&checkpoint(&c, &img, &["--leave-running"]));
    // Another filter (one that forbids something else): refused before CRIU runs.
    let r = restore_target(&c, "flt-seccomp2");
    r.edit(|v| v["linux"]["seccomp"] = profile("reboot"));
    let out = r.lcr(&r.restore_args(&img, &[]));
    let err = stderr(&out);
    assert!(
        !out.status.success(),
        "restored under another seccomp filter"
    );
    assert!(
        err.contains("not the one linux.seccomp compiles to"),
        "{err}"
    );
    assert!(!r.state_dir().exists());
    // The same profile: the filter the kernel holds is the one it compiles to, so it restores.
    r.edit(|v| v["linux"]["seccomp"] = profile("kexec_load"));
    restore_into(&c, &r, &img, &r.tmp.path().join("r.log"));
    assert_eq!(r.state()["status"], "running");
}

lcr_test_harness::tests!(
    a_failed_restore_never_removes_the_restore_bundles_rootfs,
    a_restore_into_a_populated_cgroup_is_refused_and_the_original_lives,
    a_cgroups_path_naming_another_services_cgroup_is_refused,
    cgroups_paths_with_dot_components_are_refused,
    a_stale_foreground_run_never_deletes_a_newer_container_of_the_same_id,
    reads_never_wait_for_a_busy_container_and_writers_give_up_naming_it,
    a_restore_killed_at_any_moment_leaves_no_container_unknown_and_the_id_reusable,
    an_imported_checkpoint_never_gets_more_than_the_restore_bundle_allows,
    a_checkpoint_killed_at_any_moment_leaves_one_live_copy_and_never_a_frozen_one,
    an_export_killed_at_any_moment_never_leaves_the_container_frozen_nor_its_images_for_good,
    a_uid_map_the_kernel_refuses_fails_create_at_once_and_leaves_nothing,
    images_crafted_to_hang_criu_end_in_an_error_within_the_timeout,
    a_pages_image_cut_short_ends_in_an_error_not_a_full_disk,
    stdio_of_another_kind_at_restore_is_refused_before_criu_naming_the_fd,
    a_garbled_inventory_is_named_not_hidden_behind_criu_noise,
    a_restore_or_import_interrupted_at_any_moment_is_undone_whole,
    an_export_onto_a_full_disk_names_the_archive_and_keeps_the_container,
    a_checkpoint_restores_only_under_the_seccomp_filter_its_bundle_compiles_to,
);
