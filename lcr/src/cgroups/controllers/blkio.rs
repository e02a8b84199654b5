use oci_spec::runtime::{LinuxBlockIo, LinuxResources, LinuxThrottleDevice};

use super::{Controller, Dir, Stats, Version};
use crate::cgroups::stats::BlkioEntry;
use crate::Result;

/// Block I/O: v1's blkio, v2's io.
pub struct Blkio;

/// runc's conversion of a v1 blkio weight (10–1000) to a v2 io weight (1–10000).
fn io_weight(w: u16) -> u64 {
    1 + (u64::from(w).saturating_sub(10) * 9999) / 990
}

impl Controller for Blkio {
    fn name(&self) -> &'static str {
        "blkio"
    }

    fn wanted(&self, r: &LinuxResources, _: Version) -> bool {
        r.block_io().is_some()
    }

    fn apply(&self, dir: &Dir, r: &LinuxResources) -> Result<()> {
        let Some(b) = r.block_io() else { return Ok(()) };
        match dir.version {
            Version::V1 => apply_v1(dir, b),
            Version::V2 => apply_v2(dir, b),
        }
    }

    fn stats(&self, dir: &Dir, st: &mut Stats) {
        match dir.version {
            Version::V1 => {
                st.blkio.io_service_bytes_recursive = v1_entries(
                    &dir.read("blkio.io_service_bytes_recursive")
                        .unwrap_or_default(),
                );
                st.blkio.io_serviced_recursive =
                    v1_entries(&dir.read("blkio.io_serviced_recursive").unwrap_or_default());
            }
            Version::V2 => {
                let text = dir.read("io.stat").unwrap_or_default();
                st.blkio.io_service_bytes_recursive = v2_entries(&text, "rbytes", "wbytes");
                st.blkio.io_serviced_recursive = v2_entries(&text, "rios", "wios");
            }
        }
    }
}

fn apply_v1(dir: &Dir, b: &LinuxBlockIo) -> Result<()> {
    if let Some(w) = b.weight() {
        dir.write("blkio.weight", w)?;
    }
    if let Some(w) = b.leaf_weight() {
        dir.write("blkio.leaf_weight", w)?;
    }
    for d in b.weight_device().iter().flatten() {
        if let Some(w) = d.weight() {
            dir.write(
                "blkio.weight_device",
                format!("{}:{} {w}", d.major(), d.minor()),
            )?;
        }
        if let Some(w) = d.leaf_weight() {
            dir.write(
                "blkio.leaf_weight_device",
                format!("{}:{} {w}", d.major(), d.minor()),
            )?;
        }
    }
    let throttles: [(&str, &Option<Vec<LinuxThrottleDevice>>); 4] = [
        (
            "blkio.throttle.read_bps_device",
            b.throttle_read_bps_device(),
        ),
        (
            "blkio.throttle.write_bps_device",
            b.throttle_write_bps_device(),
        ),
        (
            "blkio.throttle.read_iops_device",
            b.throttle_read_iops_device(),
        ),
        (
            "blkio.throttle.write_iops_device",
            b.throttle_write_iops_device(),
        ),
    ];
    for (file, devices) in throttles {
        for d in devices.iter().flatten() {
            dir.write(file, format!("{}:{} {}", d.major(), d.minor(), d.rate()))?;
        }
    }
    Ok(())
}

fn apply_v2(dir: &Dir, b: &LinuxBlockIo) -> Result<()> {
    if let Some(w) = b.weight() {
        dir.write("io.weight", format!("default {}", io_weight(w)))?;
    }
    for d in b.weight_device().iter().flatten() {
        if let Some(w) = d.weight() {
            dir.write(
                "io.weight",
                format!("{}:{} {}", d.major(), d.minor(), io_weight(w)),
            )?;
        }
    }
    let throttles: [(&str, &Option<Vec<LinuxThrottleDevice>>); 4] = [
        ("rbps", b.throttle_read_bps_device()),
        ("wbps", b.throttle_write_bps_device()),
        ("riops", b.throttle_read_iops_device()),
        ("wiops", b.throttle_write_iops_device()),
    ];
    for (key, devices) in throttles {
        for d in devices.iter().flatten() {
            dir.write(
                "io.max",
                format!("{}:{} {key}={}", d.major(), d.minor(), d.rate()),
            )?;
        }
    }
    Ok(())
}

/// `MAJ:MIN Op value` lines (the `Total` line left out).
fn v1_entries(text: &str) -> Vec<BlkioEntry> {
    text.lines()
        .filter_map(|l| {
            let mut f = l.split_whitespace();
            let (dev, op, value) = (f.next()?, f.next()?, f.next()?.parse().ok()?);
            let (major, minor) = dev.split_once(':')?;
            Some(BlkioEntry {
                major: major.parse().ok()?,
                minor: minor.parse().ok()?,
                op: op.to_string(),
                value,
            })
        })
        .collect()
}

/// `MAJ:MIN rbytes=… wbytes=… rios=… wios=…` lines, as v1's Read and Write entries.
fn v2_entries(text: &str, read: &str, write: &str) -> Vec<BlkioEntry> {
    let mut out = Vec::new();
    for l in text.lines() {
        let mut f = l.split_whitespace();
        let Some((major, minor)) = f.next().and_then(|d| d.split_once(':')) else {
            continue;
        };
        let (Ok(major), Ok(minor)) = (major.parse(), minor.parse()) else {
            continue;
        };
        for kv in f {
            let Some((k, v)) = kv.split_once('=') else {
                continue;
            };
            let op = match k {
                k if k == read => "Read",
                k if k == write => "Write",
                _ => continue,
            };
            if let Ok(value) = v.parse() {
                out.push(BlkioEntry {
                    major,
                    minor,
                    op: op.into(),
                    value,
                });
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_both_layouts() {
        let v1 = v1_entries("8:0 Read 4096\n8:0 Write 512\nTotal 4608\n");
        assert_eq!(v1.len(), 2);
        assert_eq!(
            (v1[0].major, v1[0].op.as_str(), v1[0].value),
            (8, "Read", 4096)
        );
        let v2 = v2_entries(
            "8:0 rbytes=4096 wbytes=512 rios=3 wios=1 dbytes=0\n",
            "rios",
            "wios",
        );
        assert_eq!(v2.len(), 2);
        assert_eq!((v2[1].op.as_str(), v2[1].value), ("Write", 1));
        assert_eq!(io_weight(10), 1);
        assert_eq!(io_weight(1000), 10000);
    }
}
