use std::time::{Duration, Instant};

use lcr::cgroups::{MemoryWatch, Notice};
use lcr::container::{Container, Status, Store};
use serde::Serialize;

#[derive(clap::Args)]
/// Stream the container's events until it stops: statistics every --interval, OOM and
/// memory-pressure notifications as they happen; with --stats, print the statistics once.
pub struct Args {
    pub id: String,
    #[arg(long)]
    stats: bool,
    /// Time between statistics: `5s`, `500ms`, `1m`, or plain seconds.
    #[arg(long, default_value = "5s", value_parser = parse_interval)]
    interval: Duration,
}

#[derive(Serialize)]
struct Event<'a> {
    #[serde(rename = "type")]
    typ: &'a str,
    id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    data: Option<lcr::cgroups::Stats>,
}

/// How often the stream looks whether the container is still there.
const STATUS_POLL: Duration = Duration::from_millis(200);

pub fn run(store: &Store, a: Args) -> anyhow::Result<i32> {
    let c = Container::read(store, &a.id)?;
    if c.status() == Status::Stopped {
        anyhow::bail!("container {:?} is stopped: no events", a.id);
    }
    let cgroup = c.cgroup()?;
    drop(c);
    let stats = |cg: &lcr::cgroups::Cgroup| {
        super::print_json(&Event {
            typ: "stats",
            id: &a.id,
            data: Some(cg.stats()),
        })
    };
    if a.stats {
        stats(&cgroup)?;
        return Ok(0);
    }
    let mut memory = match MemoryWatch::new(&cgroup) {
        Ok(w) => Some(w),
        Err(e) => {
            tracing::warn!("{e}: streaming statistics only");
            None
        }
    };
    let mut next_stats = Instant::now();
    loop {
        match Container::read(store, &a.id) {
            Ok(c) if c.status() != Status::Stopped => {}
            _ => return Ok(0),
        }
        if Instant::now() >= next_stats {
            stats(&cgroup)?;
            next_stats = Instant::now() + a.interval;
        }
        let wait = STATUS_POLL.min(next_stats.saturating_duration_since(Instant::now()));
        match &mut memory {
            Some(w) => {
                for notice in w.wait(wait)? {
                    super::print_json(&Event {
                        typ: match notice {
                            Notice::Oom => "oom",
                            Notice::Pressure => "memory-pressure",
                        },
                        id: &a.id,
                        data: None,
                    })?;
                }
            }
            None => std::thread::sleep(wait),
        }
    }
}

/// runc's `--interval` is a Go duration (`5s`); lcr's took seconds: both are accepted.
fn parse_interval(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let (num, unit) = s
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .map_or((s, ""), |i| s.split_at(i));
    let n: f64 = num
        .parse()
        .map_err(|_| format!("{s:?}: not a duration (e.g. 5s, 500ms)"))?;
    let secs = match unit {
        "" | "s" => n,
        "ms" => n / 1000.0,
        "m" => n * 60.0,
        "h" => n * 3600.0,
        _ => return Err(format!("{s:?}: the unit must be ms, s, m or h")),
    };
    if secs <= 0.0 || !secs.is_finite() {
        return Err(format!("{s:?}: must be more than zero"));
    }
    Ok(Duration::from_secs_f64(secs))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn intervals_parse_as_go_durations_or_seconds() {
        assert_eq!(parse_interval("5s").unwrap(), Duration::from_secs(5));
        assert_eq!(parse_interval("5").unwrap(), Duration::from_secs(5));
        assert_eq!(parse_interval("250ms").unwrap(), Duration::from_millis(250));
        assert_eq!(parse_interval("1m").unwrap(), Duration::from_secs(60));
        assert!(parse_interval("0s").is_err() && parse_interval("5x").is_err());
    }
}
