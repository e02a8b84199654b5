//! `lcr image verify`: the manifest, every checksum and size, and the presence of the files
//! CRIU needs; the first problem is the error.

use std::path::Path;

use super::contents::Contents;
use super::digest::HashingReader;
use super::error::{ImageError, Result};
use super::layout;
use super::manifest::Manifest;
use super::read::Input;
use super::record::Record;

#[derive(Debug)]
pub struct Verified {
    pub files: usize,
    pub bytes: u64,
    /// False for an image directory without a manifest: its checksums could not be checked.
    pub checksums: bool,
}

/// Verifies an archive (`-` for standard input) or an image directory.
/// `max_total` bounds what the archive may declare (see [`Input::max_total`]).
pub fn verify(path: &Path, quiet: bool, max_total: u64) -> Result<Verified> {
    if path.is_dir() {
        return verify_dir(path);
    }
    let input = Input::open(path)?.max_total(max_total);
    let label = input.label.clone();
    let (m, contents) = Contents::from_archive(input, quiet, false)?;
    check_contents(&label, &contents)?;
    Ok(Verified {
        files: m.entries.len(),
        bytes: m.total_size(),
        checksums: true,
    })
}

/// A checkpoint CRIU can restore and lcr can read: its record and the images it needs.
fn check_contents(label: &str, contents: &Contents) -> Result<()> {
    let broken = |reason: String| ImageError::Broken {
        archive: label.to_string(),
        reason,
    };
    if let Some(what) = contents.missing() {
        return Err(broken(format!("incomplete checkpoint: {what}")));
    }
    let record: Record = serde_json::from_slice(contents.record_json().unwrap_or_default())
        .map_err(|e| broken(format!("{}: {e}", super::record::RECORD_FILE)))?;
    if record.pre_dump {
        return Err(broken(
            "a pre-dump (memory only): not restorable on its own".into(),
        ));
    }
    Ok(())
}

fn verify_dir(dir: &Path) -> Result<Verified> {
    let label = dir.display().to_string();
    let contents = Contents::from_dir(dir)?;
    let manifest = match std::fs::read(dir.join(layout::MANIFEST)) {
        Ok(text) => {
            Some(
                serde_json::from_slice::<Manifest>(&text).map_err(|e| ImageError::Broken {
                    archive: label.clone(),
                    reason: format!("{}: {e}", layout::MANIFEST),
                })?,
            )
        }
        Err(_) => None,
    };
    let Some(m) = manifest else {
        check_contents(&label, &contents)?;
        return Ok(Verified {
            files: contents.names.len(),
            bytes: 0,
            checksums: false,
        });
    };
    m.check().map_err(|reason| ImageError::Broken {
        archive: label.clone(),
        reason,
    })?;
    for e in &m.entries {
        let rel = layout::dir_name(&e.name).unwrap_or_default();
        let path = dir.join(&rel);
        let f = std::fs::File::open(&path).map_err(|err| ImageError::Broken {
            archive: label.clone(),
            reason: format!("{rel}: listed in the manifest: {err}"),
        })?;
        let mut r = HashingReader::new(f, e.size);
        std::io::copy(&mut r, &mut std::io::sink()).map_err(ImageError::io(&path, "read"))?;
        if r.count != e.size {
            return Err(ImageError::Broken {
                archive: label,
                reason: format!("{rel}: {} bytes, the manifest says {}", r.count, e.size),
            });
        }
        let actual = r.finish();
        if actual != e.sha256 {
            return Err(ImageError::Checksum {
                archive: label,
                entry: e.name.clone(),
                expected: e.sha256.clone(),
                actual,
            });
        }
    }
    check_contents(&label, &contents)?;
    Ok(Verified {
        files: m.entries.len(),
        bytes: m.total_size(),
        checksums: true,
    })
}
