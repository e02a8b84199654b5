use std::path::Path;

use tracing_subscriber::EnvFilter;

#[derive(Clone, Copy, Debug, clap::ValueEnum)]
pub enum Format {
    Text,
    Json,
}

/// Logs go to `--log` (in json for `--log-format json`, which podman reads), else stderr.
pub fn init(log: Option<&Path>, format: Format, debug: bool) {
    let level = if debug { "debug" } else { "warn" };
    let filter = EnvFilter::try_from_env("LCR_LOG").unwrap_or_else(|_| EnvFilter::new(level));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false);
    let file = log.and_then(|p| {
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(p)
            .ok()
    });
    match (file, format) {
        (Some(f), Format::Json) => builder.json().with_writer(std::sync::Mutex::new(f)).init(),
        (Some(f), Format::Text) => builder
            .with_ansi(false)
            .with_writer(std::sync::Mutex::new(f))
            .init(),
        (None, Format::Json) => builder.json().with_writer(std::io::stderr).init(),
        (None, Format::Text) => {
            use std::io::IsTerminal;
            let ansi = std::io::stderr().is_terminal();
            builder.with_ansi(ansi).with_writer(std::io::stderr).init()
        }
    }
}
