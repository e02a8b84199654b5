use std::str::FromStr;

use nix::sys::signal::{kill as send, Signal};
use nix::unistd::Pid;

use super::{Action, Container};
use crate::error::Context;
use crate::{Error, Result};

/// Parses `KILL`, `SIGKILL`, `kill` or `9`.
pub fn parse_signal(s: &str) -> Result<Signal> {
    if let Ok(n) = s.parse::<i32>() {
        return Signal::try_from(n).map_err(|_| Error::Signal(s.to_string()));
    }
    let up = s.to_ascii_uppercase();
    let name = if up.starts_with("SIG") {
        up
    } else {
        format!("SIG{up}")
    };
    Signal::from_str(&name).map_err(|_| Error::Signal(s.to_string()))
}

/// Sends `sig` to the init, or with `all` to every process in the container's cgroup.
pub fn kill(c: &Container, sig: Signal, all: bool) -> Result<()> {
    c.allow(Action::Kill)?;
    if all {
        for p in c.pids() {
            let _ = send(Pid::from_raw(p), sig);
        }
        return Ok(());
    }
    send(Pid::from_raw(c.state.pid), sig).ctx(|| format!("kill {} {sig}", c.state.pid))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signal_names_and_numbers() {
        assert_eq!(parse_signal("KILL").unwrap(), Signal::SIGKILL);
        assert_eq!(parse_signal("sigterm").unwrap(), Signal::SIGTERM);
        assert_eq!(parse_signal("15").unwrap(), Signal::SIGTERM);
        let e = parse_signal("SIGNOPE").unwrap_err().to_string();
        assert!(e.contains("SIGNOPE"), "{e}");
        assert!(parse_signal("99").is_err());
    }
}
