use std::path::PathBuf;

use crate::container::Status;

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Errors of the lcr library. Each message names the file, field, container or value at fault.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("bundle {path}: {reason}")]
    Bundle { path: PathBuf, reason: String },

    /// A config.json field that is missing, malformed or not allowed.
    #[error("{file}: {field}: {reason}")]
    Config {
        file: PathBuf,
        field: String,
        reason: String,
    },

    #[error("invalid container id {id:?}: {reason}")]
    InvalidId { id: String, reason: String },

    #[error("container {0:?} already exists")]
    Exists(String),

    #[error("container {0:?} does not exist")]
    NotFound(String),

    #[error("container {id:?} is {status}: cannot {action} it")]
    BadState {
        id: String,
        status: Status,
        action: &'static str,
    },

    #[error("container {id:?} is busy: another lcr command has held it for {} s", waited.as_secs())]
    Busy {
        id: String,
        waited: std::time::Duration,
    },

    #[error("unknown signal {0:?}")]
    Signal(String),

    #[error("invalid value {value:?} for {what}: {reason}")]
    Value {
        what: String,
        value: String,
        reason: String,
    },

    #[error("cgroup {path}: {reason}")]
    Cgroup { path: String, reason: String },

    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },

    #[error("{context}: {source}")]
    Sys {
        context: String,
        #[source]
        source: nix::Error,
    },

    /// The container's init (or an exec'd process) failed while being set up.
    #[error("container {id:?}: {reason}")]
    Init { id: String, reason: String },

    #[error("{kind} hook {path}: {reason}")]
    Hook {
        kind: &'static str,
        path: PathBuf,
        reason: String,
    },

    /// Images whose processes would run less confined than the restore bundle allows.
    #[error("restore from {image}: refused by {config}: {reason}")]
    Isolation {
        image: PathBuf,
        config: PathBuf,
        reason: String,
    },

    /// lcr stopped CRIU: it ran past its time or its log past its cap.
    #[error("restore from {image}: {reason}")]
    CriuStopped { image: PathBuf, reason: String },

    /// A tree lcr was removing holds another mount: it is left in place, not walked into.
    #[error("not removing {dir}: {mount} is a mount point inside it (left in place)")]
    MountInside { dir: PathBuf, mount: PathBuf },

    #[error("{context}: {reason}")]
    Other { context: String, reason: String },

    #[error(transparent)]
    Criu(#[from] criurpc::Error),

    #[error(transparent)]
    Image(#[from] crate::image::ImageError),
}

/// Adds a description of what was being done to io and nix errors.
pub trait Context<T> {
    fn ctx(self, context: impl FnOnce() -> String) -> Result<T>;
}

impl<T> Context<T> for std::result::Result<T, std::io::Error> {
    fn ctx(self, context: impl FnOnce() -> String) -> Result<T> {
        self.map_err(|source| Error::Io {
            context: context(),
            source,
        })
    }
}

impl<T> Context<T> for std::result::Result<T, nix::Error> {
    fn ctx(self, context: impl FnOnce() -> String) -> Result<T> {
        self.map_err(|source| Error::Sys {
            context: context(),
            source,
        })
    }
}
