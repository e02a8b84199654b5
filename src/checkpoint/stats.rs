//! CRIU's statistics images (`stats-dump`, `stats-restore`): a magic header, then one
//! length-prefixed protobuf message. Decoded field by field (stats.proto numbering), so that no
//! generated code is needed for two small messages.

use std::path::Path;

use protobuf::CodedInputStream;
use serde::{Deserialize, Serialize};

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
    let entry = stats_entry(&std::fs::read(file).ok()?)?;
    let body = fields(&entry)?.into_iter().find_map(|(k, f)| match f {
        Field::Bytes(b) if k == n => Some(b),
        _ => None,
    })?;
    let values: Vec<(u32, u64)> = fields(&body)?
        .into_iter()
        .filter_map(|(k, f)| match f {
            Field::Varint(v) => Some((k, v)),
            Field::Bytes(_) => None,
        })
        .collect();
    Some(move |k: u32| values.iter().find(|(n, _)| *n == k).map_or(0, |(_, v)| *v))
}

/// The message of a CRIU image holding one entry: two u32 magics, a u32 size, the message.
fn stats_entry(img: &[u8]) -> Option<Vec<u8>> {
    let size = u32::from_le_bytes(img.get(8..12)?.try_into().ok()?) as usize;
    img.get(12..12 + size).map(<[u8]>::to_vec)
}

enum Field {
    Varint(u64),
    Bytes(Vec<u8>),
}

/// The varint and length-delimited fields of a message, in order (fixed-size ones skipped).
fn fields(msg: &[u8]) -> Option<Vec<(u32, Field)>> {
    let mut is = CodedInputStream::from_bytes(msg);
    let mut out = Vec::new();
    while !is.eof().ok()? {
        let tag = is.read_raw_varint32().ok()?;
        let num = tag >> 3;
        match tag & 7 {
            0 => out.push((num, Field::Varint(is.read_raw_varint64().ok()?))),
            2 => out.push((num, Field::Bytes(is.read_bytes().ok()?))),
            1 => {
                is.read_fixed64().ok()?;
            }
            5 => {
                is.read_fixed32().ok()?;
            }
            _ => return None,
        }
    }
    Some(out)
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
