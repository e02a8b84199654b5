//! Pre-copy: pre-dump rounds while the container runs, each sending into the receiver's page
//! server only the pages changed since the round before (the first: all of them), until the
//! rounds converge; then stop-and-copy, whose final dump sends only what changed since the
//! last round. The receiver keeps each round in `pre-N` beside the final images, linked as
//! CRIU's parents. Needs this kernel to track dirty pages (soft-dirty).

use std::sync::atomic::Ordering;
use std::time::Instant;

use lcr::checkpoint::ImageDir;
use lcr::container::{Container, Store};

use super::{dump_failed, dump_into_receiver, ms, pages_done, stop_copy};
use super::{Report, Request, Round};
use crate::link::Link;
use crate::Result;

/// A round that wrote fewer pages (1 MiB) is not worth another.
const FLOOR_PAGES: u64 = 256;

pub(super) fn run(
    store: &Store,
    container: Container,
    req: &Request,
    link: &mut Link,
    mut report: Report,
) -> Result<Report> {
    let base = ImageDir::temporary("migrate")?;
    let id = container.id().to_string();
    let mut container = Some(container);
    let mut n = 0;
    let ended = loop {
        n += 1;
        // A pre-dump takes the container's handle and leaves it running.
        let c = match container.take() {
            Some(c) => c,
            None => Container::load(store, &id)?,
        };
        (req.progress)(&format!("pre-dump round {n}"));
        let round = pre_dump(c, req, link, &base, n)?;
        let verdict = converged(
            &round,
            report.rounds.last(),
            n,
            req.converge_pct,
            req.max_iterations,
        );
        report.rounds.push(round);
        if let Some(why) = verdict {
            break why;
        }
    };
    (req.say)(&format!(
        "pre-copy: {n} rounds; {ended}; the final dump follows"
    ));
    report.rounds_ended = ended;
    let c = Container::load(store, &id)?;
    stop_copy::run(c, req, link, report, base, Some(n))
}

/// Round `n`: a pre-dump into the receiver's `pre-n`, the container running on.
fn pre_dump(
    c: Container,
    req: &Request,
    link: &mut Link,
    base: &ImageDir,
    n: u32,
) -> Result<Round> {
    let parent = (n > 1).then(|| n - 1);
    let sent_before = link.sent.load(Ordering::Relaxed);
    let started = Instant::now();
    let images = ImageDir::At(base.path().join(format!("pre-{n}")));
    let mut opts = dump_into_receiver(req, link, &c, images, false, (Some(n), parent))?;
    opts.pre_dump = true;
    opts.parent_path = parent.map(|p| format!("../pre-{p}").into());
    let dumped = lcr::checkpoint::checkpoint(c, opts).map_err(|e| dump_failed(req, link, e))?;
    pages_done(req, link)?;
    let stats = dumped.stats.unwrap_or_default();
    Ok(Round {
        ms: ms(started.elapsed()),
        pages_scanned: stats.pages_scanned,
        pages_written: stats.pages_written,
        bytes: link.sent.load(Ordering::Relaxed) - sent_before,
    })
}

/// Why the rounds end after `round` (the `n`th), if they do: it wrote little, or found
/// `converge_pct` of the pages unchanged, or more changed than in the round before, or it
/// was round `max_iterations`.
fn converged(
    round: &Round,
    last: Option<&Round>,
    n: u32,
    converge_pct: u32,
    max_iterations: u32,
) -> Option<String> {
    if round.pages_written < FLOOR_PAGES {
        return Some(format!(
            "round {n} wrote {} pages, below the floor of {FLOOR_PAGES}",
            round.pages_written
        ));
    }
    if let Some(last) = last {
        let unchanged = 100 - round.pages_written * 100 / round.pages_scanned.max(1);
        if unchanged >= u64::from(converge_pct) {
            return Some(format!(
                "{unchanged}% of the pages unchanged since round {} (--converge {converge_pct})",
                n - 1,
            ));
        }
        if round.pages_written > last.pages_written {
            return Some(format!(
                "round {n} wrote more pages than round {} ({} > {}): the dirty set grows",
                n - 1,
                round.pages_written,
                last.pages_written
            ));
        }
    }
    (n >= max_iterations).then(|| format!("--max-iterations {n} reached"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round(scanned: u64, written: u64) -> Round {
        Round {
            pages_scanned: scanned,
            pages_written: written,
            ..Round::default()
        }
    }

    #[test]
    fn rounds_end_when_they_converge_stall_or_run_out() {
        let first = round(16384, 16384);
        assert_eq!(converged(&first, None, 1, 90, 8), None);
        let why = converged(&round(16384, 1000), Some(&first), 2, 90, 8).unwrap();
        assert!(
            why.starts_with("94% of the pages unchanged since round 1"),
            "{why}"
        );
        let second = round(16384, 4000);
        assert_eq!(converged(&second, Some(&first), 2, 90, 8), None);
        let why = converged(&round(16384, 5000), Some(&second), 3, 90, 8).unwrap();
        assert!(why.contains("the dirty set grows"), "{why}");
        let why = converged(&round(16384, 100), Some(&second), 3, 90, 8).unwrap();
        assert!(why.contains("below the floor"), "{why}");
        let why = converged(&round(16384, 3000), Some(&second), 8, 90, 8).unwrap();
        assert!(why.contains("--max-iterations 8"), "{why}");
    }
}
