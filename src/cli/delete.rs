use lcr::container::{self, Container, Store};
use lcr::Error;

#[derive(clap::Args)]
/// Delete a container and everything it holds (cgroup, state).
pub struct Args {
    pub id: String,
    /// Kill it first if it is running; a container that does not exist is not an error.
    #[arg(short, long)]
    force: bool,
}

pub fn run(store: &Store, a: Args) -> anyhow::Result<i32> {
    let c = match Container::load(store, &a.id) {
        // As runc: `delete --force` is what clients (podman after a checkpoint, containerd's
        // cleanup) call on containers that may be gone already.
        Err(Error::NotFound(_)) if a.force => return Ok(0),
        other => other?,
    };
    container::delete(c, a.force)?;
    Ok(0)
}
