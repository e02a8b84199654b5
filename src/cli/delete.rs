use lcr::container::{self, Container, Store};

#[derive(clap::Args)]
/// Delete a container and everything it holds (cgroup, state).
pub struct Args {
    pub id: String,
    /// Kill it first if it is running.
    #[arg(short, long)]
    force: bool,
}

pub fn run(store: &Store, a: Args) -> anyhow::Result<i32> {
    let c = Container::load(store, &a.id)?;
    container::delete(c, a.force)?;
    Ok(0)
}
