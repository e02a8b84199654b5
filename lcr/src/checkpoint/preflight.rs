//! What a checkpoint refuses before anything is touched: options the kernel or CRIU cannot
//! serve, and options an archive cannot hold.

use super::CheckpointOpts;
use crate::{Error, Result};

/// Fails when the kernel or CRIU lacks what the options need.
pub(super) fn check_kernel(opts: &CheckpointOpts) -> Result<()> {
    let needs_dirty = opts.pre_dump || opts.parent_path.is_some();
    if !(needs_dirty || opts.settings.lazy_pages) {
        return Ok(());
    }
    let f = opts.settings.criu.features()?;
    if needs_dirty && !f.mem_track {
        let flag = if opts.pre_dump {
            "--pre-dump"
        } else {
            "--parent-path"
        };
        return Err(Error::KernelLacks {
            option: flag.into(),
            feature: "dirty memory tracking (soft-dirty, CONFIG_MEM_SOFT_DIRTY)".into(),
            remedy: "iterative pre-copy checkpoints are unavailable; use a plain checkpoint".into(),
        });
    }
    if opts.settings.lazy_pages {
        if !f.lazy_pages {
            return Err(Error::KernelLacks {
                option: "--lazy-pages".into(),
                feature: "non-cooperative userfaultfd".into(),
                remedy: "lazy pages are unavailable; use a plain checkpoint".into(),
            });
        }
        if let Some(why) = crate::check::lazy_pages_blocker() {
            return Err(Error::Option {
                option: "--lazy-pages".into(),
                reason: why,
            });
        }
    }
    Ok(())
}

/// Refuses option combinations an archive cannot hold.
pub(super) fn check_export(opts: &CheckpointOpts) -> Result<()> {
    if opts.export.is_none() {
        return Ok(());
    }
    let conflict = if opts.pre_dump {
        Some("--pre-dump (a pre-dump is not restorable on its own)")
    } else if opts.settings.lazy_pages {
        Some("--lazy-pages (the memory stays behind, served on demand)")
    } else if opts.page_server.is_some() || opts.page_server_fd.is_some() {
        Some("--page-server (the memory goes to the page server)")
    } else {
        None
    };
    match conflict {
        Some(conflict) => Err(Error::Option {
            option: "--export".into(),
            reason: format!("cannot be combined with {conflict}"),
        }),
        None => Ok(()),
    }
}
