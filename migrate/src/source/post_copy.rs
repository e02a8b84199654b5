//! Post-copy: freeze, dump all but the memory, ship the images, restore there at once; the
//! restored container then pulls its pages on demand (and the rest in the background) from
//! the lazy dump here, which serves them over the relayed connection. Downtime is the dump
//! of everything but the memory and the restore, whatever the memory's size.
//!
//! The switch is the restore: from then on the container runs there with part of its
//! memory here, so this copy is never resumed (nor removed) by lcr until every page moved.

use std::time::Instant;

use lcr::checkpoint::{Dumped, ImageDir};
use lcr::container::Container;

use super::held::HeldDump;
use super::{await_running, finish, images, ms, refused, undecided, unexpected};
use super::{Report, Request};
use crate::link::Link;
use crate::wire::Message;
use crate::Result;

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
    (req.progress)("freeze, dump all but the memory, send the images");
    let dump = HeldDump::start(
        container,
        req,
        link,
        ImageDir::temporary("migrate")?,
        (true, None),
    )?;
    let dir = dump.images(req, link)?;
    // Yes once the images went: CRIU serves the pages for the restore there, and keeps the
    // tree here frozen until the outcome decides.
    dump.settle(link, |link| {
        let sent_at = Instant::now();
        images::send_images(&dir, &link.sender())?;
        report.transfer_ms = ms(sent_at.elapsed());
        report.dump_times(dump.began, dump.handing.frozen_since(dump.began));
        report.dump_ms = report.dump_ms.saturating_sub(report.transfer_ms);
        Ok(())
    })?;
    (req.progress)("restoring there");
    let restore_at = Instant::now();
    let times = (dump.began, restore_at);
    let asked = dump.handing.ask_restore(&link.sender());
    let pid = match asked
        .and_then(|_| await_running(req, link, &dump.handing, true, times, &mut report))
    {
        Ok(pid) => pid,
        Err(e) => {
            // The dump ends: refused, the copy here thaws with it; else it stays frozen.
            link.cut_pages();
            let _ = dump.ended();
            return Err(e);
        }
    };
    (req.say)(&format!(
        "running on {} (pid {pid}) after {} ms down; moving the remaining pages",
        req.dest, report.downtime_ms
    ));
    (req.progress)("moving the remaining pages");
    let moved_at = Instant::now();
    let dumped = pages_moved(dump, req, link)?;
    report.lazy_transfer_ms = ms(moved_at.elapsed());
    report.add_freeze(&dumped);
    // A lazy dump's statistics are written while the tree is still frozen for serving: CRIU's
    // frozen time is not known then (it reads as garbage).
    report.criu_frozen_us = 0;
    finish(dumped, req, link, pid)?;
    Ok(report)
}

/// Until every page has moved: the lazy dump ended and the receiver said its daemon took
/// them all. CRIU's lazy page server ends "successfully" on a connection that closed early
/// too, so only `PagesArrived` counts; any failure leaves the copy here frozen, undecided.
fn pages_moved(dump: HeldDump, req: &Request, link: &mut Link) -> Result<Dumped> {
    let transfer = dump.ended().and_then(|dumped| {
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
    transfer.map_err(|e| {
        undecided(
            req,
            "the page transfer failed after the container started there (the receiver stops its \
             copy when its pages cannot all arrive)",
            &e,
        )
    })
}
