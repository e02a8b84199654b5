//! podman (Debian's package) drives lcr in place of runc: run, exec, pause/unpause, and its
//! checkpoint/restore (plain, --leave-running, --print-stats, --export / --import), the
//! counter going on each time.

mod common;

use common::podman::Podman;
use common::*;

fn podman_runs_a_command_with_lcr_as_its_runtime() {
    let Some(p) = Podman::new() else { return };
    let name = format!("lcr-podman-{}", std::process::id());
    let out = p.run(&[
        "run",
        "--rm",
        "--name",
        &name,
        "--cgroup-parent",
        &p.cgroup_parent,
        "--rootfs",
        p.rootfs.to_str().unwrap(),
        "sh",
        "-c",
        "echo hello-from-$(cat /proc/1/comm); exit 5",
    ]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(5),
        "stdout {stdout} stderr {}",
        stderr(&out)
    );
    assert!(
        stdout.contains("hello-from-sh"),
        "stdout {stdout} stderr {}",
        stderr(&out)
    );
}

/// The counter's value, read in the container through `podman exec`.
fn count(p: &Podman, name: &str) -> u64 {
    let out = p.run(&["exec", name, "cat", "/tmp/n"]);
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .unwrap_or(0)
}

fn counts_on(p: &Podman, name: &str, from: u64) {
    wait_until(&format!("{name} counting past {from}"), || {
        count(p, name) > from + 2
    });
}

fn podman_checkpoints_and_restores_through_lcr() {
    let Some(p) = Podman::new() else { return };
    if !counter::criu_ready() {
        return;
    }
    let image = p.image("localhost/lcr-busybox:test");
    let name = format!("lcr-podman-cr-{}", std::process::id());
    p.ok(&[
        "run",
        "-d",
        "--name",
        &name,
        "--cgroup-parent",
        &p.cgroup_parent,
        &image,
        "sh",
        "-c",
        "i=0; while :; do i=$((i+1)); echo $i > /tmp/n.tmp; mv /tmp/n.tmp /tmp/n; sleep 0.05; done",
    ]);
    counts_on(&p, &name, 0);
    // exec and pause/unpause.
    assert_eq!(p.ok(&["exec", &name, "cat", "/proc/1/comm"]).trim(), "sh");
    p.ok(&["pause", &name]);
    let frozen = count(&p, &name);
    std::thread::sleep(std::time::Duration::from_millis(300));
    p.ok(&["unpause", &name]);
    counts_on(&p, &name, frozen);

    // Plain: the container stops, its memory on disk; restore brings it back counting on.
    p.ok(&["container", "checkpoint", &name]);
    let state = p.ok(&["inspect", "--format", "{{.State.Status}}", &name]);
    assert_eq!(state.trim(), "exited", "checkpointed: {state}");
    p.ok(&["container", "restore", &name]);
    let at = count(&p, &name);
    assert!(
        at > frozen,
        "the count went on from its own memory: {at} after {frozen}"
    );
    counts_on(&p, &name, at);

    // --leave-running with --print-stats: it counts on throughout, podman shows CRIU's times.
    let stats = p.ok(&[
        "container",
        "checkpoint",
        "--leave-running",
        "--print-stats",
        &name,
    ]);
    assert!(
        stats.contains("freezing_time") || stats.contains("runtime_checkpoint_duration"),
        "{stats}"
    );
    let at = count(&p, &name);
    counts_on(&p, &name, at);

    // --export, then --import under a new name.
    let archive = p.path().join("ctr.tar.gz");
    p.ok(&[
        "container",
        "checkpoint",
        "--export",
        archive.to_str().unwrap(),
        &name,
    ]);
    let at = count(&p, &name).max(at);
    let name2 = format!("{name}-imported");
    p.ok(&[
        "container",
        "restore",
        "--import",
        archive.to_str().unwrap(),
        "--name",
        &name2,
    ]);
    let resumed = count(&p, &name2);
    assert!(
        resumed >= at,
        "imported counts from {resumed}, exported at {at}"
    );
    counts_on(&p, &name2, resumed);
}

lcr_test_harness::tests!(
    podman_runs_a_command_with_lcr_as_its_runtime,
    podman_checkpoints_and_restores_through_lcr,
);
