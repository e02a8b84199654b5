//! podman (Debian's package) drives lcr in place of runc: `podman --runtime lcr run --rootfs`.
//! podman gets a private configuration (cgroupfs, file events, no network, vfs storage in a
//! temp dir), so the machine's own /etc/containers is left alone.

mod common;

use std::path::Path;
use std::process::Command;

use common::*;

fn podman(dir: &Path) -> Command {
    let mut c = Command::new("podman");
    c.env("CONTAINERS_CONF", dir.join("containers.conf"))
        .env("CONTAINERS_STORAGE_CONF", dir.join("storage.conf"))
        .env("XDG_RUNTIME_DIR", dir.join("xdg"))
        .arg("--root")
        .arg(dir.join("storage"))
        .arg("--runroot")
        .arg(dir.join("run"))
        .arg("--runtime")
        .arg(lcr_bin());
    c
}

#[test]
fn podman_runs_a_command_with_lcr_as_its_runtime() {
    if prerequisites().is_none() {
        return;
    }
    if Command::new("podman").arg("--version").output().is_err() {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI must have podman (scripts/setup.sh)"
        );
        eprintln!("SKIP: podman is not installed");
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    std::fs::create_dir_all(d.join("xdg")).unwrap();
    std::fs::write(
        d.join("containers.conf"),
        "[containers]\nnetns = \"none\"\ndefault_ulimits = [\"nofile=20000:20000\", \"nproc=32768:32768\"]\n\
         [engine]\ncgroup_manager = \"cgroupfs\"\nevents_logger = \"file\"\n",
    )
    .unwrap();
    std::fs::write(
        d.join("storage.conf"),
        format!(
            "[storage]\ndriver = \"vfs\"\ngraphroot = \"{0}/storage\"\nrunroot = \"{0}/run\"\n",
            d.display()
        ),
    )
    .unwrap();
    let rootfs = d.join("rootfs");
    assert!(Command::new("cp")
        .arg("-a")
        .arg(std::env::var("LCR_ROOTFS").unwrap_or_else(|_| "/var/cache/lcr/rootfs-busybox".into()))
        .arg(&rootfs)
        .status()
        .unwrap()
        .success());
    let name = format!("lcr-podman-{}", std::process::id());
    let out = output_via_files(
        podman(d)
            .args([
                "run",
                "--rm",
                "--name",
                &name,
                "--cgroup-parent",
                "/lcr-test/podman",
                "--rootfs",
            ])
            .arg(&rootfs)
            .args(["sh", "-c", "echo hello-from-$(cat /proc/1/comm); exit 5"]),
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let _ = podman(d).args(["rm", "-f", &name]).output();
    remove_cgroup("/lcr-test/podman");
    assert_eq!(
        out.status.code(),
        Some(5),
        "stdout {stdout} stderr {stderr}"
    );
    assert!(
        stdout.contains("hello-from-sh"),
        "stdout {stdout} stderr {stderr}"
    );
}
