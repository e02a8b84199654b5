//! runc's command line as its clients use it: containerd's shim (go-runc) sends one-dash long
//! flags and reads errors from `--log` in logrus's json; podman repeats flags and cleans up
//! with `delete --force` whether or not the container is still there.

mod common;

use std::process::Command;

use common::*;

fn lcr_in(root: &std::path::Path, args: &[&str]) -> std::process::Output {
    Command::new(lcr_bin())
        .arg("--root")
        .arg(root)
        .args(args)
        .output()
        .unwrap()
}

fn delete_force_of_a_container_that_is_gone_succeeds() {
    let tmp = tempfile::tempdir().unwrap();
    let out = lcr_in(tmp.path(), &["delete", "--force", "never-was"]);
    assert_success(&out);
    let out = lcr_in(tmp.path(), &["delete", "never-was"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("\"never-was\" does not exist"),
        "{}",
        stderr(&out)
    );
}

fn one_dash_long_flags_and_repeated_flags_are_taken() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().to_str().unwrap();
    let out = Command::new(lcr_bin())
        .args(["-root", root, "list", "-format", "json", "--format", "json"])
        .output()
        .unwrap();
    assert_success(&out);
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "[]");
    // podman 4.3: `checkpoint --leave-running --leave-running`; the error is the container's.
    let out = lcr_in(
        tmp.path(),
        &[
            "checkpoint",
            "-leave-running",
            "--leave-running",
            "-image-path",
            root,
            "nope",
        ],
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("\"nope\" does not exist"),
        "{}",
        stderr(&out)
    );
}

/// Each line of a `--log-format json` log as containerd decodes it: `level`, `msg`, `time`.
fn json_lines(path: &std::path::Path) -> Vec<serde_json::Value> {
    read(path)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l}: {e}")))
        .collect()
}

fn errors_reach_a_json_log_as_runc_writes_it() {
    let tmp = tempfile::tempdir().unwrap();
    let log = tmp.path().join("log.json");
    let base = |extra: &[&str]| {
        Command::new(lcr_bin())
            .arg("--root")
            .arg(tmp.path())
            .arg("-log")
            .arg(&log)
            .args(["--log-format", "json"])
            .args(extra)
            .output()
            .unwrap()
    };
    let out = base(&["state", "missing-one"]);
    assert_eq!(out.status.code(), Some(1));
    // A usage error is logged too: the flags are refused before anything else happens.
    let out = base(&["restore", "--no-such-flag", "x"]);
    assert!(!out.status.success());
    let lines = json_lines(&log);
    assert_eq!(lines.len(), 2, "{lines:?}");
    for l in &lines {
        assert_eq!(l["level"], "error", "{l}");
        let time = l["time"].as_str().unwrap();
        assert!(
            chrono::DateTime::parse_from_rfc3339(time).is_ok(),
            "time {time} is RFC 3339"
        );
    }
    assert!(lines[0]["msg"]
        .as_str()
        .unwrap()
        .contains("\"missing-one\" does not exist"));
    assert!(
        lines[1]["msg"].as_str().unwrap().contains("--no-such-flag"),
        "{}",
        lines[1]
    );
}

fn nothing_criu_prints_reaches_lcrs_caller() {
    let out = Command::new(lcr_bin()).args(["check"]).output().unwrap();
    assert_success(&out);
    let all = format!("{}{}", String::from_utf8_lossy(&out.stdout), stderr(&out));
    assert!(!all.contains("Error (criu"), "{all}");
}

lcr_test_harness::tests!(
    delete_force_of_a_container_that_is_gone_succeeds,
    one_dash_long_flags_and_repeated_flags_are_taken,
    errors_reach_a_json_log_as_runc_writes_it,
    nothing_criu_prints_reaches_lcrs_caller,
);
