use oci_spec::runtime::LinuxResources;

use super::{Controller, Dir, Stats, Version};
use crate::cgroups::stats::MemoryEntry;
use crate::Result;

pub struct Memory;

/// -1 means no limit: v1 writes it as is, v2 as `max`.
fn v2_limit(v: i64) -> String {
    if v < 0 {
        "max".into()
    } else {
        v.to_string()
    }
}

impl Controller for Memory {
    fn name(&self) -> &'static str {
        "memory"
    }

    fn wanted(&self, r: &LinuxResources, _: Version) -> bool {
        r.memory().is_some()
    }

    fn apply(&self, dir: &Dir, r: &LinuxResources) -> Result<()> {
        let Some(m) = r.memory() else { return Ok(()) };
        match dir.version {
            Version::V1 => {
                if let Some(l) = m.limit() {
                    set_v1_limits(dir, l, m.swap())?;
                } else if let Some(s) = m.swap() {
                    dir.write("memory.memsw.limit_in_bytes", s)?;
                }
                if let Some(r) = m.reservation() {
                    dir.write("memory.soft_limit_in_bytes", r)?;
                }
                if let Some(s) = m.swappiness() {
                    dir.write("memory.swappiness", s)?;
                }
                if m.disable_oom_killer() == Some(true) {
                    dir.write("memory.oom_control", 1)?;
                }
            }
            Version::V2 => {
                if let Some(l) = m.limit() {
                    dir.write("memory.max", v2_limit(l))?;
                }
                if let Some(r) = m.reservation() {
                    dir.write("memory.low", v2_limit(r))?;
                }
                // v1's swap is memory plus swap; v2's swap.max is the swap alone.
                match (m.swap(), m.limit()) {
                    (Some(s), _) if s < 0 => dir.write("memory.swap.max", "max")?,
                    (Some(s), Some(l)) if l > 0 => dir.write("memory.swap.max", s - l)?,
                    _ => {}
                }
            }
        }
        Ok(())
    }

    fn stats(&self, dir: &Dir, st: &mut Stats) {
        let raw = dir.keyed("memory.stat");
        match dir.version {
            Version::V1 => {
                let entry = |prefix: &str| MemoryEntry {
                    limit: dir.u64(&format!("{prefix}.limit_in_bytes")),
                    usage: dir.u64(&format!("{prefix}.usage_in_bytes")),
                    max: dir.u64(&format!("{prefix}.max_usage_in_bytes")),
                    failcnt: dir.u64(&format!("{prefix}.failcnt")),
                };
                st.memory.usage = entry("memory");
                st.memory.swap = entry("memory.memsw");
                st.memory.cache = raw.get("cache").copied().unwrap_or(0);
            }
            Version::V2 => {
                let events = dir.keyed("memory.events");
                st.memory.usage = MemoryEntry {
                    limit: dir.u64("memory.max"),
                    usage: dir.u64("memory.current"),
                    max: dir.u64("memory.peak"),
                    failcnt: events.get("max").copied().unwrap_or(0),
                };
                st.memory.swap = MemoryEntry {
                    limit: dir.u64("memory.swap.max"),
                    usage: dir.u64("memory.swap.current"),
                    max: dir.u64("memory.swap.peak"),
                    failcnt: events.get("swap_max").copied().unwrap_or(0),
                };
                st.memory.cache = raw.get("file").copied().unwrap_or(0);
            }
        }
        st.memory.raw = raw;
    }
}

/// The memory limit and memory+swap limit, in the order the kernel accepts: memsw may never
/// be below the limit, so when the limit grows past the old memsw, memsw goes first.
fn set_v1_limits(dir: &Dir, limit: i64, swap: Option<i64>) -> Result<()> {
    let Some(swap) = swap else {
        return dir.write("memory.limit_in_bytes", limit);
    };
    let old_memsw: i64 = dir
        .read("memory.memsw.limit_in_bytes")
        .and_then(|s| s.parse().ok())
        .unwrap_or(i64::MAX);
    if limit < 0 || swap < 0 || limit > old_memsw {
        dir.write("memory.memsw.limit_in_bytes", swap)?;
        dir.write("memory.limit_in_bytes", limit)
    } else {
        dir.write("memory.limit_in_bytes", limit)?;
        dir.write("memory.memsw.limit_in_bytes", swap)
    }
}
