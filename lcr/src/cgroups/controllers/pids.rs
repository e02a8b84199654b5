use oci_spec::runtime::LinuxResources;

use super::{Controller, Dir, Stats, Version};
use crate::Result;

pub struct Pids;

impl Controller for Pids {
    fn name(&self) -> &'static str {
        "pids"
    }

    fn wanted(&self, r: &LinuxResources, _: Version) -> bool {
        r.pids().is_some()
    }

    fn apply(&self, dir: &Dir, r: &LinuxResources) -> Result<()> {
        match r.pids().as_ref().map(|p| p.limit()) {
            Some(l) if l > 0 => dir.write("pids.max", l),
            Some(_) => dir.write("pids.max", "max"),
            None => Ok(()),
        }
    }

    fn stats(&self, dir: &Dir, st: &mut Stats) {
        st.pids.current = dir.u64("pids.current");
        st.pids.limit = dir.u64("pids.max");
    }
}
