//! The receiving side (`lcr migrate-receive`, started by the source over ssh): its own
//! pre-flight, a page server for the memory, the other image files, the restore. It makes
//! the container complete before it reports it running; until then a failure or a closed
//! connection undoes everything it made. The images live in a temporary directory that goes
//! when it ends.

use std::fs::File;
use std::io::Write;
use std::os::fd::OwnedFd;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};

use lcr::checkpoint::{CriuSettings, ImageDir, LazyPages, RestoreOpts};
use lcr::container::Store;

use crate::link::{Incoming, Link};
use crate::rootfs_copy;
use crate::wire::Message;
use crate::{facts, Error, Result};

/// What the source asked for on the command line it ran here.
pub struct Request {
    pub id: String,
    pub bundle: PathBuf,
    /// The container's stdout and stderr (appended to).
    pub log: PathBuf,
    /// Where the temporary image directory is made (default: $TMPDIR).
    pub images_in: Option<PathBuf>,
    /// `--rootfs copy`: the bundle is made here from what the source sends (`bundle` does
    /// not exist yet, or is empty).
    pub rootfs_copy: bool,
    pub settings: CriuSettings,
}

/// The most a source may send as one image file (the memory goes to the page server).
const MAX_FILE: u64 = 1 << 30;

/// Serves one migration on this process's stdin and stdout.
pub fn receive(store: &Store, req: Request) -> Result<()> {
    let (input, output) = take_stdio(&req.log)?;
    let mut link = Link::start(input, output);
    let result = serve(store, &req, &mut link);
    if let Err(e) = &result {
        let _ = link.send(&Message::Refused {
            reason: e.to_string(),
        });
    }
    result
}

/// The protocol's ends (this process's stdin and stdout, moved to other fds), with stdin
/// then /dev/null and stdout and stderr the log: the restored container inherits them, and
/// must not write into the ssh connection.
fn take_stdio(log: &Path) -> Result<(File, File)> {
    let io = |what: &str| {
        let what = what.to_string();
        move |cause| Error::Io {
            context: what,
            cause,
        }
    };
    let dup = |fd| lcr::process::dup_stdio(fd).map(File::from);
    let (input, output) = (dup(0)?, dup(1)?);
    if let Some(d) = log.parent() {
        std::fs::create_dir_all(d).map_err(io(&format!("create {}", d.display())))?;
    }
    let null = File::open("/dev/null").map_err(io("open /dev/null"))?;
    let out = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .map_err(io(&format!("open {}", log.display())))?;
    let redirected = nix::unistd::dup2_stdin(&null)
        .and_then(|()| nix::unistd::dup2_stdout(&out))
        .and_then(|()| nix::unistd::dup2_stderr(&out));
    redirected.map_err(|e| io("redirect stdio")(e.into()))?;
    Ok((input, output))
}

fn serve(store: &Store, req: &Request, link: &mut Link) -> Result<()> {
    lcr::container::validate_id(&req.id)?;
    let _receiving = crate::resolve::ReceiverLock::take(store.root(), &req.id)?;
    preflight(store, req)?;
    let here = facts::this_host(&req.settings.criu)?;
    link.hello(here.clone())?;
    let source = link.expect_hello()?;
    if let Some(why) = facts::mismatch(&source, &here) {
        return Err(Error::Refused {
            host: "the destination".into(),
            reason: why,
        });
    }
    let images = match &req.images_in {
        Some(parent) => ImageDir::temporary_in(parent, "migrate-in")?,
        None => ImageDir::temporary("migrate-in")?,
    };
    let mut m = Made::default();
    loop {
        let item = link.recv().map_err(|e| m.explain(e))?;
        match item {
            Incoming::Message(Message::RootfsStart { config, size }) if req.rootfs_copy => {
                let parent = req.bundle.parent().unwrap_or(Path::new("/"));
                let remedy = "give --dest-bundle a place with room";
                check_room(existing_ancestor(parent), size, "the rootfs", remedy)?;
                m.bundle = Some(rootfs_copy::receive(link, &req.bundle, &config)?);
                check_binds(&req.bundle)?;
                link.send(&Message::RootfsReady)?;
            }
            Incoming::Message(Message::StartPages {
                memory,
                lazy,
                round,
                parent,
            }) => {
                let to = pages_dir(images.path(), round, parent)?;
                start_pages(req, link, &mut m, to, memory, lazy)?;
            }
            Incoming::Message(Message::PagesEnd) => pages_end(link, &mut m)?,
            Incoming::Message(Message::File { name, size }) => {
                receive_file(link, images.path(), &name, size)?;
            }
            Incoming::Message(Message::Restore) => {
                let pid = restore_here(store, req, images.path(), &mut m)?;
                link.send(&Message::Running { pid })?;
            }
            Incoming::Message(Message::Done) => return Ok(()),
            Incoming::Message(Message::Abort { reason }) => {
                return Err(Error::Refused {
                    host: "the source".into(),
                    reason,
                })
            }
            Incoming::Message(other) => {
                return Err(Error::Protocol(format!("unexpected {other:?}")))
            }
            Incoming::FileData(_) => {
                return Err(Error::Protocol("file data without a file".into()))
            }
        }
    }
}

/// The source's CRIU is done with its pages: ours has the end of its connection and exits.
/// After a lazy restore, that is every page here: the container is complete, whatever
/// happens next, and the source is told (`PagesArrived`).
fn pages_end(link: &mut Link, m: &mut Made) -> Result<()> {
    if let Some(watcher) = m.page_server.take() {
        watcher
            .join()
            .map_err(|_| Error::Protocol("the page-server watcher panicked".into()))??;
    }
    let Some(lazy) = m.lazy.take() else {
        return link.pages_sent();
    };
    lazy.wait().map_err(lcr::Error::from)?;
    if let Some(c) = m.incomplete.as_mut() {
        c.complete = true;
    }
    if let Some(b) = m.bundle.as_mut() {
        b.keep();
    }
    link.pages_sent()?;
    link.send(&Message::PagesArrived)
}

/// Restores the container from `images` (lazily, its daemon started first, when the pages
/// stay on the source); returns its pid. Complete unless lazy: then it is removed if its
/// pages cannot all arrive.
fn restore_here<'a>(
    store: &'a Store,
    req: &Request,
    images: &Path,
    m: &mut Made<'a>,
) -> Result<i32> {
    let mut opts = RestoreOpts::new(&req.bundle, images);
    opts.settings = req.settings.clone();
    if let Some(socket) = m.lazy_socket.take() {
        m.lazy = Some(lcr::checkpoint::serve_lazy_pages(
            &req.settings,
            images,
            socket,
        )?);
        opts.settings.lazy_pages = true;
    }
    let (c, _) = lcr::checkpoint::restore(store, &req.id, opts)?;
    if m.lazy.is_some() {
        m.incomplete = Some(Incomplete {
            store,
            id: req.id.clone(),
            complete: false,
        });
    } else if let Some(b) = m.bundle.as_mut() {
        // Complete and running: it stays, and so does its bundle.
        b.keep();
    }
    Ok(c.state.pid)
}

/// Where a dump's pages go: the images, or for pre-copy round N their `pre-N`; with a
/// `parent` round, a `parent` link to it there (CRIU finds the pages not sent again
/// through it, on the page server and in the restore).
fn pages_dir(images: &Path, round: Option<u32>, parent: Option<u32>) -> Result<PathBuf> {
    let pre = |n: u32| format!("pre-{n}");
    let dir = match round {
        Some(n) => {
            let d = images.join(pre(n));
            std::fs::create_dir(&d).map_err(|cause| Error::Io {
                context: format!("create {}", d.display()),
                cause,
            })?;
            d
        }
        None => images.to_path_buf(),
    };
    if let Some(p) = parent {
        if round.is_some_and(|n| p >= n) || !images.join(pre(p)).is_dir() {
            return Err(Error::Protocol(format!(
                "pages with round {p} as their parent, which did not come before"
            )));
        }
        let target = match round {
            Some(_) => format!("../{}", pre(p)),
            None => pre(p),
        };
        std::os::unix::fs::symlink(&target, dir.join("parent")).map_err(|cause| Error::Io {
            context: format!("link {}/parent", dir.display()),
            cause,
        })?;
    }
    Ok(dir)
}

/// A page server into `dir` (or, `lazy`, the connection kept for the lazy-pages daemon),
/// relayed; refused when `dir` has no room for the pages.
fn start_pages(
    req: &Request,
    link: &mut Link,
    m: &mut Made,
    dir: PathBuf,
    memory: u64,
    lazy: bool,
) -> Result<()> {
    // The images of a container hold its memory (unless it stays on the source).
    let need = if lazy { 0 } else { memory };
    let remedy = "give --dest-images a directory with room";
    check_room(&dir, need, "the images", remedy)?;
    let (mine, criu_end) = UnixStream::pair().map_err(|cause| Error::Io {
        context: "page-server socket pair".into(),
        cause,
    })?;
    if lazy {
        m.lazy_socket = Some(criu_end.into());
    } else {
        // Watched from the moment it starts: a page server that fails (its disk full) stays
        // a zombie of CRIU's service process, which holds its socket open, so the pages
        // still coming would otherwise wait on it for ever.
        let ps = lcr::checkpoint::serve_pages(&req.settings, &dir, criu_end.into())?;
        let fail = link.failer();
        m.page_server = Some(std::thread::spawn(move || {
            let r = ps.wait().map_err(Error::from);
            if let Err(e) = &r {
                fail(Error::Refused {
                    host: "the destination".into(),
                    reason: e.to_string(),
                });
            }
            r
        }));
    }
    link.relay_pages(mine)?;
    link.send(&Message::PagesReady)
}

/// `dir` or its nearest ancestor that exists (where a directory to be made will be).
fn existing_ancestor(dir: &Path) -> &Path {
    dir.ancestors()
        .find(|a| a.exists())
        .unwrap_or(Path::new("/"))
}

/// What this receiver made as the migration went: how the memory arrives, the daemons that
/// take it, the bundle; dropped (undone) unless the container is complete.
#[derive(Default)]
struct Made<'a> {
    /// Stop-copy (and each pre-copy round): the thread that waits for the page server
    /// writing the pages (see [`start_pages`]).
    page_server: Option<std::thread::JoinHandle<Result<()>>>,
    /// Post-copy: this side's end of the connection, until the lazy-pages daemon takes it.
    lazy_socket: Option<OwnedFd>,
    lazy: Option<LazyPages>,
    /// Post-copy: the restored container, until its last page arrived.
    incomplete: Option<Incomplete<'a>>,
    /// `--rootfs copy`: the bundle made here. Last, so dropped last: a container restored
    /// from it goes first.
    bundle: Option<rootfs_copy::MadeBundle>,
}

impl Made<'_> {
    /// A broken relay is best explained by the page server's own failure (its disk full),
    /// which its watcher learns a moment later.
    fn explain(&mut self, e: Error) -> Error {
        let Some(watcher) = self.page_server.take() else {
            return e;
        };
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(3);
        while !watcher.is_finished() && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        if !watcher.is_finished() {
            self.page_server = Some(watcher);
            return e;
        }
        match watcher.join() {
            Ok(Err(why)) => why,
            _ => e,
        }
    }
}

/// A container restored lazily whose pages have not all arrived: if the transfer ends
/// early it cannot go on (its missing memory stays on the source), so it is removed.
struct Incomplete<'a> {
    store: &'a Store,
    id: String,
    complete: bool,
}

impl Drop for Incomplete<'_> {
    fn drop(&mut self) {
        if self.complete {
            return;
        }
        let removed = lcr::container::Container::load(self.store, &self.id)
            .and_then(|c| lcr::container::delete(c, true));
        if let Err(e) = removed {
            tracing::warn!(error = %e, id = %self.id, "could not remove a container whose pages did not all arrive");
        }
    }
}

/// Refused before the source freezes the container when `dir` has less room than `what`
/// needs: `bytes` and a tenth more, and 16 MiB.
fn check_room(dir: &Path, bytes: u64, what: &str, remedy: &str) -> Result<()> {
    let free = lcr::fsutil::free_bytes(dir).map_err(|cause| Error::Io {
        context: format!("statvfs {}", dir.display()),
        cause,
    })?;
    let need = bytes + bytes / 10 + (16 << 20);
    if free < need {
        return Err(Error::Refused {
            host: "the destination".into(),
            reason: format!(
                "{} has {} MiB free and {what} needs about {} MiB: {remedy}",
                dir.display(),
                free >> 20,
                need >> 20
            ),
        });
    }
    Ok(())
}

/// What the source cannot be asked for later: an id that is free, a bundle that loads (or,
/// for a rootfs copy, room to make one), the source of each of its bind mounts there.
fn preflight(store: &Store, req: &Request) -> Result<()> {
    if store.dir(&req.id).exists() {
        return Err(Error::Refused {
            host: "the destination".into(),
            reason: format!(
                "container {:?} already exists there: choose another --dest-id",
                req.id
            ),
        });
    }
    if req.rootfs_copy {
        return rootfs_copy::check_empty(&req.bundle);
    }
    check_binds(&req.bundle)
}

/// The bundle at `dir` loads, and the source of each of its bind mounts is there.
fn check_binds(dir: &Path) -> Result<()> {
    let bundle = lcr::spec::Bundle::load(dir)?;
    for m in bundle.spec.mounts().iter().flatten() {
        if !lcr::rootfs::is_bind(m) {
            continue;
        }
        if let Some(src) = lcr::rootfs::bind_source(&bundle.dir, m) {
            if !src.exists() {
                return Err(Error::Refused {
                    host: "the destination".into(),
                    reason: format!(
                        "{}: the bind mount at {} needs {}, which does not exist there",
                        bundle.dir.join("config.json").display(),
                        m.destination().display(),
                        src.display()
                    ),
                });
            }
        }
    }
    Ok(())
}

/// One image file: a plain name that is not there yet, at most [`MAX_FILE`] bytes, written
/// as its data frames come.
fn receive_file(link: &Link, dir: &Path, name: &str, size: u64) -> Result<()> {
    let plain = !name.is_empty()
        && !name.starts_with('.')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'));
    if !plain || size > MAX_FILE {
        return Err(Error::Protocol(format!(
            "image file {name:?} ({size} bytes) refused: a plain file name of at most {MAX_FILE} bytes"
        )));
    }
    let path = dir.join(name);
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&path)
        .map_err(|cause| Error::Io {
            context: format!("create {}", path.display()),
            cause,
        })?;
    let mut got = 0u64;
    while got < size {
        let Incoming::FileData(bytes) = link.recv()? else {
            return Err(Error::Protocol(format!(
                "{name}: its data ended after {got} of {size} bytes"
            )));
        };
        got += bytes.len() as u64;
        if got > size {
            return Err(Error::Protocol(format!(
                "{name}: more data than its {size} bytes"
            )));
        }
        f.write_all(&bytes).map_err(|cause| Error::Io {
            context: format!("write {}", path.display()),
            cause,
        })?;
    }
    Ok(())
}
