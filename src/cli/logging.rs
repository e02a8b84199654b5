use std::path::{Path, PathBuf};

use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::EnvFilter;

#[derive(Clone, Copy, Debug, clap::ValueEnum)]
pub enum Format {
    Text,
    Json,
}

/// Logs go to `--log` (in json for `--log-format json`, which podman and containerd read),
/// else stderr.
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
    let r = match (file, format) {
        (Some(f), Format::Json) => builder
            .event_format(RuncJson)
            .with_writer(std::sync::Mutex::new(f))
            .try_init(),
        (Some(f), Format::Text) => builder
            .with_ansi(false)
            .with_writer(std::sync::Mutex::new(f))
            .try_init(),
        (None, Format::Json) => builder
            .event_format(RuncJson)
            .with_writer(std::io::stderr)
            .try_init(),
        (None, Format::Text) => {
            use std::io::IsTerminal;
            let ansi = std::io::stderr().is_terminal();
            builder
                .with_ansi(ansi)
                .with_writer(std::io::stderr)
                .try_init()
        }
    };
    // A second init (after a usage error was logged) keeps the first.
    drop(r);
}

/// `--log` and `--log-format` read from a command line clap refused, so that the refusal
/// reaches the log too.
pub fn target_in(args: &[std::ffi::OsString]) -> (Option<PathBuf>, Format) {
    let mut log = None;
    let mut format = Format::Text;
    let mut it = args.iter().filter_map(|a| a.to_str());
    while let Some(a) = it.next() {
        let (name, value) = match a.split_once('=') {
            Some((n, v)) => (n, Some(v.to_string())),
            None => (a, None),
        };
        let mut value = || value.clone().or_else(|| it.next().map(String::from));
        match name {
            "--log" => log = value().map(PathBuf::from),
            "--log-format" if value().as_deref() == Some("json") => format = Format::Json,
            "--" => break,
            _ => {}
        }
    }
    (log, format)
}

/// runc's (logrus's) json lines: `{"level":"error","msg":"…","time":"…"}`, the event's other
/// fields beside them. containerd's shim takes the last `error` line as the runtime's error.
struct RuncJson;

impl<S, N> FormatEvent<S, N> for RuncJson
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        _ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> std::fmt::Result {
        let mut fields = Fields(serde_json::Map::new());
        event.record(&mut fields);
        let mut line = fields.0;
        let level = match *event.metadata().level() {
            Level::ERROR => "error",
            Level::WARN => "warning",
            Level::INFO => "info",
            Level::DEBUG => "debug",
            Level::TRACE => "trace",
        };
        line.insert("level".into(), level.into());
        line.insert(
            "time".into(),
            chrono::Utc::now()
                .to_rfc3339_opts(chrono::SecondsFormat::Nanos, true)
                .into(),
        );
        line.entry("msg").or_insert_with(|| "".into());
        writeln!(writer, "{}", serde_json::Value::Object(line))
    }
}

/// An event's fields as json values; `message` is logrus's `msg`.
struct Fields(serde_json::Map<String, serde_json::Value>);

impl Fields {
    fn put(&mut self, field: &Field, value: serde_json::Value) {
        let key = match field.name() {
            "message" => "msg",
            other => other,
        };
        self.0.insert(key.to_string(), value);
    }
}

impl Visit for Fields {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.put(field, value.into());
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.put(field, value.into());
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.put(field, value.into());
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.put(field, value.into());
    }
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.put(field, format!("{value:?}").into());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_log_in_a_refused_command_line() {
        let args: Vec<std::ffi::OsString> =
            ["--log", "/l", "--log-format=json", "restore", "--bogus"]
                .iter()
                .map(Into::into)
                .collect();
        let (log, format) = target_in(&args);
        assert_eq!(log.as_deref(), Some(Path::new("/l")));
        assert!(matches!(format, Format::Json));
    }
}
