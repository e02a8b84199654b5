//! Post-copy: freeze, dump all but the memory, ship the images, restore there at once; the
//! restored container then pulls its pages on demand (and the rest in the background) from
//! the lazy dump here, which serves them over the relayed connection. Downtime is the dump
//! of everything but the memory and the restore, whatever the memory's size.
//!
//! The switch is the restore: from then on the container runs there with part of its
//! memory here, so this copy is never resumed (nor removed) by lcr until every page moved.

use std::sync::mpsc::{channel, Receiver};
use std::time::Instant;

use lcr::checkpoint::Dumped;
use lcr::container::Container;

use super::{await_running, finish, held_dump, images, ms, refused, undecided, unexpected};
use super::{HandingOver, Report, Request};
use crate::link::Link;
use crate::wire::Message;
use crate::{Error, Result};

/// What the dumping thread reports.
enum Event {
    /// The images went out and the receiver was asked to restore (`images_ms` to send them).
    RestoreAsked { images_ms: u64 },
    /// The dump ended: every page was served, or it failed.
    Dumped(Box<lcr::Result<Dumped>>),
}

/// The lazy dump, running on its own thread (its CRIU call lasts until every page moved),
/// and what it reports.
struct Dumping {
    events: Receiver<Event>,
    thread: std::thread::JoinHandle<()>,
    handing: HandingOver,
    began: Instant,
}

pub(super) fn run(
    container: Container,
    req: &Request,
    link: &mut Link,
    mut report: Report,
) -> Result<Report> {
    (req.say)(
        "post-copy: once the container runs there, this copy cannot be resumed; it stays \
         frozen here until its last page has moved",
    );
    let dumping = start_dump(container, req, link)?;
    images_sent(&dumping, &mut report)?;
    let pid = running_there(&dumping, req, link, &mut report)?;
    (req.progress)("moving the remaining pages");
    let moved_at = Instant::now();
    let dumped = pages_moved(dumping, req, link)?;
    report.lazy_transfer_ms = ms(moved_at.elapsed());
    report.add_freeze(&dumped);
    // A lazy dump's statistics are written while the tree is still frozen for serving: CRIU's
    // frozen time is not known then (it reads as garbage).
    report.criu_frozen_us = 0;
    finish(dumped, req, link, pid)?;
    Ok(report)
}

/// Freezes and dumps the container lazily on a thread of its own; at CRIU's `post-dump` the
/// images are shipped and the receiver is asked to restore (the hand-over).
fn start_dump(container: Container, req: &Request, link: &mut Link) -> Result<Dumping> {
    let images = lcr::checkpoint::ImageDir::temporary("migrate")?;
    let (mut opts, handing) = held_dump(req, link, &container, images, true, None)?;
    let (tx, events) = channel();
    let sender = link.sender();
    let asked = tx.clone();
    let giving = handing.clone();
    opts.on_images = Some(Box::new(move |dir| {
        let sent_at = Instant::now();
        images::send_images(dir, &sender).map_err(|e| e.to_string())?;
        giving.ask_restore(&sender).map_err(|e| e.to_string())?;
        let _ = asked.send(Event::RestoreAsked {
            images_ms: ms(sent_at.elapsed()),
        });
        Ok(())
    }));
    (req.progress)("freeze, dump all but the memory, send the images");
    let began = Instant::now();
    let thread = std::thread::spawn(move || {
        let _ = tx.send(Event::Dumped(Box::new(lcr::checkpoint::begin(
            container, opts,
        ))));
    });
    Ok(Dumping {
        events,
        thread,
        handing,
        began,
    })
}

/// Until the images went out and the restore was asked for (a dump that failed before
/// thawed the container).
fn images_sent(dumping: &Dumping, report: &mut Report) -> Result<()> {
    match dumping.events.recv() {
        Ok(Event::RestoreAsked { images_ms }) => {
            report.transfer_ms = images_ms;
            report.dump_times(dumping.began, dumping.handing.frozen_since(dumping.began));
            report.dump_ms = report.dump_ms.saturating_sub(images_ms);
            Ok(())
        }
        Ok(Event::Dumped(r)) => {
            (*r)?;
            Err(Error::Protocol(
                "the lazy dump ended before its images were complete".into(),
            ))
        }
        Err(_) => Err(Error::Protocol(
            "the dumping thread vanished before the images were complete".into(),
        )),
    }
}

/// Until the receiver reports the container running (its pid there). A refusal ends the
/// dump and lets this copy run on; anything else leaves it frozen, undecided.
fn running_there(
    dumping: &Dumping,
    req: &Request,
    link: &Link,
    report: &mut Report,
) -> Result<i32> {
    (req.progress)("restoring there");
    let times = (dumping.began, Instant::now());
    let pid =
        await_running(req, link, &dumping.handing, true, times, report).inspect_err(|_| {
            // The dump ends: refused, the copy here thaws with it; else it stays frozen.
            link.cut_pages();
            let _ = wait_dumped(&dumping.events);
        })?;
    (req.say)(&format!(
        "running on {} (pid {pid}) after {} ms down; moving the remaining pages",
        req.dest, report.downtime_ms
    ));
    Ok(pid)
}

/// Until every page has moved: the lazy dump ended and the receiver said its daemon took
/// them all. CRIU's lazy page server ends "successfully" on a connection that closed early
/// too, so only `PagesArrived` counts; any failure leaves the copy here frozen, undecided.
fn pages_moved(dumping: Dumping, req: &Request, link: &mut Link) -> Result<Dumped> {
    let transfer = wait_dumped(&dumping.events).and_then(|dumped| {
        link.pages_sent()?;
        loop {
            match link.message()? {
                Message::PagesEnd => continue,
                Message::PagesArrived => return Ok(dumped),
                Message::Refused { reason } => return Err(refused(req, reason)),
                other => return Err(unexpected(other)),
            }
        }
    });
    let _ = dumping.thread.join();
    transfer.map_err(|e| {
        undecided(
            req,
            "the page transfer failed after the container started there (the receiver stops its \
             copy when its pages cannot all arrive)",
            &e,
        )
    })
}

/// The end of the lazy dump: every page served (the container still frozen here), or why not.
fn wait_dumped(events: &Receiver<Event>) -> Result<Dumped> {
    loop {
        match events.recv() {
            Ok(Event::Dumped(r)) => return (*r).map_err(Error::from),
            Ok(Event::RestoreAsked { .. }) => continue,
            Err(_) => return Err(Error::Protocol("the dumping thread vanished".into())),
        }
    }
}
