use std::os::unix::net::UnixStream;

use lcr::container::{self, Store};
use lcr::process::{console, wait_forwarding};

use super::create::CreateFlags;

#[derive(clap::Args)]
/// Create and start a container; in the foreground, wait and exit with its exit code.
pub struct Args {
    pub id: String,
    #[command(flatten)]
    pub common: CreateFlags,
    /// Return once started instead of waiting.
    #[arg(short, long)]
    pub detach: bool,
    /// Keep the container (stopped) after it exits in the foreground.
    #[arg(long)]
    pub keep: bool,
}

pub fn run(store: &Store, a: Args) -> anyhow::Result<i32> {
    let mut opts = a.common.opts();
    let bundle = lcr::spec::Bundle::load(&opts.bundle)?;
    let terminal = lcr::spec::has_terminal(&bundle.spec);
    // In the foreground with a terminal and no console socket, lcr holds the pty itself.
    let mut own_console = None;
    if terminal && !a.detach && opts.console_socket.is_none() {
        let (ours, theirs) = UnixStream::pair()?;
        opts.console_fd = Some(theirs.into());
        own_console = Some(ours);
    }
    let mut c = container::create(store, &a.id, opts)?;
    let master = match &own_console {
        Some(s) => Some(console::recv_master(std::os::fd::AsFd::as_fd(s))?),
        None => None,
    };
    if let Err(e) = container::start(&mut c) {
        let _ = container::delete(c, true);
        return Err(e.into());
    }
    if a.detach {
        return Ok(0);
    }
    let (pid, started) = (c.state.pid, c.state.init_start_time);
    drop(c); // release the lock while the container runs
    let exit = wait_forwarding(pid, master)?;
    if !a.keep {
        container::delete_if_same(store, &a.id, pid, started)?;
    }
    Ok(exit.code())
}
