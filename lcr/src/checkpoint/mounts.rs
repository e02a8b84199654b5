//! Mounts CRIU cannot recreate from the container's own mount namespace: bind mounts of host
//! paths, the cgroup binds, /dev/null over masked files, host device nodes bound into a
//! container in a user namespace. They are dumped as
//! external, keyed by their destination, so a restore can point each at a new host source —
//! that is the mount remapping.

use std::path::{Path, PathBuf};

use crate::cgroups::Cgroup;
pub use crate::image::record::{ExternalMount, MountKind};
use crate::rootfs::{bind_source, cgroup_mounts, is_bind};
use oci_spec::runtime::Spec;

/// The external mounts of a container running `spec` with its cgroup at `cgroup_path`.
pub fn external_mounts(spec: &Spec, bundle: &Path, cgroup_path: &str) -> Vec<ExternalMount> {
    let mut out = Vec::new();
    for m in spec.mounts().iter().flatten() {
        let dest = m.destination().clone();
        if matches!(m.typ().as_deref(), Some("cgroup") | Some("cgroup2")) {
            let rel = cgroup_path.trim_start_matches('/');
            let hier = cgroup_mounts().unwrap_or_default();
            let v2_only = hier.iter().all(|(_, t)| t == "cgroup2");
            for (mp, typ) in &hier {
                if v2_only {
                    out.push(ExternalMount {
                        destination: dest.clone(),
                        kind: MountKind::Cgroup,
                        source: mp.join(rel),
                        hierarchy: Some(mp.clone()),
                    });
                } else if typ == "cgroup" && mp.join(rel).is_dir() {
                    let Some(name) = mp.file_name() else { continue };
                    out.push(ExternalMount {
                        destination: dest.join(name),
                        kind: MountKind::Cgroup,
                        source: mp.join(rel),
                        hierarchy: Some(mp.clone()),
                    });
                }
            }
        } else if is_bind(m) {
            // A bind without a source is refused when the container is made.
            let src = bind_source(bundle, m).unwrap_or_else(|| bundle.join(""));
            out.push(ExternalMount {
                destination: dest,
                kind: MountKind::Bind,
                source: src,
                hierarchy: None,
            });
        }
    }
    if let Some(l) = spec.linux() {
        for p in l.masked_paths().iter().flatten() {
            // Directories are masked with a tmpfs, which CRIU saves itself: `present_in`
            // keeps only the /dev/null binds.
            out.push(ExternalMount {
                destination: PathBuf::from(p),
                kind: MountKind::Masked,
                source: PathBuf::from("/dev/null"),
                hierarchy: None,
            });
        }
    }
    // A container in a user namespace has the host's device nodes bound in (`present_in`
    // keeps them only where they are mounts).
    let extra = spec
        .linux()
        .as_ref()
        .and_then(|l| l.devices().clone())
        .unwrap_or_default();
    let devices = crate::rootfs::devices::DEFAULTS
        .iter()
        .map(|(p, _, _)| PathBuf::from(p))
        .chain(extra.iter().map(|d| d.path().clone()));
    for path in devices {
        if out.iter().any(|m| m.destination == path) {
            continue;
        }
        out.push(ExternalMount {
            source: path.clone(),
            destination: path,
            kind: MountKind::Device,
            hierarchy: None,
        });
    }
    // /dev/console is a bind of the container's own devpts slave: CRIU restores it itself.
    out
}

/// Keeps only the masked paths that are really /dev/null binds in the running container
/// (files that exist; directories get a tmpfs), judged from the init's mountinfo.
pub fn present_in(mounts: Vec<ExternalMount>, init_pid: i32) -> Vec<ExternalMount> {
    let table = crate::procfs::mountinfo(Some(init_pid)).unwrap_or_default();
    mounts
        .into_iter()
        .filter(|m| {
            let mut at = table.iter().filter(|t| t.mount_point == m.destination);
            match m.kind {
                MountKind::Masked => at.any(|t| t.fstype != "tmpfs"),
                _ => at.next().is_some(),
            }
        })
        .collect()
}

/// Where each external mount points on restore: a new bundle's sources, the new cgroup, …
pub fn restore_source(
    m: &ExternalMount,
    spec: &Spec,
    bundle: &Path,
    cgroup: &Cgroup,
) -> Option<PathBuf> {
    match m.kind {
        MountKind::Bind => spec.mounts().iter().flatten().find_map(|rm| {
            (rm.destination() == &m.destination && is_bind(rm))
                .then(|| bind_source(bundle, rm).unwrap_or_else(|| bundle.join("")))
        }),
        MountKind::Cgroup => {
            let hier = m.hierarchy.as_ref()?;
            Some(hier.join(cgroup.path().trim_start_matches('/')))
        }
        MountKind::Masked => Some(PathBuf::from("/dev/null")),
        MountKind::Device => Some(m.source.clone()),
    }
}
