//! Compression of archives: zstd (multi-threaded) or none when writing; zstd or plain tar,
//! told apart by their first bytes, when reading.

use std::io::{BufRead, Read, Write};
use std::str::FromStr;

/// zstd's own default: fast, and the size reference the archive format is held to.
pub const DEFAULT_ZSTD_LEVEL: i32 = 3;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    None,
    Zstd(i32),
}

impl Default for Compression {
    fn default() -> Self {
        Compression::Zstd(DEFAULT_ZSTD_LEVEL)
    }
}

impl FromStr for Compression {
    type Err = String;

    /// `none`, `zstd` or `zstd:LEVEL` (1–19).
    fn from_str(s: &str) -> Result<Self, String> {
        match s.split_once(':') {
            None if s == "none" => Ok(Compression::None),
            None if s == "zstd" => Ok(Compression::default()),
            Some(("zstd", level)) => match level.parse::<i32>() {
                Ok(l) if (1..=19).contains(&l) => Ok(Compression::Zstd(l)),
                _ => Err(format!("zstd level {level:?}: expected 1 to 19")),
            },
            _ => Err(format!("{s:?}: expected zstd, zstd:LEVEL or none")),
        }
    }
}

pub enum Compressor<W: Write> {
    Plain(W),
    Zstd(zstd::stream::write::Encoder<'static, W>),
}

impl<W: Write> Compressor<W> {
    pub fn new(out: W, c: Compression) -> std::io::Result<Self> {
        Ok(match c {
            Compression::None => Compressor::Plain(out),
            Compression::Zstd(level) => {
                let mut e = zstd::stream::write::Encoder::new(out, level)?;
                let workers = std::thread::available_parallelism().map_or(2, |n| n.get());
                e.multithread(workers as u32)?;
                Compressor::Zstd(e)
            }
        })
    }

    pub fn finish(self) -> std::io::Result<W> {
        match self {
            Compressor::Plain(mut w) => w.flush().map(|_| w),
            Compressor::Zstd(e) => e.finish(),
        }
    }
}

impl<W: Write> Write for Compressor<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match self {
            Compressor::Plain(w) => w.write(buf),
            Compressor::Zstd(e) => e.write(buf),
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        match self {
            Compressor::Plain(w) => w.flush(),
            Compressor::Zstd(e) => e.flush(),
        }
    }
}

const ZSTD_MAGIC: [u8; 4] = [0x28, 0xb5, 0x2f, 0xfd];
const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];

/// A decompressing reader over `input`, chosen by its first bytes. Decompression runs on a
/// thread of its own, ahead of the reader, so that checking and writing the entries (on the
/// caller's thread) overlaps with it.
pub fn decompressor<R: BufRead + Send + 'static>(input: R) -> Result<Box<dyn Read>, String> {
    Ok(Box::new(Prefetch::spawn(select(input)?)))
}

fn select<R: BufRead + Send + 'static>(mut input: R) -> Result<Box<dyn Read + Send>, String> {
    let head = input.fill_buf().map_err(|e| format!("read: {e}"))?.to_vec();
    if head.is_empty() {
        return Err("empty input: not an archive".into());
    }
    if head.starts_with(&ZSTD_MAGIC) {
        let d =
            zstd::stream::read::Decoder::with_buffer(input).map_err(|e| format!("zstd: {e}"))?;
        return Ok(Box::new(d));
    }
    if head.starts_with(&GZIP_MAGIC) {
        return Err("gzip-compressed: lcr reads zstd-compressed or plain tar archives (recompress with `gzip -dc | zstd`)".into());
    }
    Ok(Box::new(input))
}

/// Reads `inner` on another thread, handing over blocks through a short queue.
struct Prefetch {
    blocks: std::sync::mpsc::Receiver<std::io::Result<Vec<u8>>>,
    current: Vec<u8>,
    at: usize,
    done: bool,
}

const BLOCK: usize = 1 << 20;

impl Prefetch {
    fn spawn(mut inner: Box<dyn Read + Send>) -> Self {
        let (tx, rx) = std::sync::mpsc::sync_channel(4);
        // The thread ends at the end of the input, on an error, or when the reader is dropped
        // (its next send fails).
        std::thread::spawn(move || loop {
            let mut buf = vec![0u8; BLOCK];
            let mut filled = 0;
            let mut error = None;
            while filled < BLOCK {
                match inner.read(&mut buf[filled..]) {
                    Ok(0) => break,
                    Ok(n) => filled += n,
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                    Err(e) => {
                        error = Some(e);
                        break;
                    }
                }
            }
            buf.truncate(filled);
            if filled > 0 && tx.send(Ok(buf)).is_err() {
                break;
            }
            if let Some(e) = error {
                let _ = tx.send(Err(e));
                break;
            }
            if filled < BLOCK {
                // The end: an empty block says so.
                let _ = tx.send(Ok(Vec::new()));
                break;
            }
        });
        Self {
            blocks: rx,
            current: Vec::new(),
            at: 0,
            done: false,
        }
    }
}

impl Read for Prefetch {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        while self.at == self.current.len() {
            if self.done {
                return Ok(0);
            }
            match self.blocks.recv() {
                Ok(Ok(b)) if b.is_empty() => self.done = true,
                Ok(Ok(b)) => {
                    self.current = b;
                    self.at = 0;
                }
                Ok(Err(e)) => {
                    self.done = true;
                    return Err(e);
                }
                Err(_) => {
                    self.done = true;
                    return Err(std::io::Error::other(
                        "the decompression thread ended early",
                    ));
                }
            }
        }
        let n = out.len().min(self.current.len() - self.at);
        out[..n].copy_from_slice(&self.current[self.at..self.at + n]);
        self.at += n;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_compression_flags() {
        assert_eq!("none".parse(), Ok(Compression::None));
        assert_eq!("zstd".parse(), Ok(Compression::Zstd(DEFAULT_ZSTD_LEVEL)));
        assert_eq!("zstd:7".parse(), Ok(Compression::Zstd(7)));
        assert!("zstd:0".parse::<Compression>().is_err());
        assert!("gzip".parse::<Compression>().unwrap_err().contains("gzip"));
    }

    #[test]
    fn reads_back_what_it_writes() {
        for c in [Compression::None, Compression::Zstd(1)] {
            let mut w = Compressor::new(Vec::new(), c).unwrap();
            w.write_all(b"hello archive").unwrap();
            let bytes = w.finish().unwrap();
            let mut r = decompressor(std::io::Cursor::new(bytes)).unwrap();
            let mut s = String::new();
            r.read_to_string(&mut s).unwrap();
            assert_eq!(s, "hello archive");
        }
    }
}
