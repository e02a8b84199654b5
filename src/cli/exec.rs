use std::os::unix::net::UnixStream;
use std::path::PathBuf;

use anyhow::{bail, Context};
use lcr::container::{self, Container, ExecOpts, Store};
use lcr::process::{console, wait_forwarding};
use oci_spec::runtime::Process;

#[derive(clap::Args)]
/// Run a new process in a running container.
pub struct Args {
    pub id: String,
    /// Allocate a terminal.
    #[arg(short, long)]
    tty: bool,
    /// Working directory in the container.
    #[arg(long)]
    cwd: Option<PathBuf>,
    /// Extra environment variables (K=V).
    #[arg(short, long = "env")]
    env: Vec<String>,
    /// UID[:GID] to run as.
    #[arg(short, long)]
    user: Option<String>,
    /// Additional group ids.
    #[arg(short = 'g', long = "additional-gids")]
    additional_gids: Vec<u32>,
    /// Return once started instead of waiting.
    #[arg(short, long)]
    detach: bool,
    /// process.json describing the process (replaces the command line).
    #[arg(short, long)]
    process: Option<PathBuf>,
    #[arg(long)]
    pid_file: Option<PathBuf>,
    #[arg(long)]
    console_socket: Option<PathBuf>,
    #[arg(long, default_value_t = 0)]
    preserve_fds: u32,
    /// Set no_new_privileges.
    #[arg(long)]
    no_new_privs: bool,
    /// Command and arguments.
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    command: Vec<String>,
}

fn build_process(c: &Container, a: &Args) -> anyhow::Result<Process> {
    if let Some(path) = &a.process {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("read {}", path.display()))?;
        let de = &mut serde_json::Deserializer::from_str(&text);
        return serde_path_to_error::deserialize(de)
            .map_err(|e| anyhow::anyhow!("{}: {}: {}", path.display(), e.path(), e.inner()));
    }
    if a.command.is_empty() {
        bail!("exec: no command given");
    }
    let mut p = c.spec.process().clone().unwrap_or_default();
    p.set_args(Some(a.command.clone()));
    p.set_terminal(Some(a.tty));
    let mut env = p.env().clone().unwrap_or_default();
    env.extend(a.env.iter().cloned());
    p.set_env(Some(env));
    if let Some(cwd) = &a.cwd {
        p.set_cwd(cwd.clone());
    }
    let mut user = p.user().clone();
    if let Some(u) = &a.user {
        let (uid, gid) = match u.split_once(':') {
            Some((u, g)) => (u, Some(g)),
            None => (u.as_str(), None),
        };
        user.set_uid(
            uid.parse()
                .with_context(|| format!("--user {u}: uid {uid:?} is not a number"))?,
        );
        if let Some(g) = gid {
            user.set_gid(
                g.parse()
                    .with_context(|| format!("--user {u}: gid {g:?} is not a number"))?,
            );
        }
    }
    if !a.additional_gids.is_empty() {
        user.set_additional_gids(Some(a.additional_gids.clone()));
    }
    p.set_user(user);
    if a.no_new_privs {
        p.set_no_new_privileges(Some(true));
    }
    Ok(p)
}

pub fn run(store: &Store, a: Args) -> anyhow::Result<i32> {
    let c = Container::load(store, &a.id)?;
    let process = build_process(&c, &a)?;
    let terminal = process.terminal().unwrap_or(false);
    let mut opts = ExecOpts {
        process: Some(process),
        pid_file: a.pid_file.clone(),
        console_socket: a.console_socket.clone(),
        console_fd: None,
        preserve_fds: a.preserve_fds,
    };
    let mut own_console = None;
    if terminal && !a.detach && a.console_socket.is_none() {
        let (ours, theirs) = UnixStream::pair()?;
        opts.console_fd = Some(theirs.into());
        own_console = Some(ours);
    }
    let pid = container::exec(&c, opts)?;
    drop(c);
    if a.detach {
        return Ok(0);
    }
    let master = match &own_console {
        Some(s) => Some(console::recv_master(std::os::fd::AsFd::as_fd(s))?),
        None => None,
    };
    Ok(wait_forwarding(pid, master)?.code())
}

#[cfg(test)]
impl Args {
    pub fn env_for_tests(&self) -> &[String] {
        &self.env
    }
}
