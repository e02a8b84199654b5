use std::fs;
use std::path::{Path, PathBuf};

use nix::mount::{mount, MsFlags};
use oci_spec::runtime::Mount;

use super::{join_in, parse_options};
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
    mount(
        Some(rootfs),
        rootfs,
        None::<&str>,
        MsFlags::MS_BIND | MsFlags::MS_REC,
        None::<&str>,
    )
    .ctx(|| format!("bind rootfs {}", rootfs.display()))
}

/// Mounts everything in `mounts` under `rootfs`, in order.
pub fn mount_all(rootfs: &Path, bundle: &Path, mounts: &[Mount], cgroup_path: &str) -> Result<()> {
    for m in mounts {
        mount_one(rootfs, bundle, m, cgroup_path)?;
    }
    Ok(())
}

fn mount_one(rootfs: &Path, bundle: &Path, m: &Mount, cgroup_path: &str) -> Result<()> {
    let dest = join_in(rootfs, m.destination());
    let o = parse_options(m.options().as_deref().unwrap_or_default());
    let typ = m.typ().as_deref().unwrap_or("none");
    let what = || format!("mount {} ({typ})", m.destination().display());
    if typ == "cgroup" || typ == "cgroup2" {
        return mount_cgroups(&dest, o.flags, cgroup_path).map_err(|e| wrap(what(), e));
    }
    if o.bind || typ == "bind" {
        let src = match m.source() {
            Some(s) if s.is_absolute() => s.clone(),
            Some(s) => bundle.join(s),
            None => {
                return Err(Error::Value {
                    what: what(),
                    value: String::new(),
                    reason: "a bind mount needs a source".into(),
                })
            }
        };
        make_target(&dest, src.is_dir()).map_err(|e| wrap(what(), e))?;
        let mut f = MsFlags::MS_BIND;
        if o.recursive {
            f |= MsFlags::MS_REC;
        }
        mount(Some(&src), &dest, None::<&str>, f, None::<&str>)
            .ctx(|| format!("{}: bind {}", what(), src.display()))?;
        // Flags other than the bind itself only take effect on a remount.
        let extra = o.flags & !MsFlags::MS_REMOUNT;
        if !extra.is_empty() {
            mount(
                None::<&str>,
                &dest,
                None::<&str>,
                MsFlags::MS_BIND | MsFlags::MS_REMOUNT | extra,
                None::<&str>,
            )
            .ctx(|| format!("{}: remount with {extra:?}", what()))?;
        }
    } else {
        make_target(&dest, true).map_err(|e| wrap(what(), e))?;
        let data = o.data.join(",");
        let src = m
            .source()
            .as_ref()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| typ.to_string());
        mount(
            Some(src.as_str()),
            &dest,
            Some(typ),
            o.flags,
            (!data.is_empty()).then_some(data.as_str()),
        )
        .ctx(what)?;
    }
    if !o.propagation.is_empty() {
        mount(
            None::<&str>,
            &dest,
            None::<&str>,
            o.propagation,
            None::<&str>,
        )
        .ctx(|| format!("{}: propagation", what()))?;
    }
    Ok(())
}

fn wrap(context: String, e: Error) -> Error {
    Error::Other {
        context,
        reason: e.to_string(),
    }
}

/// Creates the mount points of `mounts` under `rootfs` (a directory, or a file for a bind
/// mount of a file), as the init does while mounting. A restore needs them before CRIU runs.
pub fn make_mount_points(rootfs: &Path, bundle: &Path, mounts: &[Mount]) -> Result<()> {
    for m in mounts {
        let dest = join_in(rootfs, m.destination());
        let o = parse_options(m.options().as_deref().unwrap_or_default());
        let dir = if o.bind || m.typ().as_deref() == Some("bind") {
            m.source().as_ref().is_none_or(|s| {
                let s = if s.is_absolute() {
                    s.clone()
                } else {
                    bundle.join(s)
                };
                s.is_dir()
            })
        } else {
            true
        };
        make_target(&dest, dir)?;
    }
    Ok(())
}

/// Creates the mount point: a directory, or an empty file for a file bind mount.
fn make_target(dest: &Path, dir: bool) -> Result<()> {
    if dest.exists() {
        return Ok(());
    }
    if dir {
        fs::create_dir_all(dest).ctx(|| format!("mkdir {}", dest.display()))
    } else {
        if let Some(p) = dest.parent() {
            fs::create_dir_all(p).ctx(|| format!("mkdir {}", p.display()))?;
        }
        fs::File::create(dest)
            .map(drop)
            .ctx(|| format!("create {}", dest.display()))
    }
}

/// The container's own cgroups at `dest`: a tmpfs with one bind mount per v1 hierarchy, or the
/// unified directory on v2. Binding the host paths works with and without a cgroup namespace.
fn mount_cgroups(dest: &Path, flags: MsFlags, cgroup_path: &str) -> Result<()> {
    let rel = cgroup_path.trim_start_matches('/');
    let hier = cgroup_mounts()?;
    let ro = flags & MsFlags::MS_RDONLY;
    let v2_only = hier.iter().all(|(_, t)| t == "cgroup2");
    make_target(dest, true)?;
    if v2_only {
        let (mp, _) = hier.first().ok_or_else(|| Error::Other {
            context: "cgroup mount".into(),
            reason: "no cgroup hierarchy is mounted on the host".into(),
        })?;
        return bind(&mp.join(rel), dest, ro);
    }
    let base = MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC;
    mount(Some("tmpfs"), dest, Some("tmpfs"), base, Some("mode=755"))
        .ctx(|| format!("tmpfs on {}", dest.display()))?;
    for (mp, typ) in hier.iter().filter(|(_, t)| t == "cgroup") {
        let src = mp.join(rel);
        let Some(name) = mp.file_name() else { continue };
        if !src.is_dir() {
            continue;
        }
        let target = dest.join(name);
        make_target(&target, true)?;
        bind(&src, &target, ro).map_err(|e| wrap(format!("{typ} {}", mp.display()), e))?;
    }
    if !ro.is_empty() {
        mount(
            None::<&str>,
            dest,
            None::<&str>,
            MsFlags::MS_REMOUNT | base | ro,
            Some("mode=755"),
        )
        .ctx(|| format!("remount {} read-only", dest.display()))?;
    }
    Ok(())
}

fn bind(src: &Path, dest: &Path, ro: MsFlags) -> Result<()> {
    mount(
        Some(src),
        dest,
        None::<&str>,
        MsFlags::MS_BIND,
        None::<&str>,
    )
    .ctx(|| format!("bind {} on {}", src.display(), dest.display()))?;
    if !ro.is_empty() {
        let f = MsFlags::MS_BIND
            | MsFlags::MS_REMOUNT
            | MsFlags::MS_NOSUID
            | MsFlags::MS_NODEV
            | MsFlags::MS_NOEXEC
            | ro;
        mount(None::<&str>, dest, None::<&str>, f, None::<&str>)
            .ctx(|| format!("remount {} read-only", dest.display()))?;
    }
    Ok(())
}

/// The host's cgroup mount points and their types, from /proc/self/mountinfo.
pub fn cgroup_mounts() -> Result<Vec<(PathBuf, String)>> {
    let info = fs::read_to_string("/proc/self/mountinfo").ctx(|| "read mountinfo".into())?;
    let mut out = Vec::new();
    for line in info.lines() {
        let Some((left, right)) = line.split_once(" - ") else {
            continue;
        };
        let fstype = right.split_whitespace().next().unwrap_or("");
        if fstype == "cgroup" || fstype == "cgroup2" {
            if let Some(mp) = left.split_whitespace().nth(4) {
                out.push((PathBuf::from(mp), fstype.to_string()));
            }
        }
    }
    Ok(out)
}
