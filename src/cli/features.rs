#[derive(clap::Args)]
/// The OCI runtime features document (runtime-spec features.md), as `runc features` prints it.
pub struct Args {}

pub fn run(_: Args) -> anyhow::Result<i32> {
    let f = lcr::spec::runtime_features()?;
    // Through a json Value, whose maps are sorted: the annotations print in the same order
    // every time (as runc's do), not in a hash map's.
    println!(
        "{}",
        serde_json::to_string_pretty(&serde_json::to_value(&f)?)?
    );
    Ok(0)
}
