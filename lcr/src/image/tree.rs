//! Host files inside a checkpoint (rootfs changes, bind-mount contents) as plain tars: written
//! without following links, and extracted into a host directory with the same care as an
//! archive — nothing outside the target (tar's own checks, which resolve the parents of every
//! entry), no device nodes, no setuid/setgid bits.

use std::fs::File;
use std::path::Path;

use super::error::{ImageError, Result};

/// A tar of `root`'s entries `rels` (relative paths): directories as themselves, not their
/// contents; symlinks as links.
pub fn write_tar(root: &Path, rels: &[String], out: &Path) -> Result<()> {
    let f = File::create(out).map_err(ImageError::io(out, "create"))?;
    let mut b = tar::Builder::new(std::io::BufWriter::new(f));
    b.follow_symlinks(false);
    for rel in rels {
        let p = root.join(rel);
        b.append_path_with_name(&p, rel)
            .map_err(ImageError::io(&p, "add to tar"))?;
    }
    b.into_inner()
        .and_then(|mut w| std::io::Write::flush(&mut w))
        .map_err(ImageError::io(out, "write"))
}

/// A tar of everything under `src` (a directory, or one file stored as `name`).
pub fn write_tree(src: &Path, name: &str, out: &Path) -> Result<()> {
    let f = File::create(out).map_err(ImageError::io(out, "create"))?;
    let mut b = tar::Builder::new(std::io::BufWriter::new(f));
    b.follow_symlinks(false);
    if src.is_dir() {
        b.append_dir_all(".", src)
    } else {
        b.append_path_with_name(src, name)
    }
    .map_err(ImageError::io(src, "add to tar"))?;
    b.into_inner()
        .and_then(|mut w| std::io::Write::flush(&mut w))
        .map_err(ImageError::io(out, "write"))
}

/// Extracts `tar_path` into the directory `dest`; returns how many entries were written.
/// Entries that would land outside `dest` and device nodes are refused; setuid/setgid bits
/// are dropped (with a warning).
pub fn extract(tar_path: &Path, dest: &Path) -> Result<usize> {
    let f = File::open(tar_path).map_err(ImageError::io(tar_path, "open"))?;
    extract_from(
        std::io::BufReader::new(f),
        &tar_path.display().to_string(),
        dest,
        false,
    )
}

/// As [`extract`], from a stream (`label` names it in errors): a whole rootfs arriving over
/// a migration's connection. `keep_setid` keeps setuid/setgid bits, for a rootfs whose
/// programs need them (`su`, `ping`) extracted under a directory only root can enter.
pub fn extract_from(
    input: impl std::io::Read,
    label: &str,
    dest: &Path,
    keep_setid: bool,
) -> Result<usize> {
    let mut ar = tar::Archive::new(input);
    ar.set_preserve_permissions(true);
    ar.set_overwrite(true);
    ar.set_unpack_xattrs(false);
    let mut n = 0;
    let read_error = |e: std::io::Error| ImageError::Broken {
        archive: label.to_string(),
        reason: e.to_string(),
    };
    let entries = ar.entries().map_err(read_error)?;
    for e in entries {
        let mut e = e.map_err(read_error)?;
        let name = String::from_utf8_lossy(&e.path_bytes()).into_owned();
        let refused = |reason: &str| ImageError::Refused {
            archive: label.to_string(),
            entry: name.clone(),
            reason: reason.to_string(),
        };
        match e.header().entry_type() {
            tar::EntryType::Char | tar::EntryType::Block => return Err(refused("a device node")),
            tar::EntryType::Regular
            | tar::EntryType::Directory
            | tar::EntryType::Symlink
            | tar::EntryType::Link
            | tar::EntryType::Fifo => {}
            other => return Err(refused(&format!("entry type {other:?}"))),
        }
        let mode = e.header().mode().unwrap_or(0);
        if mode & 0o6000 != 0 && !keep_setid {
            tracing::warn!(entry = %name, mode = format!("{mode:o}"), "setuid/setgid bits dropped");
            e.set_mask(0o6000);
        }
        let inside = e
            .unpack_in(dest)
            .map_err(|err| refused(&format!("cannot extract into {}: {err}", dest.display())))?;
        if !inside {
            return Err(refused(&format!("leads outside {}", dest.display())));
        }
        n += 1;
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tar_with(f: impl FnOnce(&mut tar::Builder<Vec<u8>>)) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        f(&mut b);
        b.into_inner().unwrap()
    }

    fn entry(
        b: &mut tar::Builder<Vec<u8>>,
        kind: tar::EntryType,
        name: &str,
        link: &str,
        mode: u32,
    ) {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(kind);
        h.set_size(0);
        h.set_mode(mode);
        if !link.is_empty() {
            h.set_link_name(link).unwrap();
        }
        b.append_data(&mut h, name, std::io::empty()).unwrap();
    }

    #[test]
    fn extraction_stays_inside_and_refuses_devices() {
        let t = tempfile::tempdir().unwrap();
        let dest = t.path().join("dest");
        let outside = t.path().join("outside");
        std::fs::create_dir_all(&dest).unwrap();
        std::fs::create_dir_all(&outside).unwrap();
        let tar_path = t.path().join("x.tar");

        // A symlink to a directory outside, then a file through it.
        let bytes = tar_with(|b| {
            entry(
                b,
                tar::EntryType::Symlink,
                "up",
                outside.to_str().unwrap(),
                0o777,
            );
            entry(b, tar::EntryType::Regular, "up/planted", "", 0o644);
        });
        std::fs::write(&tar_path, bytes).unwrap();
        let e = extract(&tar_path, &dest).unwrap_err().to_string();
        assert!(e.contains("up/planted"), "{e}");
        assert!(!outside.join("planted").exists());

        let bytes = tar_with(|b| entry(b, tar::EntryType::Char, "null", "", 0o666));
        std::fs::write(&tar_path, bytes).unwrap();
        assert!(extract(&tar_path, &dest)
            .unwrap_err()
            .to_string()
            .contains("device node"));

        // setuid bits are dropped, the file kept.
        let bytes = tar_with(|b| entry(b, tar::EntryType::Regular, "tool", "", 0o4755));
        std::fs::write(&tar_path, bytes).unwrap();
        assert_eq!(extract(&tar_path, &dest).unwrap(), 1);
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dest.join("tool"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o7777, 0o755);
    }
}
