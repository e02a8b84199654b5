use std::path::PathBuf;

use lcr::container::{self, CreateOpts, Store};

#[derive(clap::Args)]
/// Create a container: its init waits until `lcr start`.
pub struct Args {
    pub id: String,
    #[command(flatten)]
    pub common: CreateFlags,
}

/// Flags shared by `create` and `run`.
#[derive(clap::Args, Clone)]
pub struct CreateFlags {
    /// Bundle directory (holding config.json).
    #[arg(short, long, default_value = ".")]
    pub bundle: PathBuf,
    /// File to write the init's pid to.
    #[arg(long)]
    pub pid_file: Option<PathBuf>,
    /// Unix socket that receives the pty master when process.terminal is true.
    #[arg(long)]
    pub console_socket: Option<PathBuf>,
    /// Use MS_MOVE + chroot instead of pivot_root.
    #[arg(long)]
    pub no_pivot: bool,
    /// Keep the caller's session keyring.
    #[arg(long)]
    pub no_new_keyring: bool,
    /// Pass N extra fds (from fd 3) to the container.
    #[arg(long, default_value_t = 0)]
    pub preserve_fds: u32,
}

impl CreateFlags {
    pub fn opts(&self) -> CreateOpts {
        CreateOpts {
            bundle: self.bundle.clone(),
            pid_file: self.pid_file.clone(),
            console_socket: self.console_socket.clone(),
            console_fd: None,
            no_pivot: self.no_pivot,
            no_new_keyring: self.no_new_keyring,
            preserve_fds: self.preserve_fds,
        }
    }
}

pub fn run(store: &Store, a: Args) -> anyhow::Result<i32> {
    container::create(store, &a.id, a.common.opts())?;
    Ok(0)
}
