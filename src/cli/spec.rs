use std::path::PathBuf;

use anyhow::{bail, Context};

#[derive(clap::Args)]
/// Write a default config.json into the bundle directory.
pub struct Args {
    /// Bundle directory.
    #[arg(short, long, default_value = ".")]
    bundle: PathBuf,
}

pub fn run(a: Args) -> anyhow::Result<i32> {
    let path = a.bundle.join("config.json");
    if path.exists() {
        bail!("{}: exists; remove it first", path.display());
    }
    let spec = lcr::spec::default_spec(true);
    let text = serde_json::to_string_pretty(&spec)?;
    std::fs::write(&path, text + "\n").with_context(|| format!("write {}", path.display()))?;
    Ok(0)
}
