//! What a restore refuses before anything is made: images this host, this CRIU or this
//! restore bundle cannot restore.

use std::path::Path;

use crate::image::record::{machine_arch, Record};
use crate::spec::Bundle;
use crate::{Error, Result};

/// Refuses images this host or this bundle cannot restore, before anything is made.
pub(super) fn check_compatible(
    record: &Record,
    image_dir: &Path,
    bundle: &Bundle,
    lazy: bool,
) -> Result<()> {
    let bad = |reason: String| Error::NotRestorable {
        image: image_dir.display().to_string(),
        reason,
    };
    // A lazy restore starts while its dump still serves pages: the record is provisional then.
    if record.provisional && !lazy {
        return Err(bad(format!(
            "the checkpoint of {:?} never finished ({} is provisional: lcr was stopped during \
             the dump), so the container may still be running; not restoring a second copy",
            record.id,
            super::RECORD_FILE
        )));
    }
    // The dump ended its tree, or was to: if that very process still runs here, the lcr that
    // made it was killed after CRIU finished the images and before CRIU ended the tree. (A
    // lazy dump keeps its tree until the restore has every page.)
    let ends_tree = !(record.leave_running || record.pre_dump || lazy);
    if ends_tree && record.init.as_ref().is_some_and(|p| p.alive()) {
        return Err(bad(format!(
            "the checkpoint of {:?} was interrupted after its images were written, and the \
             container still runs (pid {}): not restoring a second copy",
            record.id,
            record.init.as_ref().map_or(0, |p| p.pid)
        )));
    }
    if record.pre_dump {
        return Err(bad("this is a pre-dump (memory only): restore the final checkpoint made with --parent-path pointing here".into()));
    }
    if record.arch != machine_arch() {
        return Err(bad(format!(
            "the image is for {} and this host is {}",
            record.arch,
            machine_arch()
        )));
    }
    let contents = crate::image::Contents::from_dir(image_dir)?;
    if let Some(what) = contents.missing() {
        return Err(bad(format!("the CRIU images are incomplete: {what}")));
    }
    let iso = crate::image::isolation::Isolation::from_contents(&contents)
        .map_err(|why| bad(format!("the CRIU images cannot be read: {why}")))?;
    super::isolation::check(
        &iso,
        &bundle.spec,
        image_dir,
        &bundle.dir.join("config.json"),
    )?;
    bundle_provides(record, bundle).map_err(bad)
}

/// What the images need of the restore bundle: each bind mount, stdio of the same kind, a
/// network namespace to join if the container had joined one.
fn bundle_provides(record: &Record, bundle: &Bundle) -> std::result::Result<(), String> {
    for m in record
        .mounts
        .iter()
        .filter(|m| m.kind == super::MountKind::Bind)
    {
        let found = bundle
            .spec
            .mounts()
            .iter()
            .flatten()
            .any(|rm| rm.destination() == &m.destination);
        if !found {
            return Err(format!(
                "the image needs a bind mount at {} (it was {}), and {} has none there",
                m.destination.display(),
                m.source.display(),
                bundle.dir.join("config.json").display()
            ));
        }
    }
    if let Some(why) = super::stdio::mismatch(&record.stdio) {
        return Err(why);
    }
    for (ns, _) in &record.external_namespaces {
        if ns == "net" && crate::spec::joined_netns(&bundle.spec).is_none() {
            return Err(format!(
                "the container joined a network namespace by path; {} names none to join",
                bundle.dir.join("config.json").display()
            ));
        }
    }
    Ok(())
}

/// Whether CRIU `have` is older than `made_by`, each a version as CRIU reports it (maybe
/// followed by more words); a version that cannot be read decides nothing.
pub fn criu_older(have: &str, made_by: &str) -> bool {
    let parse = |v: &str| criurpc::Version::parse(v.split(' ').next().unwrap_or(""));
    matches!((parse(have), parse(made_by)), (Some(h), Some(m)) if !h.at_least(&m))
}

/// CRIU must not be older than the one that made the images.
pub(super) fn check_criu_version(
    made_by: &str,
    source: &str,
    have: &criurpc::Version,
) -> Result<()> {
    if !criu_older(&have.to_string(), made_by) {
        return Ok(());
    }
    Err(Error::NotRestorable {
        image: source.to_string(),
        reason: format!(
            "the image was made by CRIU {made_by} and this host has CRIU {have}, which is older"
        ),
    })
}

/// Refuses an archive this host cannot restore from its manifest alone, before anything is
/// unpacked: another architecture, or a CRIU older than the one that made it.
pub fn check_origin(
    origin: &crate::image::Origin,
    source: &str,
    criu: &criurpc::Criu,
) -> Result<()> {
    if origin.arch != machine_arch() {
        return Err(Error::NotRestorable {
            image: source.to_string(),
            reason: format!(
                "the checkpoint is for {} and this host is {}",
                origin.arch,
                machine_arch()
            ),
        });
    }
    let have = criu.require_supported()?;
    check_criu_version(&origin.criu_version, source, &have)
}

/// CRIU checks the size of regular files it did not dump (the container's stdio among them)
/// unless they were write-only and appending; say so when that is why a restore failed.
pub(super) fn explain_stdio_size(e: criurpc::Error, record: &Record) -> Error {
    let text = e.to_string();
    let Some(fd) = record
        .stdio
        .iter()
        .find(|f| text.contains(&format!("File fd/{} has bad size", f.fd)))
    else {
        return e.into();
    };
    let hint = format!(
        "the container's fd {} was {} opened for reading too, so CRIU insists on a file of the \
         same size; give the restore that file, or start containers with write-only stdio \
         (`>log`), which lcr switches to append mode at checkpoint",
        fd.fd, fd.path
    );
    Error::CriuHint { error: e, hint }
}
