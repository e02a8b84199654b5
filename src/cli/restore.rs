use std::path::PathBuf;

use lcr::cancel::{Cancel, SignalGuard};
use lcr::checkpoint::{self, Images, RestoreOpts};
use lcr::container::{self, Store};
use lcr::image::Input;
use lcr::process::wait_forwarding;

use super::checkpoint::CriuFlags;

#[derive(clap::Args)]
/// Restore a container from a checkpoint (under this id, from this bundle).
pub struct Args {
    pub id: String,
    /// Bundle to restore into (its config gives the cgroup, limits and bind mount sources).
    #[arg(short, long, default_value = ".")]
    bundle: PathBuf,
    /// Images to restore (default ./checkpoint); with --import, where to unpack the archive
    /// (kept; default a temporary directory, removed afterwards).
    #[arg(long)]
    image_path: Option<PathBuf>,
    /// Restore from an archive made by `lcr checkpoint --export` (`-`: standard input); it is
    /// checked entry by entry while it is unpacked.
    #[arg(long)]
    import: Option<PathBuf>,
    /// No progress display.
    #[arg(short, long)]
    quiet: bool,
    #[command(flatten)]
    max_size: super::MaxSize,
    #[command(flatten)]
    criu: CriuFlags,
    /// Return once restored instead of waiting.
    #[arg(short, long)]
    detach: bool,
    #[arg(long)]
    pid_file: Option<PathBuf>,
    /// Unix socket that receives the new pty master of a terminal container.
    #[arg(long)]
    console_socket: Option<PathBuf>,
    /// Accepted for runc compatibility (CRIU restores the mount namespace itself).
    #[arg(long)]
    no_pivot: bool,
    /// Accepted for runc compatibility.
    #[arg(long)]
    no_subreaper: bool,
    #[arg(long)]
    print_stats: bool,
    /// Seconds CRIU may take to restore before it is stopped (0: no limit).
    #[arg(long, default_value_t = checkpoint::DEFAULT_TIMEOUT.as_secs())]
    timeout: u64,
    /// Write the bind-mount contents an archive holds (`checkpoint --with-volumes`) into this
    /// bundle's bind sources; never into a bind mounted read-only.
    #[arg(long)]
    with_volumes: bool,
    /// Keep the container (stopped) after it exits in the foreground.
    #[arg(long)]
    keep: bool,
    /// Restore as one of any number of clones of the same images (concurrent or not): the
    /// rootfs an overlay of its own (the bundle's rootfs and the checkpoint's rootfs changes
    /// below, this clone's writes above, removed with it); nothing is written into the
    /// images, so a read-only image directory serves.
    #[arg(long)]
    clone: bool,
    /// With --clone: mark the clone's memory mergeable, so that KSM (where it runs:
    /// /sys/kernel/mm/ksm/run, which lcr never changes) shares pages identical across clones.
    #[arg(long, requires = "clone")]
    merge_memory: bool,
    /// Print one JSON report (id, pid, network namespace, timings, CRIU's statistics) on
    /// stdout once restored.
    #[arg(long)]
    json: bool,
}

pub fn run(store: &Store, a: Args) -> anyhow::Result<i32> {
    // Until the container is complete, SIGINT/SIGTERM/SIGHUP unwind the restore (CRIU is
    // stopped, everything undone) instead of leaving it half made.
    let cancel = Cancel::new();
    let signals = SignalGuard::install(&cancel);
    let images = match &a.import {
        Some(file) => Images::Archive {
            input: Input::open(file)?.max_total(a.max_size.bytes),
            unpack_to: a.image_path.clone(),
            quiet: a.quiet,
        },
        None => Images::Dir(
            a.image_path
                .clone()
                .unwrap_or_else(|| PathBuf::from("./checkpoint")),
        ),
    };
    let mut o = RestoreOpts::from(&a.bundle, images);
    o.cancel = cancel.clone();
    o.with_volumes = a.with_volumes;
    o.timeout = std::time::Duration::from_secs(a.timeout);
    o.settings = a.criu.settings()?;
    o.pid_file = a.pid_file.clone();
    o.console_socket = a.console_socket.clone();
    o.clone = a.clone.then_some(checkpoint::CloneOpts {
        merge_memory: a.merge_memory,
    });
    let started = std::time::Instant::now();
    let (c, stats) = checkpoint::restore(store, &a.id, o)?;
    if a.json {
        let doc = serde_json::json!({
            "id": a.id,
            "pid": c.state.pid,
            "netns": format!("/proc/{}/ns/net", c.state.pid),
            "clone": a.clone,
            "restoreMs": started.elapsed().as_millis() as u64,
            "criuStats": stats,
        });
        println!("{}", serde_json::to_string_pretty(&doc)?);
    }
    if a.print_stats {
        match stats {
            Some(s) => println!(
                "forking time {} us, restore time {} us, pages restored {}, compared {}, skipped (cow) {}",
                s.forking_time_us, s.restore_time_us, s.pages_restored, s.pages_compared, s.pages_skipped_cow
            ),
            None => println!("criu wrote no statistics"),
        }
    }
    if a.detach {
        return Ok(0);
    }
    drop(signals); // from here on they are the container's (forwarded)
    let (pid, started) = (c.state.pid, c.state.init_start_time);
    drop(c);
    let exit = wait_forwarding(pid, None)?;
    if !a.keep {
        container::delete_if_same(store, &a.id, pid, started)?;
    }
    Ok(exit.code())
}
