//! Stop-and-copy: freeze, dump with the memory streamed into the receiver's page server
//! (it never lands on this host's disk), ship the other images, restore there, commit. Also
//! pre-copy's last step, whose dump then sends only what changed since its last round.

use std::time::Instant;

use lcr::checkpoint::ImageDir;
use lcr::container::Container;

use super::held::HeldDump;
use super::{await_running, finish, images, left_here, ms, pages_done};
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
    (req.progress)("freeze and dump");
    let dump = HeldDump::start(container, req, link, images, (false, parent_round))?;
    let dir = dump.images(req, link)?;
    // CRIU waits at `post-dump` until the container runs there, or not.
    let pid = dump.settle(link, |link| {
        pages_done(req, link)?;
        report.dump_times(dump.began, dump.handing.frozen_since(dump.began));

        (req.progress)("sending the images");
        let sent_at = Instant::now();
        images::send_images(&dir, &link.sender())?;
        report.transfer_ms = ms(sent_at.elapsed());

        (req.progress)("restoring there");
        let restore_at = Instant::now();
        dump.handing.ask_restore(&link.sender())?;
        let times = (dump.began, restore_at);
        await_running(req, link, &dump.handing, false, times, &mut report)
    })?;
    let dumped = dump.ended().map_err(|e| left_here(req, pid, e))?;
    report.add_freeze(&dumped);
    finish(dumped, req, link, pid)?;
    Ok(report)
}
