//! What this host's kernel and CRIU can do for checkpointing, and what follows when a feature
//! is missing (`lcr check`).

use serde::Serialize;

use criurpc::Criu;

/// `fs.pipe-max-size` CRIU's page server needs for lazy dumps without CAP_SYS_RESOURCE: it grows
/// its pipes to about 3.3 MiB.
pub const LAZY_PIPE_MAX_SIZE: u64 = 4 * 1024 * 1024;

#[derive(Debug, Serialize)]
pub struct Report {
    pub criu_binary: Option<String>,
    pub criu_version: Option<String>,
    pub criu_error: Option<String>,
    pub cgroup_version: crate::cgroups::Version,
    pub features: Vec<Feature>,
}

#[derive(Debug, Serialize)]
pub struct Feature {
    pub name: &'static str,
    pub supported: bool,
    /// What does not work without it (empty when supported).
    pub consequence: String,
}

fn feature(name: &'static str, supported: bool, consequence: &str) -> Feature {
    Feature {
        name,
        supported,
        consequence: if supported {
            String::new()
        } else {
            consequence.to_string()
        },
    }
}

/// Whether this process holds `cap` in its effective set.
pub fn has_capability(cap: caps::Capability) -> bool {
    caps::has_cap(None, caps::CapSet::Effective, cap).unwrap_or(false)
}

pub fn pipe_max_size() -> u64 {
    std::fs::read_to_string("/proc/sys/fs/pipe-max-size")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(0)
}

/// `None` when a lazy (post-copy) dump can work; otherwise the reason and what to change.
pub fn lazy_pages_blocker() -> Option<String> {
    if has_capability(caps::Capability::CAP_SYS_RESOURCE) || pipe_max_size() >= LAZY_PIPE_MAX_SIZE {
        return None;
    }
    Some(format!(
        "fs.pipe-max-size is {} and lcr lacks CAP_SYS_RESOURCE: CRIU's page server needs pipes of about 3.3 MiB; run `sysctl fs.pipe-max-size={LAZY_PIPE_MAX_SIZE}`",
        pipe_max_size()
    ))
}

/// What this kernel and CRIU can do, feature by feature. One entry after another (~80 lines,
/// kept together so that the report's order is the code's).
pub fn report(criu: &Criu) -> Report {
    let mut r = Report {
        criu_binary: criu.binary().ok().map(|p| p.display().to_string()),
        criu_version: None,
        criu_error: None,
        cgroup_version: crate::cgroups::Version::detect(),
        features: Vec::new(),
    };
    match criu.require_supported() {
        Ok(v) => r.criu_version = Some(v.to_string()),
        Err(e) => {
            r.criu_error = Some(e.to_string());
            r.features.push(feature(
                "checkpoint/restore",
                false,
                "lcr checkpoint, restore and migrate unavailable: no usable CRIU",
            ));
            return r;
        }
    }
    r.features.push(feature(
        "checkpoint/restore",
        criu.check().is_ok(),
        "lcr checkpoint and restore unavailable: `criu check` fails on this kernel",
    ));
    match criu.features() {
        Ok(f) => {
            r.features.push(feature("dirty memory tracking", f.mem_track, "pre-copy migration and --pre-dump/--parent-path unavailable: no dirty memory tracking (soft-dirty)"));
            r.features.push(feature(
                "lazy pages",
                f.lazy_pages,
                "post-copy migration and --lazy-pages unavailable: no non-cooperative userfaultfd",
            ));
            r.features.push(feature(
                "pidfd store",
                f.pidfd_store,
                "pid reuse between pre-dumps cannot be detected",
            ));
        }
        Err(e) => r.criu_error = Some(e.to_string()),
    }
    let lazy = lazy_pages_blocker();
    r.features.push(Feature {
        name: "lazy page server pipes",
        supported: lazy.is_none(),
        consequence: lazy
            .map(|l| format!("lazy dumps from a live process fail: {l}"))
            .unwrap_or_default(),
    });
    for (name, key, consequence) in [
        (
            "time namespaces",
            "timens",
            "containers with a time namespace cannot be checkpointed",
        ),
        (
            "cgroup namespaces",
            "cgroupns",
            "containers with a cgroup namespace cannot be checkpointed",
        ),
        (
            "clone3 with set_tid",
            "clone3_set_tid",
            "restore falls back to ns_last_pid (slower, racy with other forks)",
        ),
    ] {
        r.features.push(feature(
            name,
            criu.check_feature(key).unwrap_or(false),
            consequence,
        ));
    }
    r.features.push(feature(
        "CAP_SYS_RESOURCE",
        has_capability(caps::Capability::CAP_SYS_RESOURCE),
        "CRIU cannot raise its own RLIMIT_NOFILE (harmless) nor grow pipes past fs.pipe-max-size",
    ));
    r
}
