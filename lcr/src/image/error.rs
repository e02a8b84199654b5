use std::path::PathBuf;

/// Errors of checkpoint archives and image directories. Each names the archive (or directory)
/// and, where there is one, the entry at fault.
#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    // The io error's text is part of the message, so it is not also returned as `source`.
    #[error("{path}: {context}: {cause}")]
    Io {
        path: PathBuf,
        context: String,
        cause: std::io::Error,
    },

    /// Input that is refused on purpose: unsafe, unexpected or inconsistent with the manifest.
    #[error("{archive}: entry {entry:?}: refused: {reason}")]
    Refused {
        archive: String,
        entry: String,
        reason: String,
    },

    /// The archive or directory is damaged or incomplete.
    #[error("{archive}: {reason}")]
    Broken { archive: String, reason: String },

    #[error("{archive}: entry {entry:?}: checksum mismatch: the manifest says sha256 {expected}, the data has {actual}")]
    Checksum {
        archive: String,
        entry: String,
        expected: String,
        actual: String,
    },
}

pub type Result<T, E = ImageError> = std::result::Result<T, E>;

impl ImageError {
    pub(crate) fn io(
        path: impl Into<PathBuf>,
        context: impl Into<String>,
    ) -> impl FnOnce(std::io::Error) -> Self {
        let (path, context) = (path.into(), context.into());
        move |cause| ImageError::Io {
            path,
            context,
            cause,
        }
    }
}
