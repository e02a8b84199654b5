use lcr::container::{self, Container, Store};

#[derive(clap::Args)]
/// Send a signal (default SIGTERM) to the container's init.
pub struct Args {
    pub id: String,
    #[arg(default_value = "SIGTERM")]
    signal: String,
    /// Signal every process of the container.
    #[arg(short, long)]
    all: bool,
}

pub fn run(store: &Store, a: Args) -> anyhow::Result<i32> {
    let sig = container::parse_signal(&a.signal)?;
    let c = Container::read(store, &a.id)?;
    container::kill(&c, sig, a.all)?;
    Ok(0)
}
