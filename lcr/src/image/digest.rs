//! SHA-256 of entries: over mapped files when packing, over the stream when reading.

use std::io::Read;

use sha2::{Digest, Sha256};

/// Hashes slices on up to `threads` threads (largest first), keeping their order; calls
/// `done(i, range)` after each window of slice `i` (to let its pages go).
pub fn hex_all(
    slices: &[&[u8]],
    threads: usize,
    done: &(dyn Fn(usize, std::ops::Range<usize>) + Sync),
) -> Vec<String> {
    let mut order: Vec<usize> = (0..slices.len()).collect();
    order.sort_by_key(|&i| std::cmp::Reverse(slices[i].len()));
    let next = std::sync::atomic::AtomicUsize::new(0);
    let results = std::sync::Mutex::new(vec![String::new(); slices.len()]);
    std::thread::scope(|s| {
        for _ in 0..threads.max(1) {
            s.spawn(|| loop {
                let k = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let Some(&i) = order.get(k) else { break };
                let mut h = Sha256::new();
                for start in (0..slices[i].len()).step_by(super::mapped::WINDOW) {
                    let end = (start + super::mapped::WINDOW).min(slices[i].len());
                    h.update(&slices[i][start..end]);
                    done(i, start..end);
                }
                let h = format!("{:x}", h.finalize());
                results.lock().unwrap_or_else(|p| p.into_inner())[i] = h;
            });
        }
    });
    results.into_inner().unwrap_or_else(|p| p.into_inner())
}

/// SHA-256 computed inline, or for large data on a thread of its own so that it overlaps with
/// the reading and writing around it.
enum Hasher {
    Inline(Sha256),
    Threaded {
        blocks: Option<std::sync::mpsc::SyncSender<Vec<u8>>>,
        result: std::thread::JoinHandle<String>,
    },
}

/// Data at least this large is hashed on a thread.
const THREADED_FROM: u64 = 8 << 20;

impl Hasher {
    fn for_size(size: u64) -> Self {
        if size < THREADED_FROM {
            return Hasher::Inline(Sha256::new());
        }
        let (tx, rx) = std::sync::mpsc::sync_channel::<Vec<u8>>(8);
        let result = std::thread::spawn(move || {
            let mut h = Sha256::new();
            for block in rx {
                h.update(&block);
            }
            format!("{:x}", h.finalize())
        });
        Hasher::Threaded {
            blocks: Some(tx),
            result,
        }
    }

    fn update(&mut self, data: &[u8]) {
        match self {
            Hasher::Inline(h) => h.update(data),
            Hasher::Threaded { blocks, .. } => {
                if let Some(tx) = blocks {
                    // A dead hashing thread shows as a wrong digest in finish().
                    let _ = tx.send(data.to_vec());
                }
            }
        }
    }

    fn finish(self) -> String {
        match self {
            Hasher::Inline(h) => format!("{:x}", h.finalize()),
            Hasher::Threaded { blocks, result } => {
                drop(blocks);
                result.join().unwrap_or_default()
            }
        }
    }
}

/// A reader that hashes what passes through it.
pub struct HashingReader<R> {
    inner: R,
    hasher: Hasher,
    pub count: u64,
}

impl<R: Read> HashingReader<R> {
    /// `size`: how much is expected (large data is hashed on a thread).
    pub fn new(inner: R, size: u64) -> Self {
        Self {
            inner,
            hasher: Hasher::for_size(size),
            count: 0,
        }
    }

    pub fn finish(self) -> String {
        self.hasher.finish()
    }
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        self.count += n as u64;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_digests_in_parallel_and_streamed() {
        let empty = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
        let abc = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
        assert_eq!(
            hex_all(&[b"abc", b"", b"abc"], 2, &|_, _| {}),
            vec![abc, empty, abc]
        );
        for expected_size in [3, 1 << 30] {
            let mut r = HashingReader::new(&b"abc"[..], expected_size);
            std::io::copy(&mut r, &mut std::io::sink()).unwrap();
            assert_eq!(r.count, 3);
            assert_eq!(r.finish(), abc);
        }
    }
}
