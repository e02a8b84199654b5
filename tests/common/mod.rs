//! Shared helpers for the integration tests: the lcr binary, a bundle from the busybox rootfs
//! that scripts/make-rootfs.sh builds, and a container handle that cleans up after itself.
#![allow(dead_code)]

pub mod containerd;
pub mod counter;
pub mod migration;
pub mod outside_peer;
pub mod podman;
pub mod twohosts;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

pub const CGROUP_PARENT: &str = "/lcr-test";

pub fn lcr_bin() -> &'static str {
    env!("CARGO_BIN_EXE_lcr")
}

fn rootfs_source() -> PathBuf {
    PathBuf::from(
        std::env::var("LCR_ROOTFS").unwrap_or_else(|_| "/var/cache/lcr/rootfs-busybox".into()),
    )
}

/// A copy of the busybox test rootfs at `dest`.
pub fn copy_test_rootfs(dest: &Path) {
    copy_rootfs(&rootfs_source(), dest)
}

fn copy_rootfs(src: &Path, dest: &Path) {
    let st = Command::new("cp")
        .arg("-a")
        .arg(src)
        .arg(dest)
        .status()
        .unwrap();
    assert!(st.success(), "copy {} to {}", src.display(), dest.display());
}

/// `None` (after printing why) when the tests cannot run here; under CI that is a failure.
pub fn prerequisites() -> Option<()> {
    let why = if !nix::unistd::geteuid().is_root() {
        "not root".to_string()
    } else if !rootfs_source().join("bin/busybox").exists() {
        format!(
            "no test rootfs at {} (run scripts/make-rootfs.sh)",
            rootfs_source().display()
        )
    } else {
        return Some(());
    };
    assert!(
        std::env::var_os("CI").is_none(),
        "CI must be able to run this: {why}"
    );
    lcr_test_harness::skip(why);
    None
}

/// A bundle in a temp dir and the id and state root of the container made from it. Dropping
/// it force-deletes the container and removes any cgroup the test left.
pub struct Ctr {
    pub id: String,
    pub root: PathBuf,
    pub bundle: PathBuf,
    pub cgroup: String,
    pub tmp: tempfile::TempDir,
}

/// The rootfs with real services (scripts/make-services-rootfs.sh), or `None` (the test
/// skipped, with the reason; under CI a failure).
pub fn services_rootfs() -> Option<PathBuf> {
    let dir = PathBuf::from(
        std::env::var("LCR_SERVICES_ROOTFS")
            .unwrap_or_else(|_| "/var/cache/lcr/rootfs-services".into()),
    );
    if dir.join(".lcr-rootfs").exists() {
        return Some(dir);
    }
    let why = format!(
        "no services rootfs at {} (run scripts/make-services-rootfs.sh)",
        dir.display()
    );
    assert!(std::env::var_os("CI").is_none(), "CI must build it: {why}");
    lcr_test_harness::skip(why);
    None
}

impl Ctr {
    pub fn new(name: &str) -> Option<Self> {
        Self::from_rootfs(name, &rootfs_source())
    }

    /// A container whose bundle's rootfs is a copy of `rootfs`.
    pub fn from_rootfs(name: &str, rootfs: &Path) -> Option<Self> {
        prerequisites()?;
        let tmp = tempfile::tempdir().unwrap();
        let bundle = tmp.path().join("bundle");
        std::fs::create_dir(&bundle).unwrap();
        copy_rootfs(rootfs, &bundle.join("rootfs"));
        let id = format!("{name}-{}", std::process::id());
        let cgroup = format!("{CGROUP_PARENT}/{id}");
        let c = Ctr {
            root: tmp.path().join("state"),
            bundle,
            cgroup: cgroup.clone(),
            id,
            tmp,
        };
        let out = c.lcr(&["spec", "--bundle", c.bundle.to_str().unwrap()]);
        assert_success(&out);
        c.edit(|v| {
            v["process"]["terminal"] = json!(false);
            v["root"]["readonly"] = json!(false);
            v["linux"]["cgroupsPath"] = json!(cgroup);
        });
        Some(c)
    }

    pub fn config(&self) -> Value {
        serde_json::from_str(&std::fs::read_to_string(self.bundle.join("config.json")).unwrap())
            .unwrap()
    }

    pub fn edit(&self, f: impl FnOnce(&mut Value)) {
        let mut v = self.config();
        f(&mut v);
        std::fs::write(
            self.bundle.join("config.json"),
            serde_json::to_string_pretty(&v).unwrap(),
        )
        .unwrap();
    }

    pub fn args(&self, script: &str) {
        self.edit(|v| v["process"]["args"] = json!(["sh", "-c", script]));
    }

    /// lcr with this container's state root; its temporary files (CRIU logs it keeps after
    /// a failure, temporary images) go into this test's directory, removed with it.
    pub fn cmd(&self) -> Command {
        let mut c = Command::new(lcr_bin());
        c.arg("--root").arg(&self.root);
        c.env("TMPDIR", self.tmp.path());
        c.stdin(Stdio::null());
        c
    }

    /// Runs lcr with stdout and stderr captured through files, not pipes: `create` and
    /// `run -d` hand their stdio to the container, so a pipe would not see EOF until it exits.
    pub fn lcr(&self, args: &[&str]) -> Output {
        output_via_files(self.cmd().args(args))
    }

    /// `lcr run` in the foreground: (exit code, stdout, stderr).
    pub fn run(&self) -> (i32, String, String) {
        let out = self.lcr(&["run", "--bundle", self.bundle.to_str().unwrap(), &self.id]);
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    /// `lcr run -d`; panics if it fails.
    pub fn run_detached(&self) {
        self.ok(&[
            "run",
            "-d",
            "--bundle",
            self.bundle.to_str().unwrap(),
            &self.id,
        ]);
    }

    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.lcr(args);
        assert!(
            out.status.success(),
            "lcr {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    pub fn state(&self) -> Value {
        serde_json::from_str(&self.ok(&["state", &self.id])).unwrap()
    }

    /// The container's status as a fresh lcr reports it, or "gone" when lcr knows none.
    pub fn status(&self) -> String {
        let out = self.lcr(&["state", &self.id]);
        serde_json::from_slice::<Value>(&out.stdout)
            .map(|v| v["status"].as_str().unwrap_or_default().to_string())
            .unwrap_or_else(|_| "gone".into())
    }

    pub fn pid(&self) -> i32 {
        self.state()["pid"].as_i64().unwrap() as i32
    }

    /// A host directory bind-mounted at `/host` in the container (for results and hooks).
    pub fn host_dir(&self) -> PathBuf {
        let d = self.tmp.path().join("host");
        if !d.exists() {
            std::fs::create_dir(&d).unwrap();
            let src = d.to_str().unwrap().to_string();
            self.edit(|v| {
                v["mounts"].as_array_mut().unwrap().push(json!({
                    "destination": "/host", "type": "bind", "source": src, "options": ["rbind", "rw"]
                }))
            });
        }
        d
    }

    /// The container's cgroup directory for a v1 controller (on a v2 host: its one directory).
    pub fn cgroup_dir(&self, controller: &str) -> PathBuf {
        let root = Path::new("/sys/fs/cgroup");
        let root = if cgroup_v2() {
            root.to_path_buf()
        } else {
            root.join(controller)
        };
        root.join(self.cgroup.trim_start_matches('/'))
    }

    /// The file of the container's cgroup that v1 calls `controller/file`, under its v2 name
    /// on a v2 host.
    pub fn cgroup_file(&self, controller: &str, file: &str) -> PathBuf {
        let file = if cgroup_v2() { v2_name(file) } else { file };
        self.cgroup_dir(controller).join(file)
    }

    /// The value of that file, trimmed; a v2 freeze state reads as v1's FROZEN or THAWED.
    pub fn cgroup_read(&self, controller: &str, file: &str) -> String {
        let value = read(self.cgroup_file(controller, file)).trim().to_string();
        match (cgroup_v2(), file) {
            (true, "freezer.state") if value == "1" => "FROZEN".into(),
            (true, "freezer.state") => "THAWED".into(),
            _ => value,
        }
    }

    pub fn state_dir(&self) -> PathBuf {
        self.root.join(&self.id)
    }

    /// The arguments of `lcr restore -d` of the images in `img` into this container's bundle
    /// and id, with `extra` flags.
    pub fn restore_args<'a>(&'a self, img: &'a Path, extra: &[&'a str]) -> Vec<&'a str> {
        let mut a = vec!["restore", "-d"];
        a.extend_from_slice(extra);
        a.extend([
            "--bundle",
            self.bundle.to_str().unwrap(),
            "--image-path",
            img.to_str().unwrap(),
            &self.id,
        ]);
        a
    }

    /// The arguments of `lcr restore -d --import FILE` into this container's bundle and id,
    /// with `extra` flags.
    pub fn import_args<'a>(&'a self, file: &'a Path, extra: &[&'a str]) -> Vec<&'a str> {
        let mut a = vec!["restore", "-d"];
        a.extend_from_slice(extra);
        a.extend([
            "--bundle",
            self.bundle.to_str().unwrap(),
            "--import",
            file.to_str().unwrap(),
            &self.id,
        ]);
        a
    }

    /// `lcr restore -d` of the images in `img` into this container's bundle and id.
    pub fn try_restore(&self, img: &Path) -> Output {
        self.lcr(&self.restore_args(img, &[]))
    }

    /// Puts the container in a user namespace of its own, root mapped to host uid and gid
    /// 100000 (65536 ids); its rootfs owned by that root, and without the mounts that need
    /// the host's user namespace (sysfs, the cgroup mount, mqueue).
    pub fn in_user_namespace(&self) {
        let st = Command::new("chown")
            .args(["-R", "100000:100000"])
            .arg(self.bundle.join("rootfs"))
            .status()
            .unwrap();
        assert!(st.success());
        self.edit(|v| {
            v["linux"]["namespaces"]
                .as_array_mut()
                .unwrap()
                .push(json!({"type": "user"}));
            v["linux"]["uidMappings"] =
                json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
            v["linux"]["gidMappings"] =
                json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
            let mounts: Vec<Value> = v["mounts"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|m| {
                    !["/sys", "/sys/fs/cgroup", "/dev/mqueue"]
                        .contains(&m["destination"].as_str().unwrap())
                })
                .cloned()
                .collect();
            v["mounts"] = json!(mounts);
        });
    }

    /// Makes the container join `ns` (by its /run/netns path) instead of a new network namespace.
    pub fn join_netns(&self, ns: &NetNs) {
        let path = ns.path.clone();
        self.edit(|v| {
            for n in v["linux"]["namespaces"].as_array_mut().unwrap() {
                if n["type"] == "network" {
                    n["path"] = json!(path);
                }
            }
        })
    }
}

/// A named network namespace (`ip netns add`), deleted when dropped.
pub struct NetNs {
    pub name: String,
    pub path: String,
}

impl NetNs {
    pub fn new(prefix: &str) -> Self {
        let name = format!("{prefix}-{}", std::process::id());
        let out = Command::new("ip")
            .args(["netns", "add", &name])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "ip netns add {name}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Self {
            path: format!("/run/netns/{name}"),
            name,
        }
    }

    pub fn ip(&self, args: &[&str]) -> Output {
        Command::new("ip")
            .arg("-n")
            .arg(&self.name)
            .args(args)
            .output()
            .unwrap()
    }
}

impl Drop for NetNs {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .output();
    }
}

impl Drop for Ctr {
    fn drop(&mut self) {
        let _ = self.cmd().args(["delete", "--force", &self.id]).output();
        remove_cgroup(&self.cgroup);
    }
}

/// A command's standard error as text.
pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Fails the test with the command's standard error unless it succeeded.
#[track_caller]
pub fn assert_success(o: &Output) {
    assert!(o.status.success(), "{}", stderr(o));
}

/// Runs `cmd` to completion with stdout and stderr sent to temp files, then reads them.
pub fn output_via_files(cmd: &mut Command) -> Output {
    spawn_via_files(cmd).finish()
}

/// A command started with its stdout and stderr going to files (see [`output_via_files`]).
pub struct Spawned {
    child: std::process::Child,
    out: std::fs::File,
    err: std::fs::File,
}

pub fn spawn_via_files(cmd: &mut Command) -> Spawned {
    let out = tempfile::tempfile().unwrap();
    let err = tempfile::tempfile().unwrap();
    let child = cmd
        .stdout(out.try_clone().unwrap())
        .stderr(err.try_clone().unwrap())
        .spawn()
        .unwrap();
    Spawned { child, out, err }
}

/// A test that fails while it runs ends it (by its pid, which it still owns).
impl Drop for Spawned {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Spawned {
    /// Waits for it to end; what it printed.
    pub fn finish(mut self) -> Output {
        let status = self.child.wait().unwrap();
        let slurp = |f: &mut std::fs::File| {
            use std::io::{Read, Seek};
            let mut v = Vec::new();
            f.seek(std::io::SeekFrom::Start(0)).unwrap();
            f.read_to_end(&mut v).unwrap();
            v
        };
        Output {
            status,
            stdout: slurp(&mut self.out),
            stderr: slurp(&mut self.err),
        }
    }
}

/// Removes `path` (relative to each hierarchy root) and any cgroups below it (such as
/// conmon's) from every hierarchy, deepest first.
pub fn remove_cgroup(path: &str) {
    fn collect(d: &Path, out: &mut Vec<PathBuf>) {
        for e in std::fs::read_dir(d).into_iter().flatten().flatten() {
            if e.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                collect(&e.path(), out);
            }
        }
        out.push(d.to_path_buf());
    }
    for h in std::fs::read_dir("/sys/fs/cgroup")
        .into_iter()
        .flatten()
        .flatten()
    {
        let d = h.path().join(path.trim_start_matches('/'));
        if d.is_dir() {
            let mut dirs = Vec::new();
            collect(&d, &mut dirs);
            for d in dirs {
                let _ = std::fs::remove_dir(&d);
            }
        }
    }
}

/// Whether the host has the unified cgroup v2 hierarchy alone (at /sys/fs/cgroup).
pub fn cgroup_v2() -> bool {
    Path::new("/sys/fs/cgroup/cgroup.controllers").exists()
}

/// The v2 name of a v1 cgroup file the tests read.
fn v2_name(v1: &str) -> &str {
    match v1 {
        "memory.limit_in_bytes" => "memory.max",
        "freezer.state" => "cgroup.freeze",
        "cpu.shares" => "cpu.weight",
        other => other,
    }
}

/// Whether any hierarchy still has the cgroup `path`.
pub fn cgroup_exists(path: &str) -> bool {
    std::fs::read_dir("/sys/fs/cgroup")
        .into_iter()
        .flatten()
        .flatten()
        .any(|h| h.path().join(path.trim_start_matches('/')).is_dir())
}

/// The first process whose command name and command line (NULs as spaces) `matches`.
pub fn find_process(matches: impl Fn(&str, &str) -> bool) -> Option<i32> {
    std::fs::read_dir("/proc").ok()?.flatten().find_map(|e| {
        let comm = read(e.path().join("comm"));
        let cmdline = read(e.path().join("cmdline")).replace('\0', " ");
        matches(comm.trim(), &cmdline)
            .then(|| e.file_name().to_string_lossy().parse().ok())
            .flatten()
    })
}

/// Waits until no process `matches` (see [`find_process`]) is left.
pub fn wait_no_process(what: &str, matches: impl Fn(&str, &str) -> bool) {
    wait_until(what, || find_process(&matches).is_none());
}

pub fn pid_alive(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| {
            let st = s.rsplit(')').next().unwrap_or("").trim_start();
            !st.starts_with('Z') && !st.starts_with('X')
        })
        .unwrap_or(false)
}

pub fn wait_until(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

pub fn read(p: impl AsRef<Path>) -> String {
    std::fs::read_to_string(p.as_ref()).unwrap_or_default()
}

/// A kernel setting changed for one test and put back when dropped (even when it fails).
pub struct Sysctl {
    path: PathBuf,
    old: String,
}

impl Sysctl {
    /// Sets `name` (e.g. `fs.pipe-max-size`) to `value`.
    pub fn set(name: &str, value: &str) -> Self {
        Self::set_file(Path::new("/proc/sys").join(name.replace('.', "/")), value)
    }

    /// Sets the kernel setting in file `path` (e.g. under /sys/kernel/mm/ksm) to `value`.
    pub fn set_file(path: PathBuf, value: &str) -> Self {
        let name = path.display().to_string();
        let old = read(&path);
        std::fs::write(&path, value).unwrap_or_else(|e| panic!("set {name}={value}: {e}"));
        Self { path, old }
    }
}

impl Drop for Sysctl {
    fn drop(&mut self) {
        if let Err(e) = std::fs::write(&self.path, self.old.trim()) {
            eprintln!("could not put back {}: {e}", self.path.display());
        }
    }
}

/// A tmpfs of `size` (e.g. `1m`) mounted at a new directory `dir`; unmounted when dropped.
pub struct Tmpfs {
    pub dir: PathBuf,
}

impl Tmpfs {
    pub fn mount(dir: PathBuf, size: &str) -> Self {
        std::fs::create_dir_all(&dir).unwrap();
        assert_success(
            &Command::new("mount")
                .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
                .arg(&dir)
                .output()
                .unwrap(),
        );
        Self { dir }
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.dir).status();
    }
}
