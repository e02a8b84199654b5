//! CRIU's statistics images (`stats-dump`, `stats-restore`): a magic header, then one
//! length-prefixed protobuf message. Decoded field by field (stats.proto numbering), so that no
//! generated code is needed for two small messages.

use std::path::Path;

use serde::{Deserialize, Serialize};

use super::criu_image::{messages, Fields};

/// Dump timings in microseconds and page counts (4 KiB pages).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DumpStats {
    pub freezing_time_us: u64,
    pub frozen_time_us: u64,
    pub memdump_time_us: u64,
    pub memwrite_time_us: u64,
    pub pages_scanned: u64,
    pub pages_skipped_parent: u64,
    pub pages_written: u64,
    pub pages_lazy: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RestoreStats {
    pub pages_compared: u64,
    pub pages_skipped_cow: u64,
    pub forking_time_us: u64,
    pub restore_time_us: u64,
    pub pages_restored: u64,
}

/// `stats-dump` in `dir`, if CRIU wrote one.
pub fn read_dump(dir: &Path) -> Option<DumpStats> {
    let g = stats_fields(&dir.join("stats-dump"), 1)?;
    Some(DumpStats {
        freezing_time_us: g(1),
        frozen_time_us: g(2),
        memdump_time_us: g(3),
        memwrite_time_us: g(4),
        pages_scanned: g(5),
        pages_skipped_parent: g(6),
        pages_written: g(7),
        pages_lazy: g(9),
    })
}

pub fn read_restore(dir: &Path) -> Option<RestoreStats> {
    let g = stats_fields(&dir.join("stats-restore"), 2)?;
    Some(RestoreStats {
        pages_compared: g(1),
        pages_skipped_cow: g(2),
        forking_time_us: g(3),
        restore_time_us: g(4),
        pages_restored: g(5),
    })
}

/// The varint fields of sub-message `n` (1: dump, 2: restore) of a stats image, as a lookup
/// that answers 0 for fields CRIU left out.
fn stats_fields(file: &Path, n: u32) -> Option<impl Fn(u32) -> u64> {
    let img = std::fs::read(file).ok()?;
    let entry = Fields::parse(messages(&img)?.first()?)?;
    let body = entry.message(n)?;
    Some(move |k: u32| body.u64(k))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn varint(mut v: u64, out: &mut Vec<u8>) {
        while v >= 0x80 {
            out.push((v as u8) | 0x80);
            v >>= 7;
        }
        out.push(v as u8);
    }

    #[test]
    fn decodes_a_dump_stats_image() {
        let mut inner = Vec::new();
        for (field, v) in [(1u64, 1500u64), (2, 9000), (5, 300), (7, 290), (9, 0)] {
            varint(field << 3, &mut inner);
            varint(v, &mut inner);
        }
        let mut entry = vec![(1 << 3) | 2];
        varint(inner.len() as u64, &mut entry);
        entry.extend(&inner);
        let mut img = vec![0x40, 0x59, 0x10, 0x55, 0x06, 0x33, 0x09, 0x57];
        img.extend((entry.len() as u32).to_le_bytes());
        img.extend(&entry);
        let d = tempfile::tempdir().unwrap();
        std::fs::write(d.path().join("stats-dump"), img).unwrap();
        let s = read_dump(d.path()).unwrap();
        assert_eq!(s.freezing_time_us, 1500);
        assert_eq!(s.frozen_time_us, 9000);
        assert_eq!(s.pages_scanned, 300);
        assert_eq!(s.pages_written, 290);
        assert!(read_restore(d.path()).is_none());
    }
}
