use std::path::PathBuf;

use criurpc::{CgroupMode, Criu};
use lcr::checkpoint::{self, RestoreOpts};
use lcr::container::{self, Container, Store};
use lcr::process::wait_forwarding;

use super::checkpoint::empty_ns_network;

#[derive(clap::Args)]
/// Restore a container from a checkpoint (under this id, from this bundle).
pub struct Args {
    pub id: String,
    /// Bundle to restore into (its config gives the cgroup, limits and bind mount sources).
    #[arg(short, long, default_value = ".")]
    bundle: PathBuf,
    #[arg(long, default_value = "./checkpoint")]
    image_path: PathBuf,
    #[arg(long)]
    work_path: Option<PathBuf>,
    /// Return once restored instead of waiting.
    #[arg(short, long)]
    detach: bool,
    #[arg(long)]
    pid_file: Option<PathBuf>,
    /// Unix socket that receives the new pty master of a terminal container.
    #[arg(long)]
    console_socket: Option<PathBuf>,
    #[arg(long)]
    tcp_established: bool,
    #[arg(long)]
    ext_unix_sk: bool,
    #[arg(long)]
    shell_job: bool,
    #[arg(long)]
    file_locks: bool,
    #[arg(long)]
    manage_cgroups_mode: Option<CgroupMode>,
    #[arg(long)]
    empty_ns: Option<String>,
    #[arg(long)]
    auto_dedup: bool,
    #[arg(long)]
    lazy_pages: bool,
    /// Accepted for runc compatibility (CRIU restores the mount namespace itself).
    #[arg(long)]
    no_pivot: bool,
    /// Accepted for runc compatibility.
    #[arg(long)]
    no_subreaper: bool,
    #[arg(long)]
    print_stats: bool,
    /// Keep the container (stopped) after it exits in the foreground.
    #[arg(long)]
    keep: bool,
    #[arg(long, default_value = "criu")]
    criu: String,
}

pub fn run(store: &Store, a: Args) -> anyhow::Result<i32> {
    let mut o = RestoreOpts::new(&a.bundle, &a.image_path);
    o.criu = Criu::with_binary(&a.criu);
    o.work_path = a.work_path.clone();
    o.pid_file = a.pid_file.clone();
    o.console_socket = a.console_socket.clone();
    o.tcp_established = a.tcp_established;
    o.ext_unix_sk = a.ext_unix_sk;
    o.shell_job = a.shell_job;
    o.file_locks = a.file_locks;
    o.manage_cgroups_mode = a.manage_cgroups_mode;
    o.empty_ns_network = empty_ns_network(a.empty_ns.as_deref())?;
    o.auto_dedup = a.auto_dedup;
    o.lazy_pages = a.lazy_pages;
    let (c, stats) = checkpoint::restore(store, &a.id, o)?;
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
    let pid = c.state.pid;
    drop(c);
    let exit = wait_forwarding(pid, None)?;
    if !a.keep {
        if let Ok(c) = Container::load(store, &a.id) {
            container::delete(c, true)?;
        }
    }
    Ok(exit.code())
}
