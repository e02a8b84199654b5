//! Bad input gets exit code 1, a message naming the field or value, and leaves no state
//! directory, cgroup or process behind.

mod common;

use common::*;
use serde_json::json;

/// Runs `lcr create` and checks the refusal.
fn refused(c: &Ctr, id: &str, bundle: &str, needle: &str) {
    let out = c.lcr(&["create", "--bundle", bundle, id]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{needle}: {err}");
    assert!(err.contains(needle), "expected {needle:?} in: {err}");
    assert!(
        !c.root.join(id).exists() || id.is_empty() || id == "..",
        "state left for {id:?}"
    );
    assert!(!cgroup_exists(&c.cgroup), "cgroup left after: {err}");
    assert_eq!(c.lcr(&["list", "-q"]).stdout, b"", "a container was listed");
}

fn config_errors_name_the_field() {
    let Some(c) = Ctr::new("badcfg") else { return };
    let b = c.bundle.to_str().unwrap().to_string();
    let good = c.config();

    c.edit(|v| v["process"]["args"] = json!([]));
    refused(&c, &c.id, &b, "process.args");

    c.edit(|v| *v = good.clone());
    c.edit(|v| v["linux"]["namespaces"] = json!([{"type": "nonsense"}]));
    refused(&c, &c.id, &b, "linux.namespaces[0].type");

    c.edit(|v| *v = good.clone());
    c.edit(|v| v["root"]["path"] = json!("missing-rootfs"));
    refused(&c, &c.id, &b, "missing-rootfs");

    c.edit(|v| *v = good.clone());
    c.edit(|v| {
        v.as_object_mut().unwrap().remove("ociVersion");
    });
    refused(&c, &c.id, &b, "ociVersion");

    c.edit(|v| *v = good.clone());
    c.edit(|v| v["process"]["args"] = json!(["/no/such/binary"]));
    refused(&c, &c.id, &b, "/no/such/binary");

    c.edit(|v| *v = good.clone());
    c.edit(|v| {
        v["linux"]["namespaces"] =
            json!([{"type": "network", "path": "/proc/no/ns/net"}, {"type": "mount"}])
    });
    refused(&c, &c.id, &b, "/proc/no/ns/net");

    std::fs::write(c.bundle.join("config.json"), "{ \"ociVersion\": ").unwrap();
    refused(&c, &c.id, &b, "config.json");

    refused(&c, &c.id, "/nonexistent/bundle", "/nonexistent/bundle");
}

fn ids_signals_and_unknown_containers_are_refused() {
    let Some(c) = Ctr::new("badid") else { return };
    let b = c.bundle.to_str().unwrap().to_string();
    c.args("exec sleep 30");
    for (id, why) in [
        ("", "empty"),
        ("..", "not a name"),
        ("a/b", "'/'"),
        (&"x".repeat(300)[..], "longer than 255"),
    ] {
        refused(&c, id, &b, why);
    }
    // A duplicate id.
    c.ok(&["create", "--bundle", &b, &c.id]);
    let out = c.lcr(&["create", "--bundle", &b, &c.id]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("already exists"));
    assert_eq!(
        c.state()["status"],
        "created",
        "the first container must be untouched"
    );
    // A signal that does not exist.
    let out = c.lcr(&["kill", &c.id, "SIGNOPE"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("SIGNOPE"));
    assert_eq!(c.state()["status"], "created");
    // An unknown container.
    for cmd in [
        &["state", "nosuch"][..],
        &["start", "nosuch"],
        &["kill", "nosuch"],
        &["delete", "nosuch"],
    ] {
        let out = c.lcr(cmd);
        assert_eq!(out.status.code(), Some(1), "{cmd:?}");
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("\"nosuch\" does not exist"),
            "{cmd:?}"
        );
    }
    let pid = c.pid();
    c.ok(&["delete", &c.id]);
    assert!(!pid_alive(pid));
    assert!(!cgroup_exists(&c.cgroup));
}

fn limits_the_kernel_refuses_are_named_before_anything_is_made() {
    let Some(c) = Ctr::new("badlim") else { return };
    let b = c.bundle.to_str().unwrap().to_string();
    let good = c.config();
    for (resources, field) in [
        (json!({"pids": {"limit": -7}}), "linux.resources.pids.limit"),
        (json!({"cpu": {"quota": -9}}), "linux.resources.cpu.quota"),
        (json!({"cpu": {"shares": 1}}), "linux.resources.cpu.shares"),
        (
            json!({"blockIO": {"weight": 5000}}),
            "linux.resources.blockIO.weight",
        ),
        (
            json!({"memory": {"limit": 4096}}),
            "linux.resources.memory.limit",
        ),
    ] {
        c.edit(|v| *v = good.clone());
        c.edit(|v| v["linux"]["resources"] = resources.clone());
        refused(&c, &c.id, &b, field);
    }
    // A prestart hook that outlives its timeout: named, with the timeout.
    c.edit(|v| *v = good.clone());
    c.edit(|v| {
        v["hooks"] =
            json!({"prestart": [{"path": "/bin/sleep", "args": ["sleep", "5"], "timeout": 1}]})
    });
    refused(
        &c,
        &c.id,
        &b,
        "prestart hook /bin/sleep: timed out after 1s",
    );
    // An id that reads as a flag (passed after `--`, as a script might).
    c.edit(|v| *v = good.clone());
    let out = c.lcr(&["create", "--bundle", &b, "--", "-rf"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stderr(&out).contains("starts with '-'"), "{}", stderr(&out));
    assert!(!c.root.join("-rf").exists());
}

lcr_test_harness::tests!(
    config_errors_name_the_field,
    ids_signals_and_unknown_containers_are_refused,
    limits_the_kernel_refuses_are_named_before_anything_is_made,
);
