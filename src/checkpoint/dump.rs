use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

use criurpc::{Notify, Options, RequestKind};
use oci_spec::runtime::LinuxNamespaceType;

use super::mounts::{external_mounts, present_in};
use super::settings::CriuSettings;
use super::stdio;
use crate::cgroups::Cgroup;
use crate::container::{self, Action, Container, Status};
use crate::error::Context;
use crate::image::record::{kernel_release, machine_arch, Record, FORMAT};
use crate::image::stats::{read_dump, DumpStats};
use crate::image::{Output, PackOpts};
use crate::{Error, Result};

/// Options of `lcr checkpoint` (runc's flags).
pub struct CheckpointOpts {
    pub settings: CriuSettings,
    pub image_path: PathBuf,
    pub leave_running: bool,
    pub tcp_skip_in_flight: bool,
    pub link_remap: bool,
    pub pre_dump: bool,
    /// Parent images (a pre-dump), relative to the image path or absolute.
    pub parent_path: Option<PathBuf>,
    pub status_fd: Option<OwnedFd>,
    pub page_server: Option<(String, u16)>,
    /// Save the files changed in a writable rootfs since the container started.
    pub with_rootfs_diff: bool,
    /// Save the contents of bind mounts.
    pub with_volumes: bool,
    /// Also write the checkpoint as an archive. The container stays frozen until the archive
    /// is complete, so a failed export leaves it running as it was.
    pub export: Option<(Output, PackOpts)>,
}

impl CheckpointOpts {
    pub fn new(image_path: impl Into<PathBuf>) -> Self {
        Self {
            settings: CriuSettings::default(),
            image_path: image_path.into(),
            leave_running: false,
            tcp_skip_in_flight: false,
            link_remap: false,
            pre_dump: false,
            parent_path: None,
            status_fd: None,
            page_server: None,
            with_rootfs_diff: false,
            with_volumes: false,
            export: None,
        }
    }
}

pub struct CheckpointReport {
    pub image_dir: PathBuf,
    pub record: Record,
    pub stats: Option<DumpStats>,
}

/// Fails before anything is touched when the kernel or CRIU lacks what the options need.
fn check_kernel(o: &CheckpointOpts) -> Result<()> {
    let needs_dirty = o.pre_dump || o.parent_path.is_some();
    if !(needs_dirty || o.settings.lazy_pages) {
        return Ok(());
    }
    let f = o.settings.criu.features()?;
    if needs_dirty && !f.mem_track {
        let flag = if o.pre_dump {
            "--pre-dump"
        } else {
            "--parent-path"
        };
        return Err(Error::Value {
            what: flag.into(),
            value: String::new(),
            reason:
                "this kernel has no dirty memory tracking (soft-dirty, CONFIG_MEM_SOFT_DIRTY): \
                     iterative pre-copy checkpoints are unavailable; use a plain checkpoint"
                    .into(),
        });
    }
    if o.settings.lazy_pages {
        if !f.lazy_pages {
            return Err(Error::Value {
                what: "--lazy-pages".into(),
                value: String::new(),
                reason:
                    "this kernel has no non-cooperative userfaultfd: lazy pages are unavailable"
                        .into(),
            });
        }
        if let Some(why) = crate::check::lazy_pages_blocker() {
            return Err(Error::Value {
                what: "--lazy-pages".into(),
                value: String::new(),
                reason: why,
            });
        }
    }
    Ok(())
}

/// Refuses option combinations an archive cannot hold.
fn check_export(o: &CheckpointOpts) -> Result<()> {
    if o.export.is_none() {
        return Ok(());
    }
    let conflict = if o.pre_dump {
        Some("--pre-dump (a pre-dump is not restorable on its own)")
    } else if o.settings.lazy_pages {
        Some("--lazy-pages (the memory stays behind, served on demand)")
    } else if o.page_server.is_some() {
        Some("--page-server (the memory goes to the page server)")
    } else {
        None
    };
    match conflict {
        Some(c) => Err(Error::Value {
            what: "--export".into(),
            value: String::new(),
            reason: format!("cannot be combined with {c}"),
        }),
        None => Ok(()),
    }
}

/// Thaws the cgroup of a container that was running, if it is frozen (by this checkpoint, or
/// left so by CRIU), unless disarmed: every return leaves a running container running. While
/// armed, the container's directory carries a marker, so that if this lcr is killed the next
/// command that locks the container thaws it (see `Container::recover_checkpoint_freeze`).
struct ThawOnDrop<'a> {
    cgroup: Option<&'a Cgroup>,
    marker: PathBuf,
}

impl<'a> ThawOnDrop<'a> {
    fn arm(c: &Container, cgroup: Option<&'a Cgroup>) -> Result<Self> {
        let marker = c.dir().join(container::CHECKPOINT_FREEZE_MARKER);
        if cgroup.is_some() {
            crate::fsutil::write_atomic(&marker, std::process::id().to_string().as_bytes())?;
        }
        Ok(Self { cgroup, marker })
    }

    /// The container is gone or meant to stay frozen: nothing to thaw.
    fn disarm(&mut self) {
        self.cgroup = None;
    }
}

impl Drop for ThawOnDrop<'_> {
    fn drop(&mut self) {
        if let Some(cg) = self.cgroup.filter(|cg| cg.is_frozen()) {
            if let Err(e) = cg.thaw() {
                tracing::warn!(error = %e, "could not thaw the container after a failed checkpoint");
            }
        }
        let _ = std::fs::remove_file(&self.marker);
    }
}

fn names_in(dir: &Path) -> std::collections::HashSet<std::ffi::OsString> {
    std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.file_name())
        .collect()
}

/// After a failed dump: what it wrote into the image directory goes (half a checkpoint is
/// not one), except CRIU's logs, which say why.
fn remove_partial_images(dir: &Path, before: &std::collections::HashSet<std::ffi::OsString>) {
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let name = e.file_name();
        if before.contains(&name) || name.to_string_lossy().ends_with(".log") {
            continue;
        }
        if let Err(err) = crate::fsutil::remove_tree(&e.path()) {
            tracing::warn!(error = %err, "partial image left");
        }
    }
}

fn mkdir_private(p: &Path) -> Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(p)
        .ctx(|| format!("create {}", p.display()))
}

/// Checkpoints a running or paused container. On success it is removed (unless
/// `leave_running` or `pre_dump`); on failure it keeps running, its state unchanged.
pub fn checkpoint(c: Container, mut o: CheckpointOpts) -> Result<CheckpointReport> {
    let status = c.status();
    status.check(c.id(), Action::Checkpoint)?;
    check_kernel(&o)?;
    check_export(&o)?;
    let image_dir = std::path::absolute(&o.image_path)
        .ctx(|| format!("image path {}", o.image_path.display()))?;
    mkdir_private(&image_dir)?;
    let before = names_in(&image_dir);
    let work_dir = o.settings.work_dir(&image_dir)?;
    mkdir_private(&work_dir)?;

    let pid = c.state.pid;
    let cgroup = c.cgroup()?;
    let terminal = crate::spec::has_terminal(&c.spec);
    let mounts = present_in(
        external_mounts(&c.spec, &c.state.bundle, &c.state.cgroup_path),
        pid,
    );
    let stdio = stdio::stdio_of(pid);
    stdio::make_logs_appendable(pid, &stdio);

    // Files and memory must be captured at the same instant, and an export must be complete
    // before the container goes: it is frozen first (CRIU keeps a frozen cgroup frozen).
    let hold = o.export.is_some() || o.with_rootfs_diff || o.with_volumes;
    let running = status == Status::Running;
    let mut thaw = ThawOnDrop::arm(&c, running.then_some(&cgroup))?;
    if hold && running {
        cgroup.freeze()?;
    }
    if o.with_rootfs_diff {
        let base = crate::rootfs::diff::Baseline::load(c.dir()).ok_or_else(|| Error::Value {
            what: "--with-rootfs-diff".into(),
            value: String::new(),
            reason: format!(
                "container {:?} has no rootfs baseline: its root is read-only (root.readonly), on overlayfs (whose engine keeps the diff in its upper directory), or it was made by an older lcr",
                c.id()
            ),
        })?;
        let d = crate::rootfs::diff::save(&c.state.rootfs, &base, &image_dir)?;
        tracing::debug!(
            changed = d.changed.len(),
            deleted = d.deleted.len(),
            "rootfs diff"
        );
    }
    if o.with_volumes {
        super::volumes::save(&mounts, &image_dir)?;
    }

    let mut opts = Options::new()
        .images_dir(&image_dir)
        .work_dir(&work_dir)?
        .pid(pid)
        .root(&c.state.rootfs)
        .freeze_cgroup(cgroup.dir(Some("freezer")).to_string_lossy().into_owned())
        .leave_running(o.leave_running || o.pre_dump || o.export.is_some())
        .tcp_skip_in_flight(o.tcp_skip_in_flight)
        .link_remap(o.link_remap)
        .orphan_pts_master(terminal)
        .notify_scripts(true)
        .log_level(4)
        .log_file(if o.pre_dump {
            "pre-dump.log"
        } else {
            "dump.log"
        });
    for m in &mounts {
        let d = m.destination.to_string_lossy().into_owned();
        opts = opts.ext_mnt(d.clone(), d);
    }
    for f in stdio.iter().filter(|f| f.external) {
        opts = opts.external(f.key.clone());
    }
    let mut external_namespaces = Vec::new();
    for ns in crate::spec::namespaces(&c.spec) {
        let Some(path) = ns.path() else { continue };
        if ns.typ() != LinuxNamespaceType::Network {
            return Err(Error::Value {
                what: "linux.namespaces".into(),
                value: format!("{:?} joined by path", ns.typ()),
                reason: "only a network namespace joined by path can be checkpointed".into(),
            });
        }
        let ino = std::os::unix::fs::MetadataExt::ino(
            &std::fs::metadata(path).ctx(|| format!("stat {}", path.display()))?,
        );
        opts = opts.external(format!("net[{ino}]:{EXT_NET_KEY}"));
        external_namespaces.push(("net".to_string(), EXT_NET_KEY.to_string()));
    }
    opts = o.settings.apply(opts);
    if let Some(file) = super::settings::criu_config_file(&c.spec)? {
        opts = opts.config_file(file);
    }
    if let Some((addr, port)) = &o.page_server {
        opts = opts.page_server(addr.clone(), *port);
    }
    if let Some(fd) = o.status_fd.take() {
        opts = opts.status_fd(fd);
    }
    if o.pre_dump || o.parent_path.is_some() {
        opts = opts.track_mem(true);
    }
    if let Some(p) = &o.parent_path {
        opts = opts.parent_img(p.to_string_lossy().into_owned());
    }

    // Written before the request: a lazy dump serves pages until the restore has them all,
    // and the restore reads this first. Rewritten with CRIU's statistics afterwards.
    let mut record = Record {
        format: FORMAT,
        id: c.id().to_string(),
        lcr_version: env!("CARGO_PKG_VERSION").to_string(),
        criu_version: String::new(),
        kernel: kernel_release(),
        arch: machine_arch(),
        cgroup_version: cgroup.version(),
        cgroup_path: c.state.cgroup_path.clone(),
        checkpointed: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        created: Some(c.state.created.clone()),
        config: c.spec.clone(),
        bundle: c.state.bundle.clone(),
        mounts,
        stdio,
        external_namespaces,
        leave_running: o.leave_running,
        pre_dump: o.pre_dump,
        parent: o.parent_path.clone(),
        stats: None,
        provisional: true,
    };
    // One CRIU process answers VERSION (kept open) and then the dump.
    let kind = if o.pre_dump {
        RequestKind::SinglePreDump
    } else {
        RequestKind::Dump
    };
    let mut session = o.settings.criu.session(Some(&mut opts))?;
    let version = match session.require_supported() {
        Ok(v) => v,
        Err(e) => {
            session.finish();
            remove_partial_images(&image_dir, &before);
            return Err(e.into());
        }
    };
    record.criu_version = version.to_string();
    // Provisional until CRIU says the images are complete (`post-dump`, sent before it kills
    // or resumes the tree): an lcr killed before then leaves images restore refuses (the
    // tree runs on: CRIU cannot notify and gives up), killed after, images that are final.
    record.write(&image_dir)?;
    let mut final_record = record.clone();
    final_record.provisional = false;
    let mut order = Vec::new();
    let mut handler = |n: &mut Notify| {
        order.push(n.script.clone());
        if n.script == "post-dump" {
            final_record.write(&image_dir).map_err(|e| e.to_string())?;
        }
        Ok(())
    };
    let result = session.call(kind, Some(&opts), false, &mut handler);
    session.finish();
    drop(opts);
    tracing::debug!(?order, "criu dump notifications");
    if let Err(e) = result {
        remove_partial_images(&image_dir, &before);
        return Err(e.into());
    }
    let stats = read_dump(&work_dir);
    record.stats = stats.clone();
    record.provisional = false;
    record.write(&image_dir)?;
    if let Some((out, pack_opts)) = o.export.take() {
        let (_, out) = crate::image::pack(&image_dir, out, &pack_opts)?;
        out.commit()?;
    }
    if !o.leave_running && !o.pre_dump {
        // Killed while still frozen: it never runs past the checkpoint.
        thaw.disarm();
        container::delete(c, true)?;
    }
    Ok(CheckpointReport {
        image_dir,
        record,
        stats,
    })
}

/// The key a network namespace joined by path is saved under (as runc names it).
pub(super) const EXT_NET_KEY: &str = "extRootNetNS";
