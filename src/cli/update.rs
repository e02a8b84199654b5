use std::io::Read;
use std::path::PathBuf;

use anyhow::{anyhow, Context};
use lcr::container::{self, Container, Store};
use oci_spec::runtime::{LinuxCpu, LinuxMemory, LinuxPids, LinuxResources};

#[derive(clap::Args)]
/// Change a container's resource limits.
pub struct Args {
    pub id: String,
    /// Resources JSON (OCI linux.resources), `-` for stdin.
    #[arg(short, long)]
    resources: Option<PathBuf>,
    /// Memory limit (bytes, or with k/m/g).
    #[arg(long)]
    memory: Option<String>,
    #[arg(long)]
    memory_swap: Option<String>,
    #[arg(long)]
    memory_reservation: Option<String>,
    #[arg(long)]
    cpu_quota: Option<i64>,
    #[arg(long)]
    cpu_period: Option<u64>,
    #[arg(long)]
    cpu_shares: Option<u64>,
    #[arg(long)]
    cpuset_cpus: Option<String>,
    #[arg(long)]
    cpuset_mems: Option<String>,
    #[arg(long)]
    pids_limit: Option<i64>,
}

/// Parses `1048576`, `512k`, `64m`, `1g` (and `-1` for unlimited).
pub fn parse_size(flag: &str, s: &str) -> anyhow::Result<i64> {
    let t = s.trim().to_ascii_lowercase();
    let t = t.strip_suffix('b').unwrap_or(&t);
    let (num, mul) = match t.chars().last() {
        Some('k') => (&t[..t.len() - 1], 1i64 << 10),
        Some('m') => (&t[..t.len() - 1], 1 << 20),
        Some('g') => (&t[..t.len() - 1], 1 << 30),
        _ => (t, 1),
    };
    let n: i64 = num
        .parse()
        .map_err(|_| anyhow!("--{flag} {s:?}: not a size (e.g. 1048576, 512k, 64m, 1g)"))?;
    Ok(if n < 0 { -1 } else { n * mul })
}

fn resources(a: &Args) -> anyhow::Result<LinuxResources> {
    if let Some(path) = &a.resources {
        let mut text = String::new();
        if path.as_os_str() == "-" {
            std::io::stdin().read_to_string(&mut text)?;
        } else {
            text = std::fs::read_to_string(path)
                .with_context(|| format!("read {}", path.display()))?;
        }
        let de = &mut serde_json::Deserializer::from_str(&text);
        return serde_path_to_error::deserialize(de)
            .map_err(|e| anyhow!("{}: {}: {}", path.display(), e.path(), e.inner()));
    }
    let mut r = LinuxResources::default();
    if a.memory.is_some() || a.memory_swap.is_some() || a.memory_reservation.is_some() {
        let mut m = LinuxMemory::default();
        if let Some(v) = &a.memory {
            m.set_limit(Some(parse_size("memory", v)?));
        }
        if let Some(v) = &a.memory_swap {
            m.set_swap(Some(parse_size("memory-swap", v)?));
        }
        if let Some(v) = &a.memory_reservation {
            m.set_reservation(Some(parse_size("memory-reservation", v)?));
        }
        r.set_memory(Some(m));
    }
    if a.cpu_quota.is_some()
        || a.cpu_period.is_some()
        || a.cpu_shares.is_some()
        || a.cpuset_cpus.is_some()
        || a.cpuset_mems.is_some()
    {
        let mut c = LinuxCpu::default();
        c.set_quota(a.cpu_quota);
        c.set_period(a.cpu_period);
        c.set_shares(a.cpu_shares);
        c.set_cpus(a.cpuset_cpus.clone());
        c.set_mems(a.cpuset_mems.clone());
        r.set_cpu(Some(c));
    }
    if let Some(p) = a.pids_limit {
        let mut pids = LinuxPids::default();
        pids.set_limit(p);
        r.set_pids(Some(pids));
    }
    Ok(r)
}

pub fn run(store: &Store, a: Args) -> anyhow::Result<i32> {
    let res = resources(&a)?;
    let mut c = Container::load(store, &a.id)?;
    container::update(&mut c, &res)?;
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::parse_size;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("memory", "1048576").unwrap(), 1 << 20);
        assert_eq!(parse_size("memory", "64m").unwrap(), 64 << 20);
        assert_eq!(parse_size("memory", "1G").unwrap(), 1 << 30);
        assert_eq!(parse_size("memory", "-1").unwrap(), -1);
        assert!(parse_size("memory", "lots")
            .unwrap_err()
            .to_string()
            .contains("--memory"));
    }
}
