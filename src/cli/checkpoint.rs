use std::os::fd::{FromRawFd, OwnedFd};
use std::path::PathBuf;

use anyhow::{anyhow, Context};
use lcr::cancel::{Cancel, SignalGuard};
use lcr::checkpoint::{self, CheckpointOpts, CriuSettings, DumpStats, ImageDir};
use lcr::checkpoint::{CgroupMode, Criu};
use lcr::container::{Container, Store};
use lcr::image::{Compression, Output, PackOpts};

#[derive(clap::Args)]
/// Checkpoint a running container with CRIU (it is removed afterwards unless --leave-running).
pub struct Args {
    pub id: String,
    /// Directory for the CRIU images (default ./checkpoint; with --export, a temporary one).
    #[arg(long)]
    image_path: Option<PathBuf>,
    /// Also write the checkpoint as a tar+zstd archive (`-`: standard output).
    #[arg(long)]
    export: Option<PathBuf>,
    /// Save the files changed in a writable rootfs since the container started.
    #[arg(long)]
    with_rootfs_diff: bool,
    /// Save the contents of the container's bind mounts.
    #[arg(long)]
    with_volumes: bool,
    /// Archive compression: zstd, zstd:LEVEL (1-19) or none.
    #[arg(long, default_value = "zstd")]
    compress: Compression,
    /// No progress display.
    #[arg(short, long)]
    quiet: bool,
    #[command(flatten)]
    criu: CriuFlags,
    #[arg(long)]
    leave_running: bool,
    #[arg(long)]
    tcp_skip_in_flight: bool,
    #[arg(long)]
    link_remap: bool,
    /// Dump memory only, leaving the container running (needs dirty memory tracking).
    #[arg(long)]
    pre_dump: bool,
    /// Images of a previous pre-dump, relative to the image path.
    #[arg(long)]
    parent_path: Option<PathBuf>,
    /// An open fd CRIU writes a byte to when its lazy-pages server is ready.
    #[arg(long)]
    status_fd: Option<i32>,
    /// Send memory pages to a CRIU page server at ADDR:PORT.
    #[arg(long)]
    page_server: Option<String>,
    /// Print CRIU's timings and page counts.
    #[arg(long)]
    print_stats: bool,
    /// Print one JSON report (id, images, timings, CRIU's statistics) on stdout (on stderr
    /// when stdout is the archive).
    #[arg(long)]
    json: bool,
}

/// The flags `checkpoint` and `restore` share.
#[derive(clap::Args)]
pub struct CriuFlags {
    /// Directory for CRIU's log and stats (default: the image path).
    #[arg(long)]
    work_path: Option<PathBuf>,
    #[arg(long)]
    tcp_established: bool,
    #[arg(long)]
    ext_unix_sk: bool,
    #[arg(long)]
    shell_job: bool,
    #[arg(long)]
    file_locks: bool,
    /// soft, full, strict or ignore.
    #[arg(long)]
    manage_cgroups_mode: Option<CgroupMode>,
    /// `network`: do not dump (restore) the network namespace's contents.
    #[arg(long)]
    empty_ns: Option<String>,
    #[arg(long)]
    auto_dedup: bool,
    #[arg(long)]
    lazy_pages: bool,
    /// CRIU binary (default: criu on PATH).
    #[arg(long, default_value = "criu")]
    criu: String,
}

impl CriuFlags {
    pub fn settings(&self) -> anyhow::Result<CriuSettings> {
        let empty_ns_network = match self.empty_ns.as_deref() {
            None => false,
            Some("network") => true,
            Some(other) => {
                return Err(anyhow!(
                    "--empty-ns {other:?}: only \"network\" is supported"
                ))
            }
        };
        Ok(CriuSettings {
            criu: Criu::with_binary(&self.criu),
            work_path: self.work_path.clone(),
            tcp_established: self.tcp_established,
            ext_unix_sk: self.ext_unix_sk,
            shell_job: self.shell_job,
            file_locks: self.file_locks,
            manage_cgroups_mode: self.manage_cgroups_mode,
            empty_ns_network,
            auto_dedup: self.auto_dedup,
            lazy_pages: self.lazy_pages,
        })
    }
}

pub fn dump_stats_text(s: &DumpStats) -> String {
    format!(
        "freezing time {} us, frozen time {} us, memdump time {} us, memwrite time {} us\n\
         pages scanned {}, skipped (in parent) {}, written {}, lazy {}",
        s.freezing_time_us,
        s.frozen_time_us,
        s.memdump_time_us,
        s.memwrite_time_us,
        s.pages_scanned,
        s.pages_skipped_parent,
        s.pages_written,
        s.pages_lazy
    )
}

pub fn run(store: &Store, a: Args) -> anyhow::Result<i32> {
    // An interrupted export unwinds: the container is thawed, the partial archive vanishes.
    let cancel = Cancel::new();
    let _signals = a.export.as_ref().map(|_| SignalGuard::install(&cancel));
    let images = match (&a.image_path, &a.export) {
        (Some(p), _) => ImageDir::At(p.clone()),
        (None, Some(_)) => ImageDir::temporary("export")?,
        (None, None) => ImageDir::At(PathBuf::from("./checkpoint")),
    };
    let mut o = CheckpointOpts::with_images(images);
    o.with_rootfs_diff = a.with_rootfs_diff;
    o.with_volumes = a.with_volumes;
    if let Some(f) = &a.export {
        // Opened first: a bad path fails before the container is touched.
        let out = Output::create(f).with_context(|| format!("--export {}", f.display()))?;
        let destination = out.label();
        o.export = Some((
            out,
            PackOpts {
                compression: a.compress,
                quiet: a.quiet,
                destination,
                cancel: cancel.clone(),
            },
        ));
    }
    o.settings = a.criu.settings()?;
    o.leave_running = a.leave_running;
    o.tcp_skip_in_flight = a.tcp_skip_in_flight;
    o.link_remap = a.link_remap;
    o.pre_dump = a.pre_dump;
    o.parent_path = a.parent_path.clone();
    if let Some(fd) = a.status_fd {
        // SAFETY: F_GETFD only queries the descriptor flags.
        if unsafe { libc::fcntl(fd, libc::F_GETFD) } < 0 {
            return Err(anyhow!(
                "--status-fd {fd}: not an open fd: {}",
                std::io::Error::last_os_error()
            ));
        }
        // SAFETY: the fd was checked open and is handed to us by the caller for this purpose.
        o.status_fd = Some(unsafe { OwnedFd::from_raw_fd(fd) });
    }
    if let Some(ps) = &a.page_server {
        let (addr, port) = ps
            .rsplit_once(':')
            .ok_or_else(|| anyhow!("--page-server {ps:?}: expected ADDR:PORT"))?;
        let port: u16 = port
            .parse()
            .with_context(|| format!("--page-server {ps:?}: bad port"))?;
        o.page_server = Some((addr.to_string(), port));
    }
    let c = Container::load(store, &a.id)?;
    let started = std::time::Instant::now();
    let report = checkpoint::checkpoint(c, o)?;
    let to_stdout = a.export.as_deref() != Some(std::path::Path::new("-"));
    if a.json {
        let doc = serde_json::json!({
            "id": a.id,
            "imagePath": a.image_path,
            "export": a.export,
            "leftRunning": a.leave_running || a.pre_dump,
            "checkpointMs": started.elapsed().as_millis() as u64,
            "lcrFreezeUs": report.lcr_freeze_us,
            "criuStats": report.stats,
        });
        let text = serde_json::to_string_pretty(&doc)?;
        if to_stdout {
            println!("{text}");
        } else {
            eprintln!("{text}");
        }
    }
    if a.print_stats {
        let mut text = report
            .stats
            .as_ref()
            .map_or("criu wrote no statistics".into(), dump_stats_text);
        if let Some(us) = report.lcr_freeze_us {
            text.push_str(&format!("\nlcr froze the container in {us} us"));
            if let Some(d) = report.criu_ran_before_freeze {
                text.push_str(&format!(
                    ", {} ms after CRIU started (the container ran meanwhile)",
                    d.as_millis()
                ));
            }
        }
        // Standard output may be the archive.
        if to_stdout {
            println!("{text}");
        } else {
            eprintln!("{text}");
        }
    }
    Ok(0)
}
