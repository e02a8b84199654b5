//! CRIU's statistics images (`stats-dump`, `stats-restore`): one `stats_entry` each.

use std::path::Path;

use serde::{Deserialize, Serialize};

use criu_images::stats::Stats_entry;

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
    let d = stats_in(&dir.join("stats-dump"))?.dump.into_option()?;
    Some(DumpStats {
        freezing_time_us: d.freezing_time().into(),
        frozen_time_us: d.frozen_time().into(),
        memdump_time_us: d.memdump_time().into(),
        memwrite_time_us: d.memwrite_time().into(),
        pages_scanned: d.pages_scanned(),
        pages_skipped_parent: d.pages_skipped_parent(),
        pages_written: d.pages_written(),
        pages_lazy: d.pages_lazy(),
    })
}

pub fn read_restore(dir: &Path) -> Option<RestoreStats> {
    let r = stats_in(&dir.join("stats-restore"))?
        .restore
        .into_option()?;
    Some(RestoreStats {
        pages_compared: r.pages_compared(),
        pages_skipped_cow: r.pages_skipped_cow(),
        forking_time_us: r.forking_time().into(),
        restore_time_us: r.restore_time().into(),
        pages_restored: r.pages_restored(),
    })
}

fn stats_in(file: &Path) -> Option<Stats_entry> {
    criu_images::decode_one(&std::fs::read(file).ok()?).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_a_dump_stats_image() {
        let mut dump = criu_images::stats::Dump_stats_entry::new();
        dump.set_freezing_time(1500);
        dump.set_frozen_time(9000);
        dump.set_pages_scanned(300);
        dump.set_pages_written(290);
        dump.set_pages_lazy(0);
        let mut entry = Stats_entry::new();
        entry.dump = Some(dump).into();
        let img = criu_images::encode(
            &[criu_images::framing::IMG_SERVICE_MAGIC, 0x5733_0906],
            &[entry],
        );
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
