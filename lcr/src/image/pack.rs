//! Image directory → archive. Every file is mapped once: hashed (in parallel) for the
//! manifest, which must come first, then streamed from the same mapping into tar and zstd.

use std::io::Write;
use std::path::{Path, PathBuf};

use super::compression::{Compression, Compressor};
use super::error::{ImageError, Result};
use super::layout;
use super::manifest::{Entry, Manifest, MountSummary, Origin, Summary, FORMAT};
use super::mapped::{Mapped, WindowReader};
use super::progress::{Counting, Progress};
use super::record::Record;
use super::{digest, volumes};

#[derive(Default)]
pub struct PackOpts {
    pub compression: Compression,
    pub quiet: bool,
    /// What write errors name: the archive (see `Output::label`), not the image directory.
    pub destination: String,
    /// Stops the export midway (the partial archive is the caller's to remove).
    pub cancel: crate::cancel::Cancel,
}

/// One file of the image directory.
struct Source {
    /// Relative to the directory, `/`-separated.
    rel: String,
    path: PathBuf,
    size: u64,
}

/// The files to pack: regular files at the top and under `volumes/`; the manifest and
/// podman's dumps are made afresh from the record.
fn scan(dir: &Path) -> Result<Vec<Source>> {
    let mut out = Vec::new();
    let mut walk = |sub: &str| -> Result<()> {
        let d = if sub.is_empty() {
            dir.to_path_buf()
        } else {
            dir.join(sub)
        };
        let rd = std::fs::read_dir(&d).map_err(ImageError::io(&d, "read directory"))?;
        for e in rd {
            let e = e.map_err(ImageError::io(&d, "read directory"))?;
            let name = e.file_name().to_string_lossy().into_owned();
            let rel = if sub.is_empty() {
                name.clone()
            } else {
                format!("{sub}/{name}")
            };
            let md =
                std::fs::symlink_metadata(e.path()).map_err(ImageError::io(e.path(), "stat"))?;
            if md.is_dir() {
                continue;
            }
            if !md.is_file() {
                return Err(ImageError::Refused {
                    archive: dir.display().to_string(),
                    entry: rel,
                    reason: "not a regular file (image directories hold regular files only)".into(),
                });
            }
            if layout::is_generated(&rel) {
                continue;
            }
            out.push(Source {
                rel,
                path: e.path(),
                size: md.len(),
            });
        }
        Ok(())
    };
    walk("")?;
    if dir.join(layout::VOLUMES_DIR).is_dir() {
        walk(layout::VOLUMES_DIR)?;
    }
    // Metadata first, bulk (pages, rootfs diff, volumes) last, each group by name.
    out.sort_by(|a, b| {
        let key = |s: &Source| {
            let name = layout::archive_name(&s.rel);
            (layout::is_bulk(&name), name.contains('/'), name)
        };
        key(a).cmp(&key(b))
    });
    Ok(out)
}

/// Annotations that name the image a bundle was made from, as containerd (CRI), the OCI image
/// spec and image tools write them.
const IMAGE_NAME_ANNOTATIONS: &[&str] = &[
    "io.kubernetes.cri.image-name",
    "org.opencontainers.image.ref.name",
    "org.opencontainers.image.base.name",
];

/// podman's `config.dump`: enough for checkpointctl and podman to name the container.
fn config_dump(r: &Record) -> Vec<u8> {
    let annotations = r.config.annotations().clone().unwrap_or_default();
    let image = IMAGE_NAME_ANNOTATIONS
        .iter()
        .find_map(|k| annotations.get(*k))
        .cloned()
        .unwrap_or_default();
    let v = serde_json::json!({
        "id": r.id,
        "name": r.id,
        "runtime": "lcr",
        "createdTime": r.created.clone().unwrap_or_else(|| r.checkpointed.clone()),
        "checkpointedTime": r.checkpointed,
        "rootfsImageName": image,
    });
    serde_json::to_vec_pretty(&v).unwrap_or_default()
}

/// The OCI spec as `spec.dump`. Its `io.container.manager` says which engine made the
/// container: the bundle's own (podman writes `libpod`), else lcr.
fn spec_dump(r: &Record) -> Vec<u8> {
    let mut spec = serde_json::to_value(&r.config).unwrap_or_default();
    if let Some(obj) = spec.as_object_mut() {
        let ann = obj
            .entry("annotations")
            .or_insert_with(|| serde_json::json!({}));
        if let Some(a) = ann.as_object_mut() {
            a.entry("io.container.manager")
                .or_insert_with(|| "lcr".into());
            a.insert("org.lcr.runtime".into(), "lcr".into());
        }
    }
    serde_json::to_vec_pretty(&spec).unwrap_or_default()
}

fn summary(r: &Record, dir: &Path, has_diff: bool) -> Summary {
    let linux = r.config.linux().as_ref();
    Summary {
        id: r.id.clone(),
        command: r
            .config
            .process()
            .as_ref()
            .and_then(|p| p.args().clone())
            .unwrap_or_default(),
        created: r.created.clone(),
        checkpointed: r.checkpointed.clone(),
        namespaces: crate::spec::namespaces(&r.config)
            .map(|n| {
                let t = n.typ().to_string();
                match n.path() {
                    Some(p) => format!("{t} (joined {})", p.display()),
                    None => t,
                }
            })
            .collect(),
        mounts: r
            .config
            .mounts()
            .iter()
            .flatten()
            .map(|m| MountSummary {
                destination: m.destination().display().to_string(),
                source: m
                    .source()
                    .as_ref()
                    .map(|s| s.display().to_string())
                    .unwrap_or_default(),
                kind: m.typ().clone().unwrap_or_default(),
            })
            .collect(),
        cgroup_path: r.cgroup_path.clone(),
        limits: linux
            .and_then(|l| l.resources().as_ref())
            .and_then(|res| serde_json::to_value(res).ok()),
        memory_dumped: r
            .stats
            .as_ref()
            .map(|s| s.pages_written * crate::procfs::page_size()),
        rootfs_diff: has_diff,
        volumes: volumes::Index::read(dir)
            .map(|i| i.destinations())
            .unwrap_or_default(),
    }
}

fn manifest_for(record: &Record, dir: &Path, entries: Vec<Entry>) -> Manifest {
    let has_diff = entries.iter().any(|e| e.name == layout::ROOTFS_DIFF);
    Manifest {
        format: FORMAT,
        origin: Origin {
            lcr_version: env!("CARGO_PKG_VERSION").to_string(),
            criu_version: record.criu_version.clone(),
            kernel: record.kernel.clone(),
            arch: record.arch.clone(),
            cgroup_version: format!("{:?}", record.cgroup_version).to_lowercase(),
            page_size: crate::procfs::page_size(),
        },
        packed: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        container: summary(record, dir, has_diff),
        entries,
    }
}

/// What packing `dir` would list, without checksums (for inspecting a plain image directory).
pub fn manifest_of(dir: &Path, record: &Record) -> Result<Manifest> {
    let entries = scan(dir)?
        .into_iter()
        .map(|s| Entry {
            name: layout::archive_name(&s.rel),
            size: s.size,
            sha256: String::new(),
        })
        .collect();
    Ok(manifest_for(record, dir, entries))
}

/// One entry of an archive after its manifest: its name and bytes, and the mapping they come
/// from (released as they are hashed and written, so a large checkpoint is not held in
/// memory twice).
struct Part<'a> {
    name: String,
    data: &'a [u8],
    map: Option<&'a Mapped>,
}

impl Part<'_> {
    fn release(&self, range: std::ops::Range<usize>) {
        if let Some(m) = self.map {
            m.release(range);
        }
    }
}

/// Writes the checkpoint in `dir` as an archive to `out`; returns the manifest and `out`.
/// The phases: the record → the files mapped → their checksums (in parallel) → the manifest
/// → the archive, manifest first.
pub fn pack<W: Write>(dir: &Path, out: W, opts: &PackOpts) -> Result<(Manifest, W)> {
    let record = packable_record(dir)?;
    let sources = scan(dir)?;
    let maps = sources
        .iter()
        .map(|s| Mapped::open(&s.path, s.size))
        .collect::<Result<Vec<_>>>()?;
    let generated = [
        (layout::CONFIG_DUMP, config_dump(&record)),
        (layout::SPEC_DUMP, spec_dump(&record)),
    ];
    let mut parts: Vec<Part> = generated
        .iter()
        .map(|(n, d)| Part {
            name: n.to_string(),
            data: d.as_slice(),
            map: None,
        })
        .collect();
    parts.extend(sources.iter().zip(&maps).map(|(s, m)| Part {
        name: layout::archive_name(&s.rel),
        data: m.bytes(),
        map: Some(m),
    }));
    let manifest = manifest_for(&record, dir, checksums(&parts));
    let out = write_archive(out, &manifest, &parts, opts)?;
    Ok((manifest, out))
}

/// The record of a checkpoint that can be packed (not a pre-dump).
fn packable_record(dir: &Path) -> Result<Record> {
    let label = dir.display().to_string();
    let record = Record::read(dir).map_err(|e| ImageError::Broken {
        archive: label.clone(),
        reason: match e {
            crate::Error::NotACheckpoint { reason, .. } => reason,
            other => other.to_string(),
        },
    })?;
    if record.pre_dump {
        return Err(ImageError::Broken {
            archive: label,
            reason: "this is a pre-dump (memory only, not restorable on its own): pack the final checkpoint".into(),
        });
    }
    Ok(record)
}

/// The manifest's entries: each part's name, size and SHA-256, hashed on every core.
fn checksums(parts: &[Part]) -> Vec<Entry> {
    let data: Vec<&[u8]> = parts.iter().map(|p| p.data).collect();
    let sums = digest::hex_all(
        &data,
        std::thread::available_parallelism().map_or(2, |n| n.get()),
        &|i: usize, r: std::ops::Range<usize>| parts[i].release(r),
    );
    parts
        .iter()
        .zip(sums)
        .map(|(p, sha256)| Entry {
            name: p.name.clone(),
            size: p.data.len() as u64,
            sha256,
        })
        .collect()
}

/// The archive: the manifest, then each directory's entry before its first file, then the
/// parts, compressed.
fn write_archive<W: Write>(
    out: W,
    manifest: &Manifest,
    parts: &[Part],
    opts: &PackOpts,
) -> Result<W> {
    let manifest_json = serde_json::to_vec_pretty(manifest).unwrap_or_default();
    let progress = Progress::new("export", Some(manifest.total_size()), opts.quiet)
        .with_cancel(opts.cancel.clone());
    let dest = opts.destination.as_str();
    let compressor = Compressor::new(out, opts.compression)
        .map_err(ImageError::io(dest, "start compression"))?;
    let mut tar = tar::Builder::new(Counting {
        inner: compressor,
        progress: &progress,
    });
    let write_err = |name: &str| ImageError::io(dest, format!("write archive entry {name}"));
    let mtime = chrono::Utc::now().timestamp().max(0) as u64;
    append_file(&mut tar, layout::MANIFEST, &manifest_json, mtime)
        .map_err(write_err(layout::MANIFEST))?;
    // checkpointctl needs `checkpoint/` as an entry of its own.
    let mut dirs_written: Vec<&str> = Vec::new();
    for part in parts {
        if let Some((parent, _)) = part.name.split_once('/') {
            if !dirs_written.contains(&parent) {
                append_dir(&mut tar, parent, mtime).map_err(write_err(parent))?;
                dirs_written.push(parent);
            }
        }
        let mut h = header(
            tar::EntryType::Regular,
            part.data.len() as u64,
            0o600,
            mtime,
        );
        let done = |r| part.release(r);
        let reader = WindowReader {
            data: part.data,
            at: 0,
            release: &done,
        };
        tar.append_data(&mut h, &part.name, reader)
            .map_err(write_err(&part.name))?;
    }
    let counting = tar.into_inner().map_err(write_err("(end of archive)"))?;
    let out = counting
        .inner
        .finish()
        .map_err(write_err("(end of compression)"))?;
    progress.finish();
    Ok(out)
}

fn header(kind: tar::EntryType, size: u64, mode: u32, mtime: u64) -> tar::Header {
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(kind);
    h.set_size(size);
    h.set_mode(mode);
    h.set_mtime(mtime);
    h.set_uid(0);
    h.set_gid(0);
    h
}

fn append_file<W: Write>(
    tar: &mut tar::Builder<W>,
    name: &str,
    data: &[u8],
    mtime: u64,
) -> std::io::Result<()> {
    let mut h = header(tar::EntryType::Regular, data.len() as u64, 0o600, mtime);
    tar.append_data(&mut h, name, data)
}

fn append_dir<W: Write>(tar: &mut tar::Builder<W>, name: &str, mtime: u64) -> std::io::Result<()> {
    let mut h = header(tar::EntryType::Directory, 0, 0o700, mtime);
    tar.append_data(&mut h, format!("{name}/"), std::io::empty())
}
