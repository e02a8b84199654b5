use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

use criurpc::{Notify, Options, RequestKind};
use nix::mount::{mount, MsFlags};
use nix::sched::{unshare, CloneFlags};

use super::mounts::restore_source;
use super::settings::CriuSettings;
use crate::cgroups::{container_cgroup_path, Cgroup};
use crate::container::{Container, Rollback, State, Status, Store, CONFIG_FILE, STATE_FILE};
use crate::error::Context;
use crate::fsutil::write_json;
use crate::hooks::{self, Kind};
use crate::image::record::{machine_arch, Record};
use crate::image::stats::{read_restore, RestoreStats};
use crate::process::become_subreaper;
use crate::procfs;
use crate::rootfs::diff::Baseline;
use crate::spec::Bundle;
use crate::{Error, Result};

/// Options of `lcr restore`.
pub struct RestoreOpts {
    pub settings: CriuSettings,
    pub bundle: PathBuf,
    pub image_path: PathBuf,
    pub pid_file: Option<PathBuf>,
    /// Where the new pty master of a terminal container is sent (required for those).
    pub console_socket: Option<PathBuf>,
    /// What the container is restored from, as its state records it (default: the images).
    pub origin: Option<PathBuf>,
    /// Write the bind-mount contents the checkpoint holds into the bundle's sources.
    pub with_volumes: bool,
    /// How long CRIU may take (zero: no limit); its log is capped too (see `watchdog`).
    pub timeout: std::time::Duration,
    /// Stops the restore midway (CRIU killed, everything undone): the CLI cancels it on
    /// SIGINT/SIGTERM/SIGHUP.
    pub cancel: crate::cancel::Cancel,
}

impl RestoreOpts {
    pub fn new(bundle: impl Into<PathBuf>, image_path: impl Into<PathBuf>) -> Self {
        Self {
            settings: CriuSettings::default(),
            bundle: bundle.into(),
            image_path: image_path.into(),
            pid_file: None,
            console_socket: None,
            origin: None,
            with_volumes: false,
            timeout: DEFAULT_TIMEOUT,
            cancel: Default::default(),
        }
    }
}

const CRIU_ROOT: &str = "criu-root";

/// The default [`RestoreOpts::timeout`].
pub const DEFAULT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(600);

/// Refuses images this host or this bundle cannot restore, before anything is made.
fn check_compatible(r: &Record, image_dir: &Path, bundle: &Bundle, lazy: bool) -> Result<()> {
    let bad = |reason: String| Error::Other {
        context: format!("restore from {}", image_dir.display()),
        reason,
    };
    // A lazy restore starts while its dump still serves pages: the record is provisional then.
    if r.provisional && !lazy {
        return Err(bad(format!(
            "the checkpoint of {:?} never finished ({} is provisional: lcr was stopped during \
             the dump), so the container may still be running; not restoring a second copy",
            r.id,
            super::RECORD_FILE
        )));
    }
    if r.pre_dump {
        return Err(bad("this is a pre-dump (memory only): restore the final checkpoint made with --parent-path pointing here".into()));
    }
    if r.arch != machine_arch() {
        return Err(bad(format!(
            "the image is for {} and this host is {}",
            r.arch,
            machine_arch()
        )));
    }
    let contents = crate::image::Contents::from_dir(image_dir)?;
    if let Some(what) = contents.missing() {
        return Err(bad(format!("the CRIU images are incomplete: {what}")));
    }
    let iso = crate::image::isolation::Isolation::from_contents(&contents)
        .map_err(|why| bad(format!("the CRIU images cannot be read: {why}")))?;
    super::isolation::check(
        &iso,
        &bundle.spec,
        image_dir,
        &bundle.dir.join("config.json"),
    )?;
    for m in r.mounts.iter().filter(|m| m.kind == super::MountKind::Bind) {
        let found = bundle
            .spec
            .mounts()
            .iter()
            .flatten()
            .any(|rm| rm.destination() == &m.destination);
        if !found {
            return Err(bad(format!(
                "the image needs a bind mount at {} (it was {}), and {} has none there",
                m.destination.display(),
                m.source.display(),
                bundle.dir.join("config.json").display()
            )));
        }
    }
    if let Some(why) = super::stdio::mismatch(&r.stdio) {
        return Err(bad(why));
    }
    for (ns, _) in &r.external_namespaces {
        if ns == "net" && crate::spec::joined_netns(&bundle.spec).is_none() {
            return Err(bad(format!(
                "the container joined a network namespace by path; {} names none to join",
                bundle.dir.join("config.json").display()
            )));
        }
    }
    Ok(())
}

/// CRIU must not be older than the one that made the images.
fn check_criu_version(made_by: &str, source: &str, have: &criurpc::Version) -> Result<()> {
    match criurpc::Version::parse(made_by.split(' ').next().unwrap_or("")) {
        Some(dumped) if !have.at_least(&dumped) => Err(Error::Other {
            context: format!("restore from {source}"),
            reason: format!(
                "the image was made by CRIU {made_by} and this host has CRIU {have}, which is older"
            ),
        }),
        _ => Ok(()),
    }
}

/// Refuses an archive this host cannot restore from its manifest alone, before anything is
/// unpacked: another architecture, or a CRIU older than the one that made it.
pub fn check_origin(
    origin: &crate::image::Origin,
    source: &str,
    criu: &criurpc::Criu,
) -> Result<()> {
    if origin.arch != machine_arch() {
        return Err(Error::Other {
            context: format!("restore from {source}"),
            reason: format!(
                "the checkpoint is for {} and this host is {}",
                origin.arch,
                machine_arch()
            ),
        });
    }
    let have = criu.require_supported()?;
    check_criu_version(&origin.criu_version, source, &have)
}

/// CRIU checks the size of regular files it did not dump (the container's stdio among them)
/// unless they were write-only and appending; say so when that is why a restore failed.
fn explain_stdio_size(e: criurpc::Error, r: &Record) -> Error {
    let text = e.to_string();
    let Some(fd) = r
        .stdio
        .iter()
        .find(|f| text.contains(&format!("File fd/{} has bad size", f.fd)))
    else {
        return e.into();
    };
    Error::Other {
        context: "restore".into(),
        reason: format!(
            "{text}\n  hint: the container's fd {} was {} opened for reading too, so CRIU insists on \
             a file of the same size; give the restore that file, or start containers with \
             write-only stdio (`>log`), which lcr switches to append mode at checkpoint",
            fd.fd, fd.path
        ),
    }
}

/// The restore bundle's rootfs bound at `<state dir>/criu-root`; unmounted when dropped, which
/// must come before anything removes the state directory (else the removal walks into the
/// rootfs: declare it after the [`Rollback`]).
struct CriuRoot(PathBuf);

impl Drop for CriuRoot {
    fn drop(&mut self) {
        if let Err(e) = nix::mount::umount2(&self.0, nix::mount::MntFlags::MNT_DETACH) {
            tracing::warn!(path = %self.0.display(), error = %e, "unmount of CRIU's root failed");
        }
        let _ = std::fs::remove_dir(&self.0);
    }
}

/// Gives CRIU a root that is a mount point (it requires one) in a private mount namespace of
/// this lcr process, so nothing is visible on the host and it vanishes when lcr exits.
fn private_root(rootfs: &Path, at: &Path) -> Result<CriuRoot> {
    unshare(CloneFlags::CLONE_NEWNS).ctx(|| "unshare mount namespace".into())?;
    mount(
        None::<&str>,
        "/",
        None::<&str>,
        MsFlags::MS_REC | MsFlags::MS_PRIVATE,
        None::<&str>,
    )
    .ctx(|| "make / private".into())?;
    std::fs::create_dir_all(at).ctx(|| format!("mkdir {}", at.display()))?;
    mount(
        Some(rootfs),
        at,
        None::<&str>,
        MsFlags::MS_BIND | MsFlags::MS_REC,
        None::<&str>,
    )
    .ctx(|| format!("bind {} for CRIU", rootfs.display()))?;
    Ok(CriuRoot(at.to_path_buf()))
}

fn dup_stdio(fd: i32) -> Result<OwnedFd> {
    // SAFETY: fd 0–2 are open for the life of the process; we only duplicate them.
    let b = unsafe { std::os::fd::BorrowedFd::borrow_raw(fd) };
    b.try_clone_to_owned().ctx(|| format!("dup fd {fd}"))
}

/// Restores a checkpoint as container `id` from `bundle` (which may differ from the one it
/// was made from): new cgroup with the bundle's limits, bind mounts from the bundle's
/// sources, stdio from this process. On failure nothing is left but the images.
pub fn restore(
    store: &Store,
    id: &str,
    o: RestoreOpts,
) -> Result<(Container, Option<RestoreStats>)> {
    crate::container::validate_id(id)?;
    let image_dir = std::path::absolute(&o.image_path)
        .ctx(|| format!("image path {}", o.image_path.display()))?;
    let record = Record::read(&image_dir)?;
    let bundle = Bundle::load(&o.bundle)?;
    check_compatible(&record, &image_dir, &bundle, o.settings.lazy_pages)?;
    let terminal = crate::spec::has_terminal(&record.config);
    // Connect first, so a bad socket fails before anything is made.
    let console = match (&o.console_socket, terminal) {
        (Some(p), true) => Some(crate::process::console::connect(p)?),
        (None, true) => {
            return Err(Error::Other {
                context: format!("restore from {}", image_dir.display()),
                reason: "the container has a terminal: --console-socket is required".into(),
            })
        }
        _ => None,
    };
    let spec = &bundle.spec;
    let linux = spec.linux().as_ref();
    let work_dir = o.settings.work_dir(&image_dir)?;
    std::fs::create_dir_all(&work_dir).ctx(|| format!("create {}", work_dir.display()))?;

    // The baseline for later rootfs diffs is the restore bundle's rootfs as it was, so a
    // later checkpoint carries these changes on.
    let baseline = Baseline::for_spec(spec, &bundle.rootfs)?;
    let (dir, lock) = store.create(id)?;
    let mut rb = Rollback::new(dir.clone());
    write_json(&dir.join(CONFIG_FILE), spec)?;
    if let Some(b) = &baseline {
        b.save(&dir)?;
    }
    // Undone if the restore fails (dropped before the rollback: declared after it).
    let diff = crate::rootfs::diff::apply(&image_dir, &bundle.rootfs)?;
    if let Some(d) = &diff {
        tracing::info!(changed = d.changed, deleted = d.deleted, rootfs = %bundle.rootfs.display(), "rootfs changes applied");
    }
    let cgroup_path = container_cgroup_path(linux.and_then(|l| l.cgroups_path().as_deref()), id);
    let origin = o.origin.clone().unwrap_or_else(|| image_dir.clone());
    let mut state = State::new(id, &bundle, &cgroup_path, Some(origin));
    // Recorded (status `creating`) before anything exists, and again with the pid before the
    // restored tree runs: a killed restore never leaves a container lcr does not know.
    let state_file = dir.join(STATE_FILE);
    write_json(&state_file, &state)?;
    let cgroup = Cgroup::create(&cgroup_path, linux.and_then(|l| l.resources().as_ref()))?;
    rb.cgroup = Some(Cgroup::load(&cgroup_path)?);
    if o.with_volumes {
        super::volumes::restore(&image_dir, spec, &bundle.dir, &cgroup)?;
    } else if let Some(index) = crate::image::volumes::Index::read(&image_dir) {
        if !index.volumes.is_empty() {
            tracing::warn!(
                volumes = ?index.destinations(),
                "the checkpoint holds bind-mount contents; not written without --with-volumes"
            );
        }
    }
    become_subreaper()?;
    crate::rootfs::make_mount_points(
        &bundle.rootfs,
        &bundle.dir,
        spec.mounts().as_deref().unwrap_or_default(),
    )?;
    let criu_root = private_root(&bundle.rootfs, &dir.join(CRIU_ROOT))?;

    let mut opts = Options::new()
        .images_dir(&image_dir)
        .work_dir(&work_dir)?
        .root(&criu_root.0)
        .rst_sibling(true)
        .cg_root(None, cgroup_path.clone())
        .orphan_pts_master(terminal)
        .notify_scripts(true)
        .log_level(4)
        .log_file("restore.log");
    for m in &record.mounts {
        let src = restore_source(m, spec, &bundle.dir, &cgroup).ok_or_else(|| Error::Other {
            context: "restore".into(),
            reason: format!(
                "no source for the external mount {} ({:?}) in the restore bundle",
                m.destination.display(),
                m.kind
            ),
        })?;
        opts = opts.ext_mnt(
            m.destination.to_string_lossy().into_owned(),
            src.to_string_lossy().into_owned(),
        );
    }
    for f in &record.stdio {
        opts = opts.inherit_fd(f.key.clone(), dup_stdio(f.fd)?);
    }
    for (ns, key) in &record.external_namespaces {
        if ns == "net" {
            let path = crate::spec::joined_netns(spec)
                .map(Path::to_path_buf)
                .unwrap_or_default();
            let fd: OwnedFd = std::fs::File::open(&path)
                .ctx(|| format!("open network namespace {}", path.display()))?
                .into();
            opts = opts.inherit_fd(key.clone(), fd);
        }
    }
    opts = o.settings.apply(opts);
    if let Some(file) = super::settings::criu_config_file(spec)? {
        opts = opts.config_file(file);
    }

    // runc runs the prestart and createRuntime hooks once CRIU has set up the namespaces.
    let hooks_spec = spec.hooks().clone();
    let mut seen_pid = None;
    let mut handler = |n: &mut Notify| -> std::result::Result<(), String> {
        if n.script == "orphan-pts-master" {
            // CRIU made a new pty for the terminal; its master goes to the console socket.
            let (Some(sock), Some(master)) = (&console, n.take_fd()) else {
                return Err("a pty master arrived but there is no console socket".into());
            };
            use std::os::fd::{AsFd, AsRawFd};
            crate::process::console::send_master(sock.as_fd(), "/dev/console", master.as_raw_fd())
                .map_err(|e| e.to_string())?;
        }
        if n.script == "post-restore" {
            // Sent before CRIU resumes the tree.
            let mut st = state.clone();
            st.pid = n.pid.unwrap_or(0);
            st.init_start_time = procfs::start_time_of(st.pid).map_err(|e| e.to_string())?;
            write_json(&state_file, &st).map_err(|e| e.to_string())?;
        }
        if n.script == "setup-namespaces" {
            seen_pid = n.pid;
            let mut st = state.clone();
            st.pid = n.pid.unwrap_or(0);
            let json = serde_json::to_string(&st.oci(Status::Created)).unwrap_or_default();
            hooks::run(Kind::Prestart, hooks_spec.as_ref(), &json).map_err(|e| e.to_string())?;
            hooks::run(Kind::CreateRuntime, hooks_spec.as_ref(), &json)
                .map_err(|e| e.to_string())?;
        }
        Ok(())
    };
    // One CRIU process answers VERSION (kept open) and then the restore; the fds to inherit
    // are handed to it as it starts.
    let mut session = o.settings.criu.session(Some(&mut opts))?;
    let version = session.require_supported()?;
    check_criu_version(
        &record.criu_version,
        &image_dir.display().to_string(),
        &version,
    )?;
    // CRIU restores into cg_root from inside the new cgroup, as runc does.
    let watchdog = match session.pid() {
        Some(p) => {
            cgroup.add(p as i32)?;
            Some(super::watchdog::Watchdog::start(
                p,
                cgroup.procs_file(),
                work_dir.join("restore.log"),
                o.timeout,
                super::watchdog::MAX_LOG,
                o.cancel.clone(),
            ))
        }
        None => None,
    };
    let resp = session.call(RequestKind::Restore, Some(&opts), false, &mut handler);
    let tripped = watchdog.and_then(|w| w.finish());
    session.finish();
    // A CRIU that was stopped leaves its cgroup yard mounted in the work directory.
    crate::fsutil::unmount_below(&work_dir);
    drop(opts);
    drop(criu_root);
    let resp = match (resp, tripped) {
        (Ok(r), None) => r,
        (_, Some(why)) => {
            rb.pid = seen_pid;
            if let super::watchdog::Tripped::LogTooLarge { path, .. } = &why {
                let _ = super::watchdog::trim_log(path, super::watchdog::KEPT_LOG);
            }
            return Err(Error::CriuStopped {
                image: image_dir.clone(),
                reason: why.to_string(),
            });
        }
        (Err(e), None) => {
            rb.pid = seen_pid;
            return Err(explain_stdio_size(e, &record));
        }
    };
    let pid = resp.restore.pid();
    rb.pid = Some(pid);
    state.pid = pid;
    // A restored program may have finished already: it then has no start time, and its
    // container reads as stopped.
    if let Some(t) = procfs::start_time(pid) {
        state.init_start_time = t;
    }
    cgroup.verify(linux.and_then(|l| l.resources().as_ref()))?;
    state.status = Status::Running;
    write_json(&state_file, &state)?;
    if let Some(p) = &o.pid_file {
        crate::container::write_pid_file(p, pid)?;
    }
    // A cancellation that came while CRIU worked (a signal noted, not obeyed) undoes it all.
    o.cancel.check().map_err(|e| Error::CriuStopped {
        image: image_dir.clone(),
        reason: e.to_string(),
    })?;
    rb.disarm();
    if let Some(d) = diff {
        d.keep();
    }
    drop(lock);
    let c = Container::load(store, id)?;
    if let Err(e) = hooks::run(
        Kind::Poststart,
        c.spec.hooks().as_ref(),
        &c.oci_state_json(),
    ) {
        tracing::warn!(error = %e, "poststart hook failed");
    }
    Ok((c, read_restore(&work_dir)))
}
