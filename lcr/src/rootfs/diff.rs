//! Changes to a writable rootfs since the container started, for `--with-rootfs-diff`.
//!
//! When a container with a writable rootfs is created (or restored), lcr records a baseline:
//! the time, from the clock file timestamps use, and the names of every path under the rootfs
//! (a directory walk, no per-file stat). At checkpoint the tree is walked again: paths whose
//! change time (ctime, which no process can set back) is not older than the baseline, and paths
//! the baseline lacks, go into `rootfs-diff.tar`; baseline paths that are gone go into
//! `deleted.files`. Restore takes the baseline of the restore bundle's rootfs first and then
//! applies both before CRIU runs, so the next checkpoint carries those changes on. The walk
//! stays on the rootfs's filesystem (mounts inside the container are not visible from the host,
//! and their contents are CRIU's or the volumes'). An overlayfs rootfs (podman's) gets no
//! baseline: its engine keeps the diff in the upper directory, and a walk would only cost time.

use std::collections::BTreeSet;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::Context;
use crate::image::layout::{DELETED_FILES, ROOTFS_DIFF};
use crate::image::tree;
use crate::{Error, Result};

/// The baseline's file in the container's state directory.
pub const BASELINE_FILE: &str = "rootfs-baseline.json";

/// When the baseline was taken and what existed then.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Baseline {
    /// CLOCK_REALTIME_COARSE in nanoseconds: every later change has a ctime at least this.
    since_ns: i128,
    paths: BTreeSet<String>,
}

fn coarse_now_ns() -> i128 {
    nix::time::clock_gettime(nix::time::ClockId::CLOCK_REALTIME_COARSE)
        .map(|t| i128::from(t.tv_sec()) * 1_000_000_000 + i128::from(t.tv_nsec()))
        .unwrap_or(0)
}

fn is_overlay(p: &Path) -> bool {
    nix::sys::statfs::statfs(p)
        .map(|s| s.filesystem_type() == nix::sys::statfs::OVERLAYFS_SUPER_MAGIC)
        .unwrap_or(false)
}

impl Baseline {
    /// The baseline of a container's rootfs when it is writable and not an overlay.
    pub fn for_spec(spec: &oci_spec::runtime::Spec, rootfs: &Path) -> Result<Option<Self>> {
        let readonly = spec
            .root()
            .as_ref()
            .and_then(|r| r.readonly())
            .unwrap_or(false);
        if readonly || is_overlay(rootfs) {
            return Ok(None);
        }
        Self::take(rootfs).map(Some)
    }

    pub fn take(rootfs: &Path) -> Result<Self> {
        let since_ns = coarse_now_ns();
        let mut paths = BTreeSet::new();
        walk(rootfs, false, &mut |rel, _| {
            paths.insert(rel.to_string());
        })?;
        Ok(Self { since_ns, paths })
    }

    pub fn save(&self, container_dir: &Path) -> Result<()> {
        crate::fsutil::write_json(&container_dir.join(BASELINE_FILE), self)
    }

    pub fn load(container_dir: &Path) -> Option<Self> {
        let text = std::fs::read(container_dir.join(BASELINE_FILE)).ok()?;
        serde_json::from_slice(&text).ok()
    }
}

/// Calls `f` for every path under `root` (relative, `/`-separated, parents first) with its
/// metadata: always for directories (to stay on one filesystem), for the rest with `stat_all`.
fn walk(
    root: &Path,
    stat_all: bool,
    f: &mut dyn FnMut(&str, Option<&std::fs::Metadata>),
) -> Result<()> {
    let dev = std::fs::symlink_metadata(root)
        .ctx(|| format!("stat {}", root.display()))?
        .dev();
    let mut stack = vec![String::new()];
    while let Some(rel) = stack.pop() {
        let dir = if rel.is_empty() {
            root.to_path_buf()
        } else {
            root.join(&rel)
        };
        let rd = match std::fs::read_dir(&dir) {
            Ok(rd) => rd,
            // Vanished while walking: part of neither side.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => {
                return Err(Error::Io {
                    context: format!("read {}", dir.display()),
                    cause: e,
                })
            }
        };
        for e in rd.flatten() {
            let Some(name) = e.file_name().to_str().map(str::to_string) else {
                tracing::warn!(path = %e.path().display(), "not UTF-8: left out of the rootfs diff");
                continue;
            };
            let child = if rel.is_empty() {
                name
            } else {
                format!("{rel}/{name}")
            };
            // A socket file is no content: tar cannot hold one, and CRIU binds a restored
            // unix socket at its path anew (as podman's diff leaves them out, so does this).
            if e.file_type()
                .is_ok_and(|t| std::os::unix::fs::FileTypeExt::is_socket(&t))
            {
                continue;
            }
            let is_dir = e.file_type().map(|t| t.is_dir()).unwrap_or(false);
            let md = if stat_all || is_dir {
                e.path().symlink_metadata().ok()
            } else {
                None
            };
            f(&child, md.as_ref());
            if is_dir && md.as_ref().is_some_and(|m| m.dev() == dev) {
                stack.push(child);
            }
        }
    }
    Ok(())
}

/// What changed under a rootfs since its baseline.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Diff {
    /// New or changed paths (parents before children).
    pub changed: Vec<String>,
    /// Paths gone since the baseline; a deleted directory's children are not listed.
    pub deleted: Vec<String>,
}

pub fn diff(rootfs: &Path, base: &Baseline) -> Result<Diff> {
    let mut now = BTreeSet::new();
    let mut changed = Vec::new();
    walk(rootfs, true, &mut |rel, md| {
        now.insert(rel.to_string());
        let ctime = md.map_or(i128::MAX, |m| {
            i128::from(m.ctime()) * 1_000_000_000 + i128::from(m.ctime_nsec())
        });
        if ctime >= base.since_ns || !base.paths.contains(rel) {
            changed.push(rel.to_string());
        }
    })?;
    changed.sort();
    let mut deleted: Vec<String> = Vec::new();
    for p in base.paths.iter().filter(|p| !now.contains(*p)) {
        if !deleted.iter().any(|d| p.starts_with(&format!("{d}/"))) {
            deleted.push(p.clone());
        }
    }
    Ok(Diff { changed, deleted })
}

/// Writes `rootfs-diff.tar` and `deleted.files` into `image_dir`.
pub fn save(rootfs: &Path, base: &Baseline, image_dir: &Path) -> Result<Diff> {
    let d = diff(rootfs, base)?;
    tree::write_tar(rootfs, &d.changed, &image_dir.join(ROOTFS_DIFF))?;
    crate::fsutil::write_json(&image_dir.join(DELETED_FILES), &d.deleted)?;
    Ok(d)
}

/// A checkpoint's rootfs changes applied to a rootfs, undone when dropped unless kept: a
/// restore that fails afterwards leaves the rootfs as it found it.
///
/// Everything is checked before the rootfs is touched: the deletions' paths, and the diff
/// extracted whole into a staging directory (refusing device nodes, links out, …). Only then
/// are paths moved: what is replaced or deleted goes into an undo directory, the staged
/// files into place. Both directories live inside the rootfs (same file system, so every
/// move is a rename) and are gone once the restore is kept or undone.
pub struct Applied {
    root: PathBuf,
    work: PathBuf,
    /// Paths put in place (relative), in order.
    created: Vec<String>,
    /// (original path, its place in the undo directory), in order.
    saved: Vec<(String, PathBuf)>,
    pub changed: usize,
    pub deleted: usize,
    kept: bool,
}

impl Applied {
    /// Moves one staged entry into the rootfs (a directory that is there already is merged
    /// into), saving what it replaces first.
    fn put(&mut self, staged: &Path, rel: String, is_dir: bool) -> Result<()> {
        let target = self.root.join(&rel);
        let existing = target.symlink_metadata().ok();
        if is_dir && existing.as_ref().is_some_and(|m| m.is_dir()) {
            return Ok(());
        }
        self.save(&rel)?;
        if is_dir {
            let md = staged
                .join(&rel)
                .symlink_metadata()
                .ctx(|| format!("stat staged {rel}"))?;
            std::fs::create_dir(&target).ctx(|| format!("create {}", target.display()))?;
            std::fs::set_permissions(&target, md.permissions())
                .ctx(|| format!("chmod {}", target.display()))?;
        } else {
            std::fs::rename(staged.join(&rel), &target)
                .ctx(|| format!("put {} in place", target.display()))?;
        }
        self.created.push(rel);
        Ok(())
    }

    /// The restore succeeded: the changes stay.
    pub fn keep(mut self) {
        self.kept = true;
        let _ = crate::fsutil::remove_tree(&self.work);
    }

    /// Moves `rel` out of the way into the undo directory, if it exists.
    fn save(&mut self, rel: &str) -> Result<()> {
        let path = self.root.join(rel);
        if path.symlink_metadata().is_err() {
            return Ok(());
        }
        let to = self.work.join("old").join(self.saved.len().to_string());
        std::fs::rename(&path, &to).ctx(|| format!("move {} aside", path.display()))?;
        self.saved.push((rel.to_string(), to));
        Ok(())
    }
}

impl Drop for Applied {
    fn drop(&mut self) {
        if self.kept {
            return;
        }
        for rel in self.created.iter().rev() {
            if let Err(e) = crate::fsutil::remove_tree(&self.root.join(rel)) {
                tracing::warn!(path = %rel, error = %e, "undoing the rootfs diff");
            }
        }
        for (rel, from) in self.saved.iter().rev() {
            if let Err(e) = std::fs::rename(from, self.root.join(rel)) {
                tracing::warn!(path = %rel, error = %e, "putting back a file the rootfs diff replaced");
            }
        }
        let _ = crate::fsutil::remove_tree(&self.work);
    }
}

/// Applies a checkpoint's rootfs changes (if it has any) to `rootfs`, deletions first, then
/// the changed files; see [`Applied`].
pub fn apply(image_dir: &Path, rootfs: &Path) -> Result<Option<Applied>> {
    let diff_tar = image_dir.join(ROOTFS_DIFF);
    if !diff_tar.exists() {
        return Ok(None);
    }
    let deleted = deleted_files(image_dir)?;
    let root = rootfs
        .canonicalize()
        .ctx(|| format!("resolve {}", rootfs.display()))?;
    let bad_deletion = |rel: &String, reason: String| Error::Value {
        what: format!("{} entry", image_dir.join(DELETED_FILES).display()),
        value: rel.clone(),
        reason,
    };
    for rel in &deleted {
        check_inside(&root, rel).map_err(|why| bad_deletion(rel, why))?;
    }
    let work = root.join(format!(".lcr-rootfs-diff-{}", std::process::id()));
    crate::fsutil::remove_tree(&work)?;
    for d in ["", "new", "old"] {
        std::fs::create_dir(work.join(d)).ctx(|| format!("create {}", work.join(d).display()))?;
    }
    let mut applied = Applied {
        root: root.clone(),
        work: work.clone(),
        created: Vec::new(),
        saved: Vec::new(),
        changed: 0,
        deleted: 0,
        kept: false,
    };
    let staged = work.join("new");
    applied.changed = tree::extract(&diff_tar, &staged)?;
    let mut entries = Vec::new();
    staged_entries(&staged, "", &mut entries)?;
    let bad_entry = |rel: &String, reason: String| Error::Value {
        what: format!("{} entry", diff_tar.display()),
        value: rel.clone(),
        reason,
    };
    for (rel, _) in &entries {
        check_inside(&root, rel).map_err(|why| bad_entry(rel, why))?;
    }
    // Checked: now the rootfs changes, each step recorded for the undo. Each path is checked
    // again just before it is touched: an entry put in place a moment ago (a symlink) may be
    // what a later path would resolve through.
    for rel in &deleted {
        check_inside(&root, rel).map_err(|why| bad_deletion(rel, why))?;
        applied.save(rel)?;
        applied.deleted += 1;
    }
    for (rel, is_dir) in entries {
        check_inside(&root, &rel).map_err(|why| bad_entry(&rel, why))?;
        applied.put(&staged, rel, is_dir)?;
    }
    Ok(Some(applied))
}

/// The paths the checkpoint's rootfs no longer had (none when it lists none).
pub(crate) fn deleted_files(image_dir: &Path) -> Result<Vec<String>> {
    match std::fs::read(image_dir.join(DELETED_FILES)) {
        Ok(text) => serde_json::from_slice(&text).map_err(|e| Error::Config {
            file: image_dir.join(DELETED_FILES),
            field: "(document)".into(),
            reason: e.to_string(),
        }),
        Err(_) => Ok(Vec::new()),
    }
}

/// Every path under the staging directory, parents before children: (relative, is a dir).
fn staged_entries(dir: &Path, prefix: &str, out: &mut Vec<(String, bool)>) -> Result<()> {
    let mut names: Vec<_> = std::fs::read_dir(dir)
        .ctx(|| format!("read {}", dir.display()))?
        .flatten()
        .collect();
    names.sort_by_key(|e| e.file_name());
    for e in names {
        let rel = format!("{prefix}{}", e.file_name().to_string_lossy());
        let is_dir = e.file_type().map(|t| t.is_dir()).unwrap_or(false);
        out.push((rel.clone(), is_dir));
        if is_dir {
            staged_entries(&e.path(), &format!("{rel}/"), out)?;
        }
    }
    Ok(())
}

/// `rel` is a plain relative path whose directory, resolved now, lies inside `root` (a
/// symlink in the rootfs must not lead a change onto the host).
pub(crate) fn check_inside(root: &Path, rel: &str) -> std::result::Result<(), String> {
    if rel.is_empty()
        || rel.starts_with('/')
        || rel
            .split('/')
            .any(|c| c.is_empty() || c == "." || c == "..")
    {
        return Err("not a plain relative path".into());
    }
    let parent = root
        .join(rel)
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default();
    match parent.canonicalize() {
        Ok(p) if p.starts_with(root) => Ok(()),
        Ok(p) => Err(format!(
            "its directory resolves to {}, outside the rootfs",
            p.display()
        )),
        // Not there (yet): made by an earlier entry, or gone with a deleted directory.
        Err(_) => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_changed_added_and_deleted_paths_and_applies_them() {
        let t = tempfile::tempdir().unwrap();
        let root = t.path().join("root");
        std::fs::create_dir_all(root.join("etc/sub")).unwrap();
        std::fs::write(root.join("etc/keep"), "same").unwrap();
        std::fs::write(root.join("etc/change"), "old").unwrap();
        std::fs::write(root.join("etc/gone"), "x").unwrap();
        std::fs::write(root.join("etc/sub/f"), "x").unwrap();
        let copy = t.path().join("copy");
        std::process::Command::new("cp")
            .arg("-a")
            .arg(&root)
            .arg(&copy)
            .status()
            .unwrap();
        // Files touched in the clock tick of the baseline count as changed (the safe side):
        // let it tick over.
        std::thread::sleep(std::time::Duration::from_millis(30));
        let base = Baseline::take(&root).unwrap();
        std::thread::sleep(std::time::Duration::from_millis(30));

        std::fs::write(root.join("etc/change"), "new content").unwrap();
        std::fs::write(root.join("new"), "hello").unwrap();
        std::fs::remove_file(root.join("etc/gone")).unwrap();
        std::fs::remove_dir_all(root.join("etc/sub")).unwrap();
        std::os::unix::fs::symlink("/etc/passwd", root.join("link")).unwrap();
        let images = t.path().join("img");
        std::fs::create_dir(&images).unwrap();
        let d = save(&root, &base, &images).unwrap();
        assert!(d.changed.contains(&"etc/change".to_string()));
        assert!(d.changed.contains(&"new".to_string()));
        assert!(!d.changed.contains(&"etc/keep".to_string()));
        assert_eq!(
            d.deleted,
            vec!["etc/gone".to_string(), "etc/sub".to_string()]
        );

        // Dropped (a failed restore): the copy is as it was.
        let snapshot = |dir: &Path| {
            let mut all = Vec::new();
            walk(dir, true, &mut |rel, _| {
                all.push((rel.to_string(), std::fs::read(dir.join(rel)).ok()))
            })
            .unwrap();
            all.sort();
            all
        };
        let before = snapshot(&copy);
        let undone = apply(&images, &copy).unwrap().unwrap();
        assert_eq!(undone.deleted, 2);
        assert_eq!(std::fs::read_to_string(copy.join("new")).unwrap(), "hello");
        drop(undone);
        assert_eq!(snapshot(&copy), before, "the undo left the rootfs changed");

        let applied = apply(&images, &copy).unwrap().unwrap();
        assert_eq!(applied.deleted, 2);
        applied.keep();
        assert_eq!(
            std::fs::read_to_string(copy.join("etc/change")).unwrap(),
            "new content"
        );
        assert_eq!(std::fs::read_to_string(copy.join("new")).unwrap(), "hello");
        assert!(!copy.join("etc/gone").exists() && !copy.join("etc/sub").exists());
        assert_eq!(
            std::fs::read_link(copy.join("link")).unwrap(),
            Path::new("/etc/passwd")
        );
        assert_eq!(
            std::fs::read_to_string(copy.join("etc/keep")).unwrap(),
            "same"
        );
    }

    #[test]
    fn a_diff_refused_at_its_last_entry_changes_nothing() {
        let t = tempfile::tempdir().unwrap();
        let root = t.path().join("root");
        std::fs::create_dir_all(root.join("etc")).unwrap();
        std::fs::write(root.join("etc/passwd"), "original").unwrap();
        std::fs::write(root.join("etc/group"), "original").unwrap();
        let images = t.path().join("img");
        std::fs::create_dir(&images).unwrap();
        let mut b = tar::Builder::new(std::fs::File::create(images.join(ROOTFS_DIFF)).unwrap());
        let mut h = tar::Header::new_gnu();
        h.set_size(7);
        h.set_mode(0o644);
        h.set_entry_type(tar::EntryType::Regular);
        b.append_data(&mut h, "etc/passwd", &b"hostile"[..])
            .unwrap();
        let mut dev = tar::Header::new_gnu();
        dev.set_entry_type(tar::EntryType::Char);
        dev.set_size(0);
        dev.set_mode(0o600);
        b.append_data(&mut dev, "dev/mem", std::io::empty())
            .unwrap();
        b.finish().unwrap();
        drop(b);
        std::fs::write(images.join(DELETED_FILES), r#"["etc/group"]"#).unwrap();
        assert!(apply(&images, &root).is_err(), "a device node accepted");
        assert_eq!(
            std::fs::read_to_string(root.join("etc/passwd")).unwrap(),
            "original"
        );
        assert_eq!(
            std::fs::read_to_string(root.join("etc/group")).unwrap(),
            "original"
        );
        let left: Vec<_> = std::fs::read_dir(&root)
            .unwrap()
            .flatten()
            .map(|e| e.file_name())
            .collect();
        assert_eq!(
            left,
            vec![std::ffi::OsString::from("etc")],
            "work directory left"
        );
    }

    #[test]
    fn deletions_that_leave_the_rootfs_are_refused() {
        let t = tempfile::tempdir().unwrap();
        std::fs::create_dir(t.path().join("root")).unwrap();
        std::fs::write(t.path().join("outside"), "x").unwrap();
        let root = t.path().join("root").canonicalize().unwrap();
        assert!(check_inside(&root, "../outside").is_err());
        std::os::unix::fs::symlink(t.path(), root.join("up")).unwrap();
        assert!(check_inside(&root, "up/outside")
            .unwrap_err()
            .contains("outside the rootfs"));
        assert!(t.path().join("outside").exists());
    }
}
