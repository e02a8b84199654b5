//! Stop-and-copy: freeze, dump with the memory streamed into the receiver's page server
//! (it never lands on this host's disk), ship the other images, restore there, commit. Also
//! pre-copy's last step, whose dump then sends only what changed since its last round.

use std::time::Instant;

use lcr::checkpoint::ImageDir;
use lcr::container::Container;

use super::{await_running, dump_failed, finish, held_dump, images, ms, pages_done};
use super::{Report, Request};
use crate::link::Link;
use crate::Result;

pub(super) fn run(
    container: Container,
    req: &Request,
    link: &mut Link,
    mut report: Report,
    images: ImageDir,
    parent_round: Option<u32>,
) -> Result<Report> {
    let (opts, handing) = held_dump(req, link, &container, images, false, parent_round)?;

    (req.progress)("freeze and dump");
    let began = Instant::now();
    let dumped = lcr::checkpoint::begin(container, opts).map_err(|e| dump_failed(req, link, e))?;
    pages_done(req, link)?;
    report.dump_times(began, handing.frozen_since(began));
    report.add_freeze(&dumped);

    (req.progress)("sending the images");
    let sent_at = Instant::now();
    images::send_images(&dumped.report().image_dir, &link.sender())?;
    report.transfer_ms = ms(sent_at.elapsed());

    (req.progress)("restoring there");
    let restore_at = Instant::now();
    handing.ask_restore(&link.sender())?;
    // On an error the dump is dropped: refused, it thaws; undecided, the hand-over keeps it
    // frozen.
    let times = (began, restore_at);
    let pid = await_running(req, link, &handing, false, times, &mut report)?;
    finish(dumped, req, link, pid)?;
    Ok(report)
}
