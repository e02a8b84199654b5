/// Errors of a migration. Each names the host or the value at fault.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A destination, ssh option or remote argument that is refused before anything runs.
    #[error("{what} {value:?}: {reason}")]
    Invalid {
        what: &'static str,
        value: String,
        reason: String,
    },

    /// One host cannot take part (its pre-flight failed, or it refused); nothing was touched.
    #[error("{host}: {reason}")]
    Refused { host: String, reason: String },

    /// The connection broke while the destination restored: the container may run there, and
    /// is left frozen here; the message says how to finish.
    #[error("{0}")]
    Undecided(String),

    /// lcr's own operation failed (the dump, the restore).
    #[error(transparent)]
    Lcr(#[from] lcr::Error),

    /// The other lcr broke the protocol (or is not an lcr speaking it).
    #[error("migration protocol: {0}")]
    Protocol(String),

    /// The connection failed (ssh exited, a pipe broke).
    #[error("{context}: {cause}")]
    Io {
        context: String,
        cause: std::io::Error,
    },
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
