use std::time::Duration;

use lcr::container::{Container, Status, Store};
use serde::Serialize;

#[derive(clap::Args)]
/// Print resource statistics: once with --stats, else every --interval until it stops.
pub struct Args {
    pub id: String,
    #[arg(long)]
    stats: bool,
    /// Seconds between statistics.
    #[arg(long, default_value_t = 5)]
    interval: u64,
}

#[derive(Serialize)]
struct Event<'a> {
    #[serde(rename = "type")]
    typ: &'a str,
    id: &'a str,
    data: lcr::cgroups::Stats,
}

pub fn run(store: &Store, a: Args) -> anyhow::Result<i32> {
    loop {
        let c = Container::read(store, &a.id)?;
        if c.status() == Status::Stopped {
            anyhow::bail!("container {:?} is stopped: no statistics", a.id);
        }
        let data = c.cgroup()?.stats();
        drop(c);
        super::print_json(&Event {
            typ: "stats",
            id: &a.id,
            data,
        })?;
        if a.stats {
            return Ok(0);
        }
        std::thread::sleep(Duration::from_secs(a.interval.max(1)));
    }
}
