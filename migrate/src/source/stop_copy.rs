//! Stop-and-copy: freeze, dump with the memory streamed into the receiver's page server
//! (it never lands on this host's disk), ship the other images, restore there, commit. Also
//! pre-copy's last step, whose dump then sends only what changed since its last round.

use std::time::Instant;

use lcr::checkpoint::ImageDir;
use lcr::container::Container;

use super::HandingOver;
use super::{dump_failed, dump_opts, finish, images, memory_of, ms, open_pages, pages_done};
use super::{refused, undecided, unexpected};
use super::{Report, Request};
use crate::link::{Link, RESTORE_LIMIT};
use crate::wire::Message;
use crate::Result;

pub(super) fn run(
    container: Container,
    req: &Request,
    link: &mut Link,
    mut report: Report,
    images: ImageDir,
    parent_round: Option<u32>,
) -> Result<Report> {
    let start = Message::StartPages {
        memory: memory_of(&container),
        lazy: false,
        round: None,
        parent: parent_round,
    };
    let page_server = open_pages(req, link, start)?;
    let handing = HandingOver::new(req, &container);
    let mut opts = dump_opts(req, &container, images, page_server)?;
    opts.hand_over = handing.flag();
    opts.parent_path = parent_round.map(|n| format!("pre-{n}").into());

    (req.progress)("freeze and dump");
    let frozen_at = Instant::now();
    let dumped = lcr::checkpoint::begin(container, opts).map_err(|e| dump_failed(req, link, e))?;
    pages_done(req, link)?;
    report.dump_ms = ms(frozen_at.elapsed());
    report.add_freeze(&dumped);

    (req.progress)("sending the images");
    let sent_at = Instant::now();
    images::send_images(&dumped.report().image_dir, &link.sender())?;
    report.transfer_ms = ms(sent_at.elapsed());

    (req.progress)("restoring there");
    let restore_at = Instant::now();
    handing.give()?;
    if let Err(e) = link.send(&Message::Restore) {
        // It never left this host: the receiver cannot restore.
        handing.take_back();
        return Err(e);
    }
    let pid = match link.message_within(RESTORE_LIMIT) {
        Ok(Message::Running { pid }) => pid,
        Ok(Message::Refused { reason }) => {
            // The receiver rolled back: this copy runs on.
            handing.take_back();
            return Err(refused(req, reason));
        }
        Ok(other) => {
            let e = unexpected(other);
            dumped.leave_frozen();
            return Err(undecided(
                req,
                "the receiver answered the restore out of turn",
                &e,
            ));
        }
        Err(e) => {
            dumped.leave_frozen();
            return Err(undecided(
                req,
                "the connection broke while the receiver restored",
                &e,
            ));
        }
    };
    report.restore_ms = ms(restore_at.elapsed());
    report.downtime_ms = ms(frozen_at.elapsed());
    report.dest_pid = pid;
    finish(dumped, req, link, pid)?;
    Ok(report)
}
