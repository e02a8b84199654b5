use oci_spec::runtime::LinuxResources;

use super::{Controller, Dir, Version};
use crate::Result;

/// `linux.resources.unified`: cgroup v2 files written as given.
pub struct Unified;

impl Controller for Unified {
    fn name(&self) -> &'static str {
        ""
    }

    fn wanted(&self, r: &LinuxResources, _: Version) -> bool {
        r.unified().as_ref().is_some_and(|u| !u.is_empty())
    }

    fn apply(&self, dir: &Dir, r: &LinuxResources) -> Result<()> {
        if dir.version != Version::V2 {
            return Err(
                dir.err("linux.resources.unified needs cgroup v2 (this host has v1)".into())
            );
        }
        for (file, value) in r.unified().iter().flatten() {
            // A key names a file of this cgroup, never a path out of it.
            if file.contains('/') || file.starts_with('.') {
                return Err(dir.err(format!(
                    "linux.resources.unified: {file:?} is not a cgroup file name"
                )));
            }
            dir.write(file, value)?;
        }
        Ok(())
    }
}
