//! podman (Debian's package) with lcr as its runtime, in a private configuration: cgroupfs,
//! file events, no network, vfs storage in a temp dir, ulimits this machine allows. The
//! machine's own /etc/containers is left alone; everything podman made goes with the handle.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use super::*;

pub struct Podman {
    pub dir: tempfile::TempDir,
    /// The busybox rootfs, copied.
    pub rootfs: PathBuf,
    /// The cgroup parent of every container (under the test parent).
    pub cgroup_parent: String,
}

impl Podman {
    /// `None` (having said why) when podman or the test rootfs is missing.
    pub fn new() -> Option<Self> {
        prerequisites()?;
        if Command::new("podman").arg("--version").output().is_err() {
            assert!(
                std::env::var_os("CI").is_none(),
                "CI must have podman (scripts/setup.sh)"
            );
            lcr_test_harness::skip("podman is not installed");
            return None;
        }
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
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
        copy_test_rootfs(&rootfs);
        let cgroup_parent = format!("{CGROUP_PARENT}/podman-{}", std::process::id());
        Some(Self {
            dir,
            rootfs,
            cgroup_parent,
        })
    }

    pub fn cmd(&self) -> Command {
        let d = self.dir.path();
        let mut c = Command::new("podman");
        c.env("CONTAINERS_CONF", d.join("containers.conf"))
            .env("CONTAINERS_STORAGE_CONF", d.join("storage.conf"))
            .env("XDG_RUNTIME_DIR", d.join("xdg"))
            .arg("--root")
            .arg(d.join("storage"))
            .arg("--runroot")
            .arg(d.join("run"))
            .arg("--runtime")
            .arg(lcr_bin());
        c
    }

    /// Runs podman with its output through files (conmon keeps pipes open).
    pub fn run(&self, args: &[&str]) -> Output {
        output_via_files(self.cmd().args(args))
    }

    /// Runs podman and returns its stdout; panics with its stderr if it fails.
    #[track_caller]
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "podman {args:?}: rc {:?}\n{}{}",
            out.status.code(),
            String::from_utf8_lossy(&out.stdout),
            stderr(&out)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// The busybox rootfs as a local image (`podman import`): restores from an exported
    /// checkpoint need an image, which `--rootfs` containers lack.
    pub fn image(&self, name: &str) -> String {
        let tar = self.dir.path().join("rootfs.tar");
        assert!(Command::new("tar")
            .arg("-C")
            .arg(&self.rootfs)
            .arg("-cf")
            .arg(&tar)
            .arg(".")
            .status()
            .unwrap()
            .success());
        self.ok(&["import", tar.to_str().unwrap(), name]);
        name.to_string()
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for Podman {
    fn drop(&mut self) {
        let _ = self.run(&["rm", "--all", "--force", "--time", "0"]);
        let _ = self.run(&["image", "rm", "--all", "--force"]);
        // podman's cgroupfs manager leaves its parent behind (and any container's under it);
        // conmon may take a moment to leave its own after the container has gone.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while {
            remove_cgroup(&self.cgroup_parent);
            cgroup_exists(&self.cgroup_parent) && std::time::Instant::now() < deadline
        } {
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        // vfs storage holds copies owned by root; podman's own removal ran above.
        let _ = std::fs::remove_dir_all(self.dir.path().join("storage"));
    }
}
