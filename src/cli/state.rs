use lcr::container::{Container, Store};

#[derive(clap::Args)]
/// Print the container's OCI state as JSON.
pub struct Args {
    pub id: String,
}

pub fn run(store: &Store, a: Args) -> anyhow::Result<i32> {
    let c = Container::read(store, &a.id)?;
    let v: serde_json::Value = serde_json::from_str(&c.oci_state_json())?;
    println!("{}", serde_json::to_string_pretty(&v)?);
    Ok(0)
}
