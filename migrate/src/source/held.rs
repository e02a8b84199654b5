//! The dump a migration holds. CRIU dumps on a thread of its own and, at its `post-dump` (the
//! images complete, the container frozen, its network still locked), waits for the
//! migration's verdict.
//!
//! Stop-copy reaches it meanwhile (the images shipped, the restore there):
//! - yes, the container runs there: CRIU ends the tree here with its network still locked
//!   and its TCP sockets in repair mode, so no peer hears it go and no packet meant for the
//!   copy there is answered here;
//! - no: CRIU unlocks the network and lets the tree go; lcr thaws it, unless it was handed
//!   over (then it stays frozen, undecided: see [`HandingOver`]).
//!
//! A dump that left the tree alive until the outcome would have CRIU unlock the network as
//! the dump ends: the frozen copy's kernel would then acknowledge data the copy there never
//! gets, and reset the connection as the copy is removed. A lazy dump must do so all the
//! same (`Hold::AfterDump`): its verdict is yes once the images went, for the restore there
//! needs pages that CRIU serves only after `post-dump`; the outcome then decides whether
//! the frozen tree is removed or thawed.

use std::path::PathBuf;
use std::sync::mpsc::{channel, Receiver, Sender};
use std::thread::JoinHandle;
use std::time::Instant;

use lcr::checkpoint::{Dumped, ImageDir};
use lcr::container::Container;

use super::{dump_failed, held_dump, HandingOver, Request};
use crate::link::Link;
use crate::{Error, Result};

/// What the dumping thread reports.
enum Event {
    /// The images are complete in this directory; CRIU waits for the verdict.
    Images(PathBuf),
    /// The dump ended: the tree ended here (or served its last page, then ended), or it
    /// failed.
    Dumped(Box<lcr::Result<Dumped>>),
}

type Verdict = std::result::Result<(), String>;

pub(super) struct HeldDump {
    events: Receiver<Event>,
    verdict: Sender<Verdict>,
    thread: Option<JoinHandle<()>>,
    pub handing: HandingOver,
    /// When CRIU was started (lcr freezes the container once CRIU is ready to collect it).
    pub began: Instant,
}

impl HeldDump {
    /// Starts the dump: its memory goes into the receiver's page server (`lazy`: is served
    /// to its lazy-pages daemon; `parent_round`: the pre-copy round it builds on).
    pub(super) fn start(
        container: Container,
        req: &Request,
        link: &mut Link,
        images: ImageDir,
        (lazy, parent_round): (bool, Option<u32>),
    ) -> Result<Self> {
        let (mut opts, handing) = held_dump(req, link, &container, images, lazy, parent_round)?;
        let (tx, events) = channel();
        let (verdict, verdict_in) = channel::<Verdict>();
        let images_ready = tx.clone();
        opts.on_images = Some(Box::new(move |dir| {
            images_ready
                .send(Event::Images(dir.to_path_buf()))
                .map_err(|_| "the migration ended before the images were complete".to_string())?;
            verdict_in
                .recv()
                .unwrap_or_else(|_| Err("the migration ended without a verdict".into()))
        }));
        let began = Instant::now();
        let thread = std::thread::spawn(move || {
            let dumped = lcr::checkpoint::begin(container, opts);
            let _ = tx.send(Event::Dumped(Box::new(dumped)));
        });
        Ok(Self {
            events,
            verdict,
            thread: Some(thread),
            handing,
            began,
        })
    }

    /// The image directory once CRIU has completed the images (the container frozen). A
    /// dump that failed before let the container run on.
    pub(super) fn images(&self, req: &Request, link: &Link) -> Result<PathBuf> {
        match self.events.recv() {
            Ok(Event::Images(dir)) => Ok(dir),
            Ok(Event::Dumped(r)) => Err(match *r {
                Err(e) => dump_failed(req, link, e),
                Ok(_) => Error::Protocol("the dump ended before its images were complete".into()),
            }),
            Err(_) => Err(vanished()),
        }
    }

    /// Reaches the verdict by `hand_over` and gives it to CRIU. Its error ends the dump with
    /// the tree let go (and any relayed page connection cut: a lazy dump would wait on it),
    /// and is returned once the dump has ended.
    pub(super) fn settle<T>(
        &self,
        link: &mut Link,
        hand_over: impl FnOnce(&mut Link) -> Result<T>,
    ) -> Result<T> {
        match hand_over(link) {
            Ok(v) => {
                self.verdict.send(Ok(())).map_err(|_| vanished())?;
                Ok(v)
            }
            Err(e) => {
                let _ = self.verdict.send(Err(e.to_string()));
                link.cut_pages();
                if let Err(end) = self.wait_dumped() {
                    tracing::debug!(error = %end, "the dump ended on the verdict");
                }
                Err(e)
            }
        }
    }

    /// The end of the dump (after a yes: the tree ended here).
    pub(super) fn ended(mut self) -> Result<Dumped> {
        let dumped = self.wait_dumped();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        dumped
    }

    fn wait_dumped(&self) -> Result<Dumped> {
        loop {
            match self.events.recv() {
                Ok(Event::Dumped(r)) => return (*r).map_err(Error::from),
                Ok(Event::Images(_)) => continue,
                Err(_) => return Err(vanished()),
            }
        }
    }
}

/// A dump left without a verdict lets the tree go, and is waited for: the guards of the
/// container here (its freeze, its images) end with it, not with this process.
impl Drop for HeldDump {
    fn drop(&mut self) {
        if let Some(t) = self.thread.take() {
            let _ = self
                .verdict
                .send(Err("the migration ended without a verdict".into()));
            let _ = t.join();
        }
    }
}

fn vanished() -> Error {
    Error::Protocol("the dumping thread vanished".into())
}
