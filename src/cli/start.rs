use lcr::container::{self, Container, Store};

#[derive(clap::Args)]
/// Start a created container.
pub struct Args {
    pub id: String,
}

pub fn run(store: &Store, a: Args) -> anyhow::Result<i32> {
    let mut c = Container::load(store, &a.id)?;
    container::start(&mut c)?;
    Ok(0)
}
