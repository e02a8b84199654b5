//! Where each file of a checkpoint lives, in an image directory and in an archive.
//!
//! An image directory holds CRIU's images, lcr's record and the extras side by side (CRIU
//! ignores files it does not know). An archive uses podman's names so that checkpointctl and
//! podman can read it: the CRIU images under `checkpoint/`, the rest at the top level, and
//! lcr's manifest before everything else.

/// The archive's first entry: format, versions, host facts and every entry's size and SHA-256.
pub const MANIFEST: &str = "lcr-manifest.json";
/// CRIU's images (and lcr's record) in an archive.
pub const CHECKPOINT_DIR: &str = "checkpoint";
/// podman's container config (`id`, `name`, `runtime`, `createdTime`, `checkpointedTime`).
pub const CONFIG_DUMP: &str = "config.dump";
/// The container's OCI spec.
pub const SPEC_DUMP: &str = "spec.dump";
/// CRIU's dump statistics, at the top level as podman and checkpointctl expect.
pub const STATS_DUMP: &str = "stats-dump";
/// Files added or changed in a writable rootfs since the container started.
pub const ROOTFS_DIFF: &str = "rootfs-diff.tar";
/// Paths deleted from the rootfs since the container started (a JSON list).
pub const DELETED_FILES: &str = "deleted.files";
/// Bind-mount contents (`--with-volumes`): one tar each and an index.
pub const VOLUMES_DIR: &str = "volumes";

/// Top-level files of an archive besides the manifest (same name in an image directory).
const TOP_LEVEL: [&str; 5] = [
    CONFIG_DUMP,
    SPEC_DUMP,
    STATS_DUMP,
    ROOTFS_DIFF,
    DELETED_FILES,
];

/// Files an image directory may hold that are made from the record when packing, never
/// copied: the manifest and podman's two dumps.
pub fn is_generated(rel: &str) -> bool {
    rel == MANIFEST || rel == CONFIG_DUMP || rel == SPEC_DUMP
}

/// The archive name of a file of an image directory (`rel` relative to it, `/`-separated).
pub fn archive_name(rel: &str) -> String {
    if TOP_LEVEL.contains(&rel) || rel.starts_with(&format!("{VOLUMES_DIR}/")) {
        rel.to_string()
    } else {
        format!("{CHECKPOINT_DIR}/{rel}")
    }
}

/// The image-directory path of an archive entry, or why the name is not one lcr writes.
/// Only plain names are accepted: one level under `checkpoint/` or `volumes/`, or a known
/// top-level file; nothing absolute, no `.` or `..`, no empty component.
pub fn dir_name(name: &str) -> std::result::Result<String, String> {
    check_components(name)?;
    if name == MANIFEST || TOP_LEVEL.contains(&name) {
        return Ok(name.to_string());
    }
    match name.split_once('/') {
        Some((CHECKPOINT_DIR, rest)) if !rest.contains('/') => {
            if TOP_LEVEL.contains(&rest) || rest == MANIFEST || rest == VOLUMES_DIR {
                Err(format!("{rest} belongs at the archive's top level"))
            } else {
                Ok(rest.to_string())
            }
        }
        Some((VOLUMES_DIR, rest)) if !rest.contains('/') => Ok(name.to_string()),
        _ => Err(
            "not a name an lcr archive holds (top-level files, checkpoint/NAME, volumes/NAME)"
                .into(),
        ),
    }
}

/// The directories an archive may contain as entries of their own.
pub fn is_known_dir(name: &str) -> bool {
    let n = name.trim_end_matches('/');
    n == CHECKPOINT_DIR || n == VOLUMES_DIR
}

/// A name as errors show it: at most 200 characters, the rest counted (a crafted archive's
/// names can be thousands of bytes).
pub fn shortened(name: &str) -> String {
    match name.char_indices().nth(200) {
        Some((at, _)) => format!("{}… ({} bytes in all)", &name[..at], name.len()),
        None => name.to_string(),
    }
}

fn check_components(name: &str) -> std::result::Result<(), String> {
    if name.is_empty() {
        return Err("empty name".into());
    }
    if name.starts_with('/') {
        return Err("absolute path".into());
    }
    if name.len() > 4095 {
        return Err(format!(
            "{} bytes long: longer than a path may be",
            name.len()
        ));
    }
    for c in name.split('/') {
        match c {
            _ if c.len() > 255 => {
                return Err(format!(
                    "a path component of {} bytes: longer than a file name may be",
                    c.len()
                ))
            }
            "" => return Err("empty path component".into()),
            "." | ".." => return Err(format!("path component {c:?}")),
            _ if c.contains('\0') => return Err("NUL in name".into()),
            _ => {}
        }
    }
    Ok(())
}

/// Page images are the bulk of a checkpoint: they go last, so readers that need only the
/// metadata (inspect) stop before them.
pub fn is_bulk(name: &str) -> bool {
    let file = name.rsplit('/').next().unwrap_or(name);
    // The volumes' index is small and read by inspect: it comes with the metadata.
    file.starts_with("pages-")
        || name == ROOTFS_DIFF
        || (name.starts_with(&format!("{VOLUMES_DIR}/")) && file != super::volumes::INDEX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_map_both_ways() {
        for (rel, arch) in [
            ("pages-1.img", "checkpoint/pages-1.img"),
            ("lcr-checkpoint.json", "checkpoint/lcr-checkpoint.json"),
            ("stats-dump", "stats-dump"),
            ("rootfs-diff.tar", "rootfs-diff.tar"),
            ("volumes/0.tar", "volumes/0.tar"),
        ] {
            assert_eq!(archive_name(rel), arch);
            assert_eq!(dir_name(arch).unwrap(), rel);
        }
    }

    #[test]
    fn unsafe_or_unknown_names_are_refused() {
        for bad in [
            "/etc/passwd",
            "../x",
            "checkpoint/../../x",
            "checkpoint/./a",
            "checkpoint//a",
            "checkpoint/a/b",
            "etc/passwd",
            "checkpoint/stats-dump",
            "",
        ] {
            assert!(dir_name(bad).is_err(), "{bad}");
        }
    }
}
