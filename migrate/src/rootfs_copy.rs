//! `--rootfs copy`: the container's rootfs travels over the same connection, as a tar
//! compressed with zstd, while the container still runs; the destination makes a bundle of
//! it (the container's config, its root at `rootfs`) in a directory that was empty. What
//! changes after the copy reaches the destination with the checkpoint: the dump saves the
//! rootfs changes since the container started (`--with-rootfs-diff`), which the restore
//! there applies on top of the copy.
//!
//! The receiving side treats the stream as hostile: the tar is extracted with the archive
//! code's checks (nothing outside the rootfs, no device nodes), the config must parse as an
//! OCI config and its root is always `rootfs` in the new bundle.

use std::fs::File;
use std::io::{Read, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt};
use std::path::{Path, PathBuf};

use lcr::container::Container;

use crate::link::{Incoming, Link, Sender};
use crate::wire::{Channel, Message, MAX_CHUNK};
use crate::{Error, Result};

/// The rootfs directory's name in the bundle made on the destination.
const ROOTFS: &str = "rootfs";

/// Whether the container's root is read-only: then nothing changes after the copy, and the
/// dump needs no rootfs changes.
pub(crate) fn read_only(container: &Container) -> bool {
    container
        .spec
        .root()
        .as_ref()
        .and_then(|r| r.readonly())
        .unwrap_or(false)
}

/// Why the container's rootfs cannot be copied, if it cannot: a writable root whose changes
/// since the start cannot be found. Checked before anything is sent.
pub(crate) fn check_copyable(container: &Container) -> Result<()> {
    if read_only(container) || lcr::rootfs::diff::Baseline::load(container.dir()).is_some() {
        return Ok(());
    }
    Err(Error::Refused {
        host: "this host".into(),
        reason: format!(
            "--rootfs copy: the changes to container {:?}'s writable rootfs since it started \
             cannot be found (it is on overlayfs, or was made by an older lcr), so a copy \
             could miss them; use --rootfs shared",
            container.id()
        ),
    })
}

/// Sends the container's config and rootfs, and waits until the receiver has made the
/// bundle. Returns the bytes of the rootfs.
pub(crate) fn send(container: &Container, link: &Link) -> Result<u64> {
    let rootfs = container.state.rootfs.clone();
    // As it is: the receiver puts the root of the bundle it makes at `rootfs` itself.
    let config =
        serde_json::to_string(&container.spec).map_err(|e| Error::Protocol(e.to_string()))?;
    let size = size_of(&rootfs)?;
    link.send(&Message::RootfsStart { config, size })?;
    let sink = FrameSink {
        sender: link.sender(),
        buf: Vec::with_capacity(MAX_CHUNK),
    };
    let io = |what: &str| {
        let context = format!("{what} {}", rootfs.display());
        move |cause| Error::Io { context, cause }
    };
    let encoder = zstd::Encoder::new(sink, 1).map_err(io("compress"))?;
    let mut tar = tar::Builder::new(encoder);
    tar.follow_symlinks(false);
    let dev = std::fs::symlink_metadata(&rootfs)
        .map_err(io("stat"))?
        .dev();
    append_tree(&mut tar, &rootfs, "", dev)?;
    let mut sink = tar
        .into_inner()
        .and_then(|z| z.finish())
        .map_err(io("send"))?;
    sink.flush().map_err(io("send"))?;
    link.send(&Message::RootfsEnd)?;
    match link.message()? {
        Message::RootfsReady => Ok(size),
        Message::Refused { reason } => Err(Error::Refused {
            host: "the destination".into(),
            reason,
        }),
        other => Err(Error::Protocol(format!("unexpected {other:?}"))),
    }
}

/// The bytes of the regular files under `dir` (not crossing mount points).
fn size_of(dir: &Path) -> Result<u64> {
    let mut total = 0;
    let dev = std::fs::symlink_metadata(dir)
        .map_err(|cause| Error::Io {
            context: format!("stat {}", dir.display()),
            cause,
        })?
        .dev();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let Ok(md) = e.metadata() else { continue };
            if md.dev() != dev {
                continue;
            }
            if md.is_dir() {
                stack.push(e.path());
            } else if md.is_file() {
                total += md.len();
            }
        }
    }
    Ok(total)
}

/// Appends everything under `dir` (as `prefix`…), without following links or crossing
/// into another file system. A file that changes meanwhile is sent at the size it had when
/// looked at (cut or padded): the rootfs changes saved with the dump correct it. Device
/// nodes and sockets are left out (the runtime makes /dev; the receiver refuses them).
fn append_tree<W: Write>(
    tar: &mut tar::Builder<W>,
    dir: &Path,
    prefix: &str,
    dev: u64,
) -> Result<()> {
    let io = |p: &Path, what: &str| {
        let context = format!("{what} {}", p.display());
        move |cause| Error::Io { context, cause }
    };
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .map_err(io(dir, "read"))?
        .flatten()
        .collect();
    entries.sort_by_key(|e| e.file_name());
    for e in entries {
        let path = e.path();
        let rel = format!("{prefix}{}", e.file_name().to_string_lossy());
        let Ok(md) = std::fs::symlink_metadata(&path) else {
            continue; // gone meanwhile: the dump's deletions say so
        };
        let kind = md.file_type();
        if md.dev() != dev && kind.is_dir() {
            continue;
        }
        if kind.is_file() {
            let mut header = tar::Header::new_gnu();
            header.set_metadata(&md);
            let Ok(f) = File::open(&path) else { continue };
            let data = f.take(md.len()).chain(std::io::repeat(0)).take(md.len());
            tar.append_data(&mut header, &rel, data)
                .map_err(io(&path, "send"))?;
        } else if kind.is_dir() || kind.is_symlink() || is_fifo(&kind) {
            tar.append_path_with_name(&path, &rel)
                .map_err(io(&path, "send"))?;
            if kind.is_dir() {
                append_tree(tar, &path, &format!("{rel}/"), dev)?;
            }
        }
    }
    Ok(())
}

fn is_fifo(kind: &std::fs::FileType) -> bool {
    std::os::unix::fs::FileTypeExt::is_fifo(kind)
}

/// Writes what the tar encoder produces as File frames of at most [`MAX_CHUNK`] bytes.
struct FrameSink {
    sender: Sender,
    buf: Vec<u8>,
}

impl Write for FrameSink {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.buf.extend_from_slice(data);
        if self.buf.len() >= MAX_CHUNK {
            self.flush()?;
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        self.sender
            .send_data(Channel::File, &self.buf)
            .map_err(std::io::Error::other)?;
        self.buf.clear();
        Ok(())
    }
}

/// The receiving side: a bundle made at `bundle` (which does not exist or is empty), kept
/// only when the migration succeeds (see [`MadeBundle`]).
pub(crate) fn receive(link: &Link, bundle: &Path, config: &str) -> Result<MadeBundle> {
    let spec: oci_spec::runtime::Spec = serde_json::from_str(config).map_err(|e| {
        Error::Protocol(format!(
            "the container's config that came is not an OCI config: {e}"
        ))
    })?;
    let made = MadeBundle::make(bundle)?;
    let mut spec = spec;
    let mut root = spec.root().clone().unwrap_or_default();
    root.set_path(PathBuf::from(ROOTFS));
    spec.set_root(Some(root));
    let text = serde_json::to_vec_pretty(&spec).map_err(|e| Error::Protocol(e.to_string()))?;
    lcr::fsutil::write_atomic(&bundle.join("config.json"), &text)?;
    let rootfs = bundle.join(ROOTFS);
    std::fs::create_dir(&rootfs).map_err(|cause| Error::Io {
        context: format!("create {}", rootfs.display()),
        cause,
    })?;
    let mut stream = FrameSource {
        link,
        buf: Vec::new(),
        pos: 0,
        ended: false,
    };
    let label = format!("the rootfs sent for {}", bundle.display());
    let decoder = zstd::Decoder::new(&mut stream).map_err(|cause| Error::Io {
        context: label.clone(),
        cause,
    })?;
    lcr::image::tree::extract_from(decoder, &label, &rootfs, true).map_err(|e| Error::Refused {
        host: "the destination".into(),
        reason: e.to_string(),
    })?;
    // What follows the tar's end (zstd's epilogue, padding) up to RootfsEnd.
    std::io::copy(&mut stream, &mut std::io::sink()).map_err(|cause| Error::Io {
        context: label,
        cause,
    })?;
    Ok(made)
}

/// File frames read as one stream, until `RootfsEnd`.
struct FrameSource<'a> {
    link: &'a Link,
    buf: Vec<u8>,
    pos: usize,
    ended: bool,
}

impl Read for FrameSource<'_> {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        while self.pos == self.buf.len() {
            if self.ended {
                return Ok(0);
            }
            match self.link.recv().map_err(std::io::Error::other)? {
                Incoming::FileData(bytes) => {
                    self.buf = bytes;
                    self.pos = 0;
                }
                Incoming::Message(Message::RootfsEnd) => self.ended = true,
                Incoming::Message(other) => {
                    return Err(std::io::Error::other(format!(
                        "unexpected {other:?} amid the rootfs"
                    )))
                }
            }
        }
        let n = out.len().min(self.buf.len() - self.pos);
        out[..n].copy_from_slice(&self.buf[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

/// A bundle this receiver made: removed (with what the rootfs copy put there) unless kept.
pub(crate) struct MadeBundle {
    path: PathBuf,
    kept: bool,
}

impl MadeBundle {
    fn make(path: &Path) -> Result<Self> {
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(|cause| Error::Io {
                context: format!("create {}", parent.display()),
                cause,
            })?;
        }
        // Empty (checked in the pre-flight) or absent: made anew, only root can enter it.
        let _ = std::fs::remove_dir(path);
        std::fs::DirBuilder::new()
            .mode(0o700)
            .create(path)
            .map_err(|cause| Error::Io {
                context: format!("create {}", path.display()),
                cause,
            })?;
        Ok(Self {
            path: path.to_path_buf(),
            kept: false,
        })
    }

    pub(crate) fn keep(&mut self) {
        self.kept = true;
    }
}

impl Drop for MadeBundle {
    fn drop(&mut self) {
        if !self.kept {
            if let Err(e) = lcr::fsutil::remove_tree(&self.path) {
                tracing::warn!(error = %e, path = %self.path.display(), "could not remove the bundle made for a failed migration");
            }
        }
    }
}

/// Whether `bundle` can take a copy: it does not exist, or is an empty directory.
pub(crate) fn check_empty(bundle: &Path) -> Result<()> {
    let empty = match std::fs::read_dir(bundle) {
        Err(e) => e.kind() == std::io::ErrorKind::NotFound,
        Ok(mut d) => d.next().is_none(),
    };
    match empty {
        true => Ok(()),
        false => Err(Error::Refused {
            host: "the destination".into(),
            reason: format!(
                "{} exists there and is not an empty directory: --rootfs copy makes the \
                 bundle there (give --dest-bundle a new path)",
                bundle.display()
            ),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::Writer;

    /// What a source would send: `tar` compressed, as File frames, then `RootfsEnd`.
    fn stream(tar: &[u8]) -> Vec<u8> {
        let w = Writer::new(Vec::new());
        let z = zstd::encode_all(tar, 1).unwrap();
        w.data(Channel::File, &z).unwrap();
        w.send(&Message::RootfsEnd).unwrap();
        w.into_inner()
    }

    fn config() -> String {
        serde_json::to_string(&oci_spec::runtime::Spec::default()).unwrap()
    }

    #[test]
    fn a_hostile_rootfs_is_refused_and_leaves_nothing() {
        let t = tempfile::tempdir().unwrap();
        let outside = t.path().join("outside");
        std::fs::create_dir(&outside).unwrap();
        let mut b = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Symlink);
        h.set_size(0);
        h.set_link_name(&outside).unwrap();
        b.append_data(&mut h, "up", std::io::empty()).unwrap();
        let mut h = tar::Header::new_gnu();
        h.set_size(4);
        h.set_mode(0o644);
        b.append_data(&mut h, "up/planted", &b"evil"[..]).unwrap();
        let link = Link::start(
            std::io::Cursor::new(stream(&b.into_inner().unwrap())),
            std::io::sink(),
        );
        let bundle = t.path().join("bundle");
        let e = receive(&link, &bundle, &config())
            .err()
            .expect("refused")
            .to_string();
        assert!(e.contains("up/planted"), "{e}");
        assert!(
            !outside.join("planted").exists(),
            "written outside the rootfs"
        );
        assert!(!bundle.exists(), "a refused copy left its bundle");
    }

    #[test]
    fn a_config_that_is_not_an_oci_config_is_refused() {
        let t = tempfile::tempdir().unwrap();
        let link = Link::start(std::io::Cursor::new(stream(&[])), std::io::sink());
        let bundle = t.path().join("bundle");
        let e = receive(&link, &bundle, "{\"ociVersion\": 7}")
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("not an OCI config"), "{e}");
        assert!(!bundle.exists());
    }
}
