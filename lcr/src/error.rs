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

    /// A field of the process or container config that cannot be used (where the file it came
    /// from is not known: an exec's process, say).
    #[error("{field}: {reason}")]
    Field { field: String, reason: String },

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

    // Each error prints its cause inside its own message, and so returns none as `source`:
    // a chain printed cause by cause then says everything once.
    #[error("{context}: {cause}")]
    Io {
        context: String,
        cause: std::io::Error,
    },

    #[error("{context}: {cause}")]
    Sys { context: String, cause: nix::Error },

    #[error("{context}: {cause}")]
    Json {
        context: String,
        cause: serde_json::Error,
    },

    /// oci-spec refused a document lcr built.
    #[error("{what}: {cause}")]
    Spec {
        what: String,
        cause: oci_spec::OciSpecError,
    },

    /// What went wrong while doing `context` (a mount, say), the inner error being lcr's own.
    #[error("{context}: {error}")]
    During { context: String, error: Box<Error> },

    /// The container's init (or an exec'd process) failed while being set up.
    #[error("container {id:?}: {reason}")]
    Init { id: String, reason: String },

    /// The process being set up reported a failure, or broke the setup protocol.
    #[error("container process: {0}")]
    Child(String),

    /// lcr must fork without exec from a single thread (see `process::spawn`).
    #[error("fork a container process: lcr has {0} threads; it forks without exec and must have one (a bug in lcr)")]
    Threaded(usize),

    #[error("wait for pid {0}: it is not our child (lcr must be its subreaper)")]
    NotOurChild(i32),

    #[error("read /proc/{0}/stat: the process is gone before its start time could be recorded")]
    ProcessGone(i32),

    #[error("console: {0}")]
    Console(String),

    #[error("{kind} hook {path}: {reason}")]
    Hook {
        kind: &'static str,
        path: PathBuf,
        reason: String,
    },

    /// A path inside a container's rootfs that cannot be resolved there.
    #[error("{what}: {path}: {reason}")]
    InRoot {
        what: String,
        path: PathBuf,
        reason: String,
    },

    #[error("capabilities: {what}: {reason}")]
    Capability { what: String, reason: String },

    #[error("{stage} seccomp filter: {reason}")]
    Seccomp { stage: &'static str, reason: String },

    /// A command-line option (or a pair of them) this request cannot honour.
    #[error("{option}: {reason}")]
    Option { option: String, reason: String },

    /// The kernel (or its settings) lacks what an option needs; `remedy` says what to do.
    #[error("{option}: this kernel has no {feature}: {remedy}")]
    KernelLacks {
        option: String,
        feature: String,
        remedy: String,
    },

    /// The host lacks something lcr needs (not a kernel feature: a mount, a setting).
    #[error("{what}: {reason}")]
    Host { what: String, reason: String },

    /// A directory that is not a (complete) lcr checkpoint.
    #[error("checkpoint {dir}: {reason}")]
    NotACheckpoint { dir: PathBuf, reason: String },

    /// A checkpoint this host or this restore bundle cannot restore; nothing was made.
    #[error("restore from {image}: {reason}")]
    NotRestorable { image: String, reason: String },

    /// A checkpoint's bind-mount contents that cannot be written back.
    #[error("volume {destination}: {reason}")]
    Volume { destination: String, reason: String },

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

    /// CRIU failed, and lcr knows the likely reason (`hint`).
    #[error("{error}\n  hint: {hint}")]
    CriuHint { error: criurpc::Error, hint: String },

    /// A failure whose CRIU log outlives the temporary directory it was written in (the
    /// images of an export or import, a clone's work directory).
    #[error("{error}\n  CRIU's log is kept at {} (its temporary directory is removed)", log.display())]
    LogKept { error: Box<Error>, log: PathBuf },

    #[error("{what}: did not finish within {} s", within.as_secs())]
    Timeout {
        what: String,
        within: std::time::Duration,
    },

    /// A tree lcr was removing holds another mount: it is left in place, not walked into.
    #[error("not removing {dir}: {mount} is a mount point inside it (left in place)")]
    MountInside { dir: PathBuf, mount: PathBuf },

    #[error(transparent)]
    Criu(#[from] criurpc::Error),

    #[error(transparent)]
    Image(#[from] crate::image::ImageError),
}

impl Error {
    /// This error as the cause of a failure while doing `context`.
    pub fn during(self, context: impl Into<String>) -> Self {
        Error::During {
            context: context.into(),
            error: Box::new(self),
        }
    }
}

/// Adds a description of what was being done to io and nix errors.
pub trait Context<T> {
    fn ctx(self, context: impl FnOnce() -> String) -> Result<T>;
}

impl<T> Context<T> for std::result::Result<T, std::io::Error> {
    fn ctx(self, context: impl FnOnce() -> String) -> Result<T> {
        self.map_err(|cause| Error::Io {
            context: context(),
            cause,
        })
    }
}

impl<T> Context<T> for std::result::Result<T, nix::Error> {
    fn ctx(self, context: impl FnOnce() -> String) -> Result<T> {
        self.map_err(|cause| Error::Sys {
            context: context(),
            cause,
        })
    }
}

impl<T> Context<T> for std::result::Result<T, serde_json::Error> {
    fn ctx(self, context: impl FnOnce() -> String) -> Result<T> {
        self.map_err(|cause| Error::Json {
            context: context(),
            cause,
        })
    }
}
