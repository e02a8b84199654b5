use lcr::checkpoint::Criu;

#[derive(clap::Args)]
/// What this kernel and CRIU can checkpoint, restore and migrate, and what follows from each gap.
pub struct Args {
    #[arg(long)]
    json: bool,
    /// CRIU binary (default: criu on PATH).
    #[arg(long, default_value = "criu")]
    criu: String,
}

pub fn run(a: Args) -> anyhow::Result<i32> {
    let r = lcr::check::report(&Criu::with_binary(&a.criu));
    if a.json {
        println!("{}", serde_json::to_string_pretty(&r)?);
        return Ok(0);
    }
    match (&r.criu_version, &r.criu_binary) {
        (Some(v), Some(b)) => println!("CRIU {v} ({b})"),
        _ => println!("CRIU: {}", r.criu_error.as_deref().unwrap_or("not found")),
    }
    println!("cgroups: {:?}", r.cgroup_version);
    for f in &r.features {
        if f.supported {
            println!("  yes  {}", f.name);
        } else {
            println!("  no   {}: {}", f.name, f.consequence);
        }
    }
    Ok(0)
}
