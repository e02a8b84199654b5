use std::path::PathBuf;

use lcr::checkpoint::{self, RestoreOpts};
use lcr::container::{self, Container, Store};
use lcr::process::wait_forwarding;

use super::checkpoint::CriuFlags;

#[derive(clap::Args)]
/// Restore a container from a checkpoint (under this id, from this bundle).
pub struct Args {
    pub id: String,
    /// Bundle to restore into (its config gives the cgroup, limits and bind mount sources).
    #[arg(short, long, default_value = ".")]
    bundle: PathBuf,
    #[arg(long, default_value = "./checkpoint")]
    image_path: PathBuf,
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
    /// Keep the container (stopped) after it exits in the foreground.
    #[arg(long)]
    keep: bool,
}

pub fn run(store: &Store, a: Args) -> anyhow::Result<i32> {
    let mut o = RestoreOpts::new(&a.bundle, &a.image_path);
    o.settings = a.criu.settings()?;
    o.pid_file = a.pid_file.clone();
    o.console_socket = a.console_socket.clone();
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
