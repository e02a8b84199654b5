//! runc's flag syntax on top of clap's: Go's flag parsing takes every long flag with one dash
//! or two (`-no-subreaper`, which containerd's runc shim sends), so lcr rewrites the one-dash
//! form of its own long flags before clap sees them.

use std::ffi::OsString;

use clap::Command;

/// `args` (without the program name) with every `-name[=value]` that names a long flag of the
/// command it stands in rewritten to `--name[=value]`. Values, positionals, `--` and the
/// command line of `exec` pass untouched.
pub fn normalize(root: &Command, args: Vec<OsString>) -> Vec<OsString> {
    let mut cmd = root;
    let mut out = Vec::with_capacity(args.len());
    let mut positionals = 0;
    let mut it = args.into_iter();
    while let Some(arg) = it.next() {
        let Some(text) = arg.to_str() else {
            out.push(arg);
            continue;
        };
        if text == "--" {
            out.push(arg);
            out.extend(it);
            break;
        }
        let long = text
            .strip_prefix("--")
            .or_else(|| text.strip_prefix('-').filter(|n| n.len() > 1));
        if let Some(rest) = long {
            let (name, inline_value) = match rest.split_once('=') {
                Some((n, _)) => (n, true),
                None => (rest, false),
            };
            match cmd.get_arguments().find(|a| a.get_long() == Some(name)) {
                Some(flag) => {
                    out.push(format!("--{rest}").into());
                    if flag.get_action().takes_values() && !inline_value {
                        out.extend(it.next());
                    }
                }
                None => out.push(arg),
            }
            continue;
        }
        if let Some(short) = text.strip_prefix('-') {
            // `-b VALUE`: the value is not a flag, whatever it looks like.
            let mut letters = short.chars();
            let only = letters.next().filter(|_| letters.next().is_none());
            let takes_value = only.is_some()
                && cmd
                    .get_arguments()
                    .any(|a| a.get_short() == only && a.get_action().takes_values());
            out.push(arg);
            if takes_value {
                out.extend(it.next());
            }
            continue;
        }
        if let Some(sub) = cmd.find_subcommand(text) {
            cmd = sub;
            positionals = 0;
            out.push(arg);
            continue;
        }
        out.push(arg);
        positionals += 1;
        // Past the fixed positionals of a command that ends in a command line (exec), every
        // word belongs to that command line.
        let fixed = cmd
            .get_positionals()
            .filter(|a| !a.is_trailing_var_arg_set())
            .count();
        if cmd.get_positionals().any(|a| a.is_trailing_var_arg_set()) && positionals >= fixed {
            out.extend(it);
            break;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::{Arg, ArgAction};

    fn cli() -> Command {
        let mut c = Command::new("lcr")
            .arg(
                Arg::new("root")
                    .long("root")
                    .global(true)
                    .action(ArgAction::Set),
            )
            .subcommand(
                Command::new("restore")
                    .arg(
                        Arg::new("no-subreaper")
                            .long("no-subreaper")
                            .action(ArgAction::SetTrue),
                    )
                    .arg(Arg::new("bundle").long("bundle").short('b'))
                    .arg(Arg::new("id")),
            )
            .subcommand(
                Command::new("exec")
                    .arg(
                        Arg::new("tty")
                            .long("tty")
                            .short('t')
                            .action(ArgAction::SetTrue),
                    )
                    .arg(Arg::new("id"))
                    .arg(Arg::new("cmd").num_args(1..).trailing_var_arg(true)),
            );
        c.build();
        c
    }

    fn run(args: &[&str]) -> Vec<String> {
        normalize(&cli(), args.iter().map(OsString::from).collect())
            .into_iter()
            .map(|s| s.into_string().unwrap())
            .collect()
    }

    #[test]
    fn one_dash_long_flags_become_two() {
        assert_eq!(
            run(&[
                "-root",
                "/r",
                "restore",
                "-no-subreaper",
                "-bundle",
                "-b",
                "x"
            ]),
            [
                "--root",
                "/r",
                "restore",
                "--no-subreaper",
                "--bundle",
                "-b",
                "x"
            ]
        );
        assert_eq!(
            run(&["restore", "-bundle=/b", "-root=/r", "id"]),
            ["restore", "--bundle=/b", "--root=/r", "id"]
        );
    }

    #[test]
    fn values_unknown_names_and_command_lines_pass() {
        assert_eq!(
            run(&["restore", "-xyz", "-b", "-root", "-tty"]),
            ["restore", "-xyz", "-b", "-root", "-tty"]
        );
        assert_eq!(
            run(&["exec", "-tty", "id", "ls", "-tty", "--root"]),
            ["exec", "--tty", "id", "ls", "-tty", "--root"]
        );
        assert_eq!(run(&["restore", "--", "-root"]), ["restore", "--", "-root"]);
    }
}
