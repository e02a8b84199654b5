//! Command-line definitions (clap) and dispatch; each command lives in its own file.

mod argv;
mod check;
mod checkpoint;
mod create;
mod delete;
mod events;
mod exec;
mod features;
mod image;
mod kill;
mod list;
mod logging;
mod migrate;
mod pause;
mod ps;
mod restore;
mod run;
mod spec;
mod start;
mod state;
mod update;

#[cfg(test)]
use std::path::Path;
use std::path::PathBuf;

use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};
use lcr::container::Store;

#[derive(Parser)]
#[command(
    name = "lcr",
    version,
    about = "OCI container runtime with CRIU checkpoint/restore",
    // As runc: a flag given more than once counts once, the last value winning (podman
    // repeats `--leave-running`). clap passes the setting down to every subcommand.
    args_override_self = true
)]
pub struct Cli {
    /// Directory for container state.
    #[arg(long, global = true, default_value = "/run/lcr")]
    root: PathBuf,
    /// Log file (default: stderr).
    #[arg(long, global = true)]
    log: Option<PathBuf>,
    /// Log format: text or json.
    #[arg(long, global = true, default_value = "text")]
    log_format: logging::Format,
    /// Debug logging.
    #[arg(long, global = true)]
    debug: bool,
    /// Accepted for runc compatibility; lcr manages cgroupfs directly.
    #[arg(long, global = true, hide = true)]
    systemd_cgroup: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    Spec(spec::Args),
    Create(create::Args),
    Start(start::Args),
    Run(run::Args),
    Exec(exec::Args),
    Kill(kill::Args),
    Delete(delete::Args),
    State(state::Args),
    List(list::Args),
    Ps(ps::Args),
    Pause(pause::Args),
    Resume(pause::ResumeArgs),
    Update(update::Args),
    Events(events::Args),
    Features(features::Args),
    Check(check::Args),
    Checkpoint(checkpoint::Args),
    Restore(restore::Args),
    Migrate(migrate::Args),
    #[command(hide = true)]
    MigrateReceive(migrate::ReceiveArgs),
    #[command(hide = true)]
    MigrateSettle(migrate::SettleArgs),
    Image(image::Args),
}

/// Runs the command; returns the process exit code.
pub fn main() -> i32 {
    let cli = match parse(std::env::args_os().skip(1).collect()) {
        Ok(cli) => cli,
        Err(code) => return code,
    };
    logging::init(cli.log.as_deref(), cli.log_format, cli.debug);
    let store = Store::new(&cli.root);
    let r = match cli.command {
        Command::Spec(a) => spec::run(a),
        Command::Create(a) => create::run(&store, a),
        Command::Start(a) => start::run(&store, a),
        Command::Run(a) => run::run(&store, a),
        Command::Exec(a) => exec::run(&store, a),
        Command::Kill(a) => kill::run(&store, a),
        Command::Delete(a) => delete::run(&store, a),
        Command::State(a) => state::run(&store, a),
        Command::List(a) => list::run(&store, a),
        Command::Ps(a) => ps::run(&store, a),
        Command::Pause(a) => pause::run(&store, a),
        Command::Resume(a) => pause::run_resume(&store, a),
        Command::Update(a) => update::run(&store, a),
        Command::Events(a) => events::run(&store, a),
        Command::Features(a) => features::run(a),
        Command::Check(a) => check::run(a),
        Command::Checkpoint(a) => checkpoint::run(&store, a),
        Command::Restore(a) => restore::run(&store, a),
        Command::Migrate(a) => migrate::run(&store, &cli.root, a),
        Command::MigrateReceive(a) => migrate::run_receive(&store, a),
        Command::MigrateSettle(a) => migrate::run_settle(&store, a),
        Command::Image(a) => image::run(a),
    };
    match r {
        Ok(code) => code,
        Err(e) => {
            let msg = message(&e);
            // The log (json for podman/conmon) gets it too; stderr gets one plain line.
            if cli.log.is_some() {
                tracing::error!("{msg}");
            }
            eprintln!("lcr: {msg}");
            1
        }
    }
}

/// The command line as runc takes it: long flags with one dash or two, and any flag given
/// more than once (podman repeats `--leave-running`) counting once, the last value winning.
/// A usage error goes to `--log` too, where containerd and podman look for the runtime's
/// last error; the `Err` is the exit code.
fn parse(args: Vec<std::ffi::OsString>) -> Result<Cli, i32> {
    let mut cmd = Cli::command();
    cmd.build();
    let args = argv::normalize(&cmd, args);
    let matches = cmd
        .try_get_matches_from(std::iter::once("lcr".into()).chain(args.iter().cloned()))
        .and_then(|m| Cli::from_arg_matches(&m));
    matches.map_err(|e| {
        if e.use_stderr() {
            let (log, format) = logging::target_in(&args);
            if log.is_some() {
                logging::init(log.as_deref(), format, false);
                let text = e.to_string();
                let first = text.lines().next().unwrap_or_default();
                tracing::error!("{}", first.trim_start_matches("error: "));
            }
        }
        let _ = e.print();
        e.exit_code()
    })
}

/// The error and its causes, joined: each error prints its own cause and returns none as
/// its source, so every cause appears once.
fn message(e: &anyhow::Error) -> String {
    format!("{e:#}")
}

pub fn print_json<T: serde::Serialize>(v: &T) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string(v)?);
    Ok(())
}

/// `--max-size` of the commands that read archives.
#[derive(clap::Args)]
pub struct MaxSize {
    /// Refuse an archive whose manifest declares more than this many bytes (K, M, G, T
    /// suffixes; the default is 64G).
    #[arg(long = "max-size", value_parser = parse_size, default_value_t = lcr::image::DEFAULT_MAX_TOTAL)]
    pub bytes: u64,
}

/// A size in bytes, with an optional K, M, G or T suffix (powers of 1024): `64G`.
pub fn parse_size(s: &str) -> Result<u64, String> {
    let (num, shift) = match s.trim().char_indices().last() {
        Some((i, c)) if c.is_ascii_alphabetic() => {
            let shift = match c.to_ascii_uppercase() {
                'K' => 10,
                'M' => 20,
                'G' => 30,
                'T' => 40,
                _ => return Err(format!("{s:?}: the suffix must be K, M, G or T")),
            };
            (&s.trim()[..i], shift)
        }
        _ => (s.trim(), 0),
    };
    let n: u64 = num
        .parse()
        .map_err(|_| format!("{s:?}: not a size (a number of bytes, or e.g. 64G)"))?;
    n.checked_mul(1u64 << shift)
        .ok_or_else(|| format!("{s:?}: too large"))
}

#[cfg(test)]
mod size_tests {
    #[test]
    fn sizes_parse() {
        assert_eq!(super::parse_size("123").unwrap(), 123);
        assert_eq!(super::parse_size("64G").unwrap(), 64 << 30);
        assert_eq!(super::parse_size("2k").unwrap(), 2048);
        assert!(super::parse_size("1X").is_err());
        assert!(super::parse_size("G").is_err());
        assert!(super::parse_size("99999999999T").is_err());
    }
}

#[cfg(test)]
mod parse_tests {
    use super::*;

    fn cli(args: &[&str]) -> Result<Cli, i32> {
        parse(args.iter().map(Into::into).collect())
    }

    #[test]
    fn repeated_flags_count_once_and_lists_still_gather() {
        assert!(cli(&["checkpoint", "--leave-running", "--leave-running", "id"]).is_ok());
        assert!(
            cli(&["--root", "/a", "--root", "/b", "list"]).is_ok_and(|c| c.root == Path::new("/b"))
        );
        let Ok(Cli {
            command: Command::Exec(e),
            ..
        }) = cli(&["exec", "--env", "A=1", "-e", "B=2", "id", "true"])
        else {
            panic!("exec did not parse");
        };
        assert_eq!(e.env_for_tests(), ["A=1", "B=2"]);
    }

    #[test]
    fn one_dash_long_flags_parse() {
        let Ok(Cli {
            command: Command::Restore(_),
            root,
            ..
        }) = cli(&[
            "-root",
            "/r",
            "restore",
            "-no-subreaper",
            "-bundle",
            "/b",
            "id",
        ])
        else {
            panic!("restore did not parse");
        };
        assert_eq!(root, Path::new("/r"));
    }
}
