//! `lcr restore --clone`: many restores of one checkpoint at once, each its own container
//! (id, cgroup, namespaces, a copy-on-write rootfs), the images never written.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::counter::*;
use common::*;

/// The workload: files written into the rootfs before the checkpoint (one made, one deleted:
/// the rootfs changes the clones must see), then a counter in the rootfs's /tmp.
const SNAPSHOT_WORKLOAD: &str = "echo snapshot > /marker; rm /etc/hostname; i=0; \
     while :; do i=$((i+1)); echo $i > /tmp/count; sleep 0.05; done";

/// Every file under `dir` with its contents' digest: what "the images are unchanged" means.
fn digests(dir: &Path) -> BTreeMap<PathBuf, String> {
    let out = Command::new("sh")
        .arg("-c")
        .arg("cd \"$1\" && find . -type f -print0 | sort -z | xargs -0 sha256sum")
        .arg("sh")
        .arg(dir)
        .output()
        .unwrap();
    assert!(out.status.success());
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_once("  "))
        .map(|(sum, name)| (PathBuf::from(name), sum.to_string()))
        .collect()
}

/// A read-only view of `dir` (a bind mount remounted read-only), unmounted when dropped.
struct ReadOnly(PathBuf);

impl ReadOnly {
    fn of(dir: &Path, at: PathBuf) -> Self {
        std::fs::create_dir_all(&at).unwrap();
        for args in [
            vec!["--bind", dir.to_str().unwrap(), at.to_str().unwrap()],
            vec!["-o", "remount,ro,bind", at.to_str().unwrap()],
        ] {
            assert!(Command::new("mount")
                .args(&args)
                .status()
                .unwrap()
                .success());
        }
        Self(at)
    }
}

impl Drop for ReadOnly {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

fn exec_out(c: &Ctr, id: &str, args: &[&str]) -> String {
    let mut a = vec!["exec", id];
    a.extend_from_slice(args);
    let out = c.lcr(&a);
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

fn clones_of_one_checkpoint_run_at_once_each_with_a_rootfs_of_its_own() {
    let Some(c) = Ctr::new("clone-src") else {
        return;
    };
    if !criu_ready() {
        return;
    }
    c.args(SNAPSHOT_WORKLOAD);
    c.run_detached();
    let count_of = |id: &str| -> u64 {
        exec_out(&c, id, &["cat", "/tmp/count"])
            .parse()
            .unwrap_or(0)
    };
    wait_until("counting", || count_of(&c.id) > 3);
    let img = c.tmp.path().join("img");
    assert_success(&checkpoint(&c, &img, &["--with-rootfs-diff"]));
    let before = digests(&img);
    let ro = ReadOnly::of(&img, c.tmp.path().join("img-ro"));
    let rootfs = c.bundle.join("rootfs");
    // The checkpointed container's writes went with the images; its rootfs is put back as
    // the bundle had it, which the clones must not change.
    std::fs::remove_file(rootfs.join("marker")).unwrap();
    std::fs::write(rootfs.join("etc/hostname"), "lcr-test\n").unwrap();

    let ids: Vec<String> = (0..4).map(|i| format!("{}-clone{i}", c.id)).collect();
    let _clones = Clones(&c, ids.clone());
    let reports = clone_all(&c, &ro.0, &ids);
    let mut namespaces = std::collections::BTreeSet::new();
    for (id, report) in ids.iter().zip(&reports) {
        assert_eq!(report["id"], id.as_str());
        let st: serde_json::Value = serde_json::from_slice(&c.lcr(&["state", id]).stdout).unwrap();
        assert_eq!(st["status"], "running", "{id}");
        let netns = std::fs::read_link(st["netns"].as_str().unwrap()).unwrap();
        namespaces.insert(netns);
        // The checkpoint's rootfs, counting on from its memory.
        assert_eq!(exec_out(&c, id, &["cat", "/marker"]), "snapshot", "{id}");
        assert_eq!(
            exec_out(&c, id, &["ls", "/etc/hostname"]),
            "",
            "{id}: a deleted file came back"
        );
        // Each in a cgroup of its own below the bundle's.
        assert!(
            cgroup_exists(&format!("{}/{id}", c.cgroup)),
            "{id}: no cgroup of its own"
        );
    }
    assert_eq!(
        namespaces.len(),
        ids.len(),
        "clones share a network namespace"
    );
    for id in &ids {
        let n = count_of(id);
        wait_until("each clone counting on", || count_of(id) > n + 2);
    }
    // A write in one clone is seen by no other, nor by the bundle's rootfs.
    assert_success(&c.lcr(&["exec", &ids[0], "sh", "-c", "echo mine > /mine"]));
    assert_eq!(exec_out(&c, &ids[0], &["cat", "/mine"]), "mine");
    assert_eq!(exec_out(&c, &ids[1], &["cat", "/mine"]), "");
    assert!(!rootfs.join("mine").exists() && !rootfs.join("marker").exists());
    assert_eq!(read(rootfs.join("etc/hostname")), "lcr-test\n");
    // The images are as the checkpoint left them.
    assert_eq!(digests(&img), before, "a clone changed the images");

    for id in &ids {
        assert_success(&c.lcr(&["delete", "--force", id]));
        assert!(
            !cgroup_exists(&format!("{}/{id}", c.cgroup)),
            "{id}: cgroup left"
        );
    }
    let left: Vec<_> = std::fs::read_dir(&c.root)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| !n.starts_with('.'))
        .collect();
    assert!(
        left.iter().all(|n| n == "layers"),
        "left in the state root: {left:?}"
    );
    let layers: Vec<_> = std::fs::read_dir(c.root.join("layers"))
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.file_name())
        .filter(|n| n != ".lock")
        .collect();
    assert!(layers.is_empty(), "layers left: {layers:?}");
    let mounts = read("/proc/self/mountinfo");
    assert!(
        !mounts.contains(c.root.to_str().unwrap()),
        "a mount left under the state root"
    );
}

/// The restore bundle's hooks run for each clone with that clone's state (its id, its pid):
/// how a service learns it was cloned.
fn each_clone_runs_the_bundles_hooks_with_its_own_state() {
    let Some(c) = Ctr::new("clone-hooks") else {
        return;
    };
    if !criu_ready() {
        return;
    }
    c.args("while :; do sleep 0.05; done");
    c.run_detached();
    let img = c.tmp.path().join("img");
    assert_success(&checkpoint(&c, &img, &[]));
    // Each hook run writes the state it was given into a file of its own (clones restore at
    // once: their hooks run side by side).
    let dir = c.tmp.path().join("hooks");
    std::fs::create_dir(&dir).unwrap();
    let hook = |kind: &str| {
        serde_json::json!([{
            "path": "/bin/sh",
            "args": ["sh", "-c", format!("cat > {}/{kind}-$$", dir.display())]
        }])
    };
    c.edit(|v| {
        v["hooks"] = serde_json::json!({
            "createRuntime": hook("createRuntime"),
            "poststart": hook("poststart"),
        });
    });
    let ids: Vec<String> = (0..2).map(|i| format!("{}-{i}", c.id)).collect();
    let _clones = Clones(&c, ids.clone());
    clone_all(&c, &img, &ids);
    let runs: Vec<(String, serde_json::Value)> = std::fs::read_dir(&dir)
        .unwrap()
        .flatten()
        .map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            let kind = name.split('-').next().unwrap_or_default().to_string();
            (kind, serde_json::from_str(&read(e.path())).unwrap())
        })
        .collect();
    for id in &ids {
        let st: serde_json::Value = serde_json::from_slice(&c.lcr(&["state", id]).stdout).unwrap();
        for kind in ["createRuntime", "poststart"] {
            let (_, state) = runs
                .iter()
                .find(|(k, s)| k == kind && s["id"] == id.as_str())
                .unwrap_or_else(|| panic!("no {kind} hook for {id}: {runs:?}"));
            assert_eq!(state["pid"], st["pid"], "{kind} of {id}");
        }
    }
}

/// Clones that a failing test leaves are deleted (their cgroups go with `Ctr`'s, below it).
struct Clones<'a>(&'a Ctr, Vec<String>);

impl Drop for Clones<'_> {
    fn drop(&mut self) {
        for id in &self.1 {
            let _ = self.0.lcr(&["delete", "--force", id]);
        }
    }
}

/// Clones of the images `img` from `c`'s bundle, named `names`, restored at once: their
/// `--json` reports.
fn clone_all(c: &Ctr, img: &Path, names: &[String]) -> Vec<serde_json::Value> {
    let restores: Vec<_> = names
        .iter()
        .map(|id| {
            let mut cmd = c.cmd();
            cmd.args(["restore", "-d", "--clone", "--json", "--bundle"])
                .arg(&c.bundle)
                .arg("--image-path")
                .arg(img)
                .arg(id);
            spawn_via_files(&mut cmd)
        })
        .collect();
    restores
        .into_iter()
        .map(|s| {
            let out = s.finish();
            assert_success(&out);
            serde_json::from_slice(&out.stdout).unwrap()
        })
        .collect()
}

/// What `redis-cli ARGS` in container `id` printed.
fn redis(c: &Ctr, id: &str, args: &[&str]) -> String {
    let mut a = vec!["redis-cli"];
    a.extend_from_slice(args);
    exec_out(c, id, &a)
}

/// A redis with 100 000 keys, snapshotted once, as 8 clones at once: each answers with the
/// snapshot's data on its own loopback (reached from the host through its network
/// namespace too); a write in one is seen by no other, nor by a clone made afterwards.
fn redis_clones_answer_with_the_snapshot_data_and_keep_their_writes_apart() {
    let Some(rootfs) = services_rootfs() else {
        return;
    };
    let Some(c) = Ctr::from_rootfs("clone-redis", &rootfs) else {
        return;
    };
    if !criu_ready() {
        return;
    }
    c.edit(|v| {
        v["process"]["args"] = serde_json::json!([
            "redis-server",
            "--bind",
            "127.0.0.1",
            "--port",
            "6379",
            "--save",
            "",
            "--appendonly",
            "no",
            "--enable-debug-command",
            "yes"
        ]);
    });
    // Its log opened write-only (as a shell's `>` opens it): lcr switches it to append, so
    // each clone may log into a file of its own.
    start_logging_to(
        &c,
        &["run", "-d", "--bundle", c.bundle.to_str().unwrap(), &c.id],
        &c.tmp.path().join("redis.log"),
    );
    wait_until("redis to answer", || redis(&c, &c.id, &["PING"]) == "PONG");
    assert_eq!(
        redis(&c, &c.id, &["DEBUG", "POPULATE", "100000", "key"]),
        "OK"
    );
    assert_eq!(redis(&c, &c.id, &["DBSIZE"]), "100000");
    let img = c.tmp.path().join("img");
    assert_success(&checkpoint(&c, &img, &[]));
    let before = digests(&img);
    let ro = ReadOnly::of(&img, c.tmp.path().join("img-ro"));

    let ids: Vec<String> = (0..8).map(|i| format!("{}-{i}", c.id)).collect();
    let later = format!("{}-later", c.id);
    let _clones = Clones(&c, ids.iter().chain([&later]).cloned().collect());
    let reports = clone_all(&c, &ro.0, &ids);
    for (id, report) in ids.iter().zip(&reports) {
        assert_eq!(redis(&c, id, &["PING"]), "PONG", "{id}");
        assert_eq!(redis(&c, id, &["DBSIZE"]), "100000", "{id}");
        assert_eq!(redis(&c, id, &["GET", "key:777"]), "value:777", "{id}");
        // Its loopback, from the host.
        let netns = report["netns"].as_str().unwrap();
        let out = Command::new("nsenter")
            .arg(format!("--net={netns}"))
            .args(["python3", "-c", PING_6379])
            .output()
            .unwrap();
        assert_eq!(
            String::from_utf8_lossy(&out.stdout).trim(),
            "+PONG",
            "{id}: {out:?}"
        );
    }
    assert_eq!(redis(&c, &ids[0], &["SET", "key:777", "changed"]), "OK");
    assert_eq!(redis(&c, &ids[0], &["GET", "key:777"]), "changed");
    for id in &ids[1..] {
        assert_eq!(
            redis(&c, id, &["GET", "key:777"]),
            "value:777",
            "{id} saw the write"
        );
    }
    clone_all(&c, &ro.0, std::slice::from_ref(&later));
    assert_eq!(redis(&c, &later, &["GET", "key:777"]), "value:777");
    assert_eq!(digests(&img), before, "a clone changed the images");
    for id in ids.iter().chain([&later]) {
        assert_success(&c.lcr(&["delete", "--force", id]));
        assert!(
            !cgroup_exists(&format!("{}/{id}", c.cgroup)),
            "{id}: cgroup left"
        );
    }
}

/// A container of the services rootfs running `args` (as `user`, uid and gid), its log
/// opened write-only, until `ready` says it answers; `None` (skipped) without the rootfs.
fn service(name: &str, args: serde_json::Value, user: (u32, u32)) -> Option<Ctr> {
    let rootfs = services_rootfs()?;
    let c = Ctr::from_rootfs(name, &rootfs)?;
    if !criu_ready() {
        return None;
    }
    c.edit(|v| {
        v["process"]["args"] = args;
        v["process"]["user"] = serde_json::json!({"uid": user.0, "gid": user.1});
    });
    start_logging_to(
        &c,
        &["run", "-d", "--bundle", c.bundle.to_str().unwrap(), &c.id],
        &c.tmp.path().join("service.log"),
    );
    Some(c)
}

/// Whether this process has capability number `cap` in its effective set.
fn effective_capability(cap: u32) -> bool {
    read("/proc/self/status")
        .lines()
        .find_map(|l| l.strip_prefix("CapEff:"))
        .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
        .is_some_and(|set| set & (1 << cap) != 0)
}

/// Runs `python3 -c code` on the host inside network namespace `netns`: its output.
fn host_python_in(netns: &str, code: &str) -> String {
    let out = Command::new("nsenter")
        .arg(format!("--net={netns}"))
        .args(["python3", "-c", code])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// What `psql -Atc SQL` in container `id` printed (as the postgres user, on the local
/// socket).
fn psql(c: &Ctr, id: &str, sql: &str) -> String {
    exec_out(
        c,
        id,
        &["psql", "-h", "/tmp", "-U", "postgres", "-Atc", sql],
    )
}

/// PostgreSQL with a table of fixtures, snapshotted with its data files (the rootfs changes),
/// as 8 clones at once: each answers with the fixtures; a write in one is seen by no other,
/// nor by a clone made afterwards.
fn postgres_clones_answer_with_the_fixtures_and_keep_their_writes_apart() {
    let args = serde_json::json!([
        "/usr/lib/postgresql/15/bin/postgres",
        "-D",
        "/var/lib/postgresql/lcr"
    ]);
    let Some(c) = service("clone-pg", args, (101, 103)) else {
        return;
    };
    wait_until("postgres to answer", || psql(&c, &c.id, "SELECT 1") == "1");
    let fixtures = "CREATE TABLE fixtures (id int PRIMARY KEY, name text); \
         INSERT INTO fixtures SELECT g, 'row ' || g FROM generate_series(1, 1000) g; CHECKPOINT";
    assert!(psql(&c, &c.id, fixtures).ends_with("CHECKPOINT"));
    let img = c.tmp.path().join("img");
    let out = checkpoint(&c, &img, &["--with-rootfs-diff"]);
    let count = "SELECT count(*) FROM fixtures";
    if !effective_capability(24) {
        // CAP_SYS_RESOURCE: without it CRIU cannot read the limits of a process of another
        // user, and PostgreSQL refuses to run as root. Refused up front, the server untouched.
        assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
        assert!(
            stderr(&out).contains("CAP_SYS_RESOURCE"),
            "{}",
            stderr(&out)
        );
        assert_eq!(psql(&c, &c.id, count), "1000");
        lcr_test_harness::skip(
            "lcr lacks CAP_SYS_RESOURCE here (not in the bounding set), which CRIU needs to dump \
             a process of another user such as postgres; the refusal was checked",
        );
        return;
    }
    assert_success(&out);
    let before = digests(&img);
    let ro = ReadOnly::of(&img, c.tmp.path().join("img-ro"));
    let ids: Vec<String> = (0..8).map(|i| format!("{}-{i}", c.id)).collect();
    let later = format!("{}-later", c.id);
    let _clones = Clones(&c, ids.iter().chain([&later]).cloned().collect());
    clone_all(&c, &ro.0, &ids);
    for id in &ids {
        assert_eq!(psql(&c, id, count), "1000", "{id}");
    }
    assert_eq!(
        psql(&c, &ids[0], "INSERT INTO fixtures VALUES (1001, 'mine')"),
        "INSERT 0 1"
    );
    assert_eq!(psql(&c, &ids[0], count), "1001");
    for id in &ids[1..] {
        assert_eq!(psql(&c, id, count), "1000", "{id} saw the write");
    }
    clone_all(&c, &ro.0, std::slice::from_ref(&later));
    assert_eq!(psql(&c, &later, count), "1000");
    assert_eq!(digests(&img), before, "a clone changed the images");
}

/// A python3 service that imported its modules and drew a random token before the
/// snapshot: each clone answers from that memory (the same token, the same modules).
fn python_clones_answer_from_the_snapshot_memory() {
    let server = "import http.server, json, random, sys\n\
        token = random.getrandbits(64)\n\
        class H(http.server.BaseHTTPRequestHandler):\n\
        \x20   def do_GET(self):\n\
        \x20       body = json.dumps({'token': token, 'modules': len(sys.modules)}).encode()\n\
        \x20       self.send_response(200); self.end_headers(); self.wfile.write(body)\n\
        \x20   def log_message(self, *a): pass\n\
        http.server.HTTPServer(('127.0.0.1', 8000), H).serve_forever()\n";
    let Some(c) = service(
        "clone-py",
        serde_json::json!(["python3", "-c", server]),
        (0, 0),
    ) else {
        return;
    };
    let get = "import urllib.request\n\
        print(urllib.request.urlopen('http://127.0.0.1:8000/', timeout=5).read().decode())";
    let netns = |id: &str| -> String {
        let st: serde_json::Value = serde_json::from_slice(&c.lcr(&["state", id]).stdout).unwrap();
        st["netns"].as_str().unwrap_or_default().to_string()
    };
    wait_until("python to answer", || {
        !host_python_in(&netns(&c.id), get).is_empty()
    });
    let snapshot = host_python_in(&netns(&c.id), get);
    let img = c.tmp.path().join("img");
    assert_success(&checkpoint(&c, &img, &[]));
    let ids: Vec<String> = (0..4).map(|i| format!("{}-{i}", c.id)).collect();
    let _clones = Clones(&c, ids.clone());
    for (id, report) in ids.iter().zip(clone_all(&c, &img, &ids)) {
        let got = host_python_in(report["netns"].as_str().unwrap(), get);
        assert_eq!(got, snapshot, "{id}");
    }
}

/// The memory the clone `id` of `c` uses (its cgroup's usage), in MiB.
fn memory_mib(c: &Ctr, id: &str) -> u64 {
    let path = format!("{}/{id}", c.cgroup);
    let file = if cgroup_v2() {
        format!("/sys/fs/cgroup/{path}/memory.current")
    } else {
        format!("/sys/fs/cgroup/memory/{path}/memory.usage_in_bytes")
    };
    read(file).trim().parse::<u64>().unwrap_or(0) >> 20
}

fn ksm(name: &str) -> u64 {
    read(format!("/sys/kernel/mm/ksm/{name}"))
        .trim()
        .parse()
        .unwrap_or(0)
}

/// 8 clones of a service holding 256 MiB (random, so only clones share it): their memory
/// without `--merge-memory`, then with it and KSM running (turned on for the test, put
/// back after), where they use clearly less than 8 times one.
fn merged_clones_share_the_memory_they_have_alike() {
    if !Path::new("/sys/kernel/mm/ksm/run").exists() {
        lcr_test_harness::skip("no KSM in this kernel");
        return;
    }
    let hold = "import os, time\ndata = os.urandom(256 << 20)\nopen('/tmp/ready', 'w').close()\ntime.sleep(1e9)\n";
    let Some(c) = service(
        "clone-ksm",
        serde_json::json!(["python3", "-c", hold]),
        (0, 0),
    ) else {
        return;
    };
    wait_until("the memory to be filled", || {
        c.lcr(&["exec", &c.id, "test", "-e", "/tmp/ready"])
            .status
            .success()
    });
    let img = c.tmp.path().join("img");
    assert_success(&checkpoint(&c, &img, &[]));
    let run = |tag: &str, extra: &[&str]| -> (Vec<String>, Clones) {
        let ids: Vec<String> = (0..8).map(|i| format!("{}-{tag}{i}", c.id)).collect();
        let clones = Clones(&c, ids.clone());
        for id in &ids {
            let mut a = vec!["restore", "-d", "--clone"];
            a.extend_from_slice(extra);
            a.extend([
                "--bundle",
                c.bundle.to_str().unwrap(),
                "--image-path",
                img.to_str().unwrap(),
                id,
            ]);
            assert_success(&c.lcr(&a));
        }
        (ids, clones)
    };
    let total = |ids: &[String]| -> u64 { ids.iter().map(|id| memory_mib(&c, id)).sum() };
    let (ids, clones) = run("plain", &[]);
    let one = memory_mib(&c, &ids[0]);
    let unmerged = total(&ids);
    drop(clones);
    // KSM, fast for the test; every setting put back when dropped (after the clones).
    let _ksm = [
        ("pages_to_scan", "20000"),
        ("sleep_millisecs", "0"),
        ("run", "1"),
    ]
    .map(|(f, v)| Sysctl::set_file(PathBuf::from("/sys/kernel/mm/ksm").join(f), v));
    let (ids, _clones) = run("merged", &["--merge-memory"]);
    for id in &ids {
        let pid = serde_json::from_slice::<serde_json::Value>(&c.lcr(&["state", id]).stdout)
            .unwrap()["pid"]
            .clone();
        let stat = read(format!("/proc/{pid}/ksm_stat"));
        assert!(
            stat.contains("ksm_merge_any: yes"),
            "{id}: not mergeable: {stat}"
        );
    }
    // 7 clones' copies of the 64k pages can go.
    let want = 7 * 65536 * 8 / 10;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(90);
    while ksm("pages_sharing") < want && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(500));
    }
    let merged = total(&ids);
    eprintln!(
        "8 clones of a 256 MiB service: one uses {one} MiB; 8 unmerged {unmerged} MiB, merged {merged} MiB (KSM pages_sharing {}, pages_shared {})",
        ksm("pages_sharing"),
        ksm("pages_shared")
    );
    assert!(
        merged * 2 < unmerged,
        "merged {merged} MiB against {unmerged} MiB unmerged"
    );
    assert!(
        merged < 3 * one.max(256),
        "merged {merged} MiB: more than 3 clones' worth"
    );
}

/// The worked example for CI (examples/snapshot-testing/redis-tests.sh) passes: every case
/// in a clone of one warm snapshot.
fn the_snapshot_testing_example_passes() {
    let Some(rootfs) = services_rootfs() else {
        return;
    };
    if prerequisites().is_none() || !criu_ready() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let script =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/snapshot-testing/redis-tests.sh");
    let out = Command::new("bash")
        .arg(script)
        .arg(&rootfs)
        .env("LCR", lcr_bin())
        .env("TMPDIR", tmp.path())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}{}", stderr(&out));
    assert!(
        text.contains("ok 4 - ") && !text.contains("not ok"),
        "{text}"
    );
}

/// Asks redis on this namespace's loopback for PING over a plain socket.
const PING_6379: &str = "import socket\ns = socket.create_connection(('127.0.0.1', 6379), 5)\n\
     s.sendall(b'PING\\r\\n')\nprint(s.recv(64).decode().strip())";

lcr_test_harness::tests!(
    clones_of_one_checkpoint_run_at_once_each_with_a_rootfs_of_its_own,
    redis_clones_answer_with_the_snapshot_data_and_keep_their_writes_apart,
    postgres_clones_answer_with_the_fixtures_and_keep_their_writes_apart,
    python_clones_answer_from_the_snapshot_memory,
    merged_clones_share_the_memory_they_have_alike,
    the_snapshot_testing_example_passes,
    each_clone_runs_the_bundles_hooks_with_its_own_state,
);
