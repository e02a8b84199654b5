use std::path::PathBuf;

use crate::session::RequestKind;

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong between lcr and CRIU.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("criu binary {0:?} not found (install CRIU >= 4.1: scripts/install-criu.sh)")]
    NotFound(PathBuf),

    #[error("criu {found} is too old: {needed} or newer is required")]
    TooOld { found: String, needed: String },

    // The errors below print their cause in their own message, so they return none as
    // `source`: a chain printed cause by cause says everything once.
    #[error("cannot start {binary:?} swrk: {cause}")]
    Spawn {
        binary: PathBuf,
        cause: std::io::Error,
    },

    #[error("criu RPC protocol error: {0}")]
    Protocol(String),

    #[error("criu RPC socket: {0}")]
    Io(std::io::Error),

    #[error("criu RPC message encoding: {0}")]
    Encode(protobuf::Error),

    /// CRIU answered the request with `success = false`.
    #[error("{}", criu_failure_text(.request, .errno, .errmsg, .log_file, .log_excerpt))]
    Criu {
        request: RequestKind,
        /// `cr_errno` from the reply (0 when CRIU did not set it).
        errno: i32,
        /// `cr_errmsg` from the reply, when CRIU set one.
        errmsg: Option<String>,
        /// The CRIU log file of the request, when the options named one.
        log_file: Option<PathBuf>,
        /// The error lines of that log with a little context (see [`crate::log_excerpt`]).
        log_excerpt: Option<String>,
    },

    /// The caller's notification handler refused a notification, so CRIU aborted.
    #[error("criu {request} aborted: the {script} notification handler failed: {reason}")]
    NotifyRefused {
        request: RequestKind,
        script: String,
        reason: String,
    },

    /// The lazy-pages daemon failed (its log's error lines are in the text).
    #[error("criu lazy-pages {0}")]
    LazyPages(String),

    #[error("invalid criu option {option}: {reason}")]
    InvalidOption {
        option: &'static str,
        reason: String,
    },
}

impl From<std::io::Error> for Error {
    fn from(e: std::io::Error) -> Self {
        Error::Io(e)
    }
}

impl From<protobuf::Error> for Error {
    fn from(e: protobuf::Error) -> Self {
        Error::Encode(e)
    }
}

fn criu_failure_text(
    request: &RequestKind,
    errno: &i32,
    errmsg: &Option<String>,
    log_file: &Option<PathBuf>,
    log_excerpt: &Option<String>,
) -> String {
    let mut s = format!("criu {request} failed");
    if let Some(m) = errmsg.as_deref().filter(|m| !m.is_empty()) {
        s.push_str(": ");
        s.push_str(m);
    }
    if *errno != 0 {
        s.push_str(&format!(
            " (errno {errno}: {})",
            std::io::Error::from_raw_os_error(*errno)
        ));
    }
    if let Some(ex) = log_excerpt.as_deref().filter(|e| !e.is_empty()) {
        s.push_str("\n  from the criu log:\n");
        for line in ex.lines() {
            s.push_str("    ");
            s.push_str(line);
            s.push('\n');
        }
    }
    if let Some(p) = log_file {
        s.push_str(&format!("\n  full log: {}", p.display()));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn criu_failures_read_well() {
        let e = Error::Criu {
            request: RequestKind::Restore,
            errno: 2,
            errmsg: Some("Error (criu/image.c:726): Can't open dir /img".into()),
            log_file: Some(PathBuf::from("/img/restore.log")),
            log_excerpt: Some(
                "(0.1) a\n(0.2) Error (criu/image.c:726): Can't open dir /img\n".into(),
            ),
        };
        let t = e.to_string();
        assert!(
            t.starts_with("criu restore failed: Error (criu/image.c:726): Can't open dir /img"),
            "{t}"
        );
        assert!(t.contains("errno 2: No such file or directory"), "{t}");
        assert!(t.contains("    (0.2) Error"), "{t}");
        assert!(t.ends_with("full log: /img/restore.log"), "{t}");
        let bare = Error::Criu {
            request: RequestKind::Dump,
            errno: 0,
            errmsg: None,
            log_file: None,
            log_excerpt: None,
        };
        assert_eq!(bare.to_string(), "criu dump failed");
    }
}
