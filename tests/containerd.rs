//! containerd (Debian's package) drives lcr through its runc shim, as Kubernetes would:
//! `ctr run --runc-binary lcr`, `task exec`, `pause`/`resume`, `task checkpoint`, and a
//! `containers checkpoint --task` restored with `containers restore --live`, the counter
//! going on; an lcr error reaches `ctr` with its text.

mod common;

use common::containerd::Containerd;
use common::*;

const COUNTER: &str =
    "i=0; while :; do i=$((i+1)); echo $i > /host/n.tmp; mv /host/n.tmp /host/n; sleep 0.05; done";

fn count(host: &std::path::Path) -> u64 {
    read(host.join("n")).trim().parse().unwrap_or(0)
}

fn containerd_runs_checkpoints_and_restores_through_lcr() {
    let Some(ctd) = Containerd::start() else {
        return;
    };
    if !counter::criu_ready() {
        return;
    }
    let rootfs = ctd.path().join("rootfs");
    copy_test_rootfs(&rootfs);
    let image = ctd.import_rootfs(&rootfs, "localhost/lcr-busybox");
    let host = ctd.path().join("host");
    std::fs::create_dir(&host).unwrap();
    let mount = format!(
        "type=bind,src={},dst=/host,options=rbind:rw",
        host.display()
    );
    let id = format!("lcr-ctd-{}", std::process::id());
    let cgroup = format!("{}/{id}", ctd.cgroup_parent);
    ctd.ok(&[
        "run",
        "-d",
        "--runc-binary",
        lcr_bin(),
        "--cgroup",
        &cgroup,
        "--mount",
        &mount,
        &image,
        &id,
        "sh",
        "-c",
        COUNTER,
    ]);
    wait_until("counting", || count(&host) > 3);
    // exec, and pause/resume.
    let out = ctd.ok(&[
        "task",
        "exec",
        "--exec-id",
        "e1",
        &id,
        "cat",
        "/proc/1/comm",
    ]);
    assert_eq!(out.trim(), "sh");
    ctd.ok(&["task", "pause", &id]);
    let frozen = count(&host);
    std::thread::sleep(std::time::Duration::from_millis(300));
    assert_eq!(count(&host), frozen, "paused");
    ctd.ok(&["task", "resume", &id]);
    wait_until("counting after resume", || count(&host) > frozen + 2);

    // A checkpoint in containerd's store, the task killed, and the container restored from it.
    let checkpoint = format!("localhost/lcr-ckpt:{id}");
    ctd.ok(&["containers", "checkpoint", "--task", &id, &checkpoint]);
    ctd.ok(&["task", "kill", "-s", "KILL", &id]);
    wait_until("the task to stop", || {
        ctd.ok(&["task", "ls"]).contains("STOPPED")
    });
    ctd.ok(&["task", "delete", &id]);
    ctd.ok(&["containers", "delete", &id]);
    let killed_at = count(&host);
    ctd.ok(&["containers", "restore", "--live", &id, &checkpoint]);
    wait_until("counting after the restore", || {
        count(&host) > killed_at + 3
    });
    assert!(ctd.ok(&["task", "ls"]).contains("RUNNING"));

    // `task checkpoint` to a directory, ending the task.
    let images = ctd.path().join("images");
    ctd.ok(&[
        "task",
        "checkpoint",
        "--exit",
        "--image-path",
        images.to_str().unwrap(),
        &id,
    ]);
    assert!(images.join("inventory.img").exists());
    let stopped = count(&host);
    std::thread::sleep(std::time::Duration::from_millis(300));
    assert_eq!(count(&host), stopped, "--exit ends the task");
}

fn an_lcr_error_reaches_ctr_with_its_text() {
    let Some(ctd) = Containerd::start() else {
        return;
    };
    let rootfs = ctd.path().join("rootfs");
    copy_test_rootfs(&rootfs);
    let id = format!("lcr-ctd-err-{}", std::process::id());
    let cgroup = format!("{}/{id}", ctd.cgroup_parent);
    let out = ctd.ctr(&[
        "run",
        "--runc-binary",
        lcr_bin(),
        "--cgroup",
        &cgroup,
        "--cwd",
        "/no/such/dir",
        "--rootfs",
        rootfs.to_str().unwrap(),
        &id,
        "true",
    ]);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(
        err.contains("OCI runtime create failed") && err.contains("process.cwd /no/such/dir"),
        "{err}"
    );
}

lcr_test_harness::tests!(
    containerd_runs_checkpoints_and_restores_through_lcr,
    an_lcr_error_reaches_ctr_with_its_text,
);
