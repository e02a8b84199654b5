//! Which way the memory moves: chosen from what both hosts said of themselves, before the
//! container is touched, and said with the reason.

use serde::Serialize;

use crate::wire::HostFacts;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Strategy {
    /// Freeze, dump with the memory streamed into the destination's page server, restore.
    StopCopy,
    /// Pre-dumps while the container runs, then a final dump of what changed.
    PreCopy,
    /// Dump all but the memory, restore at once; the pages follow on demand.
    PostCopy,
}

impl std::fmt::Display for Strategy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::StopCopy => "stop-copy",
            Self::PreCopy => "pre-copy",
            Self::PostCopy => "post-copy",
        })
    }
}

/// The strategy chosen and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Choice {
    pub strategy: Strategy,
    pub reason: String,
}

/// What post-copy cannot promise a connection moved with `--tcp-established`.
const LAZY_TCP: &str = "with --tcp-established a lazy dump's source unlocks its network while \
     it serves the pages, so a connection to a peer outside the container may break";

/// The strategy to use: `asked` if both hosts allow it (else why not), or with `None` the
/// best both allow, pre-copy before post-copy before stop-copy; post-copy is not chosen for
/// connections moved with `tcp_established` (it is done if asked, saying what it risks).
pub fn choose(
    asked: Option<Strategy>,
    source: &HostFacts,
    dest: &HostFacts,
    tcp_established: bool,
) -> Result<Choice, String> {
    let pre = pre_copy_blocker(source);
    let post = post_copy_blocker(source, dest);
    if asked == Some(Strategy::PostCopy) && post.is_none() && tcp_established {
        return Ok(Choice {
            strategy: Strategy::PostCopy,
            reason: format!("as asked; {LAZY_TCP}"),
        });
    }
    let post = match post {
        None if tcp_established && asked.is_none() => Some(LAZY_TCP.to_string()),
        other => other,
    };
    match asked {
        Some(s) => {
            let blocker = match s {
                Strategy::StopCopy => None,
                Strategy::PreCopy => pre,
                Strategy::PostCopy => post,
            };
            match blocker {
                Some(why) => Err(format!("{s} is not possible: {why}")),
                None => Ok(Choice {
                    strategy: s,
                    reason: "as asked".into(),
                }),
            }
        }
        None => Ok(match (pre, post) {
            (None, _) => Choice {
                strategy: Strategy::PreCopy,
                reason: "dirty-page tracking on this host".into(),
            },
            (Some(pre), None) => Choice {
                strategy: Strategy::PostCopy,
                reason: format!("no pre-copy ({pre}); lazy pages work on both hosts"),
            },
            (Some(pre), Some(post)) => Choice {
                strategy: Strategy::StopCopy,
                reason: format!("no pre-copy ({pre}); no post-copy ({post})"),
            },
        }),
    }
}

/// Pre-copy needs the source's kernel to track dirty pages (the receiver only runs page
/// servers and a plain restore).
fn pre_copy_blocker(source: &HostFacts) -> Option<String> {
    (!source.dirty_tracking).then(|| {
        "this host's kernel does not track dirty pages (no CONFIG_MEM_SOFT_DIRTY), so CRIU \
         cannot pre-dump"
            .into()
    })
}

/// Post-copy needs the source to serve a lazy dump's pages and the destination to restore
/// with userfaultfd.
fn post_copy_blocker(source: &HostFacts, dest: &HostFacts) -> Option<String> {
    if let Some(why) = &source.lazy_dump_blocker {
        return Some(format!("this host: {why}"));
    }
    if !dest.lazy_pages {
        return Some(
            "the destination's kernel has no non-cooperative userfaultfd, which a lazy restore \
             needs"
                .into(),
        );
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn host(dirty: bool, uffd: bool, blocker: Option<&str>) -> HostFacts {
        HostFacts {
            dirty_tracking: dirty,
            lazy_pages: uffd,
            lazy_dump_blocker: blocker.map(String::from),
            ..HostFacts::example()
        }
    }

    #[test]
    fn auto_takes_the_best_both_allow_and_says_why() {
        let c = choose(
            None,
            &host(true, true, None),
            &host(false, false, None),
            false,
        )
        .unwrap();
        assert_eq!(c.strategy, Strategy::PreCopy);
        assert!(c.reason.contains("dirty-page tracking"), "{}", c.reason);
        let pipes = Some("fs.pipe-max-size is 1048576");
        let c = choose(
            None,
            &host(false, true, pipes),
            &host(false, true, None),
            false,
        )
        .unwrap();
        assert_eq!(c.strategy, Strategy::StopCopy);
        assert!(c.reason.contains("CONFIG_MEM_SOFT_DIRTY"), "{}", c.reason);
        assert!(c.reason.contains("fs.pipe-max-size"), "{}", c.reason);
        let c = choose(
            None,
            &host(false, true, None),
            &host(false, true, None),
            false,
        )
        .unwrap();
        assert_eq!(c.strategy, Strategy::PostCopy);
        let c = choose(
            None,
            &host(false, true, None),
            &host(false, true, None),
            true,
        )
        .unwrap();
        assert_eq!(c.strategy, Strategy::StopCopy);
        assert!(c.reason.contains("--tcp-established"), "{}", c.reason);
        let asked = Some(Strategy::PostCopy);
        let c = choose(
            asked,
            &host(false, true, None),
            &host(false, true, None),
            true,
        )
        .unwrap();
        assert_eq!(c.strategy, Strategy::PostCopy);
        assert!(c.reason.contains("may break"), "{}", c.reason);
        let c = choose(
            None,
            &host(false, true, None),
            &host(false, false, None),
            false,
        )
        .unwrap();
        assert_eq!(c.strategy, Strategy::StopCopy);
        assert!(c.reason.contains("userfaultfd"), "{}", c.reason);
    }

    #[test]
    fn a_strategy_asked_for_is_refused_with_the_reason() {
        let here = host(false, true, None);
        let e = choose(Some(Strategy::PreCopy), &here, &here, false).unwrap_err();
        assert!(e.starts_with("pre-copy is not possible"), "{e}");
        assert!(e.contains("dirty pages"), "{e}");
        let e = choose(
            Some(Strategy::PostCopy),
            &host(false, true, Some("fs.pipe-max-size is 1048576")),
            &here,
            false,
        )
        .unwrap_err();
        assert!(e.contains("this host: fs.pipe-max-size"), "{e}");
        let c = choose(Some(Strategy::StopCopy), &here, &here, false).unwrap();
        assert_eq!(c.strategy, Strategy::StopCopy);
    }
}
