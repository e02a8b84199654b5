use lcr::container::{self, Container, Store};

#[derive(clap::Args)]
/// Freeze all processes of a container.
pub struct Args {
    pub id: String,
}

#[derive(clap::Args)]
/// Thaw a paused container.
pub struct ResumeArgs {
    pub id: String,
}

pub fn run(store: &Store, a: Args) -> anyhow::Result<i32> {
    let mut c = Container::load(store, &a.id)?;
    container::pause(&mut c)?;
    Ok(0)
}

pub fn run_resume(store: &Store, a: ResumeArgs) -> anyhow::Result<i32> {
    let mut c = Container::load(store, &a.id)?;
    container::resume(&mut c)?;
    Ok(0)
}
