use lcr::container::{Container, Store};

#[derive(clap::Args)]
/// List containers.
pub struct Args {
    #[arg(short, long, default_value = "table")]
    format: super::ps::Format,
    /// Only ids.
    #[arg(short, long)]
    quiet: bool,
}

pub fn run(store: &Store, a: Args) -> anyhow::Result<i32> {
    let mut rows = Vec::new();
    for id in store.ids()? {
        // A container deleted meanwhile is skipped.
        if let Ok(c) = Container::read(store, &id) {
            let v: serde_json::Value = serde_json::from_str(&c.oci_state_json())?;
            rows.push(v);
        }
    }
    if a.quiet {
        for r in &rows {
            println!("{}", r["id"].as_str().unwrap_or_default());
        }
        return Ok(0);
    }
    match a.format {
        super::ps::Format::Json => super::print_json(&rows)?,
        super::ps::Format::Table => {
            println!(
                "{:<20} {:<8} {:<10} {:<40} {:<32} OWNER",
                "ID", "PID", "STATUS", "BUNDLE", "CREATED"
            );
            for r in &rows {
                println!(
                    "{:<20} {:<8} {:<10} {:<40} {:<32} {}",
                    r["id"].as_str().unwrap_or_default(),
                    r["pid"].as_i64().unwrap_or(0),
                    r["status"].as_str().unwrap_or_default(),
                    r["bundle"].as_str().unwrap_or_default(),
                    r["created"].as_str().unwrap_or_default(),
                    r["owner"].as_str().unwrap_or_default()
                );
            }
        }
    }
    Ok(0)
}
