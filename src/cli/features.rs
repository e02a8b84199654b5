#[derive(clap::Args)]
/// The OCI runtime features document (runtime-spec features.md), as `runc features` prints it.
pub struct Args {}

pub fn run(_: Args) -> anyhow::Result<i32> {
    let f = lcr::spec::runtime_features()?;
    println!("{}", serde_json::to_string_pretty(&f)?);
    Ok(0)
}
