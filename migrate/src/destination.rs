//! Where a container migrates to: `ssh://[user@]host[:port]` or `[user@]host`.

use crate::{Error, Result};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Destination {
    pub user: Option<String>,
    /// A host name or an address (IPv6 without its brackets).
    pub host: String,
    pub port: Option<u16>,
}

fn invalid(value: &str, reason: &str) -> Error {
    Error::Invalid {
        what: "destination",
        value: value.to_string(),
        reason: reason.to_string(),
    }
}

impl Destination {
    pub fn parse(text: &str) -> Result<Self> {
        let (url, rest) = match text.strip_prefix("ssh://") {
            Some(rest) => (true, rest.trim_end_matches('/')),
            None => (false, text),
        };
        let (user, hostport) = match rest.rsplit_once('@') {
            Some((u, h)) => (Some(u), h),
            None => (None, rest),
        };
        let (host, port) = split_port(hostport, url).map_err(|r| invalid(text, r))?;
        if let Some(u) = user {
            check_user(u).map_err(|r| invalid(text, r))?;
        }
        check_host(host).map_err(|r| invalid(text, r))?;
        Ok(Self {
            user: user.map(str::to_string),
            host: host.to_string(),
            port,
        })
    }

    /// What ssh is given as its destination argument: `[user@]host`.
    pub fn target(&self) -> String {
        match &self.user {
            Some(u) => format!("{u}@{}", self.host),
            None => self.host.clone(),
        }
    }
}

impl std::fmt::Display for Destination {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let host = if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        match (&self.user, self.port) {
            (Some(u), Some(p)) => write!(f, "ssh://{u}@{host}:{p}"),
            (Some(u), None) => write!(f, "ssh://{u}@{host}"),
            (None, Some(p)) => write!(f, "ssh://{host}:{p}"),
            (None, None) => write!(f, "ssh://{host}"),
        }
    }
}

/// The host and the port: `[v6]:port`, `host:port` (in a URL), or a bare host.
fn split_port(s: &str, url: bool) -> std::result::Result<(&str, Option<u16>), &'static str> {
    let port = |p: &str| match p.parse::<u16>() {
        Ok(n) if n > 0 => Ok(n),
        _ => Err("the port is not a number from 1 to 65535"),
    };
    if let Some(rest) = s.strip_prefix('[') {
        let (host, after) = rest.split_once(']').ok_or("an unclosed [ in the host")?;
        return match after.strip_prefix(':') {
            Some(p) => Ok((host, Some(port(p)?))),
            None if after.is_empty() => Ok((host, None)),
            None => Err("text after the ] of the host"),
        };
    }
    match s.rsplit_once(':') {
        // Without ssh://, a colon is scp's host:path, not a port: refused rather than guessed.
        Some(_) if !url => Err("a port needs the ssh://host:port form"),
        Some((h, p)) if !h.contains(':') => Ok((h, Some(port(p)?))),
        Some(_) => Err("an IPv6 address needs brackets: ssh://[addr]:port"),
        None => Ok((s, None)),
    }
}

/// No leading dash (ssh would read an option), nothing a remote shell or ssh treats
/// specially.
fn check_host(h: &str) -> std::result::Result<(), &'static str> {
    if h.is_empty() {
        return Err("no host");
    }
    if h.starts_with('-') {
        return Err("a host may not start with '-'");
    }
    if !h
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | ':' | '%'))
    {
        return Err("a host is letters, digits and . - _ : % only");
    }
    Ok(())
}

fn check_user(u: &str) -> std::result::Result<(), &'static str> {
    if u.is_empty() || u.starts_with('-') {
        return Err("a user name may not be empty or start with '-'");
    }
    if !u
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'))
    {
        return Err("a user name is letters, digits and . - _ only");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_forms_ssh_users_write() {
        let d = Destination::parse("ssh://root@10.0.0.2:2222").unwrap();
        assert_eq!(
            (d.user.as_deref(), d.host.as_str(), d.port),
            (Some("root"), "10.0.0.2", Some(2222))
        );
        assert_eq!(d.target(), "root@10.0.0.2");
        assert_eq!(d.to_string(), "ssh://root@10.0.0.2:2222");
        let d = Destination::parse("web-2.example").unwrap();
        assert_eq!((d.user, d.port), (None, None));
        let d = Destination::parse("ssh://[fd00::2]:22").unwrap();
        assert_eq!((d.host.as_str(), d.port), ("fd00::2", Some(22)));
        assert_eq!(d.to_string(), "ssh://[fd00::2]:22");
        assert_eq!(
            Destination::parse("admin@host").unwrap().target(),
            "admin@host"
        );
    }

    #[test]
    fn refuses_what_ssh_or_a_shell_would_read_otherwise() {
        for bad in [
            "-oProxyCommand=touch /tmp/x",
            "ssh://-oProxyCommand=x",
            "root@-host",
            "-root@host",
            "host;reboot",
            "ho st",
            "host:22",
            "ssh://host:99999",
            "ssh://fd00::2",
            "ssh://[fd00::2",
            "",
            "ssh://",
        ] {
            assert!(Destination::parse(bad).is_err(), "{bad:?} accepted");
        }
    }
}
