//! The ssh connection to the receiving lcr: the user's own `ssh` (their config, keys and
//! known hosts), never prompting (`BatchMode=yes`), no terminal, the remote command built so
//! that the remote shell cannot reinterpret it.

use std::process::{Command, Stdio};

use crate::{Destination, Error, Result};

/// The command run on the destination: a program and its arguments, each passed as one word.
#[derive(Debug, Clone)]
pub struct RemoteCommand {
    pub program: String,
    pub args: Vec<String>,
}

impl RemoteCommand {
    pub fn new(program: impl Into<String>) -> Self {
        Self {
            program: program.into(),
            args: Vec::new(),
        }
    }

    pub fn arg(mut self, a: impl Into<String>) -> Self {
        self.args.push(a.into());
        self
    }

    /// ssh hands the remote side one string, which the login shell splits: every word is
    /// quoted so that it arrives as it was. A NUL or a newline cannot be passed at all.
    pub fn shell_line(&self) -> Result<String> {
        std::iter::once(&self.program)
            .chain(&self.args)
            .map(|w| quote(w))
            .collect::<Result<Vec<_>>>()
            .map(|words| words.join(" "))
    }
}

/// One word in single quotes (a quote inside written as `'\''`); plain words as they are.
fn quote(word: &str) -> Result<String> {
    if word.contains(['\0', '\n', '\r']) {
        return Err(Error::Invalid {
            what: "remote argument",
            value: word.to_string(),
            reason: "a NUL or a line break cannot be passed to the remote side".into(),
        });
    }
    let plain = !word.is_empty()
        && word.chars().all(|c| {
            c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '/' | '=' | ':' | ',')
        });
    Ok(if plain {
        word.to_string()
    } else {
        format!("'{}'", word.replace('\'', r"'\''"))
    })
}

/// A link that goes dead (a cable, a firewall dropping the flow) leaves TCP silent, not
/// closed: ssh's keepalives end the session within 30 s, where lcr's own silence limit
/// would wait minutes. Answered by the remote sshd, so a long restore is no silence.
const KEEPALIVE: [&str; 2] = ["ServerAliveInterval=10", "ServerAliveCountMax=3"];

/// How ssh is run: which program (`--ssh`) and the `-o` options the user added.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Ssh {
    pub program: String,
    pub options: Vec<String>,
}

impl Default for Ssh {
    fn default() -> Self {
        Self {
            program: "ssh".into(),
            options: Vec::new(),
        }
    }
}

impl Ssh {
    /// `ssh -T -o BatchMode=yes [-p PORT] [-o OPT]… [keepalives] -- [user@]host 'remote command'`, with
    /// stdin and stdout piped (the protocol's channel) and stderr piped (ssh's own errors,
    /// quoted when the connection fails).
    pub fn command(&self, dest: &Destination, remote: &RemoteCommand) -> Result<Command> {
        let mut cmd = Command::new(&self.program);
        cmd.args(["-T", "-o", "BatchMode=yes"]);
        if let Some(p) = dest.port {
            cmd.arg("-p").arg(p.to_string());
        }
        for o in &self.options {
            if o.contains(['\0', '\n', '\r']) || o.starts_with('-') {
                return Err(Error::Invalid {
                    what: "ssh option",
                    value: o.clone(),
                    reason: "an -o option is one `Key=value` line".into(),
                });
            }
            cmd.arg("-o").arg(o);
        }
        // ssh takes an option's first value: the user's -o above win over these.
        for o in KEEPALIVE {
            cmd.arg("-o").arg(o);
        }
        cmd.arg("--").arg(dest.target()).arg(remote.shell_line()?);
        cmd.stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        Ok(cmd)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_arrive_as_they_were() {
        let r = RemoteCommand::new("lcr")
            .arg("--root")
            .arg("/run/lcr dest")
            .arg("it's; rm -rf /")
            .arg("$(reboot)")
            .arg("");
        assert_eq!(
            r.shell_line().unwrap(),
            r"lcr --root '/run/lcr dest' 'it'\''s; rm -rf /' '$(reboot)' ''"
        );
        assert!(RemoteCommand::new("lcr").arg("a\nb").shell_line().is_err());
    }

    #[test]
    fn the_ssh_command_never_prompts_and_ends_its_options() {
        let d = Destination::parse("ssh://root@10.0.0.2:2222").unwrap();
        let ssh = Ssh {
            program: "ssh".into(),
            options: vec!["StrictHostKeyChecking=yes".into()],
        };
        let cmd = ssh
            .command(&d, &RemoteCommand::new("lcr").arg("x y"))
            .unwrap();
        let args: Vec<String> = cmd.get_args().map(|a| a.to_string_lossy().into()).collect();
        assert_eq!(
            args,
            [
                "-T",
                "-o",
                "BatchMode=yes",
                "-p",
                "2222",
                "-o",
                "StrictHostKeyChecking=yes",
                "-o",
                "ServerAliveInterval=10",
                "-o",
                "ServerAliveCountMax=3",
                "--",
                "root@10.0.0.2",
                "lcr 'x y'"
            ]
        );
        let bad = Ssh {
            program: "ssh".into(),
            options: vec!["-oProxyCommand=x".into()],
        };
        assert!(bad.command(&d, &RemoteCommand::new("lcr")).is_err());
    }
}
