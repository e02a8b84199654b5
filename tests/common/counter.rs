//! The self-checking workload of the checkpoint tests: a counter that must go on from where it
//! stopped, and the steps around it (start with a log, checkpoint, restore into another bundle).

use std::path::{Path, PathBuf};
use std::process::Stdio;

use serde_json::json;

use super::*;

/// A counter that writes its count to stdout and to /host/n, and reports its pid, hostname and
/// a tmpfs file it made at start on each line.
pub const COUNTER: &str = "echo keep > /dev/shm/mark; i=0; while :; do i=$((i+1)); \
    echo \"$i $$ $(hostname) $(cat /dev/shm/mark)\"; echo $i > /host/n.tmp; mv /host/n.tmp /host/n; sleep 0.05; done";

/// The image name the counter's bundle says it was made from.
pub const COUNTER_IMAGE: &str = "localhost/lcr-counter:test";

pub fn criu_ready() -> bool {
    let ok = std::process::Command::new("criu")
        .arg("check")
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    if !ok {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI must have a working CRIU (scripts/install-criu.sh)"
        );
        lcr_test_harness::skip("no working CRIU (run scripts/install-criu.sh)");
    }
    ok
}

/// A bundle for the counter, not started (CRIU checked, /host bound).
pub fn counter_bundle(name: &str) -> Option<Ctr> {
    let c = Ctr::new(name)?;
    if !criu_ready() {
        return None;
    }
    c.host_dir();
    c.args(COUNTER);
    Some(c)
}

/// A container ready to be checkpointed, and its log file.
pub fn counter(name: &str) -> Option<(Ctr, PathBuf)> {
    counter_after(name, "")
}

/// A counter prelude that holds about 4/3 × `bytes` of memory that does not compress (random
/// bytes in base64, in a shell variable): memory whose transfer takes time.
pub fn incompressible(bytes: u64) -> String {
    format!("x=$(head -c {bytes} /dev/urandom | base64); ")
}

/// A counter container whose script runs `prelude` (shell commands) first.
pub fn counter_after(name: &str, prelude: &str) -> Option<(Ctr, PathBuf)> {
    let c = Ctr::new(name)?;
    if !criu_ready() {
        return None;
    }
    c.host_dir();
    c.args(&format!("{prelude}{COUNTER}"));
    c.edit(|v| {
        v["hostname"] = json!("counter");
        v["annotations"] = json!({"org.opencontainers.image.ref.name": COUNTER_IMAGE});
        v["linux"]["resources"]["memory"] = json!({"limit": 128u64 << 20});
        v["linux"]["resources"]["pids"] = json!({"limit": 64});
    });
    let log = start_counting(&c);
    Some((c, log))
}

/// `lcr run -d` of a counter bundle, logging to `app.log`; returns once it counts.
pub fn start_counting(c: &Ctr) -> PathBuf {
    let log = c.tmp.path().join("app.log");
    start_logging_to(
        c,
        &["run", "-d", "--bundle", c.bundle.to_str().unwrap(), &c.id],
        &log,
    );
    wait_until("counting", || count(c) > 3);
    log
}

/// Runs lcr with the container's stdout and stderr going to `log` (as `lcr run -d >log 2>&1`).
pub fn start_logging_to(c: &Ctr, args: &[&str], log: &Path) {
    let f = std::fs::File::create(log).unwrap();
    let err = tempfile::NamedTempFile::new().unwrap();
    let st = c
        .cmd()
        .args(args)
        .stdout(f.try_clone().unwrap())
        .stderr(f)
        .stdin(Stdio::null())
        .status()
        .unwrap();
    assert!(st.success(), "lcr {args:?}: {}", read(log));
    drop(err);
}

pub fn count(c: &Ctr) -> u64 {
    read(c.tmp.path().join("host/n"))
        .trim()
        .parse()
        .unwrap_or(0)
}

pub fn lines(log: &Path) -> Vec<(u64, String)> {
    read(log)
        .lines()
        .filter_map(|l| {
            let (n, rest) = l.split_once(' ')?;
            Some((n.parse().ok()?, rest.to_string()))
        })
        .collect()
}

pub fn checkpoint(c: &Ctr, img: &Path, extra: &[&str]) -> std::process::Output {
    let mut args = vec!["checkpoint", "--image-path", img.to_str().unwrap()];
    args.extend_from_slice(extra);
    args.push(&c.id);
    c.lcr(&args)
}

/// Restores into `target`. Like any volume, its /host must hold the files the checkpointed
/// process had open there (the counter may be caught between writing n.tmp and renaming it):
/// they are carried over from `from`.
pub fn restore_into(from: &Ctr, target: &Ctr, img: &Path, log: &Path) {
    carry_host_files(from, target);
    start_logging_to(target, &target.restore_args(img, &[]), log);
}

/// Copies the files of `from`'s /host directory that `target`'s lacks.
pub fn carry_host_files(from: &Ctr, target: &Ctr) {
    let src = from.tmp.path().join("host");
    let dst = target.host_dir();
    for e in std::fs::read_dir(&src).into_iter().flatten().flatten() {
        if dst.join(e.file_name()).exists() {
            continue;
        }
        // A counter still running renames n.tmp away as it goes: a file gone is no loss.
        match std::fs::copy(e.path(), dst.join(e.file_name())) {
            Ok(_) => {}
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
            Err(err) => panic!("copy {}: {err}", e.path().display()),
        }
    }
}

/// A second bundle for `c`'s images that uses `c`'s own rootfs (by absolute path) under
/// another id and cgroup: what a user restoring "from the running container's bundle" does.
pub fn bundle_on_same_rootfs(c: &Ctr, name: &str) -> Ctr {
    let r = Ctr::new(name).unwrap();
    let rootfs = c.bundle.join("rootfs");
    let host = c.tmp.path().join("host");
    r.edit(|v| {
        v["root"]["path"] = json!(rootfs);
        v["mounts"] = c.config()["mounts"].clone();
        for m in v["mounts"].as_array_mut().unwrap() {
            if m["destination"] == "/host" {
                m["source"] = json!(host);
            }
        }
    });
    r
}

/// Lets the container's processes configure its network (`ip link set lo up`).
pub fn grant_net_admin(c: &Ctr) {
    c.edit(|v| {
        for k in ["bounding", "effective", "permitted"] {
            v["process"]["capabilities"][k]
                .as_array_mut()
                .unwrap()
                .push(json!("CAP_NET_ADMIN"));
        }
    })
}

/// An echo server and a counting client on the container's own loopback: the client writes
/// every number the server sends back to /host/replies (see [`replies`]).
pub const TCP_ECHO: &str = "ip link set lo up; nc -l -p 5555 -e cat & sleep 0.3; \
     i=0; while :; do i=$((i+1)); echo $i; sleep 0.05; done | nc 127.0.0.1 5555 > /host/replies";

/// The numbers the echo client got back so far.
pub fn replies(host: &Path) -> Vec<u64> {
    read(host.join("replies"))
        .lines()
        .filter_map(|l| l.parse::<u64>().ok())
        .collect()
}
