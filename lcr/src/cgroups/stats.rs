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
