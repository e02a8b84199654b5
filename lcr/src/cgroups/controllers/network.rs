use oci_spec::runtime::LinuxResources;

use super::{Controller, Dir, Version};
use crate::Result;

/// v1's net_cls (a class id for traffic control); v2 has no counterpart.
pub struct NetCls;

/// v1's net_prio (priorities per interface); v2 has no counterpart.
pub struct NetPrio;

impl Controller for NetCls {
    fn name(&self) -> &'static str {
        "net_cls"
    }

    fn wanted(&self, r: &LinuxResources, version: Version) -> bool {
        version == Version::V1 && r.network().as_ref().is_some_and(|n| n.class_id().is_some())
    }

    fn apply(&self, dir: &Dir, r: &LinuxResources) -> Result<()> {
        match r.network().as_ref().and_then(|n| n.class_id()) {
            Some(id) => dir.write("net_cls.classid", id),
            None => Ok(()),
        }
    }
}

impl Controller for NetPrio {
    fn name(&self) -> &'static str {
        "net_prio"
    }

    fn wanted(&self, r: &LinuxResources, version: Version) -> bool {
        version == Version::V1
            && r.network()
                .as_ref()
                .is_some_and(|n| n.priorities().as_ref().is_some_and(|p| !p.is_empty()))
    }

    fn apply(&self, dir: &Dir, r: &LinuxResources) -> Result<()> {
        let priorities = r.network().as_ref().and_then(|n| n.priorities().clone());
        for p in priorities.iter().flatten() {
            dir.write(
                "net_prio.ifpriomap",
                format!("{} {}", p.name(), p.priority()),
            )?;
        }
        Ok(())
    }
}
