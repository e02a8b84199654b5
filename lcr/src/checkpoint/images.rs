//! Where a checkpoint's images live: a directory the caller names (kept), or a temporary one
//! for an export or an import (removed afterwards, CRIU's log of a failure kept).

use std::path::{Path, PathBuf};

use crate::fsutil::WorkDir;
use crate::{Error, Result};

pub enum ImageDir {
    At(PathBuf),
    Temporary(WorkDir),
}

impl ImageDir {
    /// A fresh temporary directory, named for what it serves (`export`, `import`).
    pub fn temporary(purpose: &str) -> Result<Self> {
        Ok(Self::Temporary(crate::fsutil::work_dir(purpose)?))
    }

    /// A fresh temporary directory below `parent` (a tmpfs, say), removed when dropped.
    pub fn temporary_in(parent: &Path, purpose: &str) -> Result<Self> {
        Ok(Self::Temporary(crate::fsutil::work_dir_in(
            parent, purpose,
        )?))
    }

    pub fn path(&self) -> &Path {
        match self {
            Self::At(p) => p,
            Self::Temporary(w) => w.path(),
        }
    }

    /// `e`, and for a temporary directory a copy of CRIU's log `name` (from `work_dir`, which
    /// goes with it) kept as [`keep_log`] keeps it.
    pub(super) fn keeping_log(&self, e: Error, work_dir: &Path, name: &str, id: &str) -> Error {
        match self {
            Self::At(_) => e,
            Self::Temporary(_) => keep_log(e, work_dir, name, id),
        }
    }
}

/// `e`, with a copy of CRIU's log `name` from a work directory about to go kept at
/// `$TMPDIR/lcr-<name>-<id>.log` and named in the error.
pub(super) fn keep_log(e: Error, work_dir: &Path, name: &str, id: &str) -> Error {
    let kept = std::env::temp_dir().join(format!("lcr-{}-{id}.log", name.trim_end_matches(".log")));
    match std::fs::copy(work_dir.join(name), &kept) {
        Ok(_) => Error::LogKept {
            error: Box::new(e),
            log: kept,
        },
        Err(_) => e,
    }
}
