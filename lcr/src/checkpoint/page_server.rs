//! The receiving side of a dump that sends its memory elsewhere, on one socket already
//! connected (a migration relays it from the source's CRIU), so no port is opened: a CRIU
//! page server writing the pages into an image directory, or, for a lazy dump, CRIU's
//! lazy-pages daemon handing them to the restored tasks as they fault.

use std::os::fd::OwnedFd;
use std::path::Path;

use criurpc::{LazyPages, Options, Session};

use super::settings::CriuSettings;
use crate::fsutil::WorkDir;
use crate::{Error, Result};

/// A page server that runs until its connection closes; [`PageServer::wait`] reaps it.
pub struct PageServer {
    session: Session,
    pid: i32,
    /// Its log, kept off the images' disk: a disk that fills must not take the reason with
    /// it.
    log_dir: WorkDir,
}

/// Starts a page server on `socket` that writes into `images_dir`, logging to
/// `page-server.log` in a temporary directory of its own.
pub fn serve_pages(
    settings: &CriuSettings,
    images_dir: &Path,
    socket: OwnedFd,
) -> Result<PageServer> {
    let log_dir = crate::fsutil::work_dir("page-server")?;
    let mut request = Options::new()
        .images_dir(images_dir)
        .work_dir(log_dir.path())?
        .page_server_fd(socket)
        .log_level(4)
        .log_file("page-server.log");
    let mut session = settings.criu.session(Some(&mut request))?;
    session.require_supported()?;
    let ps = session.page_server_child(&request)?;
    Ok(PageServer {
        session,
        pid: ps.pid,
        log_dir,
    })
}

impl PageServer {
    /// Waits until the page server has taken every page and exited; its failure, with the
    /// log's tail.
    pub fn wait(mut self) -> Result<()> {
        let status = self.session.wait_pid(self.pid);
        self.session.finish();
        let status = status?;
        if libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0 {
            return Ok(());
        }
        let log = self.log_dir.path().join("page-server.log");
        let excerpt = criurpc::log_excerpt(&log).unwrap_or_default();
        Err(Error::Host {
            what: "page server".into(),
            reason: format!("exited with status {status:#x}: {excerpt}"),
        })
    }
}

/// Starts CRIU's lazy-pages daemon on the images in `images_dir` (complete but for the
/// lazy pages), fetching those over `socket`; a restore with `settings.lazy_pages` and the
/// same work directory then connects to it. [`LazyPages::wait`] says when every page has
/// moved.
pub fn serve_lazy_pages(
    settings: &CriuSettings,
    images_dir: &Path,
    socket: OwnedFd,
) -> Result<LazyPages> {
    let work_dir = settings.work_dir(images_dir)?;
    let binary = settings.criu.binary()?;
    Ok(LazyPages::start(&binary, images_dir, &work_dir, socket)?)
}
