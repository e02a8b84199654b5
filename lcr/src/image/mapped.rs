//! Image files mapped read-only for packing: read once from the page cache by both the hash
//! pass and the archive stream. Pages are let go behind each pass, a window at a time, so the
//! process stays small however large the file (they remain in the page cache).

use std::fs::File;
use std::ops::Range;
use std::path::Path;

use super::error::{ImageError, Result};

/// Pages are released in windows of this size.
pub const WINDOW: usize = 8 << 20;

pub struct Mapped(Option<memmap2::Mmap>);

impl Mapped {
    pub fn open(path: &Path, size: u64) -> Result<Self> {
        if size == 0 {
            // An empty file cannot be mapped.
            return Ok(Self(None));
        }
        let f = File::open(path).map_err(ImageError::io(path, "open"))?;
        // SAFETY: the image directory belongs to this checkpoint and nothing writes to it while
        // it is packed; a file truncated under us would fault, not return wrong data.
        let m = unsafe { memmap2::MmapOptions::new().len(size as usize).map(&f) }
            .map_err(ImageError::io(path, "map"))?;
        let _ = m.advise(memmap2::Advice::Sequential);
        Ok(Self(Some(m)))
    }

    pub fn bytes(&self) -> &[u8] {
        self.0.as_deref().unwrap_or(&[])
    }

    /// Drops this process's pages of `range` (page-aligned start; the end may be the file's).
    pub fn release(&self, range: Range<usize>) {
        if let Some(m) = &self.0 {
            let end = range.end.min(m.len());
            if range.start < end {
                // SAFETY: a read-only, shared file mapping: MADV_DONTNEED only drops the page
                // table entries; a later access faults the same file contents back in.
                let _ = unsafe {
                    m.unchecked_advise_range(
                        memmap2::UncheckedAdvice::DontNeed,
                        range.start,
                        end - range.start,
                    )
                };
            }
        }
    }
}

/// Reads `data`, calling `release` for each whole window it has moved past (and the last).
pub struct WindowReader<'a> {
    pub data: &'a [u8],
    pub at: usize,
    pub release: &'a dyn Fn(Range<usize>),
}

impl std::io::Read for WindowReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = buf.len().min(self.data.len() - self.at);
        buf[..n].copy_from_slice(&self.data[self.at..self.at + n]);
        let before = self.at / WINDOW;
        self.at += n;
        let after = self.at / WINDOW;
        if after > before || (self.at == self.data.len() && n > 0) {
            let start = before * WINDOW;
            let end = if self.at == self.data.len() {
                self.at
            } else {
                after * WINDOW
            };
            (self.release)(start..end);
        }
        Ok(n)
    }
}
