use lcr::container::{Container, Store};

#[derive(clap::Args)]
/// Print the container's OCI state as JSON.
pub struct Args {
    pub id: String,
}

pub fn run(store: &Store, a: Args) -> anyhow::Result<i32> {
    let c = Container::read(store, &a.id)?;
    let mut v: serde_json::Value = serde_json::from_str(&c.oci_state_json())?;
    // Where a test reaches the container's network (a clone's own loopback, say).
    if c.state.pid > 0 && v["status"] != "stopped" {
        v["netns"] = format!("/proc/{}/ns/net", c.state.pid).into();
    }
    println!("{}", serde_json::to_string_pretty(&v)?);
    Ok(0)
}
