//! `lcr restore`: stage images → prepare → make → restore → commit | abort.
//!
//! [`begin_restore`] runs the phases up to a restored tree and hands back a [`Restored`]: the
//! container runs, but lcr does not know it as complete until [`Restored::commit`]; dropping
//! it (or [`Restored::abort`]) kills the tree and removes everything the restore made. The
//! images are never changed. [`restore`] is both at once.

use std::os::fd::OwnedFd;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};

use criurpc::{Notify, Options, RequestKind};

use super::clone::{self, CloneOpts, CloneRoot, MergeMemory};
use super::compat::{check_compatible, check_criu_version, check_origin, explain_stdio_size};
use super::criu_root::private_root;
use super::images::keep_log;
use super::images::ImageDir;
use super::mounts::restore_source;
use super::settings::CriuSettings;
use super::watchdog::{self, Tripped, Watchdog};
use crate::cgroups::{container_cgroup_path, Cgroup};
use crate::container::{Container, Lock, Rollback, State, Status, Store, CONFIG_FILE, STATE_FILE};
use crate::error::Context;
use crate::fsutil::{write_json, WorkDir};
use crate::hooks::{self, Kind};
use crate::image::record::Record;
use crate::image::stats::{read_restore, RestoreStats};
use crate::image::Input;
use crate::process::become_subreaper;
use crate::procfs;
use crate::rootfs::diff::{Applied, Baseline};
use crate::rootfs::snapshot_layer::Layers;
use crate::spec::Bundle;
use crate::{Error, Result};

/// Where a restore's images come from.
pub enum Images {
    /// An image directory (read, never changed).
    Dir(PathBuf),
    /// An archive (`checkpoint --export`), checked against this host from its manifest before
    /// anything is unpacked, then entry by entry into `unpack_to` (kept) or a temporary
    /// directory (removed afterwards).
    Archive {
        input: Input,
        unpack_to: Option<PathBuf>,
        quiet: bool,
    },
}

/// Options of `lcr restore`.
pub struct RestoreOpts {
    pub settings: CriuSettings,
    pub bundle: PathBuf,
    pub images: Images,
    pub pid_file: Option<PathBuf>,
    /// Where the new pty master of a terminal container is sent (required for those).
    pub console_socket: Option<PathBuf>,
    /// What the container is restored from, as its state records it (default: the images,
    /// or the archive).
    pub origin: Option<PathBuf>,
    /// Write the bind-mount contents the checkpoint holds into the bundle's sources.
    pub with_volumes: bool,
    /// How long CRIU may take (zero: no limit); its log is capped too (see `watchdog`).
    pub timeout: std::time::Duration,
    /// Stops the restore midway (CRIU killed, everything undone): the CLI cancels it on
    /// SIGINT/SIGTERM/SIGHUP.
    pub cancel: crate::cancel::Cancel,
    /// One of many restores of the same images (see [`super::clone`]).
    pub clone: Option<CloneOpts>,
}

impl RestoreOpts {
    pub fn new(bundle: impl Into<PathBuf>, image_path: impl Into<PathBuf>) -> Self {
        Self::from(bundle, Images::Dir(image_path.into()))
    }

    pub fn from(bundle: impl Into<PathBuf>, images: Images) -> Self {
        Self {
            settings: CriuSettings::default(),
            bundle: bundle.into(),
            images,
            pid_file: None,
            console_socket: None,
            origin: None,
            with_volumes: false,
            timeout: DEFAULT_TIMEOUT,
            cancel: Default::default(),
            clone: None,
        }
    }
}

const CRIU_ROOT: &str = "criu-root";

/// The default [`RestoreOpts::timeout`].
pub const DEFAULT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(600);

/// What the images and the bundle say, checked against each other and this host.
struct Plan {
    image_dir: PathBuf,
    work_dir: PathBuf,
    record: Record,
    bundle: Bundle,
    terminal: bool,
    /// Connected first, so that a bad socket fails before anything is made.
    console: Option<UnixStream>,
}

/// The container's record, cgroup and rootfs changes, made before CRIU runs. Dropped armed,
/// it undoes them all: `diff` first (its changes to the rootfs), then `rollback` (the tree,
/// the cgroup, the state directory), then the lock.
struct Made {
    /// A clone's overlay, unmounted before anything removes the state directory.
    clone_root: Option<CloneRoot>,
    diff: Option<Applied>,
    rollback: Rollback,
    _lock: Lock,
    dir: PathBuf,
    state: State,
    state_file: PathBuf,
    cgroup: Cgroup,
}

/// A restored tree, not yet a complete container: commit or abort it (dropping it aborts).
pub struct Restored<'s> {
    store: &'s Store,
    id: String,
    made: Made,
    plan: Plan,
    pid_file: Option<PathBuf>,
    cancel: crate::cancel::Cancel,
    /// A temporary image directory lives until the restore is committed or undone.
    _images: ImageDir,
    /// A clone's CRIU work directory (its log and statistics), likewise.
    clone_work: Option<WorkDir>,
}

/// Restores a checkpoint as container `id` from `bundle` (which may differ from the one it
/// was made from): new cgroup with the bundle's limits, bind mounts from the bundle's
/// sources, stdio from this process. On failure nothing is left but the images.
pub fn restore(
    store: &Store,
    id: &str,
    opts: RestoreOpts,
) -> Result<(Container, Option<RestoreStats>)> {
    begin_restore(store, id, opts)?.commit()
}

/// The phases up to a restored tree. On failure nothing is left but the images (and, when
/// they were temporary, CRIU's log, named in the error).
pub fn begin_restore<'s>(
    store: &'s Store,
    id: &str,
    mut opts: RestoreOpts,
) -> Result<Restored<'s>> {
    crate::container::validate_id(id)?;
    if opts.clone.is_some() && opts.settings.auto_dedup {
        return Err(Error::Option {
            option: "--auto-dedup".into(),
            reason: "a clone never changes the images (auto-dedup punches the restored pages \
                     out of them)"
                .into(),
        });
    }
    let images = stage(&mut opts)?;
    // A clone writes nothing into the images: CRIU works in a directory of its own.
    let clone_work = match (&opts.clone, &opts.settings.work_path) {
        (Some(_), None) => Some(crate::fsutil::work_dir("clone")?),
        _ => None,
    };
    let work_dir = match &clone_work {
        Some(w) => w.path().to_path_buf(),
        None => opts.settings.work_dir(images.path())?,
    };
    let phases = || {
        let mut plan = prepare(images.path(), &work_dir, &opts)?;
        let mut made = make(store, id, &plan, &opts)?;
        run_criu(&mut made, &mut plan, &opts)?;
        Ok((plan, made))
    };
    let (plan, made) = phases().map_err(|e| match &clone_work {
        Some(_) => keep_log(e, &work_dir, "restore.log", id),
        None => images.keeping_log(e, &work_dir, "restore.log", id),
    })?;
    Ok(Restored {
        store,
        id: id.to_string(),
        made,
        plan,
        pid_file: opts.pid_file.take(),
        cancel: opts.cancel.clone(),
        _images: images,
        clone_work,
    })
}

impl Restored<'_> {
    pub fn pid(&self) -> i32 {
        self.made.state.pid
    }

    /// Checks the restore bundle's limits on the cgroup, records the container as running,
    /// and runs the poststart hooks: the restore is then complete.
    pub fn commit(mut self) -> Result<(Container, Option<RestoreStats>)> {
        let linux = self.plan.bundle.spec.linux().as_ref();
        self.made
            .cgroup
            .verify(linux.and_then(|l| l.resources().as_ref()))?;
        self.made.state.status = Status::Running;
        write_json(&self.made.state_file, &self.made.state)?;
        if let Some(p) = &self.pid_file {
            crate::container::write_pid_file(p, self.made.state.pid)?;
        }
        // A cancellation that came while CRIU worked (a signal noted, not obeyed) undoes it all.
        self.cancel.check().map_err(|e| Error::CriuStopped {
            image: self.plan.image_dir.clone(),
            reason: e.to_string(),
        })?;
        self.made.rollback.disarm();
        if let Some(d) = self.made.diff.take() {
            d.keep();
        }
        if let Some(l) = self.made.clone_root.as_mut().and_then(|r| r.layer.as_mut()) {
            l.keep();
        }
        let stats = read_restore(&self.plan.work_dir);
        if self.clone_work.is_some() {
            let log = self.plan.work_dir.join("restore.log");
            let _ = std::fs::copy(&log, self.made.dir.join("restore.log"));
        }
        drop(self.made);
        let c = Container::load(self.store, &self.id)?;
        if let Err(e) = hooks::run(
            Kind::Poststart,
            c.spec.hooks().as_ref(),
            &c.oci_state_json(),
        ) {
            tracing::warn!(error = %e, "poststart hook failed");
        }
        Ok((c, stats))
    }

    /// Kills the restored tree and removes everything the restore made.
    pub fn abort(self) {
        drop(self);
    }
}

/// The image directory: as given, or an archive unpacked once its manifest passed.
fn stage(opts: &mut RestoreOpts) -> Result<ImageDir> {
    let images = std::mem::replace(&mut opts.images, Images::Dir(PathBuf::new()));
    let (input, unpack_to, quiet) = match images {
        Images::Dir(d) => return Ok(ImageDir::At(d)),
        Images::Archive {
            input,
            unpack_to,
            quiet,
        } => (input, unpack_to, quiet),
    };
    let source = input.label.clone();
    let from_stdin = input.is_stdin;
    let input = input.cancel(&opts.cancel);
    // Refused from the manifest, before gigabytes are unpacked for nothing.
    let criu = &opts.settings.criu;
    let precheck = |m: &crate::image::Manifest| {
        check_origin(&m.origin, &source, criu).map_err(|e| e.to_string())
    };
    let dir = match unpack_to {
        Some(d) => {
            crate::image::unpack(input, &d, quiet, &precheck)?;
            ImageDir::At(d)
        }
        None => {
            let dir = ImageDir::temporary("import")?;
            crate::image::unpack_into(input, dir.path(), quiet, &precheck)?;
            dir
        }
    };
    if from_stdin {
        // Standard input was the archive: the container's stdin becomes /dev/null.
        let null = std::fs::File::open("/dev/null").ctx(|| "open /dev/null".into())?;
        nix::unistd::dup2_stdin(&null).ctx(|| "redirect standard input".into())?;
    }
    if opts.origin.is_none() {
        opts.origin = Some(PathBuf::from(if from_stdin { "-" } else { &source }));
    }
    Ok(dir)
}

/// Reads the record and the bundle and refuses what cannot be restored, before anything is
/// made.
fn prepare(image_path: &Path, work_dir: &Path, opts: &RestoreOpts) -> Result<Plan> {
    let image_dir =
        std::path::absolute(image_path).ctx(|| format!("image path {}", image_path.display()))?;
    let record = Record::read(&image_dir)?;
    let bundle = Bundle::load(&opts.bundle)?;
    check_compatible(&record, &image_dir, &bundle, opts.settings.lazy_pages)?;
    let terminal = crate::spec::has_terminal(&record.config);
    let console = match (&opts.console_socket, terminal) {
        (Some(p), true) => Some(crate::process::console::connect(p)?),
        (None, true) => {
            return Err(Error::NotRestorable {
                image: image_dir.display().to_string(),
                reason: "the container has a terminal: --console-socket is required".into(),
            })
        }
        _ => None,
    };
    let work_dir =
        std::path::absolute(work_dir).ctx(|| format!("work path {}", work_dir.display()))?;
    std::fs::create_dir_all(&work_dir).ctx(|| format!("create {}", work_dir.display()))?;
    Ok(Plan {
        image_dir,
        work_dir,
        record,
        bundle,
        terminal,
        console,
    })
}

/// The container's directory and record (status `creating`, so a killed restore never leaves
/// a container lcr does not know), its rootfs ([`make_rootfs`]), the cgroup with the bundle's
/// limits, the volumes if asked for.
fn make(store: &Store, id: &str, plan: &Plan, opts: &RestoreOpts) -> Result<Made> {
    let (bundle, spec) = (&plan.bundle, &plan.bundle.spec);
    let linux = spec.linux().as_ref();
    let spec_cgroup = linux.and_then(|l| l.cgroups_path().as_deref());
    let mut cgroup_path = container_cgroup_path(spec_cgroup, id);
    // Clones share a bundle: each has a cgroup of its own below the bundle's.
    if opts.clone.is_some() && spec_cgroup.is_some() {
        cgroup_path = format!("{cgroup_path}/{id}");
    }
    let origin = opts
        .origin
        .clone()
        .unwrap_or_else(|| plan.image_dir.clone());
    let mut state = State::new(id, bundle, &cgroup_path, Some(origin));
    // A clone's layer is named in its record before it is taken: `lcr delete` releases it.
    if opts.clone.is_some() {
        state.snapshot_layer = Layers::key_of(&plan.image_dir)?;
    }
    let (dir, lock) = store.create(id)?;
    let rollback = Rollback::new(dir.clone());
    // Recorded before the rootfs changes: from here on a killed restore leaves a container
    // `lcr delete` knows.
    write_json(&dir.join(CONFIG_FILE), spec)?;
    let state_file = dir.join(STATE_FILE);
    write_json(&state_file, &state)?;
    let layer = state.snapshot_layer.as_deref();
    let (diff, clone_root) = make_rootfs(store, (id, &dir), plan, opts, layer)?;
    let cgroup = Cgroup::create(&cgroup_path, linux.and_then(|l| l.resources().as_ref()))?;
    let mut made = Made {
        clone_root,
        diff,
        rollback,
        _lock: lock,
        dir,
        state,
        state_file,
        cgroup,
    };
    made.rollback.cgroup = Some(Cgroup::load(&cgroup_path)?);
    if opts.with_volumes {
        super::volumes::restore(&plan.image_dir, spec, &bundle.dir, &made.cgroup)?;
    } else if let Some(index) = crate::image::volumes::Index::read(&plan.image_dir) {
        if !index.volumes.is_empty() {
            tracing::warn!(
                volumes = ?index.destinations(),
                "the checkpoint holds bind-mount contents; not written without --with-volumes"
            );
        }
    }
    become_subreaper()?;
    Ok(made)
}

/// The rootfs the tree is restored onto, with the mount points CRIU needs: the restore
/// bundle's own with the checkpoint's rootfs changes applied (undone if the restore fails),
/// or for a clone an overlay of them mounted for CRIU (the bundle's rootfs never written).
fn make_rootfs(
    store: &Store,
    (id, dir): (&str, &Path),
    plan: &Plan,
    opts: &RestoreOpts,
    layer: Option<&str>,
) -> Result<(Option<Applied>, Option<CloneRoot>)> {
    let (bundle, spec) = (&plan.bundle, &plan.bundle.spec);
    let mounts = spec.mounts().as_deref().unwrap_or_default();
    if opts.clone.is_some() {
        let at = dir.join(CRIU_ROOT);
        let root = clone::mount_root(
            (store.root(), id),
            (&plan.image_dir, layer),
            &bundle.rootfs,
            (dir, &at),
        )?;
        crate::rootfs::make_mount_points(&at, &bundle.dir, mounts)?;
        return Ok((None, Some(root)));
    }
    // The baseline for later rootfs diffs is the restore bundle's rootfs as it was, so a
    // later checkpoint carries these changes on.
    if let Some(b) = Baseline::for_spec(spec, &bundle.rootfs)? {
        b.save(dir)?;
    }
    let diff = crate::rootfs::diff::apply(&plan.image_dir, &bundle.rootfs)?;
    if let Some(d) = &diff {
        tracing::info!(changed = d.changed, deleted = d.deleted, rootfs = %bundle.rootfs.display(), "rootfs changes applied");
    }
    crate::rootfs::make_mount_points(&bundle.rootfs, &bundle.dir, mounts)?;
    Ok((diff, None))
}

/// One CRIU process answers VERSION (kept open) and then the restore, from inside the new
/// cgroup (CRIU restores into `cg_root`, as runc has it), watched by a [`Watchdog`]. The
/// restored pid is recorded (with its start time) before CRIU resumes the tree.
fn run_criu(made: &mut Made, plan: &mut Plan, opts: &RestoreOpts) -> Result<()> {
    // A clone's overlay was mounted with its rootfs.
    let criu_root = match made.clone_root.as_mut().and_then(|r| r.root.take()) {
        Some(root) => root,
        None => private_root(&plan.bundle.rootfs, &made.dir.join(CRIU_ROOT))?,
    };
    let mut request = restore_options(made, plan, &criu_root.0, opts)?;
    let mut seen_pid = None;
    let resp = {
        let mut handler = notifications(made, plan, &mut seen_pid);
        let merging = match &opts.clone {
            Some(c) if c.merge_memory => Some(MergeMemory::start().ctx(|| {
                "mark the clone's memory mergeable (PR_SET_MEMORY_MERGE, Linux 6.4 or later)".into()
            })?),
            _ => None,
        };
        let mut session = opts.settings.criu.session(Some(&mut request))?;
        drop(merging);
        let version = session.require_supported()?;
        check_criu_version(
            &plan.record.criu_version,
            &plan.image_dir.display().to_string(),
            &version,
        )?;
        let watchdog = match session.pid() {
            Some(p) => {
                made.cgroup.add(p as i32)?;
                Some(Watchdog::start(
                    p,
                    made.cgroup.procs_file(),
                    plan.work_dir.join("restore.log"),
                    opts.timeout,
                    watchdog::MAX_LOG,
                    opts.cancel.clone(),
                ))
            }
            None => None,
        };
        let resp = session.call(RequestKind::Restore, Some(&request), false, &mut handler);
        let tripped = watchdog.and_then(|w| w.finish());
        session.finish();
        (resp, tripped)
    };
    // A CRIU that was stopped leaves its cgroup yard mounted in the work directory.
    crate::fsutil::unmount_below(&plan.work_dir);
    drop(request);
    drop(criu_root);
    let resp = match resp {
        (Ok(r), None) => r,
        (_, Some(why)) => {
            made.rollback.pid = seen_pid;
            if let Tripped::LogTooLarge { path, .. } = &why {
                let _ = watchdog::trim_log(path, watchdog::KEPT_LOG);
            }
            return Err(Error::CriuStopped {
                image: plan.image_dir.clone(),
                reason: why.to_string(),
            });
        }
        (Err(e), None) => {
            made.rollback.pid = seen_pid;
            return Err(explain_stdio_size(e, &plan.record));
        }
    };
    let pid = resp.restore.pid();
    made.rollback.pid = Some(pid);
    made.state.pid = pid;
    // A restored program may have finished already: it then has no start time, and its
    // container reads as stopped.
    if let Some(t) = procfs::start_time(pid) {
        made.state.init_start_time = t;
    }
    Ok(())
}

/// The restore request: external mounts pointed at the restore bundle's sources (the
/// remapping), stdio inherited from this process, a joined network namespace by fd.
fn restore_options(made: &Made, plan: &Plan, root: &Path, opts: &RestoreOpts) -> Result<Options> {
    let spec = &plan.bundle.spec;
    let mut request = Options::new()
        .images_dir(&plan.image_dir)
        .work_dir(&plan.work_dir)?
        .root(root)
        .rst_sibling(true)
        .cg_root(None, made.cgroup.path().to_string())
        .orphan_pts_master(plan.terminal)
        .notify_scripts(true)
        .log_level(4)
        .log_file("restore.log");
    for m in &plan.record.mounts {
        let src = restore_source(m, spec, &plan.bundle.dir, &made.cgroup).ok_or_else(|| {
            Error::NotRestorable {
                image: plan.image_dir.display().to_string(),
                reason: format!(
                    "no source for the external mount {} ({:?}) in the restore bundle",
                    m.destination.display(),
                    m.kind
                ),
            }
        })?;
        request = request.ext_mnt(
            m.destination.to_string_lossy().into_owned(),
            src.to_string_lossy().into_owned(),
        );
    }
    for f in &plan.record.stdio {
        request = request.inherit_fd(f.key.clone(), crate::process::dup_stdio(f.fd)?);
    }
    for (ns, key) in &plan.record.external_namespaces {
        if ns == "net" {
            let path = crate::spec::joined_netns(spec)
                .map(Path::to_path_buf)
                .unwrap_or_default();
            let fd: OwnedFd = std::fs::File::open(&path)
                .ctx(|| format!("open network namespace {}", path.display()))?
                .into();
            request = request.inherit_fd(key.clone(), fd);
        }
    }
    request = opts.settings.apply(request);
    if let Some(file) = super::settings::criu_config_file(spec)? {
        request = request.config_file(file);
    }
    Ok(request)
}

/// CRIU's notifications during a restore: the pty master to the console socket, runc's
/// prestart and createRuntime hooks once the namespaces exist, the pid recorded before the
/// tree resumes.
fn notifications<'a>(
    made: &'a Made,
    plan: &'a Plan,
    seen_pid: &'a mut Option<i32>,
) -> impl FnMut(&mut Notify) -> std::result::Result<(), String> + 'a {
    let hooks_spec = plan.bundle.spec.hooks().clone();
    move |n: &mut Notify| {
        match n.script.as_str() {
            "orphan-pts-master" => {
                // CRIU made a new pty for the terminal; its master goes to the console socket.
                let (Some(sock), Some(master)) = (&plan.console, n.take_fd()) else {
                    return Err("a pty master arrived but there is no console socket".into());
                };
                use std::os::fd::{AsFd, AsRawFd};
                crate::process::console::send_master(
                    sock.as_fd(),
                    "/dev/console",
                    master.as_raw_fd(),
                )
                .map_err(|e| e.to_string())?;
            }
            "post-restore" => {
                // Sent before CRIU resumes the tree.
                let mut st = made.state.clone();
                st.pid = n.pid.unwrap_or(0);
                st.init_start_time = procfs::start_time_of(st.pid).map_err(|e| e.to_string())?;
                write_json(&made.state_file, &st).map_err(|e| e.to_string())?;
            }
            "setup-namespaces" => {
                *seen_pid = n.pid;
                let mut st = made.state.clone();
                st.pid = n.pid.unwrap_or(0);
                let json = serde_json::to_string(&st.oci(Status::Created)).unwrap_or_default();
                hooks::run(Kind::Prestart, hooks_spec.as_ref(), &json)
                    .map_err(|e| e.to_string())?;
                hooks::run(Kind::CreateRuntime, hooks_spec.as_ref(), &json)
                    .map_err(|e| e.to_string())?;
            }
            _ => {}
        }
        Ok(())
    }
}
