//! Configs that runc runs as its users expect, checked from inside real containers: the
//! capabilities of `runc spec`'s own config, seccomp without no_new_privs, failures that
//! belong to `create`, shared root propagation, no mount namespace, hostile symlinks in the
//! rootfs, hooks that do not read their state, states larger than a datagram.

mod common;

use std::os::unix::fs::symlink;
use std::path::Path;
use std::process::Command;

use common::*;
use serde_json::json;

/// The `CapAmb:` mask the container's shell reports.
fn status_field(out: &str, field: &str) -> String {
    out.lines()
        .find_map(|l| l.strip_prefix(&format!("{field}:")))
        .unwrap_or_else(|| panic!("no {field} in {out}"))
        .trim()
        .to_string()
}

fn ambient_capabilities_that_cannot_be_raised_are_warned_about_not_fatal() {
    let Some(c) = Ctr::new("ambient") else { return };
    // As `runc spec` writes it: ambient listed, inheritable not.
    c.edit(|v| {
        let set = json!(["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"]);
        for k in ["bounding", "effective", "permitted", "ambient"] {
            v["process"]["capabilities"][k] = set.clone();
        }
        v["process"]["capabilities"]["inheritable"] = json!([]);
    });
    c.args("grep -E '^Cap(Amb|Eff):' /proc/self/status");
    let (code, out, err) = c.run();
    assert_eq!(code, 0, "{err}");
    assert_eq!(status_field(&out, "CapAmb"), "0000000000000000", "{out}");
    assert!(
        err.contains("CAP_KILL") && err.contains("not raised"),
        "one warning naming them: {err}"
    );
    // Where an ambient capability is also inheritable, it is raised (CAP_KILL is bit 5).
    c.edit(|v| {
        v["process"]["capabilities"]["inheritable"] = json!(["CAP_KILL"]);
        v["process"]["capabilities"]["ambient"] = json!(["CAP_KILL"]);
    });
    let (code, out, err) = c.run();
    assert_eq!(code, 0, "{err}");
    assert_eq!(status_field(&out, "CapAmb"), "0000000000000020", "{out}");
}

fn seccomp_leaves_no_new_privs_to_the_config() {
    let Some(c) = Ctr::new("nnp") else { return };
    let profile = json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{"names": ["mkdirat", "mkdir"], "action": "SCMP_ACT_ERRNO"}]
    });
    c.edit(|v| {
        v["linux"]["seccomp"] = profile.clone();
        v["process"]["noNewPrivileges"] = json!(false);
    });
    c.args("grep -E '^(NoNewPrivs|Seccomp):' /proc/self/status; mkdir /tmp/d 2>/dev/null; echo mkdir=$?");
    let (code, out, err) = c.run();
    assert_eq!(code, 0, "{err}");
    assert_eq!(status_field(&out, "NoNewPrivs"), "0", "{out}");
    assert_eq!(
        status_field(&out, "Seccomp"),
        "2",
        "the filter is on: {out}"
    );
    assert!(out.contains("mkdir=1"), "{out}");
    c.edit(|v| v["process"]["noNewPrivileges"] = json!(true));
    let (code, out, err) = c.run();
    assert_eq!(code, 0, "{err}");
    assert_eq!(status_field(&out, "NoNewPrivs"), "1", "{out}");
    assert!(out.contains("mkdir=1"), "{out}");
}

fn what_can_fail_fails_create_and_start_returns_with_the_program_running() {
    let Some(c) = Ctr::new("early") else { return };
    c.edit(|v| v["process"]["cwd"] = json!("/no/such/dir"));
    c.args("exit 0");
    let out = c.lcr(&["create", "--bundle", c.bundle.to_str().unwrap(), &c.id]);
    assert_eq!(out.status.code(), Some(1), "a bad cwd fails create");
    assert!(stderr(&out).contains("/no/such/dir"), "{}", stderr(&out));
    assert!(!c.state_dir().exists(), "nothing left of it");

    c.edit(|v| v["process"]["cwd"] = json!("/"));
    c.args("exec sleep 30");
    c.ok(&["create", "--bundle", c.bundle.to_str().unwrap(), &c.id]);
    let pid = c.pid();
    c.ok(&["start", &c.id]);
    // No window in which the init is still lcr: the program has exec'd when start returns.
    let exe = std::fs::read_link(format!("/proc/{pid}/exe")).unwrap();
    assert!(exe.ends_with("busybox"), "{}", exe.display());
}

fn a_shared_root_propagation_runs() {
    let Some(c) = Ctr::new("rshared") else { return };
    c.edit(|v| v["linux"]["rootfsPropagation"] = json!("rshared"));
    c.args("grep -c ' /proc ' /proc/self/mountinfo");
    let (code, out, err) = c.run();
    assert_eq!(code, 0, "{err}");
    assert_eq!(out.trim(), "1", "{out}");
}

fn without_a_mount_namespace_the_process_is_chrooted_or_refused() {
    let Some(c) = Ctr::new("nomntns") else { return };
    std::fs::write(c.bundle.join("rootfs/in-the-rootfs"), "yes").unwrap();
    c.edit(|v| {
        let ns = v["linux"]["namespaces"].as_array_mut().unwrap();
        ns.retain(|n| n["type"] != "mount");
    });
    c.args("exit 0");
    let out = c.lcr(&["run", "--bundle", c.bundle.to_str().unwrap(), &c.id]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "mounts without a mount namespace"
    );
    assert!(
        stderr(&out).contains("mounts") && stderr(&out).contains("mount namespace"),
        "{}",
        stderr(&out)
    );
    c.edit(|v| {
        v["mounts"] = json!([]);
        v["linux"]["maskedPaths"] = json!([]);
        v["linux"]["readonlyPaths"] = json!([]);
    });
    c.args("cat /in-the-rootfs; ls /");
    let (code, out, err) = c.run();
    assert_eq!(code, 0, "{err}");
    assert!(out.starts_with("yes"), "the rootfs is its root: {out}");
    assert!(!out.contains("work"), "not the host's /: {out}");
}

fn symlinks_in_the_rootfs_never_lead_mounts_onto_the_host() {
    let Some(c) = Ctr::new("symlinks") else {
        return;
    };
    let outside = c.tmp.path().join("outside");
    std::fs::create_dir(&outside).unwrap();
    let rootfs = c.bundle.join("rootfs");
    std::fs::create_dir_all(rootfs.join("data")).unwrap();
    // Absolute, relative with `..` far above the root, and a chain: each names `outside` on
    // the host, and inside the rootfs a path that does not exist.
    let up = "../".repeat(20);
    symlink(&outside, rootfs.join("etc/abs")).unwrap();
    symlink(format!("{up}{}", outside.display()), rootfs.join("etc/rel")).unwrap();
    symlink("rel", rootfs.join("etc/chain")).unwrap();
    // A symlink that stays in the rootfs works as the container sees it.
    symlink("/data", rootfs.join("etc/ok")).unwrap();
    for dest in ["/etc/abs/m", "/etc/rel/m", "/etc/chain/m"] {
        c.edit(|v| {
            v["mounts"]
                .as_array_mut()
                .unwrap()
                .push(json!({"destination": dest, "type": "tmpfs", "source": "tmpfs"}));
        });
        let (code, _, err) = c.run();
        assert_ne!(
            code, 0,
            "{dest}: refused, since it leads nowhere in the rootfs"
        );
        assert!(err.contains(dest.trim_end_matches("/m")), "{dest}: {err}");
        assert_eq!(
            std::fs::read_dir(&outside).unwrap().count(),
            0,
            "{dest}: the host is untouched"
        );
        c.edit(|v| {
            v["mounts"].as_array_mut().unwrap().pop();
        });
    }
    let host_file = c.tmp.path().join("host-file");
    std::fs::write(&host_file, "bound").unwrap();
    c.edit(|v| {
        let m = v["mounts"].as_array_mut().unwrap();
        m.push(json!({"destination": "/etc/ok/m", "type": "tmpfs", "source": "tmpfs"}));
        m.push(json!({"destination": "/etc/ok/f", "type": "bind", "source": host_file, "options": ["bind", "ro"]}));
    });
    c.args("grep -c ' /data/m ' /proc/self/mountinfo; cat /data/f");
    let (code, out, err) = c.run();
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        out, "1\nbound",
        "mounted where the symlink leads inside the rootfs"
    );
    assert_eq!(std::fs::read_dir(&outside).unwrap().count(), 0);
}

fn devices_go_into_the_rootfs_even_through_a_symlinked_dev() {
    let Some(c) = Ctr::new("devlink") else { return };
    let outside = c.tmp.path().join("outside-dev");
    std::fs::create_dir(&outside).unwrap();
    std::fs::write(outside.join("null"), "not a device").unwrap();
    let dev = c.bundle.join("rootfs/dev");
    let _ = std::fs::remove_dir_all(&dev);
    symlink(&outside, &dev).unwrap();
    c.args("exit 0");
    let (code, _, err) = c.run();
    assert_ne!(
        code, 0,
        "a /dev leading out of the rootfs is refused: {err}"
    );
    assert_eq!(
        read(outside.join("null")),
        "not a device",
        "the host file is left alone"
    );
    assert_eq!(
        std::fs::read_dir(&outside).unwrap().count(),
        1,
        "nothing made on the host"
    );
}

fn hooks_that_do_not_read_a_large_state_do_not_kill_lcr() {
    let Some(c) = Ctr::new("bigstate") else {
        return;
    };
    let host = c.host_dir();
    let big = "a".repeat(100_000);
    c.edit(|v| {
        v["annotations"] = json!({"org.example.big": big});
        v["hooks"] = json!({
            "prestart": [{"path": "/bin/true"}],
            "poststart": [{"path": "/bin/true"}],
            "startContainer": [{"path": "/bin/sh", "args": ["sh", "-c", "cat > /host/state.json"]}]
        });
    });
    c.args("exit 7");
    for _ in 0..10 {
        let (code, _, err) = c.run();
        assert_eq!(code, 7, "{err}");
        let st: serde_json::Value = serde_json::from_str(&read(host.join("state.json"))).unwrap();
        assert_eq!(
            st["annotations"]["org.example.big"].as_str().map(str::len),
            Some(100_000)
        );
    }
}

fn spec_adds_a_cgroup_namespace_only_where_runc_does() {
    let Some(c) = Ctr::new("spec") else { return };
    let Ok(out) = Command::new("runc")
        .arg("spec")
        .current_dir(c.tmp.path())
        .output()
    else {
        assert!(std::env::var_os("CI").is_none(), "CI must have runc");
        lcr_test_harness::skip("no runc to compare with");
        return;
    };
    assert_success(&out);
    let runc: serde_json::Value =
        serde_json::from_str(&read(c.tmp.path().join("config.json"))).unwrap();
    let types = |v: &serde_json::Value| -> Vec<String> {
        let mut t: Vec<String> = v["linux"]["namespaces"]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| n["type"].as_str().unwrap().to_string())
            .collect();
        t.sort();
        t
    };
    assert_eq!(types(&c.config()), types(&runc));
    let v2 = Path::new("/sys/fs/cgroup/cgroup.controllers").exists();
    assert_eq!(types(&runc).contains(&"cgroup".to_string()), v2);
}

lcr_test_harness::tests!(
    ambient_capabilities_that_cannot_be_raised_are_warned_about_not_fatal,
    seccomp_leaves_no_new_privs_to_the_config,
    what_can_fail_fails_create_and_start_returns_with_the_program_running,
    a_shared_root_propagation_runs,
    without_a_mount_namespace_the_process_is_chrooted_or_refused,
    symlinks_in_the_rootfs_never_lead_mounts_onto_the_host,
    devices_go_into_the_rootfs_even_through_a_symlinked_dev,
    hooks_that_do_not_read_a_large_state_do_not_kill_lcr,
    spec_adds_a_cgroup_namespace_only_where_runc_does,
);
