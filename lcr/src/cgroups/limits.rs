//! Which resource values the kernel can take, checked before any is written: a value the
//! kernel refuses, or reads in a way nobody meant (a negative pids limit), is named by its
//! config field instead of surfacing as a cgroup file's EINVAL or EACCES.
//!
//! Zero means "not set" where runc reads it so (cpu shares, quota, period; pids limit; block
//! I/O weights): such a field is left out of what is written.

use oci_spec::runtime::{LinuxBlockIo, LinuxCpu, LinuxMemory, LinuxResources};

use crate::{Error, Result};

/// Smallest memory limit a container's first process can start under (runtime set-up and the
/// process's own pages are charged to it).
const MIN_MEMORY: i64 = 1 << 20;

fn bad(field: &str, value: impl ToString, reason: &str) -> Error {
    Error::Value {
        what: format!("linux.resources.{field}"),
        value: value.to_string(),
        reason: reason.to_string(),
    }
}

/// Checks `r` and returns it with the zero ("not set") fields taken out.
pub fn checked(r: &LinuxResources) -> Result<LinuxResources> {
    let mut out = r.clone();
    if let Some(m) = r.memory() {
        check_memory(m)?;
    }
    if let Some(p) = r.pids() {
        if p.limit() < -1 {
            return Err(bad(
                "pids.limit",
                p.limit(),
                "must be -1 (unlimited), 0 (not set) or a positive count",
            ));
        }
    }
    if let Some(c) = r.cpu() {
        out.set_cpu(Some(checked_cpu(c)?));
    }
    if let Some(b) = r.block_io() {
        out.set_block_io(Some(checked_block_io(b)?));
    }
    Ok(out)
}

fn check_memory(m: &LinuxMemory) -> Result<()> {
    for (field, v) in [
        ("memory.limit", m.limit()),
        ("memory.reservation", m.reservation()),
        ("memory.swap", m.swap()),
    ] {
        match v {
            Some(v) if v < -1 => {
                return Err(bad(field, v, "must be -1 (unlimited) or a size in bytes"))
            }
            _ => {}
        }
    }
    if let Some(l) = m.limit().filter(|l| (0..MIN_MEMORY).contains(l) && *l != 0) {
        return Err(bad(
            "memory.limit",
            l,
            "below 1 MiB: no process can start in so little memory",
        ));
    }
    if let (Some(l), Some(s)) = (m.limit(), m.swap()) {
        if l > 0 && s > 0 && s < l {
            return Err(bad(
                "memory.swap",
                s,
                "is memory plus swap, so it cannot be below memory.limit",
            ));
        }
    }
    Ok(())
}

fn checked_cpu(c: &LinuxCpu) -> Result<LinuxCpu> {
    let mut cpu = c.clone();
    match c.shares() {
        Some(0) => {
            cpu.set_shares(None);
        }
        Some(s) if !(2..=262_144).contains(&s) => {
            return Err(bad(
                "cpu.shares",
                s,
                "must be between 2 and 262144 (0: not set)",
            ))
        }
        _ => {}
    }
    match c.quota() {
        Some(0) => {
            cpu.set_quota(None);
        }
        Some(q) if q < -1 || (0..1000).contains(&q) => {
            return Err(bad(
                "cpu.quota",
                q,
                "must be -1 (unlimited) or at least 1000 microseconds (0: not set)",
            ))
        }
        _ => {}
    }
    match c.period() {
        Some(0) => {
            cpu.set_period(None);
        }
        Some(p) if !(1000..=1_000_000).contains(&p) => {
            return Err(bad(
                "cpu.period",
                p,
                "must be between 1000 and 1000000 microseconds (0: not set)",
            ))
        }
        _ => {}
    }
    Ok(cpu)
}

fn checked_block_io(b: &LinuxBlockIo) -> Result<LinuxBlockIo> {
    let mut bio = b.clone();
    for (field, v) in [
        ("blockIO.weight", b.weight()),
        ("blockIO.leafWeight", b.leaf_weight()),
    ] {
        match v {
            Some(0) | None => {}
            Some(w) if !(10..=1000).contains(&w) => {
                return Err(bad(field, w, "must be between 10 and 1000 (0: not set)"))
            }
            _ => {}
        }
    }
    if b.weight() == Some(0) {
        bio.set_weight(None);
    }
    if b.leaf_weight() == Some(0) {
        bio.set_leaf_weight(None);
    }
    Ok(bio)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn res(json: &str) -> LinuxResources {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn values_the_kernel_refuses_are_named() {
        for (json, field) in [
            (r#"{"pids": {"limit": -7}}"#, "pids.limit"),
            (r#"{"cpu": {"quota": -9}}"#, "cpu.quota"),
            (r#"{"cpu": {"quota": 500}}"#, "cpu.quota"),
            (r#"{"cpu": {"shares": 1}}"#, "cpu.shares"),
            (r#"{"cpu": {"period": 5}}"#, "cpu.period"),
            (r#"{"blockIO": {"weight": 5000}}"#, "blockIO.weight"),
            (r#"{"memory": {"limit": 4096}}"#, "memory.limit"),
            (r#"{"memory": {"limit": -5}}"#, "memory.limit"),
            (
                r#"{"memory": {"limit": 104857600, "swap": 1048576}}"#,
                "memory.swap",
            ),
        ] {
            let e = checked(&res(json)).unwrap_err().to_string();
            assert!(
                e.contains(&format!("linux.resources.{field}")),
                "{json}: {e}"
            );
        }
    }

    #[test]
    fn zero_means_not_set_and_good_values_pass() {
        let r = checked(&res(r#"{"cpu": {"shares": 0, "quota": 0, "period": 0}, "pids": {"limit": 0}, "blockIO": {"weight": 0}}"#)).unwrap();
        let cpu = r.cpu().as_ref().unwrap();
        assert_eq!(
            (cpu.shares(), cpu.quota(), cpu.period()),
            (None, None, None)
        );
        assert_eq!(r.block_io().as_ref().unwrap().weight(), None);
        let good = r#"{"cpu": {"shares": 1024, "quota": 50000, "period": 100000}, "pids": {"limit": -1}, "memory": {"limit": 67108864, "swap": -1}, "blockIO": {"weight": 500}}"#;
        assert!(checked(&res(good)).is_ok());
    }
}
