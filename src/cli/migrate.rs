use std::path::PathBuf;

use lcr::container::{Container, Store};
use migrate::resolve::Resolved;
use migrate::source::{Report, Request};
use migrate::ssh::Ssh;
use migrate::Destination;

use super::checkpoint::CriuFlags;

/// Exit status when the connection broke while the destination restored (the container is
/// left frozen here; the message says how to finish).
pub const EXIT_UNDECIDED: i32 = 3;

#[derive(Clone, Copy, Debug, clap::ValueEnum)]
enum Strategy {
    /// The best one both hosts allow, said with the reason.
    Auto,
    /// Freeze, dump with the memory streamed into the destination's page server, restore.
    StopCopy,
    /// Pre-dump rounds while the container runs, then a final dump (needs dirty-page
    /// tracking here).
    PreCopy,
    /// Restore there at once; the memory follows on demand (needs userfaultfd there and
    /// fs.pipe-max-size >= 4 MiB here).
    PostCopy,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
enum Rootfs {
    Shared,
    Copy,
}

impl Strategy {
    fn asked(self) -> Option<migrate::Strategy> {
        match self {
            Self::Auto => None,
            Self::StopCopy => Some(migrate::Strategy::StopCopy),
            Self::PreCopy => Some(migrate::Strategy::PreCopy),
            Self::PostCopy => Some(migrate::Strategy::PostCopy),
        }
    }
}

#[derive(clap::Args)]
/// Move a running container to another host over ssh.
pub struct Args {
    pub id: String,
    /// `ssh://[user@]host[:port]` or `[user@]host`.
    #[arg(required_unless_present = "resolve")]
    dest: Option<String>,
    /// Finish a migration of ID whose outcome lcr did not learn (exit 3, or an lcr killed
    /// midway): asks the destination, then removes the frozen copy here if it has the
    /// container, or resumes it if not.
    #[arg(long, conflicts_with = "dest")]
    resolve: bool,
    #[arg(long, value_enum, default_value = "auto")]
    strategy: Strategy,
    /// `shared`: the rootfs is at the same path on both hosts (shared storage); `copy`: it
    /// is sent over the connection (before the freeze; the changes since with the dump)
    /// into a new bundle at --dest-bundle, which must not exist or be empty there.
    #[arg(long, value_enum, default_value = "shared")]
    rootfs: Rootfs,
    /// Pre-copy: at most this many pre-dump rounds before the final dump.
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u32).range(1..=100))]
    max_iterations: u32,
    /// Pre-copy: end the rounds once a round finds at least this share (percent) of the
    /// pages unchanged since the one before.
    #[arg(long, default_value_t = 90, value_parser = clap::value_parser!(u32).range(1..=100))]
    converge: u32,
    /// The container's id there (default: the same).
    #[arg(long)]
    dest_id: Option<String>,
    /// lcr's state directory there (default: the same as here).
    #[arg(long)]
    dest_root: Option<PathBuf>,
    /// The bundle to restore into there (default: the container's bundle path here; the
    /// rootfs is shared).
    #[arg(long)]
    dest_bundle: Option<PathBuf>,
    /// Where the container's stdout and stderr go there (default /var/log/lcr/ID.log).
    #[arg(long)]
    dest_log: Option<PathBuf>,
    /// Where the destination keeps the images while it restores (default: its $TMPDIR; a
    /// tmpfs such as /dev/shm is fastest when it has the memory).
    #[arg(long)]
    dest_images: Option<PathBuf>,
    /// The lcr to run there.
    #[arg(long, default_value = "lcr")]
    dest_lcr: String,
    /// The ssh client to run.
    #[arg(long, default_value = "ssh")]
    ssh: String,
    /// An ssh option (`-o Key=value`), passed on; may be repeated. lcr adds
    /// ServerAliveInterval=10 and ServerAliveCountMax=3 (a dead link ends the migration
    /// within 30 s) unless these set them.
    #[arg(short = 'o', action = clap::ArgAction::Append)]
    ssh_option: Vec<String>,
    #[arg(long)]
    print_stats: bool,
    /// Print one JSON report.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    criu: CriuFlags,
}

/// Both ends write into a connection the other may close at any moment: a broken pipe must
/// be an error that unwinds (thawing the container, rolling back a restore), not a signal
/// that kills lcr midway. CRIU restores its tree's own dispositions from the images.
fn broken_pipe_is_an_error() {
    // SAFETY: setting a signal disposition; no handler runs.
    unsafe { libc::signal(libc::SIGPIPE, libc::SIG_IGN) };
}

pub fn run(store: &Store, root: &std::path::Path, a: Args) -> anyhow::Result<i32> {
    broken_pipe_is_an_error();
    let Some(dest) = &a.dest else {
        return resolve(store, &a.id);
    };
    let dest = Destination::parse(dest)?;
    let bundle = match &a.dest_bundle {
        Some(b) => b.clone(),
        None => Container::read(store, &a.id)?.state.bundle.clone(),
    };
    let dest_id = a.dest_id.clone().unwrap_or_else(|| a.id.clone());
    let bar = progress_display(a.json);
    let req = Request {
        id: a.id.clone(),
        dest: dest.clone(),
        ssh: Ssh {
            program: a.ssh.clone(),
            options: a.ssh_option.clone(),
        },
        dest_lcr: a.dest_lcr.clone(),
        dest_log: a
            .dest_log
            .clone()
            .unwrap_or_else(|| PathBuf::from(format!("/var/log/lcr/{dest_id}.log"))),
        dest_images: a.dest_images.clone(),
        dest_id,
        dest_root: a.dest_root.clone().unwrap_or_else(|| root.to_path_buf()),
        dest_bundle: bundle,
        strategy: a.strategy.asked(),
        rootfs_copy: a.rootfs == Rootfs::Copy,
        max_iterations: a.max_iterations,
        converge_pct: a.converge,
        settings: a.criu.settings()?,
        say: {
            let (bar, json) = (bar.clone(), a.json);
            Box::new(move |m: &str| {
                if !json {
                    bar.suspend(|| eprintln!("lcr: {m}"));
                }
            })
        },
        progress: {
            let bar = bar.clone();
            Box::new(move |phase: &str| bar.set_message(phase.to_string()))
        },
    };
    let result = migrate::source::migrate(store, req);
    bar.finish_and_clear();
    match result {
        Ok(report) => {
            print_report(&report, a.json, a.print_stats)?;
            Ok(0)
        }
        Err(migrate::Error::Undecided(why)) => {
            eprintln!("lcr: {why}");
            Ok(EXIT_UNDECIDED)
        }
        Err(e) => Err(e.into()),
    }
}

/// The phase and the time so far on stderr, when it is a terminal (and the report is not
/// JSON); hidden otherwise.
fn progress_display(json: bool) -> indicatif::ProgressBar {
    use std::io::IsTerminal;
    if json || !std::io::stderr().is_terminal() {
        return indicatif::ProgressBar::hidden();
    }
    let bar = indicatif::ProgressBar::new_spinner();
    if let Ok(style) = indicatif::ProgressStyle::with_template("lcr: {spinner} {msg} ({elapsed})") {
        bar.set_style(style);
    }
    bar.enable_steady_tick(std::time::Duration::from_millis(120));
    bar
}

fn resolve(store: &Store, id: &str) -> anyhow::Result<i32> {
    match migrate::resolve::resolve(store, id)? {
        Resolved::MovedThere(status) => {
            eprintln!("lcr: {id} is {status} on the destination: its frozen copy here was removed")
        }
        Resolved::StaysHere => {
            eprintln!("lcr: the destination has no {id}: it runs here again")
        }
    }
    Ok(0)
}

fn print_report(r: &Report, json: bool, stats: bool) -> anyhow::Result<()> {
    if json {
        return super::print_json(r);
    }
    if stats {
        let after = if r.lazy_transfer_ms > 0 {
            format!(", pages after the switch {} ms", r.lazy_transfer_ms)
        } else {
            String::new()
        };
        for (i, round) in r.rounds.iter().enumerate() {
            println!(
                "round {}: {} pages written of {} scanned, {} bytes sent, {} ms",
                i + 1,
                round.pages_written,
                round.pages_scanned,
                round.bytes,
                round.ms
            );
        }
        println!(
            "{}: downtime {} ms (freeze {:.1} ms, dump {} ms, images {} ms, restore {} ms; CRIU's start before the freeze {} ms){after}, total {} ms, {} bytes sent",
            r.strategy, r.downtime_ms, r.freeze_us as f64 / 1000.0, r.dump_ms, r.transfer_ms, r.restore_ms, r.criu_start_ms, r.total_ms, r.bytes_sent
        );
    }
    Ok(())
}

#[derive(clap::Args)]
/// The receiving end of `lcr migrate` (started by it over ssh; speaks on stdin and stdout).
pub struct ReceiveArgs {
    #[arg(long)]
    id: String,
    #[arg(long)]
    bundle: PathBuf,
    /// The restored container's stdout and stderr.
    #[arg(long)]
    stdio_log: PathBuf,
    /// Where to keep the images while restoring (default $TMPDIR).
    #[arg(long)]
    images_in: Option<PathBuf>,
    /// Make the bundle from the config and rootfs the source sends.
    #[arg(long)]
    rootfs_copy: bool,
    #[command(flatten)]
    criu: CriuFlags,
}

pub fn run_receive(store: &Store, a: ReceiveArgs) -> anyhow::Result<i32> {
    broken_pipe_is_an_error();
    migrate::receive::receive(
        store,
        migrate::receive::Request {
            id: a.id,
            bundle: a.bundle,
            log: a.stdio_log,
            images_in: a.images_in,
            rootfs_copy: a.rootfs_copy,
            settings: a.criu.settings()?,
        },
    )?;
    Ok(0)
}

#[derive(clap::Args)]
/// What became of a container migrated here (asked by `lcr migrate --resolve` over ssh):
/// waits until no receiver of it runs, then prints its status as JSON.
pub struct SettleArgs {
    #[arg(long)]
    id: String,
}

pub fn run_settle(store: &Store, a: SettleArgs) -> anyhow::Result<i32> {
    let settled = migrate::resolve::settle(store, &a.id, migrate::RESTORE_LIMIT)?;
    super::print_json(&settled)?;
    Ok(0)
}
