//! Progress of long archive work on a terminal: bytes, throughput and ETA on stderr; nothing
//! when stderr is not a terminal or when asked to be quiet.

use std::io::{IsTerminal, Write};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

pub struct Progress(ProgressBar, crate::cancel::Cancel);

impl Progress {
    /// `total` in bytes when known.
    pub fn new(label: &str, total: Option<u64>, quiet: bool) -> Self {
        let bar = match total {
            Some(t) => ProgressBar::new(t),
            None => ProgressBar::no_length(),
        };
        if quiet || !std::io::stderr().is_terminal() {
            bar.set_draw_target(ProgressDrawTarget::hidden());
        }
        bar.set_prefix(label.to_string());
        let p = Self(bar, crate::cancel::Cancel::new());
        p.style(total.is_some());
        p
    }

    /// Work that goes through this progress stops once `token` is cancelled.
    pub fn with_cancel(mut self, token: crate::cancel::Cancel) -> Self {
        self.1 = token;
        self
    }

    /// An error once the work must stop.
    pub fn check(&self) -> std::io::Result<()> {
        self.1.check()
    }

    fn style(&self, with_total: bool) {
        let template = if with_total {
            "{prefix} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} ETA {eta}"
        } else {
            "{prefix} {bytes} {bytes_per_sec} {elapsed}"
        };
        if let Ok(style) = ProgressStyle::with_template(template) {
            self.0.set_style(style.progress_chars("=> "));
        }
    }

    /// The total, once known (an import learns it from the manifest).
    pub fn set_total(&self, total: u64) {
        self.0.set_length(total);
        self.style(true);
    }

    pub fn add(&self, n: u64) {
        self.0.inc(n);
    }

    pub fn finish(&self) {
        self.0.finish_and_clear();
    }
}

/// A writer that counts what passes through it into a progress display.
pub struct Counting<'a, W> {
    pub inner: W,
    pub progress: &'a Progress,
}

impl<W: Write> Write for Counting<'_, W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.progress.check()?;
        let n = self.inner.write(buf)?;
        self.progress.add(n as u64);
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}
