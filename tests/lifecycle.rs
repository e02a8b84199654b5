//! The container lifecycle on real containers: run, create/start, exec, pause/resume, kill,
//! delete, state, list, ps, events.

mod common;

use std::process::Stdio;
use std::time::{Duration, Instant};

use common::*;
use serde_json::json;

fn run_propagates_the_exit_code_as_pid_1_with_the_hostname() {
    let Some(c) = Ctr::new("exit") else { return };
    c.edit(|v| v["hostname"] = json!("box-7"));
    c.args("echo pid=$$; echo host=$(hostname); exit 7");
    let (code, out, err) = c.run();
    assert_eq!(code, 7, "stdout {out} stderr {err}");
    assert!(out.contains("pid=1\n"), "{out}");
    assert!(out.contains("host=box-7\n"), "{out}");
    // A foreground run removes the container afterwards.
    assert!(!c.state_dir().exists());
    assert!(!cgroup_exists(&c.cgroup));
}

fn kill_of_a_foreground_run_is_reported_as_128_plus_signal() {
    let Some(c) = Ctr::new("sigexit") else { return };
    c.args("exec sleep 60");
    let mut run = c
        .cmd()
        .args(["run", "--bundle", c.bundle.to_str().unwrap(), &c.id])
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    wait_until("running", || {
        let o = c.lcr(&["state", &c.id]);
        o.status.success() && String::from_utf8_lossy(&o.stdout).contains("running")
    });
    let pid = c.pid();
    c.ok(&["kill", &c.id, "KILL"]);
    let st = run.wait().unwrap();
    assert_eq!(st.code(), Some(137));
    assert!(!pid_alive(pid));
    assert!(!c.state_dir().exists());
    assert!(!cgroup_exists(&c.cgroup));
}

fn create_then_start_then_the_states_follow() {
    let Some(c) = Ctr::new("states") else { return };
    let out = c.host_dir();
    c.args("echo started > /host/started; exec sleep 60");
    c.ok(&["create", "--bundle", c.bundle.to_str().unwrap(), &c.id]);
    let st = c.state();
    assert_eq!(st["status"], "created");
    assert_eq!(st["id"], c.id.as_str());
    let pid = st["pid"].as_i64().unwrap() as i32;
    assert!(pid_alive(pid));
    std::thread::sleep(Duration::from_millis(200));
    assert!(
        !out.join("started").exists(),
        "the process must not run before start"
    );
    c.ok(&["start", &c.id]);
    wait_until("process start", || out.join("started").exists());
    assert_eq!(c.state()["status"], "running");
    assert_eq!(c.state()["pid"].as_i64().unwrap() as i32, pid);

    let listed: serde_json::Value =
        serde_json::from_str(&c.ok(&["list", "--format", "json"])).unwrap();
    assert_eq!(listed[0]["id"], c.id.as_str());
    assert_eq!(listed[0]["status"], "running");
    assert_eq!(c.ok(&["list", "-q"]).trim(), c.id);
    let ps: Vec<i32> = serde_json::from_str(&c.ok(&["ps", &c.id, "--format", "json"])).unwrap();
    assert_eq!(ps, vec![pid]);
    assert!(c.ok(&["ps", &c.id]).contains("sleep 60"));

    // A second start is refused by the state machine.
    let out2 = c.lcr(&["start", &c.id]);
    assert!(!out2.status.success());
    assert!(String::from_utf8_lossy(&out2.stderr).contains("is running: cannot start"));

    c.ok(&["kill", &c.id, "KILL"]);
    wait_until("init exit", || !pid_alive(pid));
    assert_eq!(c.state()["status"], "stopped");
    c.ok(&["delete", &c.id]);
    assert!(!c.state_dir().exists(), "state dir left");
    assert!(!cgroup_exists(&c.cgroup), "cgroup left");
    let rootfs = c.bundle.join("rootfs");
    assert!(
        !read("/proc/self/mountinfo").contains(rootfs.to_str().unwrap()),
        "a mount of the container is visible on the host"
    );
}

fn pause_freezes_and_resume_continues() {
    let Some(c) = Ctr::new("pause") else { return };
    let out = c.host_dir();
    c.args("i=0; while :; do i=$((i+1)); echo $i > /host/n.tmp; mv /host/n.tmp /host/n; sleep 0.02; done");
    c.run_detached();
    let n = || read(out.join("n")).trim().parse::<u64>().unwrap_or(0);
    wait_until("counter", || n() > 3);
    c.ok(&["pause", &c.id]);
    assert_eq!(c.state()["status"], "paused");
    assert_eq!(c.cgroup_read("freezer", "freezer.state"), "FROZEN");
    let frozen_at = n();
    std::thread::sleep(Duration::from_millis(400));
    assert_eq!(n(), frozen_at, "the counter moved while paused");
    // Paused containers cannot be deleted without force.
    assert!(!c.lcr(&["delete", &c.id]).status.success());
    c.ok(&["resume", &c.id]);
    assert_eq!(c.state()["status"], "running");
    wait_until("counter after resume", || n() > frozen_at + 3);
    c.ok(&["delete", "--force", &c.id]);
    assert!(!c.state_dir().exists());
    assert!(!cgroup_exists(&c.cgroup));
}

fn exec_joins_the_containers_namespaces_and_returns_its_code() {
    let Some(c) = Ctr::new("exec") else { return };
    // With a cgroup namespace (which `lcr spec` adds only on cgroup v2 hosts).
    c.edit(|v| {
        let ns = v["linux"]["namespaces"].as_array_mut().unwrap();
        if !ns.iter().any(|n| n["type"] == "cgroup") {
            ns.push(serde_json::json!({"type": "cgroup"}));
        }
    });
    c.args("exec sleep 60");
    c.run_detached();
    let pid = c.pid();
    let out = c.lcr(&[
        "exec",
        &c.id,
        "sh",
        "-c",
        "for n in pid mnt uts ipc net; do readlink /proc/self/ns/$n; done; hostname; exit 4",
    ]);
    assert_eq!(
        out.status.code(),
        Some(4),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<&str> = text.lines().collect();
    for (i, n) in ["pid", "mnt", "uts", "ipc", "net"].iter().enumerate() {
        let init_ns = std::fs::read_link(format!("/proc/{pid}/ns/{n}")).unwrap();
        assert_eq!(lines[i], init_ns.to_str().unwrap(), "{n} namespace differs");
        let host_ns = std::fs::read_link(format!("/proc/self/ns/{n}")).unwrap();
        assert_ne!(init_ns, host_ns, "{n}: the container must have its own");
    }
    assert_eq!(lines[5], "lcr");
    // A detached exec runs in the container's cgroup (seen from the host; inside, the cgroup
    // namespace shows it as the root) and ps shows both processes.
    let pidf = c.tmp.path().join("exec.pid");
    c.ok(&[
        "exec",
        "-d",
        "--pid-file",
        pidf.to_str().unwrap(),
        &c.id,
        "sleep",
        "30",
    ]);
    let epid: i32 = read(&pidf).trim().parse().unwrap();
    assert!(read(format!("/proc/{epid}/cgroup")).contains(&format!("memory:{}\n", c.cgroup)));
    let inside = c.lcr(&["exec", &c.id, "cat", "/proc/self/cgroup"]);
    assert!(String::from_utf8_lossy(&inside.stdout).contains("memory:/\n"));
    let ps: Vec<i32> = serde_json::from_str(&c.ok(&["ps", &c.id, "--format", "json"])).unwrap();
    assert_eq!(ps.len(), 2, "{ps:?}");
    c.ok(&["kill", "--all", &c.id, "KILL"]);
    wait_until("all dead", || !pid_alive(pid));
    c.ok(&["delete", &c.id]);
    assert!(!cgroup_exists(&c.cgroup));
}

fn events_stats_report_the_cgroup() {
    let Some(c) = Ctr::new("events") else { return };
    c.edit(|v| v["linux"]["resources"]["pids"] = json!({"limit": 50}));
    c.args("exec sleep 60");
    c.run_detached();
    let ev: serde_json::Value = serde_json::from_str(&c.ok(&["events", "--stats", &c.id])).unwrap();
    assert_eq!(ev["type"], "stats");
    assert_eq!(ev["data"]["pids"]["current"], 1);
    assert_eq!(ev["data"]["pids"]["limit"], 50);
    assert!(ev["data"]["memory"]["usage"]["usage"].as_u64().unwrap() > 0);
    assert!(ev["data"]["cpu"]["usage"]["total"].as_u64().is_some());
}

/// `lcr events` streams until the container stops: `memory-pressure` and `oom` events when
/// its cgroup hits the memory limit, statistics every interval, and then it ends by itself.
fn events_stream_oom_notifications_until_the_container_stops() {
    let Some(c) = Ctr::new("oom") else { return };
    c.edit(|v| v["linux"]["resources"]["memory"] = json!({"limit": 16u64 << 20}));
    // Waits until the stream is there, then asks dd for a 64 MiB buffer (no swap: killed).
    let flag = c.host_dir().join("go");
    c.args("while [ ! -e /host/go ]; do sleep 0.05; done; dd if=/dev/zero of=/dev/null bs=64M count=1; sleep 1; exit 3");
    c.run_detached();
    let mut events = c
        .cmd()
        .args(["events", "--interval", "300ms", &c.id])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = events.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        use std::io::BufRead;
        std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
            .collect::<Vec<String>>()
    });
    std::thread::sleep(Duration::from_millis(500));
    std::fs::write(&flag, "").unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    let ended = loop {
        if let Some(st) = events.try_wait().unwrap() {
            break Some(st);
        }
        if Instant::now() > deadline {
            let _ = events.kill();
            let _ = events.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let lines = reader.join().unwrap();
    assert!(
        ended.is_some_and(|s| s.success()),
        "events ends with the container: {lines:?}"
    );
    let parsed: Vec<serde_json::Value> = lines
        .iter()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(
        parsed
            .iter()
            .any(|e| e["type"] == "oom" && e["id"] == c.id.as_str()),
        "{lines:?}"
    );
    assert!(
        parsed.iter().filter(|e| e["type"] == "stats").count() >= 2,
        "{lines:?}"
    );
    // Reclaim before the OOM reaches v1's "medium" pressure level.
    assert!(
        parsed.iter().any(|e| e["type"] == "memory-pressure"),
        "{lines:?}"
    );
}

fn update_changes_limits_in_the_cgroup() {
    let Some(c) = Ctr::new("update") else { return };
    c.args("exec sleep 60");
    c.run_detached();
    c.ok(&[
        "update",
        "--memory",
        "96m",
        "--pids-limit",
        "20",
        "--cpu-shares",
        "512",
        &c.id,
    ]);
    assert_eq!(
        c.cgroup_read("memory", "memory.limit_in_bytes"),
        (96u64 << 20).to_string()
    );
    assert_eq!(c.cgroup_read("pids", "pids.max"), "20");
    // 512 shares are cpu.weight 20 on v2 (runc's conversion).
    let shares = if cgroup_v2() { "20" } else { "512" };
    assert_eq!(c.cgroup_read("cpu", "cpu.shares"), shares);
    let res = c.tmp.path().join("res.json");
    std::fs::write(&res, r#"{"pids": {"limit": 30}}"#).unwrap();
    c.ok(&["update", "-r", res.to_str().unwrap(), &c.id]);
    assert_eq!(c.cgroup_read("pids", "pids.max"), "30");
    // The memory limit set before is kept in the recorded config.
    let cfg: serde_json::Value =
        serde_json::from_str(&read(c.state_dir().join("config.json"))).unwrap();
    assert_eq!(cfg["linux"]["resources"]["memory"]["limit"], 96u64 << 20);
    assert_eq!(cfg["linux"]["resources"]["pids"]["limit"], 30);
}

lcr_test_harness::tests!(
    run_propagates_the_exit_code_as_pid_1_with_the_hostname,
    kill_of_a_foreground_run_is_reported_as_128_plus_signal,
    create_then_start_then_the_states_follow,
    pause_freezes_and_resume_continues,
    exec_joins_the_containers_namespaces_and_returns_its_code,
    events_stats_report_the_cgroup,
    events_stream_oom_notifications_until_the_container_stops,
    update_changes_limits_in_the_cgroup,
);
