//! Archive → image directory, checked as it streams (see `read`): the files are written into a
//! fresh private directory that is renamed into place only when everything checked out, and
//! removed otherwise. Nothing is ever written outside it: names are checked, only regular files
//! are created (never through a link: none exists in a directory made here), all mode 0600.

use std::fs::OpenOptions;
use std::io::{BufWriter, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::Path;

use super::error::{ImageError, Result};
use super::layout;
use super::manifest::Manifest;
use super::read::{copy_entry, read_archive, Flow, Input};

/// A check of the manifest before anything is unpacked (`Err` names the reason to refuse).
pub type Precheck<'a> = &'a dyn Fn(&Manifest) -> std::result::Result<(), String>;

/// Unpacks into `target`, which must not exist or be an empty directory.
pub fn unpack(input: Input, target: &Path, quiet: bool, precheck: Precheck) -> Result<Manifest> {
    let label = target.display().to_string();
    if target.exists() {
        let empty = std::fs::read_dir(target)
            .map(|mut d| d.next().is_none())
            .unwrap_or(false);
        if !empty {
            return Err(ImageError::Broken {
                archive: label,
                reason: "exists and is not an empty directory".into(),
            });
        }
    }
    let parent = match target.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => ".".into(),
    };
    let tmp = tempfile::Builder::new()
        .prefix(".lcr-unpack-")
        .tempdir_in(&parent)
        .map_err(ImageError::io(&parent, "create a temporary directory"))?;
    let m = unpack_into(input, tmp.path(), quiet, precheck)?;
    if target.exists() {
        std::fs::remove_dir(target)
            .map_err(ImageError::io(target, "replace the empty directory"))?;
    }
    std::fs::rename(tmp.path(), target).map_err(ImageError::io(target, "rename into place"))?;
    // Renamed: nothing left for the guard to remove.
    let _ = tmp.keep();
    Ok(m)
}

/// Unpacks into `dir`, an empty directory this process made (its contents are not trusted
/// otherwise). On error, what was written stays for the caller to remove with `dir`.
pub fn unpack_into(input: Input, dir: &Path, quiet: bool, precheck: Precheck) -> Result<Manifest> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
        .map_err(ImageError::io(dir, "chmod 0700"))?;
    let archive = input.label.clone();
    let mut made_volumes = false;
    let manifest = read_archive(
        input,
        quiet,
        |m| {
            precheck(m).map_err(|reason| ImageError::Broken {
                archive: archive.clone(),
                reason,
            })?;
            check_free_space(dir, m.total_size())?;
            let text = serde_json::to_vec_pretty(m).unwrap_or_default();
            write_new(&dir.join(layout::MANIFEST), &text)
        },
        |entry, data| {
            let rel = layout::dir_name(&entry.name).map_err(|why| ImageError::Refused {
                archive: archive.clone(),
                entry: entry.name.clone(),
                reason: why,
            })?;
            if rel.starts_with(&format!("{}/", layout::VOLUMES_DIR)) && !made_volumes {
                let v = dir.join(layout::VOLUMES_DIR);
                std::fs::DirBuilder::new()
                    .mode(0o700)
                    .create(&v)
                    .map_err(ImageError::io(&v, "mkdir"))?;
                made_volumes = true;
            }
            let path = dir.join(&rel);
            let f = create_new(&path)?;
            let mut w = BufWriter::with_capacity(1 << 20, f);
            copy_entry(&archive, entry, data, &mut w, &path)?;
            w.flush().map_err(ImageError::io(&path, "write"))?;
            Ok(Flow::Continue)
        },
    )?;
    Ok(manifest)
}

/// Refuses to start writing what would not fit: the declared total against the space free
/// where it goes (a disk filled by an import is a failure of its own, far from the cause).
fn check_free_space(dir: &Path, declared: u64) -> Result<()> {
    let free = crate::fsutil::free_bytes(dir).map_err(ImageError::io(dir, "statvfs"))?;
    if declared > free {
        return Err(ImageError::Broken {
            archive: dir.display().to_string(),
            reason: format!(
                "the archive declares {declared} bytes and only {free} are free there: not unpacking"
            ),
        });
    }
    Ok(())
}

fn create_new(path: &Path) -> Result<std::fs::File> {
    OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
        .map_err(ImageError::io(path, "create"))
}

fn write_new(path: &Path, data: &[u8]) -> Result<()> {
    create_new(path)?
        .write_all(data)
        .map_err(ImageError::io(path, "write"))
}
