use oci_spec::runtime::LinuxResources;

use super::{Controller, Dir, Version};
use crate::Result;

/// The CPUs and memory nodes (the same files on v1 and v2). A new v1 cpuset starts empty,
/// and no task can join it so: it gets its parent's unless the config says otherwise (see
/// [`inherit_parent`]).
pub struct Cpuset;

impl Controller for Cpuset {
    fn name(&self) -> &'static str {
        "cpuset"
    }

    fn wanted(&self, r: &LinuxResources, _: Version) -> bool {
        r.cpu()
            .as_ref()
            .is_some_and(|c| c.cpus().is_some() || c.mems().is_some())
    }

    fn apply(&self, dir: &Dir, r: &LinuxResources) -> Result<()> {
        let Some(c) = r.cpu() else { return Ok(()) };
        if let Some(cpus) = c.cpus().as_deref().filter(|s| !s.is_empty()) {
            dir.write("cpuset.cpus", cpus)?;
        }
        if let Some(mems) = c.mems().as_deref().filter(|s| !s.is_empty()) {
            dir.write("cpuset.mems", mems)?;
        }
        Ok(())
    }
}

/// Copies `cpuset.cpus` and `cpuset.mems` down from the nearest ancestor that has them into
/// each empty v1 cpuset from there to `dir` (the ones just made).
pub(in crate::cgroups) fn inherit_parent(hierarchy: &std::path::Path, rel: &str) -> Result<()> {
    let mut at = hierarchy.to_path_buf();
    for part in rel.split('/').filter(|p| !p.is_empty()) {
        let parent = at.clone();
        at.push(part);
        for file in ["cpuset.cpus", "cpuset.mems"] {
            let mine = std::fs::read_to_string(at.join(file)).unwrap_or_default();
            if !mine.trim().is_empty() {
                continue;
            }
            let theirs = std::fs::read_to_string(parent.join(file)).unwrap_or_default();
            std::fs::write(at.join(file), theirs.trim()).map_err(|e| crate::Error::Cgroup {
                path: format!("/{rel}"),
                reason: format!("copy {file} into {}: {e}", at.display()),
            })?;
        }
    }
    Ok(())
}
