//! `lcr image inspect`: what a checkpoint holds. From an archive it reads the manifest and the
//! small CRIU images, which come before the memory pages, and stops there.

use std::fmt::Write as _;
use std::path::Path;

use serde::Serialize;

use super::contents::{connections, Connection, Contents, Process};
use super::error::{ImageError, Result};
use super::isolation::{Isolation, ThreadCreds};
use super::layout;
use super::manifest::{Manifest, Origin, Summary};
use super::read::Input;
use super::record::Record;

#[derive(Debug, Serialize)]
pub struct Inspection {
    pub source: String,
    #[serde(flatten)]
    pub origin: Origin,
    pub container: Summary,
    pub files: usize,
    pub bytes: u64,
    /// Whether a manifest with checksums came with it.
    pub manifest: bool,
    pub processes: Vec<Process>,
    pub connections: Vec<Connection>,
    /// Namespaces, credentials and seccomp as the CRIU images say (what a restore brings
    /// back), beside the manifest's summary, which the archive's author wrote.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub isolation: Option<Isolation>,
}

impl Inspection {
    fn new(source: String, m: &Manifest, contents: &Contents, manifest: bool) -> Self {
        let processes = contents.processes();
        let mut container = m.container.clone();
        // What the archive really holds, not what its manifest says it does.
        container.volumes = contents.volume_destinations();
        Self {
            source,
            origin: m.origin.clone(),
            container,
            files: m.entries.len(),
            bytes: m.total_size(),
            manifest,
            connections: connections(&processes),
            processes,
            isolation: Isolation::from_contents(contents).ok(),
        }
    }
}

/// Inspects an archive (`-` for standard input) or an image directory.
pub fn inspect(path: &Path) -> Result<Inspection> {
    if path.is_dir() {
        return inspect_dir(path);
    }
    let input = Input::open(path)?;
    let source = input.label.clone();
    let (m, contents) = Contents::from_archive(input, true, true)?;
    Ok(Inspection::new(source, &m, &contents, true))
}

/// An image directory: its manifest if it was unpacked from an archive, else the record.
fn inspect_dir(dir: &Path) -> Result<Inspection> {
    let contents = Contents::from_dir(dir)?;
    let label = dir.display().to_string();
    let (m, has_manifest) = match std::fs::read(dir.join(layout::MANIFEST)) {
        Ok(text) => (
            serde_json::from_slice::<Manifest>(&text).map_err(|e| ImageError::Broken {
                archive: label.clone(),
                reason: format!("{}: {e}", layout::MANIFEST),
            })?,
            true,
        ),
        Err(_) => {
            let record = Record::read(dir).map_err(|e| ImageError::Broken {
                archive: label.clone(),
                reason: e.to_string(),
            })?;
            (super::pack::manifest_of(dir, &record)?, false)
        }
    };
    Ok(Inspection::new(label, &m, &contents, has_manifest))
}

fn size(bytes: u64) -> String {
    const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    let mut v = bytes as f64;
    let mut unit = "B";
    for u in UNITS {
        if v < 1024.0 {
            break;
        }
        v /= 1024.0;
        unit = u;
    }
    format!("{v:.1} {unit}")
}

fn list_or_none(v: &[String]) -> String {
    if v.is_empty() {
        "none".into()
    } else {
        v.join(", ")
    }
}

/// The human-readable form: the summary, then the mounts, the processes with their files,
/// and the connections.
pub fn render(i: &Inspection) -> String {
    let mut s = String::new();
    render_summary(i, &mut s);
    render_mounts(&i.container, &mut s);
    render_processes(&i.processes, &mut s);
    render_connections(&i.connections, &mut s);
    s
}

fn render_summary(i: &Inspection, s: &mut String) {
    let c = &i.container;
    let mut line = |k: &str, v: String| {
        let _ = writeln!(s, "{k:<14}{v}");
    };
    line("Checkpoint", i.source.clone());
    line("Container", c.id.clone());
    line("Command", c.command.join(" "));
    line("Created", c.created.clone().unwrap_or_else(|| "-".into()));
    line("Checkpointed", c.checkpointed.clone());
    line(
        "Made with",
        format!(
            "lcr {}, CRIU {}, kernel {} {}, cgroup {}, page size {}",
            i.origin.lcr_version,
            i.origin.criu_version,
            i.origin.kernel,
            i.origin.arch,
            i.origin.cgroup_version,
            i.origin.page_size
        ),
    );
    match &i.isolation {
        Some(iso) => {
            line(
                "Namespaces",
                format!(
                    "own: {}; the dumping host's: {} (from the images)",
                    list_or_none(&iso.own_namespaces),
                    list_or_none(&iso.host_namespaces)
                ),
            );
            if let Some(t) = iso.threads.first() {
                line("Credentials", credentials(t));
            }
            line("Network lock", network_lock(&iso.network_lock));
        }
        None => line(
            "Namespaces",
            format!(
                "{} (as the manifest says; the images are unreadable)",
                c.namespaces.join(", ")
            ),
        ),
    }
    line("Cgroup", c.cgroup_path.clone());
    if let Some(l) = &c.limits {
        line("Limits", serde_json::to_string(l).unwrap_or_default());
    }
    line("Memory dumped", c.memory_dumped.map_or("-".into(), size));
    let checksums = if i.manifest {
        ", with checksums"
    } else {
        ", no manifest (checksums unknown)"
    };
    line(
        "Contents",
        format!("{} files, {}{checksums}", i.files, size(i.bytes)),
    );
    line(
        "Rootfs diff",
        if c.rootfs_diff { "yes" } else { "no" }.into(),
    );
    if !c.volumes.is_empty() {
        line("Volumes", c.volumes.join(", "));
    }
}

/// How the restore locks the container's network (the dump's method, which CRIU keeps).
fn network_lock(method: &str) -> String {
    match method {
        "skip" => "none (no inet socket, or the dump left the tree alive)".into(),
        m => format!("{m}, during the dump and the restore"),
    }
}

/// What the first thread of the init runs with, as the images say.
fn credentials(t: &ThreadCreds) -> String {
    format!(
        "pid {}: uid {} gid {}, effective capabilities: {}, seccomp {}, no_new_privs {}",
        t.pid,
        t.uids[1],
        t.gids[1],
        list_or_none(&crate::security::capability_names(t.effective)),
        match t.seccomp_mode {
            0 => "none",
            1 => "strict",
            _ => "filter",
        },
        if t.no_new_privs { "on" } else { "off" }
    )
}

fn render_mounts(c: &Summary, s: &mut String) {
    let _ = writeln!(s, "Mounts");
    for m in &c.mounts {
        let _ = writeln!(s, "  {:<20} {:<8} {}", m.destination, m.kind, m.source);
    }
}

fn render_processes(processes: &[Process], s: &mut String) {
    let _ = writeln!(s, "Processes");
    let _ = writeln!(
        s,
        "  {:>7} {:>7} {:>7} {:>7}  COMMAND",
        "PID", "PPID", "PGID", "SID"
    );
    for p in processes {
        let state = if p.state == "alive" {
            String::new()
        } else {
            format!(" ({})", p.state)
        };
        let threads = if p.threads.len() > 1 {
            format!(" ({} threads)", p.threads.len())
        } else {
            String::new()
        };
        let _ = writeln!(
            s,
            "  {:>7} {:>7} {:>7} {:>7}  {}{state}{threads}",
            p.pid, p.ppid, p.pgid, p.sid, p.command,
        );
        for f in &p.files {
            let _ = writeln!(s, "  {:>16} fd {:<4} {:<14} {}", "", f.fd, f.kind, f.what);
        }
    }
}

fn render_connections(connections: &[Connection], s: &mut String) {
    if connections.is_empty() {
        return;
    }
    let _ = writeln!(s, "Connections");
    for t in connections {
        let _ = writeln!(
            s,
            "  {} {} -> {} {} (pid {} fd {})",
            t.socket.protocol, t.socket.local, t.socket.remote, t.socket.state, t.pid, t.fd
        );
    }
}
