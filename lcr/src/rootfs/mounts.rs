use std::path::{Path, PathBuf};

use nix::mount::{mount, MsFlags};
use oci_spec::runtime::Mount;

use super::{parse_options, InRoot, RootDir};
use crate::error::Context;
use crate::{Error, Result};

/// Stops mount events from leaking to the host and makes the rootfs a mount point of its own
/// (pivot_root needs one).
pub fn prepare_root(rootfs: &Path, propagation: Option<&str>) -> Result<()> {
    let prop = match propagation {
        None | Some("") => MsFlags::MS_SLAVE | MsFlags::MS_REC,
        Some(p) => {
            let o = parse_options(&[p.to_string()]);
            if o.propagation.is_empty() {
                return Err(Error::Value {
                    what: "linux.rootfsPropagation".into(),
                    value: p.into(),
                    reason: "expected private, rprivate, slave, rslave, shared, rshared, unbindable or runbindable".into(),
                });
            }
            o.propagation
        }
    };
    mount(None::<&str>, "/", None::<&str>, prop, None::<&str>)
        .ctx(|| "set / propagation".into())?;
    if prop.contains(MsFlags::MS_SHARED) {
        // pivot_root refuses a new root whose mount, or its parent's, is shared: the mount
        // the rootfs lives on becomes private (the rest of the tree keeps the asked-for
        // propagation), as runc does.
        let parent = crate::fsutil::mount_point_of(rootfs)
            .ctx(|| format!("find the mount of {}", rootfs.display()))?;
        mount(
            None::<&str>,
            &parent,
            None::<&str>,
            MsFlags::MS_PRIVATE,
            None::<&str>,
        )
        .ctx(|| format!("make {} private", parent.display()))?;
    }
    mount(
        Some(rootfs),
        rootfs,
        None::<&str>,
        MsFlags::MS_BIND | MsFlags::MS_REC,
        None::<&str>,
    )
    .ctx(|| format!("bind rootfs {}", rootfs.display()))
}

/// Mounts everything in `mounts` under `rootfs`, in order, each destination resolved inside
/// the rootfs (a symlink there never leads a mount, or the mount point made for it, onto the
/// host).
pub fn mount_all(rootfs: &Path, bundle: &Path, mounts: &[Mount], cgroup_path: &str) -> Result<()> {
    let root = RootDir::open(rootfs)?;
    for m in mounts {
        mount_one(&root, bundle, m, cgroup_path)?;
    }
    Ok(())
}

/// A bind mount's source: absolute, or relative to the bundle.
pub fn bind_source(bundle: &Path, m: &Mount) -> Option<PathBuf> {
    m.source().as_ref().map(|s| {
        if s.is_absolute() {
            s.clone()
        } else {
            bundle.join(s)
        }
    })
}

/// Whether `m` is a bind mount: by its type or by a `bind`/`rbind` option.
pub fn is_bind(m: &Mount) -> bool {
    m.typ().as_deref() == Some("bind")
        || parse_options(m.options().as_deref().unwrap_or_default()).bind
}

fn mount_one(root: &RootDir, bundle: &Path, m: &Mount, cgroup_path: &str) -> Result<()> {
    let inner = m.destination();
    let o = parse_options(m.options().as_deref().unwrap_or_default());
    let typ = m.typ().as_deref().unwrap_or("none");
    let what = || format!("mount {} ({typ})", inner.display());
    if typ == "cgroup" || typ == "cgroup2" {
        return mount_cgroups(root, inner, o.flags, cgroup_path).map_err(|e| wrap(what(), e));
    }
    if o.bind || typ == "bind" {
        let Some(src) = bind_source(bundle, m) else {
            return Err(Error::Config {
                file: bundle.join("config.json"),
                field: what(),
                reason: "a bind mount needs a source".into(),
            });
        };
        let dest = root
            .make_target(inner, src.is_dir())
            .map_err(|e| wrap(what(), e))?;
        let mut f = MsFlags::MS_BIND;
        if o.recursive {
            f |= MsFlags::MS_REC;
        }
        mount(Some(&src), &dest.proc_path(), None::<&str>, f, None::<&str>)
            .ctx(|| format!("{}: bind {}", what(), src.display()))?;
        // Flags other than the bind itself only take effect on a remount, of the new mount:
        // looked up again, since the fd above still names the directory beneath it.
        let extra = o.flags & !MsFlags::MS_REMOUNT;
        if !extra.is_empty() {
            let now = mounted(root, inner).map_err(|e| wrap(what(), e))?;
            mount(
                None::<&str>,
                &now.proc_path(),
                None::<&str>,
                MsFlags::MS_BIND | MsFlags::MS_REMOUNT | extra,
                None::<&str>,
            )
            .ctx(|| format!("{}: remount with {extra:?}", what()))?;
        }
    } else {
        let dest = root.make_target(inner, true).map_err(|e| wrap(what(), e))?;
        let data = o.data.join(",");
        let src = m
            .source()
            .as_ref()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| typ.to_string());
        mount(
            Some(src.as_str()),
            &dest.proc_path(),
            Some(typ),
            o.flags,
            (!data.is_empty()).then_some(data.as_str()),
        )
        .ctx(what)?;
    }
    if !o.propagation.is_empty() {
        let now = mounted(root, inner).map_err(|e| wrap(what(), e))?;
        mount(
            None::<&str>,
            &now.proc_path(),
            None::<&str>,
            o.propagation,
            None::<&str>,
        )
        .ctx(|| format!("{}: propagation", what()))?;
    }
    Ok(())
}

/// `inner` looked up after something was mounted on it: the new mount's root.
fn mounted(root: &RootDir, inner: &Path) -> Result<InRoot> {
    root.resolve(inner).map_err(|e| Error::InRoot {
        what: "find after mounting".into(),
        path: root.shown(inner),
        reason: e.desc().into(),
    })
}

fn wrap(context: String, e: Error) -> Error {
    e.during(context)
}

/// Creates the mount points of `mounts` under `rootfs` (a directory, or a file for a bind
/// mount of a file), as the init does while mounting. A restore needs them before CRIU runs.
/// A mount point inside an earlier bind mount is made in that mount's source, where CRIU
/// will find it once the bind is in place (the init made it there through the mount).
pub fn make_mount_points(rootfs: &Path, bundle: &Path, mounts: &[Mount]) -> Result<()> {
    let root = RootDir::open(rootfs)?;
    for (i, m) in mounts.iter().enumerate() {
        let dir = !is_bind(m) || bind_source(bundle, m).is_none_or(|s| s.is_dir());
        // The last earlier bind mount this one lies under, if any.
        let under = mounts[..i].iter().rev().find_map(|b| {
            let rest = m.destination().strip_prefix(b.destination()).ok()?;
            (is_bind(b) && !rest.as_os_str().is_empty())
                .then(|| Some((bind_source(bundle, b)?, rest.to_path_buf())))
                .flatten()
        });
        match under {
            Some((src, rest)) if src.is_dir() => {
                RootDir::open(&src)?.make_target(&rest, dir)?;
            }
            _ => {
                root.make_target(m.destination(), dir)?;
            }
        }
    }
    Ok(())
}

/// The container's own cgroups at `inner`: a tmpfs with one bind mount per v1 hierarchy, or
/// the unified directory on v2. Binding the host paths works with and without a cgroup
/// namespace.
fn mount_cgroups(root: &RootDir, inner: &Path, flags: MsFlags, cgroup_path: &str) -> Result<()> {
    let rel = cgroup_path.trim_start_matches('/');
    let hier = cgroup_mounts()?;
    let ro = flags & MsFlags::MS_RDONLY;
    let v2_only = hier.iter().all(|(_, t)| t == "cgroup2");
    let dest = root.make_target(inner, true)?;
    if v2_only {
        let (mp, _) = hier.first().ok_or_else(|| Error::Host {
            what: "cgroup mount".into(),
            reason: "no cgroup hierarchy is mounted on the host".into(),
        })?;
        return bind(&mp.join(rel), &dest.proc_path(), ro, || {
            mounted(root, inner)
        });
    }
    let base = MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC;
    mount(
        Some("tmpfs"),
        &dest.proc_path(),
        Some("tmpfs"),
        base,
        Some("mode=755"),
    )
    .ctx(|| format!("tmpfs on {}", dest.shown().display()))?;
    for (mp, typ) in hier.iter().filter(|(_, t)| t == "cgroup") {
        let src = mp.join(rel);
        let Some(name) = mp.file_name() else { continue };
        if !src.is_dir() {
            continue;
        }
        // Inside the tmpfs just mounted: looked up through it.
        let sub = inner.join(name);
        let target = root.make_target(&sub, true)?;
        bind(&src, &target.proc_path(), ro, || mounted(root, &sub))
            .map_err(|e| wrap(format!("{typ} {}", mp.display()), e))?;
    }
    if !ro.is_empty() {
        let now = mounted(root, inner)?;
        mount(
            None::<&str>,
            &now.proc_path(),
            None::<&str>,
            MsFlags::MS_REMOUNT | base | ro,
            Some("mode=755"),
        )
        .ctx(|| format!("remount {} read-only", now.shown().display()))?;
    }
    Ok(())
}

/// Binds `src` on `dest` (a `/proc/self/fd` path); read-only when asked, by a remount of the
/// new mount, which `again` looks up.
fn bind(src: &Path, dest: &Path, ro: MsFlags, again: impl Fn() -> Result<InRoot>) -> Result<()> {
    mount(
        Some(src),
        dest,
        None::<&str>,
        MsFlags::MS_BIND,
        None::<&str>,
    )
    .ctx(|| format!("bind {}", src.display()))?;
    if !ro.is_empty() {
        let now = again()?;
        let dest = now.proc_path();
        let f = MsFlags::MS_BIND
            | MsFlags::MS_REMOUNT
            | MsFlags::MS_NOSUID
            | MsFlags::MS_NODEV
            | MsFlags::MS_NOEXEC
            | ro;
        mount(None::<&str>, &dest, None::<&str>, f, None::<&str>)
            .ctx(|| format!("remount {} read-only", now.shown().display()))?;
    }
    Ok(())
}

/// The host's cgroup mount points and their types, from /proc/self/mountinfo.
pub fn cgroup_mounts() -> Result<Vec<(PathBuf, String)>> {
    let table = crate::procfs::mountinfo(None).ctx(|| "read /proc/self/mountinfo".into())?;
    Ok(table
        .into_iter()
        .filter(|m| m.fstype == "cgroup" || m.fstype == "cgroup2")
        .map(|m| (m.mount_point, m.fstype))
        .collect())
}
