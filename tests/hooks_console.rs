//! OCI hooks receive the state on stdin at their moments; a console socket receives a pty
//! master that drives the container's shell.

mod common;

use std::io::{Read, Write};
use std::os::fd::AsFd;
use std::os::unix::net::UnixListener;
use std::time::{Duration, Instant};

use common::*;
use serde_json::json;

fn each_hook_runs_and_receives_the_state() {
    let Some(c) = Ctr::new("hooks") else { return };
    let host = c.host_dir();
    let hd = host.to_str().unwrap().to_string();
    // Runtime-namespace hooks use the host's sh and paths; startContainer runs in the
    // container, after pivot_root, so it uses the container's sh and the /host bind mount.
    let host_hook = |name: &str| json!({"path": "/bin/sh", "args": ["sh", "-c", format!("cat > {hd}/{name}.json")]});
    c.edit(|v| {
        v["hooks"] = json!({
            "prestart": [host_hook("prestart")],
            "createRuntime": [host_hook("createRuntime")],
            "createContainer": [host_hook("createContainer")],
            "startContainer": [{"path": "/bin/sh", "args": ["sh", "-c", "cat > /host/startContainer.json"]}],
            "poststart": [host_hook("poststart")],
            "poststop": [host_hook("poststop")]
        })
    });
    c.args("exit 0");
    let (code, _, err) = c.run();
    assert_eq!(code, 0, "{err}");
    for name in [
        "prestart",
        "createRuntime",
        "createContainer",
        "startContainer",
        "poststart",
        "poststop",
    ] {
        let text = read(host.join(format!("{name}.json")));
        let st: serde_json::Value =
            serde_json::from_str(&text).unwrap_or_else(|e| panic!("{name}: {e}: {text:?}"));
        assert_eq!(st["id"], c.id.as_str(), "{name}: {st}");
        assert_eq!(st["bundle"], c.bundle.to_str().unwrap(), "{name}: {st}");
        if name != "poststop" {
            assert!(st["pid"].as_i64().unwrap() > 0, "{name}: {st}");
        }
    }
}

fn a_failing_hook_fails_create_and_leaves_nothing() {
    let Some(c) = Ctr::new("badhook") else { return };
    c.edit(|v| v["hooks"] = json!({"createRuntime": [{"path": "/bin/false"}]}));
    c.args("exit 0");
    let out = c.lcr(&["create", "--bundle", c.bundle.to_str().unwrap(), &c.id]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("createRuntime hook /bin/false"), "{err}");
    assert!(!c.state_dir().exists());
    assert!(!cgroup_exists(&c.cgroup));
}

fn the_console_socket_receives_a_working_pty() {
    let Some(c) = Ctr::new("console") else { return };
    c.edit(|v| v["process"]["terminal"] = json!(true));
    c.args("exec sh");
    let sock_path = c.tmp.path().join("console.sock");
    let listener = UnixListener::bind(&sock_path).unwrap();
    c.ok(&[
        "create",
        "--bundle",
        c.bundle.to_str().unwrap(),
        "--console-socket",
        sock_path.to_str().unwrap(),
        &c.id,
    ]);
    let (conn, _) = listener.accept().unwrap();
    let master = lcr::process::console::recv_master(conn.as_fd()).unwrap();
    c.ok(&["start", &c.id]);
    let mut term = std::fs::File::from(master);
    term.write_all(b"echo tty=$(tty) sum=$((40+2)); exit\n")
        .unwrap();
    let mut seen = String::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut buf = [0u8; 4096];
    while !seen.contains("sum=42") && Instant::now() < deadline {
        match term.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => seen.push_str(&String::from_utf8_lossy(&buf[..n])),
        }
    }
    assert!(seen.contains("sum=42"), "{seen:?}");
    assert!(seen.contains("tty=/dev/pts/"), "{seen:?}");
}

lcr_test_harness::tests!(
    each_hook_runs_and_receives_the_state,
    a_failing_hook_fails_create_and_leaves_nothing,
    the_console_socket_receives_a_working_pty,
);
