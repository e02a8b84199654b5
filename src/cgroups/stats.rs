use cgroups_rs::stats::CgroupStats;
use serde::Serialize;

/// The figures `lcr events --stats` prints, shaped like runc's `stats` event data.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct Stats {
    pub cpu: Cpu,
    pub memory: Memory,
    pub pids: Pids,
    pub blkio: Blkio,
}

#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct Cpu {
    pub usage: CpuUsage,
    pub throttling: Throttling,
}

#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct CpuUsage {
    pub total: u64,
    pub percpu: Vec<u64>,
    pub kernel: u64,
    pub user: u64,
}

#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct Throttling {
    pub periods: u64,
    #[serde(rename = "throttledPeriods")]
    pub throttled_periods: u64,
    #[serde(rename = "throttledTime")]
    pub throttled_time: u64,
}

#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct Memory {
    pub usage: MemoryEntry,
    pub swap: MemoryEntry,
    pub cache: u64,
    pub raw: std::collections::BTreeMap<String, u64>,
}

#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct MemoryEntry {
    pub limit: u64,
    pub usage: u64,
    pub max: u64,
    pub failcnt: u64,
}

#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct Pids {
    pub current: u64,
    pub limit: u64,
}

#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct Blkio {
    #[serde(rename = "ioServiceBytesRecursive")]
    pub io_service_bytes_recursive: Vec<BlkioEntry>,
    #[serde(rename = "ioServicedRecursive")]
    pub io_serviced_recursive: Vec<BlkioEntry>,
}

#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct BlkioEntry {
    pub major: u64,
    pub minor: u64,
    pub op: String,
    pub value: u64,
}

/// Fills the CPU usage (nanoseconds, as on v1) from a v2 `cpu.stat`.
pub(super) fn fill_cpu_from_v2(st: &mut Stats, cpu_stat: &str) {
    for line in cpu_stat.lines() {
        let mut f = line.split_whitespace();
        let (Some(k), Some(v)) = (f.next(), f.next().and_then(|v| v.parse::<u64>().ok())) else {
            continue;
        };
        match k {
            "usage_usec" => st.cpu.usage.total = v * 1000,
            "user_usec" => st.cpu.usage.user = v * 1000,
            "system_usec" => st.cpu.usage.kernel = v * 1000,
            "nr_periods" => st.cpu.throttling.periods = v,
            "nr_throttled" => st.cpu.throttling.throttled_periods = v,
            "throttled_usec" => st.cpu.throttling.throttled_time = v * 1000,
            _ => {}
        }
    }
}

/// Negative limits mean "none" in cgroups-rs; print them as 0 like runc.
fn clamp(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

impl From<CgroupStats> for Stats {
    fn from(s: CgroupStats) -> Self {
        let mut out = Stats::default();
        let u = &s.cpu.cpu_acct;
        if let Some(u) = u {
            out.cpu.usage = CpuUsage {
                total: u.total_usage,
                percpu: u.usage_percpu.clone(),
                kernel: u.system_usage,
                user: u.user_usage,
            };
        }
        if let Some(t) = &s.cpu.cpu_throttling {
            out.cpu.throttling = Throttling {
                periods: t.periods,
                throttled_periods: t.throttled_periods,
                throttled_time: t.throttled_time,
            };
        }
        let m = &s.memory;
        if let Some(mem) = &m.memory {
            out.memory.usage = MemoryEntry {
                limit: clamp(mem.limit),
                usage: mem.usage,
                max: mem.max_usage,
                failcnt: mem.fail_cnt,
            };
        }
        if let Some(sw) = &m.memory_swap {
            out.memory.swap = MemoryEntry {
                limit: clamp(sw.limit),
                usage: sw.usage,
                max: sw.max_usage,
                failcnt: sw.fail_cnt,
            };
        }
        out.memory.cache = m.cache;
        for (k, v) in [
            ("rss", m.rss),
            ("cache", m.cache),
            ("shmem", m.shmem),
            ("mapped_file", m.mapped_file),
            ("pgfault", m.pgfault),
            ("pgmajfault", m.pgmajfault),
            ("active_anon", m.active_anon),
            ("inactive_anon", m.inactive_anon),
            ("active_file", m.active_file),
            ("inactive_file", m.inactive_file),
        ] {
            out.memory.raw.insert(k.to_string(), v);
        }
        out.pids = Pids {
            current: s.pids.current,
            limit: clamp(s.pids.limit),
        };
        let entries = |v: &Vec<cgroups_rs::stats::BlkioStat>| {
            v.iter()
                .map(|e| BlkioEntry {
                    major: e.major,
                    minor: e.minor,
                    op: e.op.clone(),
                    value: e.value,
                })
                .collect()
        };
        out.blkio.io_service_bytes_recursive = entries(&s.blkio.io_service_bytes_recursive);
        out.blkio.io_serviced_recursive = entries(&s.blkio.io_serviced_recursive);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn v2_cpu_stat_is_read_in_nanoseconds() {
        let mut st = Stats::default();
        fill_cpu_from_v2(
            &mut st,
            "usage_usec 1500\nuser_usec 1000\nsystem_usec 500\nnr_periods 7\nnr_throttled 2\nthrottled_usec 30\n",
        );
        assert_eq!(st.cpu.usage.total, 1_500_000);
        assert_eq!(st.cpu.usage.user, 1_000_000);
        assert_eq!(st.cpu.usage.kernel, 500_000);
        assert_eq!(st.cpu.throttling.throttled_periods, 2);
        assert_eq!(st.cpu.throttling.throttled_time, 30_000);
    }
}
