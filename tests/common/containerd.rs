//! containerd (Debian's package) with its own config, root, state and socket, driving lcr
//! through its runc shim (`ctr ... --runc-binary lcr`). The daemon is stopped by pid, and the
//! shims it started (found by their socket path) with it.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

use sha2::{Digest, Sha256};

use super::*;

pub struct Containerd {
    pub dir: tempfile::TempDir,
    daemon: Child,
    /// The cgroup parent of every container.
    pub cgroup_parent: String,
}

impl Containerd {
    /// `None` (having said why) when containerd and ctr are missing.
    pub fn start() -> Option<Self> {
        prerequisites()?;
        if Command::new("ctr").arg("--version").output().is_err()
            || Command::new("containerd")
                .arg("--version")
                .output()
                .is_err()
        {
            assert!(
                std::env::var_os("CI").is_none(),
                "CI must have containerd and ctr (scripts/setup.sh)"
            );
            lcr_test_harness::skip("containerd is not installed");
            return None;
        }
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().display().to_string();
        let config = dir.path().join("config.toml");
        std::fs::write(
            &config,
            format!(
                "version = 2\nroot = \"{d}/root\"\nstate = \"{d}/state\"\n\
                 disabled_plugins = [\"io.containerd.grpc.v1.cri\"]\n\
                 [grpc]\n  address = \"{d}/containerd.sock\"\n\
                 [ttrpc]\n  address = \"{d}/containerd.sock.ttrpc\"\n\
                 [debug]\n  address = \"{d}/debug.sock\"\n\
                 [metrics]\n  address = \"\"\n"
            ),
        )
        .unwrap();
        let log = std::fs::File::create(dir.path().join("containerd.log")).unwrap();
        // containerd keeps a task checkpoint's images in a temporary directory of its own
        // (`ctrd-checkpoint*`) and leaves it: here it goes with the test's directory.
        let daemon = Command::new("containerd")
            .arg("--config")
            .arg(&config)
            .env("TMPDIR", dir.path())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .stdin(Stdio::null())
            .spawn()
            .unwrap();
        let c = Self {
            dir,
            daemon,
            cgroup_parent: format!("{CGROUP_PARENT}/containerd-{}", std::process::id()),
        };
        wait_until("containerd to answer", || {
            c.ctr(&["version"]).status.success()
        });
        Some(c)
    }

    /// `ctr` on this daemon, ended after a minute: a shim that waits for ever must fail the
    /// test, not hang it.
    pub fn cmd(&self) -> Command {
        let mut c = Command::new("timeout");
        c.args(["--kill-after=5", "60", "ctr", "--address"])
            .arg(self.dir.path().join("containerd.sock"));
        c
    }

    pub fn ctr(&self, args: &[&str]) -> Output {
        output_via_files(self.cmd().args(args))
    }

    #[track_caller]
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.ctr(args);
        assert!(
            out.status.success(),
            "ctr {args:?}: rc {:?}\n{}{}\ncontainerd's log:\n{}",
            out.status.code(),
            String::from_utf8_lossy(&out.stdout),
            stderr(&out),
            read(self.dir.path().join("containerd.log"))
                .lines()
                .rev()
                .take(15)
                .collect::<Vec<_>>()
                .join("\n")
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// `rootfs` as an OCI image archive, imported as `name:test`: checkpoints in containerd's
    /// store need a container made from an image.
    pub fn import_rootfs(&self, rootfs: &Path, name: &str) -> String {
        let layout = self.dir.path().join("oci");
        let blobs = layout.join("blobs/sha256");
        std::fs::create_dir_all(&blobs).unwrap();
        let blob = |bytes: &[u8]| -> (String, usize) {
            let hex: String = Sha256::digest(bytes)
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect();
            std::fs::write(blobs.join(&hex), bytes).unwrap();
            (format!("sha256:{hex}"), bytes.len())
        };
        let layer_tar = self.dir.path().join("layer.tar");
        assert!(Command::new("tar")
            .arg("-C")
            .arg(rootfs)
            .arg("-cf")
            .arg(&layer_tar)
            .arg(".")
            .status()
            .unwrap()
            .success());
        let (layer, layer_size) = blob(&std::fs::read(&layer_tar).unwrap());
        let config = json!({
            "architecture": "amd64", "os": "linux", "config": {},
            "rootfs": {"type": "layers", "diff_ids": [layer]}
        });
        let (config, config_size) = blob(config.to_string().as_bytes());
        let manifest = json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config, "size": config_size},
            "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": layer, "size": layer_size}]
        });
        let (manifest, manifest_size) = blob(manifest.to_string().as_bytes());
        let index = json!({
            "schemaVersion": 2,
            "manifests": [{
                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "digest": manifest, "size": manifest_size,
                "annotations": {"org.opencontainers.image.ref.name": "test"}
            }]
        });
        std::fs::write(layout.join("index.json"), index.to_string()).unwrap();
        std::fs::write(
            layout.join("oci-layout"),
            r#"{"imageLayoutVersion":"1.0.0"}"#,
        )
        .unwrap();
        let archive = self.dir.path().join("image.tar");
        assert!(Command::new("tar")
            .arg("-C")
            .arg(&layout)
            .arg("-cf")
            .arg(&archive)
            .args(["oci-layout", "index.json", "blobs"])
            .status()
            .unwrap()
            .success());
        self.ok(&[
            "image",
            "import",
            "--base-name",
            name,
            archive.to_str().unwrap(),
        ]);
        format!("{name}:test")
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// The shims this daemon started: their command lines name its socket.
    fn shims(&self) -> Vec<i32> {
        let sock = self.dir.path().join("containerd.sock");
        let sock = sock.to_string_lossy();
        std::fs::read_dir("/proc")
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
            .filter(|pid| {
                let cmd = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
                let cmd = String::from_utf8_lossy(&cmd);
                cmd.starts_with("/usr/bin/containerd-shim") && cmd.contains(&*sock)
            })
            .collect()
    }
}

impl Drop for Containerd {
    fn drop(&mut self) {
        let tasks = self.ok_quiet(&["task", "ls", "-q"]);
        for t in tasks.lines().filter(|t| !t.is_empty()) {
            let _ = self.ctr(&["task", "kill", "-s", "KILL", t]);
            let _ = self.ctr(&["task", "delete", "--force", t]);
        }
        for c in self
            .ok_quiet(&["containers", "ls", "-q"])
            .lines()
            .filter(|c| !c.is_empty())
        {
            let _ = self.ctr(&["containers", "delete", c]);
        }
        let shims = self.shims();
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(self.daemon.id() as i32),
            nix::sys::signal::Signal::SIGTERM,
        );
        let _ = self.daemon.wait();
        for pid in shims {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
        remove_cgroup(&self.cgroup_parent);
        // The overlay snapshots containerd mounted for its containers.
        let root = self.dir.path().join("root");
        for m in mounts_below(&root) {
            let _ = nix::mount::umount2(&m, nix::mount::MntFlags::MNT_DETACH);
        }
    }
}

impl Containerd {
    fn ok_quiet(&self, args: &[&str]) -> String {
        String::from_utf8_lossy(&self.ctr(args).stdout).into_owned()
    }
}

/// Mount points below `dir`, deepest first.
fn mounts_below(dir: &Path) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = read("/proc/self/mountinfo")
        .lines()
        .filter_map(|l| l.split_whitespace().nth(4).map(PathBuf::from))
        .filter(|p| p.starts_with(dir))
        .collect();
    out.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
    out
}
