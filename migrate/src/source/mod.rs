//! The migrating side: pre-flight with the receiver → the strategy both allow → the dump, its
//! memory going through the relayed page-server connection → the other images → the
//! receiver restores → the frozen copy here is removed. Until the receiver was asked to
//! restore, every failure thaws the container here; from then on it is frozen until the
//! receiver reports the container running, or refuses (then it thaws); a lost connection
//! leaves it frozen (the receiver may already run it) and says how to resolve. Stop-copy (and
//! pre-copy's final dump) does all of it after the dump while CRIU waits at its `post-dump`
//! ([`held`]): the copy here ends with its network still locked.

mod held;
mod images;
mod post_copy;
mod pre_copy;
mod stop_copy;

use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::process::Child;
use std::time::{Duration, Instant};

use lcr::checkpoint::{CheckpointOpts, CriuSettings, Dumped, HandOver, Hold, ImageDir};
use lcr::container::{Container, Store};
use serde::Serialize;

use crate::link::{Link, SeenThere, Sender};
use crate::pending::Pending;
use crate::rootfs_copy;
use crate::ssh::{RemoteCommand, Ssh};
use crate::strategy::{self, Strategy};
use crate::wire::Message;
use crate::{facts, Destination, Error, Result};

/// What `lcr migrate` was asked.
pub struct Request {
    pub id: String,
    pub dest: Destination,
    pub ssh: Ssh,
    /// The lcr to run there (default `lcr` on its PATH).
    pub dest_lcr: String,
    pub dest_id: String,
    pub dest_root: PathBuf,
    pub dest_bundle: PathBuf,
    /// Where the container's stdout and stderr go on the destination.
    pub dest_log: PathBuf,
    /// Where the destination keeps the images while it restores (default: its $TMPDIR).
    pub dest_images: Option<PathBuf>,
    /// The strategy asked for; `None`: the best both hosts allow.
    pub strategy: Option<Strategy>,
    /// Pre-copy: at most this many pre-dump rounds, and the share (percent) of the
    /// container's pages left unchanged by a round that ends them.
    pub max_iterations: u32,
    pub converge_pct: u32,
    /// `--rootfs copy`: the rootfs goes over the connection into a new bundle at
    /// `dest_bundle` (else it is shared: the same path on both hosts).
    pub rootfs_copy: bool,
    /// CRIU's settings for the dump (`--tcp-established` among them).
    pub settings: CriuSettings,
    /// Where what the user should know before it happens goes (the strategy chosen and
    /// why; that a post-copy source cannot be resumed after the switch).
    pub say: Box<dyn Fn(&str) + Send + Sync>,
    /// Told the phase the migration enters (`pre-flight`, `dump`, `restore there`, …): a
    /// progress display on a terminal.
    pub progress: Box<dyn Fn(&str) + Send + Sync>,
}

/// Times and sizes of one migration.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Report {
    pub strategy: String,
    pub strategy_reason: String,
    pub preflight_ms: u64,
    /// `--rootfs copy`: sending the rootfs (before the freeze) and its size.
    pub rootfs_ms: u64,
    pub rootfs_bytes: u64,
    /// lcr's own freeze of the container (CRIU then finds it frozen), and CRIU's figures.
    pub freeze_us: u64,
    pub criu_freezing_us: u64,
    pub criu_frozen_us: u64,
    /// CRIU's start before the freeze (the container still running: no downtime).
    pub criu_start_ms: u64,
    /// From the freeze to the images being complete.
    pub dump_ms: u64,
    /// Sending the images but the memory (stop-copy: after the dump; post-copy: within it).
    pub transfer_ms: u64,
    pub restore_ms: u64,
    /// From the freeze here to the container running there.
    pub downtime_ms: u64,
    /// Post-copy: from the container running there to its last page having moved.
    pub lazy_transfer_ms: u64,
    /// Pre-copy: the pre-dump rounds while the container ran, and why they ended.
    pub rounds: Vec<Round>,
    pub rounds_ended: String,
    /// Pages the final dump wrote (pre-copy: what changed since the last round).
    pub final_pages: u64,
    pub total_ms: u64,
    pub bytes_sent: u64,
    pub dest_pid: i32,
}

/// One pre-dump round.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Round {
    pub ms: u64,
    pub pages_scanned: u64,
    pub pages_written: u64,
    /// Bytes on the wire during the round.
    pub bytes: u64,
}

fn ms(d: Duration) -> u64 {
    d.as_millis() as u64
}

/// Migrates container `req.id` with the strategy asked for, or the best both hosts allow.
pub fn migrate(store: &Store, req: Request) -> Result<Report> {
    let start = Instant::now();
    let container = Container::load(store, &req.id)?;
    let mut child = spawn_receiver(&req)?;
    let stdin = child.stdin.take().expect("piped stdin");
    let stdout = child.stdout.take().expect("piped stdout");
    let mut link = Link::start(stdout, stdin);
    let result = run(store, container, &req, &mut link, start);
    if let Err(e) = &result {
        let _ = link.send(&Message::Abort {
            reason: e.to_string(),
        });
    }
    drop(link);
    let status = wait_briefly(&mut child);
    match result {
        Err(Error::Protocol(reason)) => Err(with_ssh_error(&mut child, status.ok(), reason)),
        other => other,
    }
}

/// ssh ends once the receiver sees the connection close; one still connecting (an
/// unreachable host) is stopped after a grace period rather than waited for.
fn wait_briefly(child: &mut Child) -> std::io::Result<std::process::ExitStatus> {
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if let Some(st) = child.try_wait()? {
            return Ok(st);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    child.wait()
}

/// `ssh DEST lcr --root R migrate-receive …`, every word passed as it is.
fn spawn_receiver(req: &Request) -> Result<Child> {
    let mut remote = RemoteCommand::new(&req.dest_lcr)
        .arg("--root")
        .arg(req.dest_root.to_string_lossy())
        .arg("migrate-receive")
        .arg("--id")
        .arg(&req.dest_id)
        .arg("--bundle")
        .arg(req.dest_bundle.to_string_lossy())
        .arg("--stdio-log")
        .arg(req.dest_log.to_string_lossy());
    if let Some(d) = &req.dest_images {
        remote = remote.arg("--images-in").arg(d.to_string_lossy());
    }
    if req.rootfs_copy {
        remote = remote.arg("--rootfs-copy");
    }
    // What CRIU must also be told to restore what it was told to dump.
    let s = &req.settings;
    for (on, flag) in [
        (s.tcp_established, "--tcp-established"),
        (s.ext_unix_sk, "--ext-unix-sk"),
        (s.shell_job, "--shell-job"),
        (s.file_locks, "--file-locks"),
    ] {
        if on {
            remote = remote.arg(flag);
        }
    }
    let mut cmd = req.ssh.command(&req.dest, &remote)?;
    cmd.spawn().map_err(|cause| Error::Io {
        context: format!("start {}", req.ssh.program),
        cause,
    })
}

/// A broken connection is best explained by what ssh said (authentication refused, host
/// unreachable).
fn with_ssh_error(
    child: &mut Child,
    status: Option<std::process::ExitStatus>,
    reason: String,
) -> Error {
    let mut text = String::new();
    if let Some(mut e) = child.stderr.take() {
        use std::io::Read;
        let _ = e.read_to_string(&mut text);
    }
    let text = text.trim();
    match (status, text.is_empty()) {
        (Some(st), false) if !st.success() => Error::Refused {
            host: "ssh".into(),
            reason: format!("{reason}: {text}"),
        },
        _ => Error::Protocol(reason),
    }
}

/// Pre-flight on both ends, the strategy, then the strategy's own phases.
fn run(
    store: &Store,
    container: Container,
    req: &Request,
    link: &mut Link,
    start: Instant,
) -> Result<Report> {
    if req.rootfs_copy {
        rootfs_copy::check_copyable(&container)?;
    }
    (req.progress)("pre-flight");
    let here = facts::this_host(&req.settings.criu)?;
    link.hello(here.clone())?;
    let there = link.expect_hello()?;
    if let Some(why) = facts::mismatch(&here, &there) {
        return Err(refused(req, why));
    }
    let tcp = req.settings.tcp_established;
    let choice =
        strategy::choose(req.strategy, &here, &there, tcp).map_err(|why| Error::Refused {
            host: "this host".into(),
            reason: why,
        })?;
    (req.say)(&format!(
        "migrating {} to {} by {} ({})",
        req.id, req.dest, choice.strategy, choice.reason
    ));
    let mut report = Report {
        strategy: choice.strategy.to_string(),
        strategy_reason: choice.reason,
        preflight_ms: ms(start.elapsed()),
        ..Report::default()
    };
    if req.rootfs_copy {
        (req.progress)("sending the rootfs");
        let sent_at = Instant::now();
        report.rootfs_bytes = rootfs_copy::send(&container, link)?;
        report.rootfs_ms = ms(sent_at.elapsed());
    }
    let mut report = match choice.strategy {
        Strategy::StopCopy => {
            let images = ImageDir::temporary("migrate")?;
            stop_copy::run(container, req, link, report, images, None)?
        }
        Strategy::PostCopy => post_copy::run(container, req, link, report)?,
        Strategy::PreCopy => pre_copy::run(store, container, req, link, report)?,
    };
    report.total_ms = ms(start.elapsed());
    report.bytes_sent = link.sent.load(std::sync::atomic::Ordering::Relaxed);
    Ok(report)
}

/// The container's memory use here: what the receiver's images need room for.
fn memory_of(container: &Container) -> u64 {
    container
        .cgroup()
        .map(|cg| cg.stats().memory.usage.usage)
        .unwrap_or(0)
}

/// Asks the receiver for a page server (`Message::StartPages`: for a lazy dump, a
/// connection its lazy-pages daemon will use) and relays it: the returned socket is CRIU's
/// end here.
fn open_pages(req: &Request, link: &mut Link, start: Message) -> Result<UnixStream> {
    link.send(&start)?;
    match link.message()? {
        Message::PagesReady => {}
        Message::Refused { reason } => return Err(refused(req, reason)),
        other => return Err(unexpected(other)),
    }
    let (mine, criu_end) = UnixStream::pair().map_err(|cause| Error::Io {
        context: "page-server socket pair".into(),
        cause,
    })?;
    link.relay_pages(mine)?;
    Ok(criu_end)
}

/// A dump that failed here may have failed because the receiver did (its disk filled, its
/// page server died): its refusal, when it comes soon, says why better than CRIU's broken
/// pipe here.
fn dump_failed(req: &Request, link: &Link, e: lcr::Error) -> Error {
    match link.failure_seen_there(Duration::from_secs(3)) {
        Some(SeenThere::Refused(reason)) => Error::Refused {
            host: req.dest.to_string(),
            reason: format!("{reason} (and so the dump here failed)"),
        },
        // A Protocol error: what ssh said of the end is added to it (with_ssh_error).
        Some(SeenThere::Ended) => Error::Protocol(format!(
            "the connection to {} ended during the dump, which then failed here ({})",
            req.dest,
            e.to_string().lines().next().unwrap_or_default()
        )),
        None => e.into(),
    }
}

/// Waits until every page has gone: this side's CRIU closed its end of the relayed
/// connection, and the receiver's page server its own (`PagesEnd`).
fn pages_done(req: &Request, link: &mut Link) -> Result<()> {
    link.pages_sent()?;
    match link.message()? {
        Message::PagesEnd => Ok(()),
        Message::Refused { reason } => Err(refused(req, reason)),
        other => Err(unexpected(other)),
    }
}

/// A dump's options with its memory going into the receiver's page server, asked for
/// (`round`, `parent`: the pre-copy round it is and the one it builds on) and relayed.
fn dump_into_receiver(
    req: &Request,
    link: &mut Link,
    container: &Container,
    images: ImageDir,
    lazy: bool,
    (round, parent): (Option<u32>, Option<u32>),
) -> Result<CheckpointOpts> {
    let start = Message::StartPages {
        memory: memory_of(container),
        lazy,
        round,
        parent,
    };
    let page_server = open_pages(req, link, start)?;
    let mut opts = CheckpointOpts::with_images(images);
    opts.settings = req.settings.clone();
    opts.page_server_fd = Some(page_server.into());
    Ok(opts)
}

/// The dump a migration holds ([`held`]): the receiver's page server asked for (`lazy`: a
/// connection for its lazy-pages daemon; `parent_round`: the pre-copy round the final dump
/// builds on) and relayed, and the options that hold the container frozen (at CRIU's
/// `post-dump`; a lazy dump after it), its memory going there, told of the hand-over. With a rootfs copy of a writable root, the rootfs
/// changes since the container started are saved with it (they correct the copy there).
fn held_dump(
    req: &Request,
    link: &mut Link,
    container: &Container,
    images: ImageDir,
    lazy: bool,
    parent_round: Option<u32>,
) -> Result<(CheckpointOpts, HandingOver)> {
    let mut opts = dump_into_receiver(req, link, container, images, lazy, (None, parent_round))?;
    let handing = HandingOver::new(req, container);
    opts.settings.lazy_pages = lazy;
    // A lazy dump must serve pages to the restore there before its outcome is known.
    opts.hold = if lazy {
        Hold::AfterDump
    } else {
        Hold::AtImages
    };
    opts.hand_over = handing.flag();
    opts.parent_path = parent_round.map(|n| format!("pre-{n}").into());
    // Checked before anything was sent (`check_copyable`): a writable root has its changes.
    opts.with_rootfs_diff = req.rootfs_copy && !rootfs_copy::read_only(container);
    Ok((opts, handing))
}

/// Until the receiver reports the container running (its pid there), the restore asked
/// for at `restore_at` and the dump begun at `began` (the container frozen since, or since
/// CRIU was ready to collect it: [`HandingOver::frozen_since`]). Its refusal takes the
/// hand-over back (the copy here thaws with its dump); anything else leaves the copy here
/// frozen, undecided. `pages_may_end`: the receiver's end of a lazy page connection may
/// close before the restore has returned there (`PagesEnd`: only `PagesArrived` says
/// whether every page came).
fn await_running(
    req: &Request,
    link: &Link,
    handing: &HandingOver,
    pages_may_end: bool,
    (began, restore_at): (Instant, Instant),
    report: &mut Report,
) -> Result<i32> {
    let pid = loop {
        match link.message_within(crate::link::RESTORE_LIMIT) {
            Ok(Message::Running { pid }) => break pid,
            Ok(Message::PagesEnd) if pages_may_end => continue,
            Ok(Message::Refused { reason }) => {
                // The receiver rolled back: this copy runs on.
                handing.take_back();
                return Err(refused(req, reason));
            }
            Ok(other) => {
                let what = "the receiver answered the restore out of turn";
                return Err(undecided(req, what, &unexpected(other)));
            }
            Err(e) => {
                let what = "the connection broke while the receiver restored";
                return Err(undecided(req, what, &e));
            }
        }
    };
    report.restore_ms = ms(restore_at.elapsed());
    report.downtime_ms = ms(handing.frozen_since(began).elapsed());
    report.dest_pid = pid;
    Ok(pid)
}

/// The hand-over of the container to the receiver: from [`HandingOver::give`] on it may run
/// there, so nothing here thaws it and a record is left for `lcr migrate --resolve`;
/// [`HandingOver::take_back`] when the receiver refused (it made nothing).
#[derive(Clone)]
struct HandingOver {
    flag: HandOver,
    record: Pending,
    dir: PathBuf,
}

impl HandingOver {
    fn new(req: &Request, container: &Container) -> Self {
        Self {
            flag: HandOver::default(),
            record: Pending {
                dest: req.dest.to_string(),
                ssh: req.ssh.clone(),
                dest_lcr: req.dest_lcr.clone(),
                dest_root: req.dest_root.clone(),
                dest_id: req.dest_id.clone(),
            },
            dir: container.dir().to_path_buf(),
        }
    }

    /// When the container was frozen, for a dump begun at `began`: lcr freezes it once
    /// CRIU has started and is ready to collect it (a paused container, frozen before,
    /// counts from `began`).
    fn frozen_since(&self, began: Instant) -> Instant {
        self.flag.frozen_at().unwrap_or(began)
    }

    /// What the checkpoint is told (`CheckpointOpts::hand_over`).
    fn flag(&self) -> HandOver {
        self.flag.clone()
    }

    fn give(&self) -> Result<()> {
        self.record.write(&self.dir)?;
        self.flag.may_run_elsewhere(true);
        Ok(())
    }

    fn take_back(&self) {
        self.flag.may_run_elsewhere(false);
        Pending::remove(&self.dir);
    }

    /// Hands the container over and asks the receiver to restore it; a request that never
    /// left this host takes it back (the receiver cannot restore).
    fn ask_restore(&self, link: &Sender) -> Result<()> {
        self.give()?;
        link.send(&Message::Restore)
            .inspect_err(|_| self.take_back())
    }
}

impl Report {
    /// The dump that began at `began`, the container frozen at `frozen`, has ended.
    fn dump_times(&mut self, began: Instant, frozen: Instant) {
        self.criu_start_ms = ms(frozen.saturating_duration_since(began));
        self.dump_ms = ms(frozen.elapsed());
    }

    /// The freeze times of the dump.
    fn add_freeze(&mut self, dumped: &Dumped) {
        let r = dumped.report();
        self.freeze_us = r.lcr_freeze_us.unwrap_or(0);
        if let Some(s) = &r.stats {
            self.criu_freezing_us = s.freezing_time_us;
            self.criu_frozen_us = s.frozen_time_us;
            self.final_pages = s.pages_written;
        }
    }
}

/// The container runs there (pid `pid`), and ending its copy here failed.
fn left_here(req: &Request, pid: i32, e: impl std::fmt::Display) -> Error {
    Error::Refused {
        host: "this host".into(),
        reason: format!(
            "the container runs on {} (pid {pid}), and removing its frozen copy here failed: {e}; run `lcr delete --force {}` here",
            req.dest, req.id
        ),
    }
}

/// The container runs there: the frozen copy here goes, and the receiver is told.
fn finish(dumped: Dumped, req: &Request, link: &Link, pid: i32) -> Result<()> {
    (req.progress)("removing the frozen copy here");
    dumped.commit().map_err(|e| left_here(req, pid, e))?;
    // The container has moved: a receiver gone by now (its connection cut after it reported
    // the container running) changes nothing there, and nothing here is left to undo.
    if let Err(e) = link.send(&Message::Done) {
        tracing::warn!(error = %e, "the receiver did not hear that the migration is done");
    }
    Ok(())
}

fn refused(req: &Request, reason: String) -> Error {
    Error::Refused {
        host: req.dest.to_string(),
        reason,
    }
}

fn unexpected(m: Message) -> Error {
    Error::Protocol(format!("unexpected {m:?}"))
}

/// The connection broke, or the transfer failed, once the receiver was asked to restore: it
/// may run the container now, or have rolled back. The copy here stays frozen (never
/// resumed blindly), and the user is told how to finish.
fn undecided(req: &Request, what: &str, e: &Error) -> Error {
    Error::Undecided(format!(
        "{e}: {what}, so the container may run on {dest} now; it is left frozen here. Run \
         `lcr migrate --resolve {id}` (it asks {dest} and removes or resumes the copy here), \
         or by hand: if `lcr --root {root} state {dest_id}` on {dest} says running, `lcr \
         delete --force {id}` here; if not, `lcr resume {id}`",
        root = req.dest_root.display(),
        dest_id = req.dest_id,
        dest = req.dest,
        id = req.id
    ))
}
