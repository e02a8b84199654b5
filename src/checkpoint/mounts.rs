//! Mounts CRIU cannot recreate from the container's own mount namespace: bind mounts of host
//! paths, the cgroup binds, /dev/null over masked files, /dev/console. They are dumped as
//! external, keyed by their destination, so a restore can point each at a new host source —
//! that is the mount remapping.

use std::path::{Path, PathBuf};

use oci_spec::runtime::Spec;
use serde::{Deserialize, Serialize};

use crate::cgroups::Cgroup;
use crate::rootfs::{cgroup_mounts, parse_options};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MountKind {
    /// A bind mount from the config: the restore config's source for the same destination.
    Bind,
    /// One cgroup hierarchy under the cgroup mount: the new container's cgroup directory.
    Cgroup,
    /// /dev/null over a masked file.
    Masked,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExternalMount {
    /// Mount point in the container; also the key CRIU saves it under.
    pub destination: PathBuf,
    pub kind: MountKind,
    /// Host source at checkpoint time (for information and `inspect`).
    pub source: PathBuf,
    /// For cgroup binds: the hierarchy's mount point on the host.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hierarchy: Option<PathBuf>,
}

fn is_bind(m: &oci_spec::runtime::Mount) -> bool {
    m.typ().as_deref() == Some("bind")
        || parse_options(m.options().as_deref().unwrap_or_default()).bind
}

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
            let src = m.source().clone().unwrap_or_default();
            let src = if src.is_absolute() {
                src
            } else {
                bundle.join(src)
            };
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
    // /dev/console is a bind of the container's own devpts slave: CRIU restores it itself.
    out
}

/// Keeps only the masked paths that are really /dev/null binds in the running container
/// (files that exist; directories get a tmpfs), judged from the init's mountinfo.
pub fn present_in(mounts: Vec<ExternalMount>, init_pid: i32) -> Vec<ExternalMount> {
    let info = std::fs::read_to_string(format!("/proc/{init_pid}/mountinfo")).unwrap_or_default();
    let points: Vec<&str> = info
        .lines()
        .filter_map(|l| l.split_whitespace().nth(4))
        .collect();
    mounts
        .into_iter()
        .filter(|m| {
            let d = m.destination.to_string_lossy();
            let is_mounted = points.iter().any(|p| *p == d);
            match m.kind {
                MountKind::Masked => {
                    is_mounted
                        && info.lines().any(|l| {
                            l.split_whitespace().nth(4) == Some(&*d) && !l.contains(" - tmpfs ")
                        })
                }
                _ => is_mounted,
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
            (rm.destination() == &m.destination && is_bind(rm)).then(|| {
                let s = rm.source().clone().unwrap_or_default();
                if s.is_absolute() {
                    s
                } else {
                    bundle.join(s)
                }
            })
        }),
        MountKind::Cgroup => {
            let hier = m.hierarchy.as_ref()?;
            Some(hier.join(cgroup.path().trim_start_matches('/')))
        }
        MountKind::Masked => Some(PathBuf::from("/dev/null")),
    }
}
