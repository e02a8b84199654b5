//! A checkpoint's rootfs changes as an overlayfs layer for its clones: extracted once into
//! `<root>/layers/<sha256 of the changes>`, with a whiteout for each deleted path, and
//! shared by every clone of the same changes. Each clone holds a reference (a file named for
//! its id in `<key>.users/`); the last one released removes the layer. One lock file
//! orders making, taking and releasing.

use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};

use nix::fcntl::{Flock, FlockArg};
use sha2::{Digest, Sha256};

use super::diff::{check_inside, deleted_files};
use crate::error::Context;
use crate::image::layout::{DELETED_FILES, ROOTFS_DIFF};
use crate::image::tree;
use crate::{Error, Result};

/// The layers below a state root.
pub struct Layers {
    dir: PathBuf,
}

/// One clone's reference to a layer.
#[derive(Debug, Clone)]
pub struct Layer {
    pub key: String,
    pub path: PathBuf,
}

impl Layers {
    pub fn in_root(state_root: &Path) -> Self {
        Self {
            dir: state_root.join("layers"),
        }
    }

    /// The key of the layer of the rootfs changes in `image_dir`; `None` when the checkpoint
    /// carries no changes.
    pub fn key_of(image_dir: &Path) -> Result<Option<String>> {
        if !image_dir.join(ROOTFS_DIFF).exists() {
            return Ok(None);
        }
        key_of(image_dir).map(Some)
    }

    /// The layer `key` (see [`Layers::key_of`]) of the rootfs changes in `image_dir`, taken
    /// for clone `id` (made if no clone has it yet).
    pub fn take(&self, image_dir: &Path, key: &str, id: &str) -> Result<Layer> {
        let key = key.to_string();
        let _lock = self.lock()?;
        let path = self.dir.join(&key);
        if !path.is_dir() {
            let staging = self
                .dir
                .join(format!("{key}.making-{}", std::process::id()));
            crate::fsutil::remove_tree(&staging)?;
            std::fs::create_dir(&staging).ctx(|| format!("create {}", staging.display()))?;
            let made = make_layer(image_dir, &staging).and_then(|()| {
                std::fs::rename(&staging, &path).ctx(|| format!("rename {}", staging.display()))
            });
            if let Err(e) = made {
                let _ = crate::fsutil::remove_tree(&staging);
                return Err(e);
            }
        }
        let users = self.users(&key);
        std::fs::create_dir_all(&users).ctx(|| format!("create {}", users.display()))?;
        File::create(users.join(id)).ctx(|| format!("create {}", users.join(id).display()))?;
        Ok(Layer { key, path })
    }

    /// Clone `id` no longer uses layer `key`; the last one out removes it.
    pub fn release(&self, key: &str, id: &str) -> Result<()> {
        let _lock = self.lock()?;
        let users = self.users(key);
        let _ = std::fs::remove_file(users.join(id));
        let left = std::fs::read_dir(&users).map(|d| d.count()).unwrap_or(0);
        if left == 0 {
            crate::fsutil::remove_tree(&self.dir.join(key))?;
            let _ = std::fs::remove_dir(&users);
        }
        Ok(())
    }

    fn users(&self, key: &str) -> PathBuf {
        self.dir.join(format!("{key}.users"))
    }

    fn lock(&self) -> Result<Flock<File>> {
        std::fs::create_dir_all(&self.dir).ctx(|| format!("create {}", self.dir.display()))?;
        let path = self.dir.join(".lock");
        let f = File::create(&path).ctx(|| format!("create {}", path.display()))?;
        Flock::lock(f, FlockArg::LockExclusive).map_err(|(_, e)| Error::Io {
            context: format!("lock {}", path.display()),
            cause: e.into(),
        })
    }
}

/// The changes' identity: the SHA-256 of the tar and of the list of deleted paths.
fn key_of(image_dir: &Path) -> Result<String> {
    let mut h = Sha256::new();
    for name in [ROOTFS_DIFF, DELETED_FILES] {
        let path = image_dir.join(name);
        let Ok(mut f) = File::open(&path) else {
            h.update(b"-");
            continue;
        };
        let mut buf = vec![0u8; 1 << 20];
        loop {
            let n = f
                .read(&mut buf)
                .ctx(|| format!("read {}", path.display()))?;
            if n == 0 {
                break;
            }
            h.update(&buf[..n]);
        }
        h.update(b"/");
    }
    Ok(h.finalize().iter().map(|b| format!("{b:02x}")).collect())
}

/// Extracts the changes into the empty directory `at` (with the archive code's checks), then
/// marks each deleted path with a whiteout (a 0/0 character device, as overlayfs reads it).
fn make_layer(image_dir: &Path, at: &Path) -> Result<()> {
    let at = &at
        .canonicalize()
        .ctx(|| format!("resolve {}", at.display()))?;
    tree::extract(&image_dir.join(ROOTFS_DIFF), at)?;
    for rel in deleted_files(image_dir)? {
        check_inside(at, &rel).map_err(|reason| Error::Value {
            what: format!("{} entry", image_dir.join(DELETED_FILES).display()),
            value: rel.clone(),
            reason,
        })?;
        let path = at.join(&rel);
        if std::fs::symlink_metadata(&path).is_ok() {
            // Deleted, then made anew: the layer has it.
            continue;
        }
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).ctx(|| format!("create {}", parent.display()))?;
        }
        nix::sys::stat::mknod(
            &path,
            nix::sys::stat::SFlag::S_IFCHR,
            nix::sys::stat::Mode::empty(),
            0,
        )
        .map_err(|e| Error::Io {
            context: format!("whiteout {}", path.display()),
            cause: e.into(),
        })?;
    }
    Ok(())
}
