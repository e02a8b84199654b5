//! criurpc against the real CRIU: dump and restore of a counting process tree in its own pid
//! namespace and session, notifications, refusals, feature checks and errors.
//!
//! Needs root and CRIU >= 4.1. Without CRIU the tests print why and skip, except under CI
//! (`CI` set), where a missing CRIU is a failure.

use std::fs;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use criurpc::{CgroupMode, Criu, Error, Notify, Options};

/// Serialises the tests: each checks the process-wide fd count and CRIU children afterwards.
static SERIAL: Mutex<()> = Mutex::new(());

fn criu() -> Option<Criu> {
    let c = Criu::new();
    let usable = nix::unistd::geteuid().is_root() && c.require_supported().is_ok();
    if usable {
        return Some(c);
    }
    let why = if nix::unistd::geteuid().is_root() {
        format!("no usable CRIU >= 4.1 ({:?})", c.require_supported().err())
    } else {
        "not root".to_string()
    };
    assert!(
        std::env::var_os("CI").is_none(),
        "CI must have CRIU and root: {why}"
    );
    lcr_test_harness::skip(format!("{why}; run scripts/install-criu.sh as root"));
    None
}

fn fd_count() -> usize {
    fs::read_dir("/proc/self/fd").unwrap().count()
}

fn criu_children() -> Vec<i32> {
    let mut out = Vec::new();
    for t in fs::read_dir("/proc/self/task").unwrap().flatten() {
        let kids = fs::read_to_string(t.path().join("children")).unwrap_or_default();
        for pid in kids
            .split_whitespace()
            .filter_map(|p| p.parse::<i32>().ok())
        {
            let comm = fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
            if comm.trim() == "criu" {
                out.push(pid);
            }
        }
    }
    out
}

/// Holds the serial lock and checks, when the test body is done, that no CRIU child remains
/// and no fd leaked.
struct Clean {
    fds: usize,
    _serial: std::sync::MutexGuard<'static, ()>,
}

impl Clean {
    fn start() -> Self {
        let serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
        Self {
            fds: fd_count(),
            _serial: serial,
        }
    }

    fn check(self) {
        assert_eq!(criu_children(), Vec::<i32>::new(), "a criu child remained");
        assert_eq!(fd_count(), self.fds, "fd count changed");
    }
}

/// A counting shell loop as pid 1 of its own pid namespace and session; it appends its count
/// to `log` every 50 ms. Killed (by pid) when dropped.
struct Counter {
    dir: tempfile::TempDir,
    unshare: std::process::Child,
    pid: i32,
    extra_pids: Vec<i32>,
}

impl Counter {
    fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        // The loop opens its own log: unshare's stderr must not write into it when the loop dies.
        let script = format!(
            "exec >{} 2>&1; i=0; while :; do i=$((i+1)); echo $i; sleep 0.05; done",
            dir.path().join("count.log").display()
        );
        let mut cmd = Command::new("unshare");
        cmd.args(["--pid", "--fork", "setsid", "sh", "-c", &script])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        cmd.process_group(0);
        let unshare = cmd.spawn().expect("unshare");
        let pid = wait_for(|| {
            let kids =
                fs::read_to_string(format!("/proc/{0}/task/{0}/children", unshare.id())).ok()?;
            kids.split_whitespace().next()?.parse::<i32>().ok()
        });
        let c = Self {
            dir,
            unshare,
            pid,
            extra_pids: Vec::new(),
        };
        c.wait_past(c.last() + 3);
        c
    }

    fn log(&self) -> PathBuf {
        self.dir.path().join("count.log")
    }

    fn images(&self, name: &str) -> PathBuf {
        let p = self.dir.path().join(name);
        fs::create_dir_all(&p).unwrap();
        p
    }

    fn counts(&self) -> Vec<u64> {
        fs::read_to_string(self.log())
            .unwrap_or_default()
            .lines()
            .filter_map(|l| l.trim().parse().ok())
            .collect()
    }

    fn last(&self) -> u64 {
        self.counts().last().copied().unwrap_or(0)
    }

    /// Waits until the count reaches `n`; panics after 10 s.
    fn wait_past(&self, n: u64) {
        wait_for(|| (self.last() >= n).then_some(()));
    }

    fn alive(pid: i32) -> bool {
        fs::read_to_string(format!("/proc/{pid}/stat"))
            .map(|s| {
                !s.rsplit(')')
                    .next()
                    .unwrap_or("")
                    .trim_start()
                    .starts_with('Z')
            })
            .unwrap_or(false)
    }
}

impl Drop for Counter {
    fn drop(&mut self) {
        use nix::sys::signal::{kill, Signal};
        use nix::unistd::Pid;
        for &p in std::iter::once(&self.pid).chain(&self.extra_pids) {
            let _ = kill(Pid::from_raw(p), Signal::SIGKILL);
            let _ = nix::sys::wait::waitpid(Pid::from_raw(p), None);
        }
        let _ = self.unshare.kill();
        let _ = self.unshare.wait();
    }
}

fn wait_for<T>(mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn dump_opts(c: &Counter, images: &Path) -> Options {
    Options::new()
        .images_dir(images)
        .pid(c.pid)
        .manage_cgroups_mode(CgroupMode::Ignore)
        .log_level(4)
        .log_file("dump.log")
}

fn restore_opts(images: &Path) -> Options {
    Options::new()
        .images_dir(images)
        .rst_sibling(true)
        .manage_cgroups_mode(CgroupMode::Ignore)
        .log_level(4)
        .log_file("restore.log")
}

fn accept(_: &mut Notify) -> Result<(), String> {
    Ok(())
}

fn dump_and_restore_continue_the_count() {
    let Some(criu) = criu() else { return };
    let clean = Clean::start();
    {
        let mut c = Counter::start();
        let img = c.images("img");
        criu.dump(dump_opts(&c, &img), &mut accept).expect("dump");
        assert!(
            !Counter::alive(c.pid),
            "dump without leave_running must end the tree"
        );
        let at_dump = c.last();
        std::thread::sleep(Duration::from_millis(200));
        assert_eq!(c.last(), at_dump, "nothing counts while dumped");

        let r = criu
            .restore(restore_opts(&img), &mut accept)
            .expect("restore");
        c.extra_pids.push(r.pid);
        assert!(Counter::alive(r.pid));
        c.wait_past(at_dump + 5);
        let counts = c.counts();
        // The restored loop goes on from its own memory: one unbroken sequence 1, 2, 3, …
        for (i, n) in counts.iter().enumerate() {
            assert_eq!(*n, i as u64 + 1, "count sequence broken: {counts:?}");
        }
        // pid 1 of its namespace before and after.
        let status = fs::read_to_string(format!("/proc/{}/status", r.pid)).unwrap();
        let nspid = status.lines().find(|l| l.starts_with("NSpid:")).unwrap();
        assert!(nspid.trim_end().ends_with("\t1"), "{nspid}");
    }
    clean.check();
}

fn leave_running_dump_keeps_counting_and_its_images_restore() {
    let Some(criu) = criu() else { return };
    let clean = Clean::start();
    {
        let c = Counter::start();
        let img = c.images("img");
        criu.dump(dump_opts(&c, &img).leave_running(true), &mut accept)
            .expect("leave-running dump");
        let n = c.last();
        c.wait_past(n + 3);
        assert!(Counter::alive(c.pid));
        assert!(img.join("inventory.img").exists());
        assert!(fs::read_dir(&img)
            .unwrap()
            .flatten()
            .any(|e| e.file_name().to_string_lossy().starts_with("pages-")));
    }
    clean.check();
}

fn notifications_arrive_in_order_with_their_pids() {
    let Some(criu) = criu() else { return };
    let clean = Clean::start();
    {
        let mut c = Counter::start();
        let img = c.images("img");
        let mut seen = Vec::new();
        let mut record = |n: &mut Notify| {
            seen.push((n.script.clone(), n.pid));
            Ok(())
        };
        criu.dump(dump_opts(&c, &img).notify_scripts(true), &mut record)
            .expect("dump");
        let dump_seen: Vec<String> = seen.iter().map(|(s, _)| s.clone()).collect();
        assert_eq!(
            dump_seen
                .iter()
                .filter(|s| *s == "pre-dump" || *s == "post-dump")
                .collect::<Vec<_>>(),
            ["pre-dump", "post-dump"],
            "{dump_seen:?}"
        );

        seen.clear();
        let mut record = |n: &mut Notify| {
            seen.push((n.script.clone(), n.pid));
            Ok(())
        };
        let r = criu
            .restore(restore_opts(&img).notify_scripts(true), &mut record)
            .expect("restore");
        c.extra_pids.push(r.pid);
        let names: Vec<&str> = seen.iter().map(|(s, _)| s.as_str()).collect();
        let pos = |s: &str| {
            names
                .iter()
                .position(|n| *n == s)
                .unwrap_or_else(|| panic!("no {s} notification in {names:?}"))
        };
        assert!(pos("pre-restore") < pos("setup-namespaces"), "{names:?}");
        assert!(pos("setup-namespaces") < pos("post-restore"), "{names:?}");
        assert!(pos("post-restore") < pos("pre-resume"), "{names:?}");
        assert!(pos("pre-resume") < pos("post-resume"), "{names:?}");
        // CRIU names the restored root on post-restore (and on setup-namespaces).
        assert_eq!(seen[pos("post-restore")].1, Some(r.pid), "{seen:?}");
        assert_eq!(seen[pos("setup-namespaces")].1, Some(r.pid), "{seen:?}");
        let n = c.last();
        c.wait_past(n + 2);
    }
    clean.check();
}

fn a_refusing_handler_fails_the_dump_and_the_tree_keeps_running() {
    let Some(criu) = criu() else { return };
    let clean = Clean::start();
    {
        let c = Counter::start();
        for refuse in ["pre-dump", "post-dump"] {
            let img = c.images(refuse);
            let mut handler = |n: &mut Notify| {
                if n.script == refuse {
                    Err(format!("test refuses {refuse}"))
                } else {
                    Ok(())
                }
            };
            let err = criu
                .dump(dump_opts(&c, &img).notify_scripts(true), &mut handler)
                .unwrap_err();
            match &err {
                Error::NotifyRefused { script, reason, .. } => {
                    assert_eq!(script, refuse);
                    assert!(reason.contains("test refuses"));
                }
                other => panic!("expected a refusal, got {other}"),
            }
            assert!(
                Counter::alive(c.pid),
                "refused at {refuse}: the tree must live"
            );
            let n = c.last();
            c.wait_past(n + 3);
        }
    }
    clean.check();
}

fn feature_check_matches_the_kernel() {
    let Some(criu) = criu() else { return };
    let clean = Clean::start();
    let f = criu.features().expect("feature check");
    // Asked together from one CRIU process, the same answers.
    let (v, both) = criu.supported_features().expect("version and features");
    assert_eq!(v, criu.version().unwrap());
    assert_eq!(both, f);
    // Cross-check the RPC answers with CRIU's command line, which probes the kernel on its own.
    let cli_dirty = criu.check_feature("mem_dirty_track").unwrap();
    let cli_lazy = criu.check_feature("uffd-noncoop").unwrap();
    assert_eq!(f.mem_track, cli_dirty, "{f:?}");
    assert_eq!(f.lazy_pages, cli_lazy, "{f:?}");
    // And with the kernel itself: a page just written is soft-dirty where the kernel tracks it.
    assert_eq!(f.mem_track, kernel_marks_soft_dirty(), "{f:?}");
    eprintln!(
        "features on {}: {f:?}",
        nix::sys::utsname::uname()
            .unwrap()
            .release()
            .to_string_lossy()
    );
    assert!(
        f.lazy_pages,
        "userfaultfd is available on every kernel lcr targets"
    );
    assert!(criu.check_feature("no-such-feature").is_err());
    criu.check().expect("criu check");
    clean.check();
}

/// Bit 55 of a pagemap entry is the page's soft-dirty flag; it is never set on kernels built
/// without CONFIG_MEM_SOFT_DIRTY, and always set on a page written after it was mapped.
fn kernel_marks_soft_dirty() -> bool {
    use std::io::{Read, Seek, SeekFrom};
    let page = vec![0u8; 3 * 4096];
    let addr = page.as_ptr() as usize + 4096;
    // SAFETY: writing one byte inside our own allocation; volatile so the write is not elided.
    unsafe { std::ptr::write_volatile(addr as *mut u8, 1) };
    let mut f = fs::File::open("/proc/self/pagemap").unwrap();
    f.seek(SeekFrom::Start((addr / 4096 * 8) as u64)).unwrap();
    let mut e = [0u8; 8];
    f.read_exact(&mut e).unwrap();
    drop(page);
    u64::from_le_bytes(e) & (1 << 55) != 0
}

fn version_over_rpc_matches_the_binary() {
    let Some(criu) = criu() else { return };
    let clean = Clean::start();
    let v = criu.version().unwrap();
    let out = Command::new(criu.binary().unwrap())
        .arg("--version")
        .output()
        .unwrap();
    let cli = String::from_utf8_lossy(&out.stdout);
    let cli_v = cli.lines().find_map(criurpc::Version::parse).unwrap();
    assert_eq!(
        (v.major, v.minor, v.sublevel),
        (cli_v.major, cli_v.minor, cli_v.sublevel)
    );
    clean.check();
}

fn errors_carry_criu_own_reason() {
    let Some(criu) = criu() else { return };
    let clean = Clean::start();
    {
        let dir = tempfile::tempdir().unwrap();
        // A pid that cannot exist (above pid_max).
        let err = criu
            .dump(
                Options::new()
                    .images_dir(dir.path())
                    .pid(i32::MAX - 1)
                    .log_level(4)
                    .log_file("dump.log"),
                &mut accept,
            )
            .unwrap_err();
        let text = err.to_string();
        assert!(matches!(err, Error::Criu { .. }), "{text}");
        assert!(
            text.contains(&(i32::MAX - 1).to_string()),
            "CRIU's reason names the pid: {text}"
        );
        assert!(
            text.contains(&dir.path().join("dump.log").display().to_string()),
            "{text}"
        );

        let missing = dir.path().join("no-such-images");
        let err = criu
            .restore(restore_opts(&missing), &mut accept)
            .unwrap_err();
        let text = err.to_string();
        assert!(matches!(err, Error::Criu { .. }), "{text}");
        assert!(
            text.contains("no-such-images") || text.contains("No such file"),
            "{text}"
        );
    }
    clean.check();
}

fn page_server_child_serves_and_is_waited_for() {
    let Some(criu) = criu() else { return };
    let clean = Clean::start();
    {
        let c = Counter::start();
        let dst = c.images("dst");
        let src = c.images("src");
        let mut session = criu.session(None).unwrap();
        let ps_opts = Options::new()
            .images_dir(&dst)
            .page_server("127.0.0.1", 0)
            .log_level(4)
            .log_file("page-server.log");
        let ps = session.page_server_child(&ps_opts).expect("page server");
        assert!(ps.port > 0, "an ephemeral port was chosen: {ps:?}");
        criu.dump(
            dump_opts(&c, &src)
                .leave_running(true)
                .page_server("127.0.0.1", ps.port),
            &mut accept,
        )
        .expect("dump to the page server");
        let status = session.wait_pid(ps.pid).expect("wait pid");
        assert!(
            libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
            "status {status:#x}"
        );
        session.finish();
        let pages: Vec<_> = fs::read_dir(&dst)
            .unwrap()
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().starts_with("pages-"))
            .collect();
        assert!(!pages.is_empty(), "the page server wrote the pages");
        assert!(Counter::alive(c.pid));
    }
    clean.check();
}

fn child_of_ours_is_never_a_criu_after_spawn_failure() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let before = fd_count();
    let err = Criu::with_binary("/nonexistent/criu").check().unwrap_err();
    assert!(matches!(err, Error::NotFound(_)), "{err}");
    assert_eq!(fd_count(), before);
    // Re-exec guard: `process_group` keeps the test harness out of the workload's session.
    let _ = Command::new("true").process_group(0).status();
}

lcr_test_harness::tests!(
    dump_and_restore_continue_the_count,
    leave_running_dump_keeps_counting_and_its_images_restore,
    notifications_arrive_in_order_with_their_pids,
    a_refusing_handler_fails_the_dump_and_the_tree_keeps_running,
    feature_check_matches_the_kernel,
    version_over_rpc_matches_the_binary,
    errors_carry_criu_own_reason,
    page_server_child_serves_and_is_waited_for,
    child_of_ours_is_never_a_criu_after_spawn_failure,
);
