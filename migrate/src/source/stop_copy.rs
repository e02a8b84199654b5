//! Stop-and-copy: freeze, dump with the memory streamed into the receiver's page server
//! (it never lands on this host's disk), ship the other images, restore there, commit.

use std::time::Instant;

use lcr::container::Container;

use super::HandingOver;
use super::{dump_opts, finish, images, memory_of, ms, open_pages, refused, undecided, unexpected};
use super::{Report, Request};
use crate::link::{Link, RESTORE_LIMIT};
use crate::wire::Message;
use crate::Result;

pub(super) fn run(
    container: Container,
    req: &Request,
    link: &mut Link,
    mut report: Report,
) -> Result<Report> {
    let page_server = open_pages(req, link, memory_of(&container), false)?;
    let handing = HandingOver::new(req, &container);
    let mut opts = dump_opts(req, &container, page_server)?;
    opts.hand_over = handing.flag();

    let frozen_at = Instant::now();
    let dumped = lcr::checkpoint::begin(container, opts)?;
    // Every page has gone once this side's CRIU closed its end and the receiver's page
    // server closed its own.
    link.pages_sent()?;
    match link.message()? {
        Message::PagesEnd => {}
        Message::Refused { reason } => return Err(refused(req, reason)),
        other => return Err(unexpected(other)),
    }
    report.dump_ms = ms(frozen_at.elapsed());
    report.add_freeze(&dumped);

    let sent_at = Instant::now();
    images::send_images(&dumped.report().image_dir, &link.sender())?;
    report.transfer_ms = ms(sent_at.elapsed());

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
