//! Two "hosts" for migration tests: two network namespaces joined by a veth pair, the
//! destination running its own sshd (host key and authorized key made per run), the source
//! reaching it with the real ssh client. Dropping it stops sshd by pid and removes the
//! namespaces.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

/// The destination's address inside the pair (each pair lives in namespaces of its own).
pub const DEST_ADDR: &str = "10.250.0.2";
const SOURCE_ADDR: &str = "10.250.0.1";

pub struct TwoHosts {
    pub source_ns: String,
    pub dest_ns: String,
    /// An `ssh` to give `--ssh`: the real client, run in the source namespace with this
    /// run's key and known hosts and no user configuration.
    pub ssh: PathBuf,
    pub tmp: tempfile::TempDir,
    sshd: Option<Child>,
    made_privsep_dir: bool,
}

fn run(args: &[&str]) {
    let st = Command::new(args[0])
        .args(&args[1..])
        .stdin(Stdio::null())
        .status()
        .unwrap_or_else(|e| panic!("{args:?}: {e}"));
    assert!(st.success(), "{args:?}: {st}");
}

impl TwoHosts {
    /// `None` (the test skipped) without sshd or ip; under CI that is a failure.
    pub fn new(name: &str) -> Option<Self> {
        super::prerequisites()?;
        let sshd = Path::new("/usr/sbin/sshd");
        if !sshd.exists() || Command::new("ip").arg("-V").output().is_err() {
            assert!(
                std::env::var_os("CI").is_none(),
                "CI must have openssh-server and iproute2 (scripts/setup.sh)"
            );
            lcr_test_harness::skip("no sshd or ip: openssh-server and iproute2 are needed");
            return None;
        }
        let pid = std::process::id();
        let tmp = tempfile::tempdir().unwrap();
        let mut me = Self {
            source_ns: format!("lcr-{name}-src-{pid}"),
            dest_ns: format!("lcr-{name}-dst-{pid}"),
            ssh: tmp.path().join("ssh"),
            tmp,
            sshd: None,
            made_privsep_dir: false,
        };
        me.link();
        me.start_sshd();
        Some(me)
    }

    fn link(&self) {
        let pid = std::process::id() % 1_000_000;
        let (a, b) = (format!("lm{pid}a"), format!("lm{pid}b"));
        run(&["ip", "netns", "add", &self.source_ns]);
        run(&["ip", "netns", "add", &self.dest_ns]);
        run(&["ip", "link", "add", &a, "type", "veth", "peer", "name", &b]);
        run(&["ip", "link", "set", &a, "netns", &self.source_ns]);
        run(&["ip", "link", "set", &b, "netns", &self.dest_ns]);
        for (ns, dev, addr) in [
            (&self.source_ns, &a, SOURCE_ADDR),
            (&self.dest_ns, &b, DEST_ADDR),
        ] {
            run(&[
                "ip",
                "-n",
                ns,
                "addr",
                "add",
                &format!("{addr}/24"),
                "dev",
                dev,
            ]);
            run(&["ip", "-n", ns, "link", "set", dev, "up"]);
            run(&["ip", "-n", ns, "link", "set", "lo", "up"]);
        }
    }

    fn start_sshd(&mut self) {
        let t = self.tmp.path().to_path_buf();
        for key in ["host", "client"] {
            run(&[
                "ssh-keygen",
                "-q",
                "-t",
                "ed25519",
                "-N",
                "",
                "-C",
                "lcr-test",
                "-f",
                t.join(key).to_str().unwrap(),
            ]);
        }
        std::fs::copy(t.join("client.pub"), t.join("authorized_keys")).unwrap();
        let host_pub = std::fs::read_to_string(t.join("host.pub")).unwrap();
        std::fs::write(t.join("known_hosts"), format!("{DEST_ADDR} {host_pub}")).unwrap();
        let conf = format!(
            "ListenAddress {DEST_ADDR}\nPort 22\nHostKey {t}/host\nPidFile {t}/sshd.pid\n\
             AuthorizedKeysFile {t}/authorized_keys\nPermitRootLogin prohibit-password\n\
             PasswordAuthentication no\nKbdInteractiveAuthentication no\nUsePAM no\n\
             StrictModes no\n",
            t = t.display()
        );
        std::fs::write(t.join("sshd_config"), conf).unwrap();
        // sshd wants its privilege separation directory, which the service makes at boot.
        let privsep = Path::new("/run/sshd");
        if !privsep.exists() {
            std::fs::create_dir(privsep).unwrap();
            self.made_privsep_dir = true;
        }
        let log = std::fs::File::create(t.join("sshd.log")).unwrap();
        // nsenter joins the network namespace only: `ip netns exec` would also remount /sys,
        // hiding the cgroup hierarchies from everything sshd starts.
        self.sshd = Some(
            Command::new("nsenter")
                .arg(format!("--net=/run/netns/{}", self.dest_ns))
                .args(["/usr/sbin/sshd", "-D", "-e", "-f"])
                .arg(t.join("sshd_config"))
                .stdin(Stdio::null())
                .stdout(log.try_clone().unwrap())
                .stderr(log)
                .spawn()
                .unwrap(),
        );
        let wrapper = format!(
            "#!/bin/sh\nexec nsenter --net=/run/netns/{} ssh -F /dev/null -i {t}/client -o IdentitiesOnly=yes \
             -o UserKnownHostsFile={t}/known_hosts -o StrictHostKeyChecking=yes \"$@\"\n",
            self.source_ns,
            t = t.display()
        );
        std::fs::write(&self.ssh, wrapper).unwrap();
        std::fs::set_permissions(
            &self.ssh,
            std::os::unix::fs::PermissionsExt::from_mode(0o755),
        )
        .unwrap();
        super::wait_until("sshd to listen in the destination namespace", || {
            Command::new("ip")
                .args([
                    "netns",
                    "exec",
                    &self.dest_ns,
                    "ss",
                    "-Hltn",
                    "sport",
                    "= :22",
                ])
                .output()
                .is_ok_and(|o| !o.stdout.is_empty())
        });
    }

    /// The sshd log, for failure messages.
    pub fn sshd_log(&self) -> String {
        std::fs::read_to_string(self.tmp.path().join("sshd.log")).unwrap_or_default()
    }

    /// The listening TCP sockets in namespace `ns` (`ss -Hltn`).
    pub fn listening(&self, ns: &str) -> Vec<String> {
        listening_in(Some(ns))
    }

    /// Watches, until [`PortWatch::new_ones`], for TCP sockets listening in either "host"
    /// or in this test's own namespace (where the migrating lcr and its CRIU run) that were
    /// not listening when it began.
    ///
    /// Every CRIU process that finds no kerndat cache (here /run is not a tmpfs, so CRIU
    /// never keeps one) probes TCP repair with a listener on 127.0.0.1 that connects to
    /// itself and closes within microseconds. Such a loopback listener counts only when
    /// two samples see it; any other address counts at the first sight.
    pub fn watch_ports(&self) -> PortWatch {
        let namespaces = [
            None,
            Some(self.source_ns.clone()),
            Some(self.dest_ns.clone()),
        ];
        let all = move || -> std::collections::BTreeSet<String> {
            namespaces
                .iter()
                .flat_map(|ns| {
                    let label = ns.clone().unwrap_or_else(|| "this host".into());
                    listening_in(ns.as_deref())
                        .into_iter()
                        .map(move |a| format!("{label}: {a}"))
                })
                .collect()
        };
        let before = all();
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let stopped = stop.clone();
        let thread = std::thread::spawn(move || {
            let mut sightings = std::collections::BTreeMap::<String, u32>::new();
            while !stopped.load(std::sync::atomic::Ordering::Relaxed) {
                for new in all().difference(&before) {
                    *sightings.entry(new.clone()).or_default() += 1;
                }
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            sightings
                .into_iter()
                .filter(|(a, seen)| *seen > 1 || !is_loopback(a))
                .map(|(a, _)| a)
                .collect()
        });
        PortWatch { stop, thread }
    }
}

/// Whether a "namespace: address:port" entry listens on a loopback address only.
fn is_loopback(entry: &str) -> bool {
    let addr = entry.rsplit(": ").next().unwrap_or_default();
    let host = addr.rsplit_once(':').map_or(addr, |(h, _)| h);
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host.parse::<std::net::IpAddr>()
        .is_ok_and(|ip| ip.is_loopback())
}

/// See [`TwoHosts::watch_ports`].
pub struct PortWatch {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: std::thread::JoinHandle<Vec<String>>,
}

impl PortWatch {
    /// The listening sockets that appeared meanwhile ("namespace: address").
    pub fn new_ones(self) -> Vec<String> {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        self.thread.join().unwrap()
    }
}

/// `ss -Hltn` in namespace `ns`, or in this process's own.
fn listening_in(ns: Option<&str>) -> Vec<String> {
    let mut cmd = match ns {
        Some(ns) => {
            let mut c = Command::new("ip");
            c.args(["netns", "exec", ns, "ss"]);
            c
        }
        None => Command::new("ss"),
    };
    let out = cmd.arg("-Hltn").output().unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| l.split_whitespace().nth(3).unwrap_or_default().to_string())
        .collect()
}

impl Drop for TwoHosts {
    fn drop(&mut self) {
        if let Some(mut child) = self.sshd.take() {
            // nsenter execs sshd: the child is sshd itself.
            let _ = child.kill();
            let _ = child.wait();
        }
        for ns in [&self.source_ns, &self.dest_ns] {
            let _ = Command::new("ip").args(["netns", "del", ns]).status();
        }
        if self.made_privsep_dir {
            let _ = std::fs::remove_dir("/run/sshd");
        }
    }
}
