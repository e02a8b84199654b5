//! The migrating side: pre-flight with the receiver → the dump, its memory streamed into the
//! receiver's page server → the other images → the receiver restores → the frozen copy here
//! is removed. Until the receiver reports the container running, every failure thaws the
//! container here; once the restore was asked for, a lost connection leaves it frozen (the
//! receiver may already run it) and says how to resolve.

use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::process::Child;
use std::time::{Duration, Instant};

use lcr::checkpoint::{CheckpointOpts, CriuSettings, Dumped, ImageDir};
use lcr::container::{Container, Store};
use serde::Serialize;

use crate::link::Link;
use crate::ssh::{RemoteCommand, Ssh};
use crate::wire::{Channel, Message};
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
    /// CRIU's settings for the dump (`--tcp-established` among them).
    pub settings: CriuSettings,
}

/// Times and sizes of one migration.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Report {
    pub strategy: String,
    pub preflight_ms: u64,
    pub dump_ms: u64,
    pub transfer_ms: u64,
    pub restore_ms: u64,
    /// From the freeze here to the container running there.
    pub downtime_ms: u64,
    pub total_ms: u64,
    pub bytes_sent: u64,
    pub dest_pid: i32,
}

fn ms(d: Duration) -> u64 {
    d.as_millis() as u64
}

/// Migrates container `req.id` by stop-and-copy.
pub fn migrate(store: &Store, req: Request) -> Result<Report> {
    let start = Instant::now();
    let container = Container::load(store, &req.id)?;
    let mut child = spawn_receiver(&req)?;
    let stdin = child.stdin.take().expect("piped stdin");
    let stdout = child.stdout.take().expect("piped stdout");
    let mut link = Link::start(stdout, stdin);
    let result = run(container, &req, &mut link, start);
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
    let remote = RemoteCommand::new(&req.dest_lcr)
        .arg("--root")
        .arg(req.dest_root.to_string_lossy())
        .arg("migrate-receive")
        .arg("--id")
        .arg(&req.dest_id)
        .arg("--bundle")
        .arg(req.dest_bundle.to_string_lossy())
        .arg("--stdio-log")
        .arg(req.dest_log.to_string_lossy());
    let mut remote = remote;
    if let Some(d) = &req.dest_images {
        remote = remote.arg("--images-in").arg(d.to_string_lossy());
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

fn run(container: Container, req: &Request, link: &mut Link, start: Instant) -> Result<Report> {
    let memory = container
        .cgroup()
        .map(|cg| cg.stats().memory.usage.usage)
        .unwrap_or(0);
    let here = facts::this_host(&req.settings.criu)?;
    link.hello(here.clone())?;
    let there = link.expect_hello()?;
    if let Some(why) = facts::mismatch(&here, &there) {
        return Err(Error::Refused {
            host: req.dest.to_string(),
            reason: why,
        });
    }
    let mut report = Report {
        strategy: "stop-copy".into(),
        preflight_ms: ms(start.elapsed()),
        ..Report::default()
    };

    link.send(&Message::StartPages { memory })?;
    match link.message()? {
        Message::PagesReady => {}
        Message::Refused { reason } => return Err(refused(req, reason)),
        other => return Err(unexpected(other)),
    }
    let frozen_at = Instant::now();
    let dumped = dump(container, req, link)?;
    report.dump_ms = ms(frozen_at.elapsed());

    let sent_at = Instant::now();
    send_images(&dumped, link)?;
    report.transfer_ms = ms(sent_at.elapsed());

    let restore_at = Instant::now();
    // Once the restore is asked for, the receiver may run the container: an lcr killed from
    // here on leaves this copy frozen, for the user to resolve (see `undecided`).
    dumped.stay_frozen_if_interrupted();
    link.send(&Message::Restore)?;
    // From here on the receiver may run the container: a lost connection must not thaw it.
    let pid = match link.message_within(crate::link::RESTORE_LIMIT) {
        Ok(Message::Running { pid }) => pid,
        Ok(Message::Refused { reason }) => return Err(refused(req, reason)),
        Ok(other) => return Err(unexpected(other)),
        Err(e) => return Err(undecided(dumped, req, e)),
    };
    report.restore_ms = ms(restore_at.elapsed());
    report.downtime_ms = ms(frozen_at.elapsed());
    report.dest_pid = pid;
    dumped.commit().map_err(|e| Error::Refused {
        host: "this host".into(),
        reason: format!(
            "the container runs on {} (pid {pid}), and removing its frozen copy here failed: {e}; run `lcr delete --force {}` here",
            req.dest, req.id
        ),
    })?;
    link.send(&Message::Done)?;
    report.total_ms = ms(start.elapsed());
    report.bytes_sent = link.sent.load(std::sync::atomic::Ordering::Relaxed);
    Ok(report)
}

/// Freezes and dumps the container, its memory going through the relayed page-server
/// connection; it stays frozen here, held by the returned value.
fn dump(container: Container, req: &Request, link: &mut Link) -> Result<Dumped> {
    let (mine, criu_end) = UnixStream::pair().map_err(|cause| Error::Io {
        context: "page-server socket pair".into(),
        cause,
    })?;
    link.relay_pages(mine)?;
    let mut opts = CheckpointOpts::with_images(ImageDir::temporary("migrate")?);
    opts.settings = req.settings.clone();
    opts.hold = true;
    opts.page_server_fd = Some(criu_end.into());
    let dumped = lcr::checkpoint::begin(container, opts)?;
    // Every page has gone once this side's CRIU closed its end and the receiver's page
    // server closed its own.
    link.pages_sent()?;
    match link.message()? {
        Message::PagesEnd => Ok(dumped),
        Message::Refused { reason } => Err(refused(req, reason)),
        other => Err(unexpected(other)),
    }
}

/// Every file of the image directory but the pages (which went to the page server).
fn send_images(dumped: &Dumped, link: &Link) -> Result<()> {
    let dir = &dumped.report().image_dir;
    let mut names: Vec<_> = std::fs::read_dir(dir)
        .map_err(|cause| Error::Io {
            context: format!("read {}", dir.display()),
            cause,
        })?
        .flatten()
        .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    for name in names {
        let data = std::fs::read(dir.join(&name)).map_err(|cause| Error::Io {
            context: format!("read {}", dir.join(&name).display()),
            cause,
        })?;
        link.send(&Message::File {
            name,
            size: data.len() as u64,
        })?;
        link.send_data(Channel::File, &data)?;
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

/// The connection broke while the receiver was restoring: it may run the container now, or
/// have rolled back. The copy here stays frozen (never resumed blindly), and the user is told
/// how to finish.
fn undecided(dumped: Dumped, req: &Request, e: Error) -> Error {
    dumped.leave_frozen();
    Error::Undecided(format!(
        "{e}: the connection broke while {dest} restored the container, so it may run there \
         now; it is left frozen here. If `lcr --root {root} state {dest_id}` on {dest} says \
         running, run `lcr delete --force {id}` here; if not, `lcr resume {id}`",
        root = req.dest_root.display(),
        dest_id = req.dest_id,
        dest = req.dest,
        id = req.id
    ))
}
