//! `lcr checkpoint`: prepare → freeze → save files → dump → commit | abort.
//!
//! [`begin`] runs the phases up to a finished dump and hands back a [`Dumped`], which holds
//! the container (frozen, when asked to stay so) until [`Dumped::commit`] removes it or
//! [`Dumped::abort`] (or dropping it) lets it run on. [`checkpoint`] is both at once.

use std::collections::HashSet;
use std::ffi::OsString;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

use criurpc::{Notify, RequestKind};

use super::frozen::{Frozen, HandOver};
use super::images::ImageDir;
use super::mounts::{external_mounts, present_in};
use super::settings::CriuSettings;
use super::{dump_request, preflight, stdio, ExternalMount, StdioFile};
use crate::container::{self, Action, Container};
use crate::error::Context;
use crate::image::record::{kernel_release, machine_arch, InitProcess, Record, FORMAT};
use crate::image::stats::{read_dump, DumpStats};
use crate::image::{Output, PackOpts};
use crate::{Error, Result};

/// See [`CheckpointOpts::on_images`].
pub type OnImages = Box<dyn FnMut(&Path) -> std::result::Result<(), String> + Send>;

/// Options of `lcr checkpoint` (runc's flags).
pub struct CheckpointOpts {
    pub settings: CriuSettings,
    /// Where the images go: a directory (kept), or a temporary one for an export.
    pub images: ImageDir,
    pub leave_running: bool,
    pub tcp_skip_in_flight: bool,
    pub link_remap: bool,
    pub pre_dump: bool,
    /// Parent images (a pre-dump), relative to the image path or absolute.
    pub parent_path: Option<PathBuf>,
    pub status_fd: Option<OwnedFd>,
    pub page_server: Option<(String, u16)>,
    /// A socket already connected to a page server (a migration relays it to the
    /// destination's): the memory goes there, and no port is opened. With
    /// `settings.lazy_pages`, the dump serves the memory it leaves behind on this socket
    /// instead (to the other host's lazy-pages daemon), until every page has been taken.
    pub page_server_fd: Option<OwnedFd>,
    /// Called once the images are complete (CRIU's `post-dump`, before a lazy dump starts
    /// serving its pages), with the image directory: a migration ships them from here. Its
    /// error aborts the dump.
    pub on_images: Option<OnImages>,
    /// Save the files changed in a writable rootfs since the container started.
    pub with_rootfs_diff: bool,
    /// Save the contents of bind mounts.
    pub with_volumes: bool,
    /// Also write the checkpoint as an archive. The container stays frozen until the archive
    /// is complete, so a failed export leaves it running as it was.
    pub export: Option<(Output, PackOpts)>,
    /// Whether, and how, a migration holds the container while another host restores it.
    pub hold: Hold,
    /// Told by a migration when another host may run the container: nothing here thaws it
    /// then.
    pub hand_over: HandOver,
}

impl CheckpointOpts {
    pub fn new(image_path: impl Into<PathBuf>) -> Self {
        Self::with_images(ImageDir::At(image_path.into()))
    }

    pub fn with_images(images: ImageDir) -> Self {
        Self {
            settings: CriuSettings::default(),
            images,
            leave_running: false,
            tcp_skip_in_flight: false,
            link_remap: false,
            pre_dump: false,
            parent_path: None,
            status_fd: None,
            page_server: None,
            page_server_fd: None,
            on_images: None,
            with_rootfs_diff: false,
            with_volumes: false,
            export: None,
            hold: Hold::No,
            hand_over: HandOver::default(),
        }
    }

    /// Whether CRIU leaves the tree alive after the dump (else it kills it).
    pub(super) fn criu_leaves_running(&self) -> bool {
        self.leave_running || self.pre_dump || self.export.is_some() || self.hold == Hold::AfterDump
    }
}

/// How a migration holds the container while another host restores it (its images then
/// make no claim on the init here: it is still alive when they are restored).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hold {
    No,
    /// Inside [`CheckpointOpts::on_images`] (CRIU's `post-dump`): its Ok ends the container
    /// (CRIU kills it with its network still locked and its TCP sockets in repair mode, so
    /// no peer hears it go); its error lets it run on, or stay frozen if
    /// [`CheckpointOpts::hand_over`] says it may run elsewhere.
    AtImages,
    /// After the dump, CRIU leaving the tree alive (its network unlocked as the dump ends)
    /// and lcr keeping it frozen until [`Dumped::commit`] or [`Dumped::abort`]. A lazy dump
    /// needs this: its restore there must have pages before the outcome is known, and a
    /// lazy page server that loses its client ends as if it had served every page.
    AfterDump,
}

pub struct CheckpointReport {
    pub image_dir: PathBuf,
    pub record: Record,
    pub stats: Option<DumpStats>,
    /// How long lcr took to freeze the container itself, when it did (at CRIU's `pre-dump`,
    /// CRIU then finding it frozen: see `Frozen::freeze`).
    pub lcr_freeze_us: Option<u64>,
    /// How long CRIU had run when lcr froze the container (its start is no downtime).
    pub criu_ran_before_freeze: Option<std::time::Duration>,
}

/// Where the checkpoint goes and what it covers, found before anything is touched.
pub(super) struct Plan {
    pub image_dir: PathBuf,
    pub work_dir: PathBuf,
    /// The names the image directory held before: a failed dump removes only what it wrote.
    existing: HashSet<OsString>,
    pub mounts: Vec<ExternalMount>,
    pub stdio: Vec<StdioFile>,
}

/// A finished dump, the container still held: commit or abort it (dropping it aborts).
pub struct Dumped {
    frozen: Frozen,
    report: CheckpointReport,
    export: Option<(Output, PackOpts)>,
    /// The container outlives the checkpoint (`--leave-running`, a pre-dump).
    keeps_running: bool,
    /// A temporary image directory lives until the export is written.
    _images: ImageDir,
}

/// Checkpoints a running or paused container. On success it is removed (unless
/// `leave_running` or `pre_dump`); on failure it keeps running, its state unchanged.
pub fn checkpoint(container: Container, opts: CheckpointOpts) -> Result<CheckpointReport> {
    begin(container, opts)?.commit()
}

/// The phases up to a complete dump; the container is then held until the result is
/// committed or aborted. On failure it keeps running and the partial images are removed.
pub fn begin(container: Container, mut opts: CheckpointOpts) -> Result<Dumped> {
    container.allow(Action::Checkpoint)?;
    let id = container.id().to_string();
    let plan = prepare(&container, &opts)?;
    let frozen = Frozen::hold(container, opts.hand_over.clone())?;
    let result = dump(&frozen, &plan, &mut opts);
    let (record, stats, criu_ran_before_freeze) = match result {
        Ok(r) => r,
        Err(e) => {
            remove_partial_images(&plan.image_dir, &plan.existing);
            let log = if opts.pre_dump {
                "pre-dump.log"
            } else {
                "dump.log"
            };
            return Err(opts.images.keeping_log(e, &plan.work_dir, log, &id));
        }
    };
    let images = std::mem::replace(&mut opts.images, ImageDir::At(PathBuf::new()));
    let lcr_freeze_us = frozen.froze_in().map(|d| d.as_micros() as u64);
    Ok(Dumped {
        frozen,
        report: CheckpointReport {
            image_dir: plan.image_dir,
            record,
            stats,
            lcr_freeze_us,
            criu_ran_before_freeze,
        },
        export: opts.export.take(),
        keeps_running: opts.leave_running || opts.pre_dump,
        _images: images,
    })
}

impl Dumped {
    pub fn report(&self) -> &CheckpointReport {
        &self.report
    }

    /// Writes the export, if one was asked for, then ends the container (unless it was to
    /// keep running): it never runs past the checkpoint. A failed export thaws it instead.
    pub fn commit(mut self) -> Result<CheckpointReport> {
        if let Some((out, pack_opts)) = self.export.take() {
            let (_, out) = crate::image::pack(&self.report.image_dir, out, &pack_opts)?;
            out.commit()?;
        }
        if self.keeps_running {
            drop(self.frozen);
        } else {
            container::delete(self.frozen.release(), true)?;
        }
        Ok(self.report)
    }

    /// The container runs on as if no checkpoint had been made (the images stay); what it
    /// could not do, if CRIU already ended the tree, is said by the error.
    pub fn abort(self) -> Result<Container> {
        self.frozen.thaw()
    }
}

/// Checks the options against the container, the kernel and CRIU; makes the directories.
fn prepare(container: &Container, opts: &CheckpointOpts) -> Result<Plan> {
    preflight::check_kernel(opts)?;
    preflight::check_export(opts)?;
    preflight::check_limits_readable(container)?;
    let path = opts.images.path();
    let image_dir = std::path::absolute(path).ctx(|| format!("image path {}", path.display()))?;
    mkdir_private(&image_dir)?;
    let existing = names_in(&image_dir);
    let work_dir = opts.settings.work_dir(&image_dir)?;
    mkdir_private(&work_dir)?;
    let pid = container.state.pid;
    let mounts = present_in(
        external_mounts(
            &container.spec,
            &container.state.bundle,
            &container.state.cgroup_path,
        ),
        pid,
    );
    let stdio = stdio::stdio_of(pid);
    stdio::make_logs_appendable(pid, &stdio);
    Ok(Plan {
        image_dir,
        work_dir,
        existing,
        mounts,
        stdio,
    })
}

/// Freezes the container and saves what CRIU does not: the rootfs changes and the
/// bind-mount contents, if asked for, at the instant of its memory.
fn hold_still(frozen: &Frozen, plan: &Plan, opts: &CheckpointOpts) -> Result<()> {
    frozen.freeze()?;
    let container = frozen.container();
    if opts.with_rootfs_diff {
        let base = crate::rootfs::diff::Baseline::load(container.dir()).ok_or_else(|| Error::Option {
            option: "--with-rootfs-diff".into(),
            reason: format!(
                "container {:?} has no rootfs baseline: its root is read-only (root.readonly), on overlayfs (whose engine keeps the diff in its upper directory), or it was made by an older lcr",
                container.id()
            ),
        })?;
        let d = crate::rootfs::diff::save(&container.state.rootfs, &base, &plan.image_dir)?;
        tracing::debug!(
            changed = d.changed.len(),
            deleted = d.deleted.len(),
            "rootfs diff"
        );
    }
    if opts.with_volumes {
        super::volumes::save(&plan.mounts, &plan.image_dir)?;
    }
    Ok(())
}

/// One CRIU process answers VERSION (kept open) and then the dump; lcr's record is written
/// before the request (a lazy dump serves pages until the restore has them all, and the
/// restore reads the record first) and again with CRIU's statistics afterwards.
fn dump(
    frozen: &Frozen,
    plan: &Plan,
    opts: &mut CheckpointOpts,
) -> Result<(Record, Option<DumpStats>, Option<std::time::Duration>)> {
    let container = frozen.container();
    let (mut request, external_namespaces) =
        dump_request::dump_options(container, frozen.cgroup(), plan, opts)?;
    request = request.leave_running(opts.criu_leaves_running());
    let mut record = record_of(
        container,
        plan,
        opts,
        frozen.cgroup().version(),
        external_namespaces,
    );
    let kind = if opts.pre_dump {
        RequestKind::SinglePreDump
    } else {
        RequestKind::Dump
    };
    let criu_started = std::time::Instant::now();
    let mut session = opts.settings.criu.session(Some(&mut request))?;
    let version = match session.require_supported() {
        Ok(v) => v,
        Err(e) => {
            session.finish();
            return Err(e.into());
        }
    };
    record.criu_version = version.to_string();
    // Provisional until CRIU says the images are complete (`post-dump`, sent before it kills
    // or resumes the tree): an lcr killed before then leaves images restore refuses (the
    // tree runs on: CRIU cannot notify and gives up), killed after, images that are final.
    record.write(&plan.image_dir)?;
    let mut final_record = record.clone();
    final_record.provisional = false;
    let mut order = Vec::new();
    let mut on_images = opts.on_images.take();
    // A pre-dump sends no `pre-dump`: it is held from the start.
    let mut held = false;
    if opts.pre_dump {
        hold_still(frozen, plan, opts)?;
        held = true;
    }
    let opts: &CheckpointOpts = opts;
    let mut handler = |n: &mut Notify| {
        order.push(n.script.clone());
        // CRIU is ready to collect the tree; at `post-dump` it has frozen the tree itself,
        // should it not have said `pre-dump` first.
        if !held && (n.script == "pre-dump" || n.script == "post-dump") {
            hold_still(frozen, plan, opts).map_err(|e| e.to_string())?;
            held = true;
        }
        if n.script == "post-dump" {
            final_record
                .write(&plan.image_dir)
                .map_err(|e| e.to_string())?;
            if let Some(f) = on_images.as_mut() {
                f(&plan.image_dir)?;
            }
        }
        Ok(())
    };
    let result = session.call(kind, Some(&request), false, &mut handler);
    session.finish();
    drop(request);
    tracing::debug!(?order, "criu dump notifications");
    result?;
    let stats = read_dump(&plan.work_dir);
    record.stats = stats.clone();
    record.provisional = false;
    record.write(&plan.image_dir)?;
    let ran_before_freeze = frozen
        .frozen_at()
        .map(|t| t.saturating_duration_since(criu_started));
    Ok((record, stats, ran_before_freeze))
}

/// lcr's record of the checkpoint, provisional until CRIU has finished.
fn record_of(
    container: &Container,
    plan: &Plan,
    opts: &CheckpointOpts,
    cgroup_version: crate::cgroups::Version,
    external_namespaces: Vec<(String, String)>,
) -> Record {
    Record {
        format: FORMAT,
        id: container.id().to_string(),
        lcr_version: env!("CARGO_PKG_VERSION").to_string(),
        criu_version: String::new(),
        kernel: kernel_release(),
        arch: machine_arch(),
        cgroup_version,
        cgroup_path: container.state.cgroup_path.clone(),
        checkpointed: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        created: Some(container.state.created.clone()),
        config: container.spec.clone(),
        bundle: container.state.bundle.clone(),
        mounts: plan.mounts.clone(),
        stdio: plan.stdio.clone(),
        external_namespaces,
        leave_running: opts.leave_running,
        pre_dump: opts.pre_dump,
        parent: opts.parent_path.clone(),
        stats: None,
        provisional: true,
        // A held container is handed over by its holder (a migration restores it while it is
        // frozen here): no claim on it.
        init: (opts.hold == Hold::No)
            .then(|| InitProcess::of(container.state.pid, container.state.init_start_time)),
    }
}

fn names_in(dir: &Path) -> HashSet<OsString> {
    std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.file_name())
        .collect()
}

/// After a failed dump: what it wrote into the image directory goes (half a checkpoint is
/// not one), except CRIU's logs, which say why.
fn remove_partial_images(dir: &Path, before: &HashSet<OsString>) {
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
