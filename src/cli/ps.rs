use lcr::container::{Container, Store};
use lcr::procfs;

#[derive(Clone, Copy, Debug, clap::ValueEnum)]
pub enum Format {
    Table,
    Json,
}

#[derive(clap::Args)]
/// List the processes of a container.
pub struct Args {
    pub id: String,
    #[arg(short, long, default_value = "table")]
    format: Format,
}

pub fn run(store: &Store, a: Args) -> anyhow::Result<i32> {
    let c = Container::read(store, &a.id)?;
    let mut pids = c.pids();
    pids.sort();
    match a.format {
        Format::Json => super::print_json(&pids)?,
        Format::Table => {
            println!("{:<8} {:<8} CMD", "PID", "PPID");
            for p in pids {
                if let Some((ppid, cmd)) = procfs::ppid_and_cmdline(p) {
                    println!("{p:<8} {ppid:<8} {cmd}");
                }
            }
        }
    }
    Ok(0)
}
