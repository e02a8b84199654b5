//! CRIU's lazy-pages daemon (`criu lazy-pages`), the restoring side of a post-copy
//! migration: it hands the restored tasks the pages they fault on and copies the rest in
//! the background, fetching both from the dumping host's page server over one pre-connected
//! socket. CRIU's RPC has no request for it, so it runs as a command; it must be ready
//! before `restore --lazy-pages` starts, which connects to it through `lazy-pages.socket`
//! in the work directory both share.

use std::io::Read;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::fdpass::spawn_with_fds;
use crate::session::wait_or_kill;
use crate::{log_excerpt, Error, Result};

/// The daemon's log, in the work directory.
pub const LAZY_PAGES_LOG: &str = "lazy-pages.log";

/// A running `criu lazy-pages`; dropping it kills it (a restore that failed leaves nothing to
/// serve).
pub struct LazyPages {
    child: Option<Child>,
    log: PathBuf,
}

impl LazyPages {
    /// Starts the daemon on the images in `images_dir` (pstree and pagemaps must be there),
    /// its pages coming from the page server at the other end of `page_server`; returns once
    /// it is ready for the restore.
    pub fn start(
        binary: &Path,
        images_dir: &Path,
        work_dir: &Path,
        page_server: OwnedFd,
    ) -> Result<Self> {
        let (ready, ready_w) = nix::unistd::pipe().map_err(|e| Error::Io(e.into()))?;
        let mut ready = std::fs::File::from(ready);
        let mut cmd = Command::new(binary);
        // fd 3: the page-server socket; fd 4: where the daemon says it is ready.
        cmd.arg("lazy-pages")
            .arg("--page-server")
            .args(["--ps-socket", "3", "--status-fd", "4"])
            .arg("--images-dir")
            .arg(images_dir)
            .arg("--work-dir")
            .arg(work_dir)
            .args(["--log-file", LAZY_PAGES_LOG, "-v4"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let passed = [page_server, ready_w];
        let child = spawn_with_fds(&mut cmd, &passed, 3).map_err(|cause| Error::Spawn {
            binary: binary.to_path_buf(),
            cause,
        })?;
        // Our copies close now: a daemon that dies before it is ready reads as EOF here.
        drop(passed);
        let mut me = Self {
            child: Some(child),
            log: work_dir.join(LAZY_PAGES_LOG),
        };
        let mut byte = [0u8; 1];
        match ready.read(&mut byte) {
            Ok(1) => Ok(me),
            _ => Err(me.failure("exited before it was ready")),
        }
    }

    /// Waits until every page has been handed over and the daemon exited; its failure, with
    /// the log's error lines.
    pub fn wait(mut self) -> Result<()> {
        let Some(mut child) = self.child.take() else {
            return Ok(());
        };
        let status = child.wait().map_err(Error::Io)?;
        if status.success() {
            return Ok(());
        }
        Err(self.failure(&format!("ended with {status}")))
    }

    fn failure(&mut self, what: &str) -> Error {
        self.stop(Duration::from_millis(500));
        Error::LazyPages(format!(
            "{what}: {}\n  full log: {}",
            log_excerpt(&self.log).unwrap_or_default().trim_end(),
            self.log.display()
        ))
    }

    /// Gives the daemon `grace` to end by itself, then kills it.
    fn stop(&mut self, grace: Duration) {
        if let Some(mut child) = self.child.take() {
            wait_or_kill(&mut child, grace);
        }
    }
}

impl Drop for LazyPages {
    fn drop(&mut self) {
        self.stop(Duration::ZERO);
    }
}
