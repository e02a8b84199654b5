use oci_spec::runtime::LinuxResources;

use super::{Controller, Dir, Stats, Version};
use crate::Result;

pub struct Cpu;

/// runc's conversion of v1 shares (2–262144) to a v2 weight (1–10000).
fn weight_of(shares: u64) -> u64 {
    if shares == 0 {
        return 0;
    }
    1 + (shares.saturating_sub(2) * 9999) / 262_142
}

impl Controller for Cpu {
    fn name(&self) -> &'static str {
        "cpu"
    }

    fn wanted(&self, r: &LinuxResources, _: Version) -> bool {
        r.cpu().as_ref().is_some_and(|c| {
            c.shares().is_some()
                || c.quota().is_some()
                || c.period().is_some()
                || c.realtime_runtime().is_some()
                || c.realtime_period().is_some()
                || c.idle().is_some()
        })
    }

    fn apply(&self, dir: &Dir, r: &LinuxResources) -> Result<()> {
        let Some(c) = r.cpu() else { return Ok(()) };
        match dir.version {
            Version::V1 => {
                if let Some(s) = c.shares() {
                    dir.write("cpu.shares", s)?;
                }
                // The period first: a quota is checked against it.
                if let Some(p) = c.period() {
                    dir.write("cpu.cfs_period_us", p)?;
                }
                if let Some(q) = c.quota() {
                    dir.write("cpu.cfs_quota_us", q)?;
                }
                if let Some(p) = c.realtime_period() {
                    dir.write("cpu.rt_period_us", p)?;
                }
                if let Some(rt) = c.realtime_runtime() {
                    dir.write("cpu.rt_runtime_us", rt)?;
                }
            }
            Version::V2 => {
                if let Some(s) = c.shares() {
                    dir.write("cpu.weight", weight_of(s))?;
                }
                if c.quota().is_some() || c.period().is_some() {
                    let quota = match c.quota() {
                        Some(q) if q > 0 => q.to_string(),
                        _ => "max".into(),
                    };
                    let period = c.period().unwrap_or(100_000);
                    dir.write("cpu.max", format!("{quota} {period}"))?;
                }
                if let Some(i) = c.idle() {
                    dir.write("cpu.idle", i)?;
                }
            }
        }
        Ok(())
    }

    fn stats(&self, dir: &Dir, st: &mut Stats) {
        let stat = dir.keyed("cpu.stat");
        let get = |k: &str| stat.get(k).copied().unwrap_or(0);
        match dir.version {
            Version::V1 => {
                st.cpu.throttling.periods = get("nr_periods");
                st.cpu.throttling.throttled_periods = get("nr_throttled");
                st.cpu.throttling.throttled_time = get("throttled_time");
            }
            Version::V2 => {
                // v2 has no cpuacct: usage comes from cpu.stat, in microseconds.
                st.cpu.usage.total = get("usage_usec") * 1000;
                st.cpu.usage.user = get("user_usec") * 1000;
                st.cpu.usage.kernel = get("system_usec") * 1000;
                st.cpu.throttling.periods = get("nr_periods");
                st.cpu.throttling.throttled_periods = get("nr_throttled");
                st.cpu.throttling.throttled_time = get("throttled_usec") * 1000;
            }
        }
    }
}

/// v1's CPU accounting (statistics only).
pub struct Cpuacct;

/// cpuacct.stat counts in USER_HZ ticks (100 a second on Linux): in nanoseconds.
const NS_PER_TICK: u64 = 10_000_000;

impl Controller for Cpuacct {
    fn name(&self) -> &'static str {
        "cpuacct"
    }

    fn wanted(&self, _: &LinuxResources, _: Version) -> bool {
        false
    }

    fn apply(&self, _: &Dir, _: &LinuxResources) -> Result<()> {
        Ok(())
    }

    fn stats(&self, dir: &Dir, st: &mut Stats) {
        if dir.version != Version::V1 {
            return;
        }
        st.cpu.usage.total = dir.u64("cpuacct.usage");
        st.cpu.usage.percpu = dir
            .read("cpuacct.usage_percpu")
            .unwrap_or_default()
            .split_whitespace()
            .filter_map(|v| v.parse().ok())
            .collect();
        let stat = dir.keyed("cpuacct.stat");
        st.cpu.usage.user = stat.get("user").copied().unwrap_or(0) * NS_PER_TICK;
        st.cpu.usage.kernel = stat.get("system").copied().unwrap_or(0) * NS_PER_TICK;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shares_convert_to_weights_as_runc_does() {
        assert_eq!(weight_of(2), 1);
        assert_eq!(weight_of(1024), 39);
        assert_eq!(weight_of(512), 20);
        assert_eq!(weight_of(262_144), 10000);
    }

    #[test]
    fn v2_cpu_stat_is_read_in_nanoseconds() {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(
            d.path().join("cpu.stat"),
            "usage_usec 1500\nuser_usec 1000\nsystem_usec 500\nnr_periods 7\nnr_throttled 2\nthrottled_usec 30\n",
        )
        .unwrap();
        let dir = Dir {
            version: Version::V2,
            path: d.path().to_path_buf(),
            cgroup: "/t".into(),
        };
        let mut st = Stats::default();
        Cpu.stats(&dir, &mut st);
        assert_eq!(st.cpu.usage.total, 1_500_000);
        assert_eq!(st.cpu.usage.user, 1_000_000);
        assert_eq!(st.cpu.usage.kernel, 500_000);
        assert_eq!(st.cpu.throttling.throttled_periods, 2);
        assert_eq!(st.cpu.throttling.throttled_time, 30_000);
    }
}
