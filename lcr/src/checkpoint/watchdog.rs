//! A bound on a CRIU request: images crafted to make CRIU wait for ever (a process tree whose
//! parents loop) or loop writing its log (a pages image cut short) must end in an error, not
//! hang lcr or fill the disk. A thread watches the clock and the log's size and kills CRIU
//! when either passes its limit; the request then fails and the caller's guards clean up.

use std::path::PathBuf;
use std::sync::mpsc::{channel, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

/// The most CRIU's log may grow to during one request.
pub const MAX_LOG: u64 = 256 << 20;

/// Why the watchdog killed CRIU.
#[derive(Debug, Clone)]
pub enum Tripped {
    Timeout(Duration),
    /// SIGINT, SIGTERM or SIGHUP reached lcr (see `crate::cancel`).
    Interrupted(String),
    LogTooLarge {
        path: PathBuf,
        limit: u64,
    },
}

impl std::fmt::Display for Tripped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Interrupted(why) => write!(f, "{why}: CRIU stopped"),
            Self::Timeout(d) => write!(
                f,
                "CRIU did not finish within {} s (--timeout): stopped",
                d.as_secs()
            ),
            Self::LogTooLarge { path, limit } => write!(
                f,
                "CRIU's log {} grew past {} MiB: the images keep it looping; stopped",
                path.display(),
                limit >> 20
            ),
        }
    }
}

/// Watches one CRIU request until stopped; dropping it stops it. On a trip it kills CRIU and
/// every process in `procs` (the cgroup CRIU works in): CRIU's helpers and the tree it was
/// restoring hold its socket too, so killing CRIU alone would leave lcr waiting.
pub struct Watchdog {
    /// Dropped to stop the thread at once (it waits on the other end between checks).
    stop: Option<Sender<()>>,
    tripped: Arc<Mutex<Option<Tripped>>>,
    thread: Option<JoinHandle<()>>,
}

impl Watchdog {
    /// `timeout` of zero means none.
    pub fn start(
        criu: u32,
        procs: PathBuf,
        log: PathBuf,
        timeout: Duration,
        max_log: u64,
        cancel: crate::cancel::Cancel,
    ) -> Self {
        let (stop, stopped) = channel::<()>();
        let tripped = Arc::new(Mutex::new(None));
        let t = tripped.clone();
        let thread = std::thread::spawn(move || {
            let start = Instant::now();
            while let Err(RecvTimeoutError::Timeout) =
                stopped.recv_timeout(Duration::from_millis(50))
            {
                let why = if let Err(e) = cancel.check() {
                    Some(Tripped::Interrupted(e.to_string()))
                } else if !timeout.is_zero() && start.elapsed() > timeout {
                    Some(Tripped::Timeout(timeout))
                } else if std::fs::metadata(&log).is_ok_and(|m| m.len() > max_log) {
                    Some(Tripped::LogTooLarge {
                        path: log.clone(),
                        limit: max_log,
                    })
                } else {
                    None
                };
                if let Some(why) = why {
                    // CRIU is a child of this process, not yet reaped: the pid is its own.
                    let _ = kill(Pid::from_raw(criu as i32), Signal::SIGKILL);
                    let listed = std::fs::read_to_string(&procs).unwrap_or_default();
                    for pid in listed.split_whitespace().filter_map(|p| p.parse().ok()) {
                        let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
                    }
                    if let Ok(mut slot) = t.lock() {
                        *slot = Some(why);
                    }
                    return;
                }
            }
        });
        Self {
            stop: Some(stop),
            tripped,
            thread: Some(thread),
        }
    }

    /// Stops watching; says why CRIU was killed, if it was.
    pub fn finish(mut self) -> Option<Tripped> {
        self.halt();
        self.tripped.lock().ok().and_then(|t| t.clone())
    }

    fn halt(&mut self) {
        self.stop.take();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Watchdog {
    fn drop(&mut self) {
        self.halt();
    }
}

/// What is kept of a log that grew past [`MAX_LOG`]: its last bytes, where CRIU's loop is.
pub const KEPT_LOG: u64 = 8 << 20;

/// Cuts the log at `path` down to its last `keep` bytes, in place.
pub fn trim_log(path: &std::path::Path, keep: u64) -> std::io::Result<()> {
    use std::io::{Read, Seek, SeekFrom, Write};
    let mut f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)?;
    let len = f.metadata()?.len();
    if len <= keep {
        return Ok(());
    }
    let mut tail = Vec::with_capacity(keep as usize);
    f.seek(SeekFrom::Start(len - keep))?;
    Read::by_ref(&mut f).take(keep).read_to_end(&mut tail)?;
    f.seek(SeekFrom::Start(0))?;
    writeln!(
        f,
        "[lcr: the first {} bytes of this log were cut]",
        len - keep
    )?;
    f.write_all(&tail)?;
    let end = f.stream_position()?;
    f.set_len(end)
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_long_log_keeps_its_tail() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("restore.log");
        let text: String = (0..1000).map(|i| format!("line {i}\n")).collect();
        std::fs::write(&p, &text).unwrap();
        super::trim_log(&p, 100).unwrap();
        let kept = std::fs::read_to_string(&p).unwrap();
        assert!(kept.starts_with("[lcr: the first"), "{kept}");
        assert!(kept.ends_with("line 999\n"));
        assert!(kept.len() < 200);
    }
}
