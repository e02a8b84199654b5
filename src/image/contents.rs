//! What CRIU's images say about a checkpoint: the process tree with commands and open files,
//! TCP connections, and which image files a restore needs. Built from an image directory or
//! from the small images met while reading an archive.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{Ipv4Addr, Ipv6Addr};
use std::path::Path;

use serde::Serialize;

use super::criu_image::{messages, Fields};
use super::error::{ImageError, Result};
use super::layout;
use super::manifest::Manifest;
use super::read::{read_archive, Flow, Input};
use super::record::RECORD_FILE;

/// The volumes' index, as image-directory names go.
const VOLUMES_INDEX: &str = "volumes/index.json";

/// Small images larger than this are not read into memory.
const MAX_SMALL: u64 = 16 << 20;

#[derive(Debug, Default)]
pub struct Contents {
    /// Every file name (image-directory names).
    pub names: BTreeSet<String>,
    small: BTreeMap<String, Vec<u8>>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Process {
    pub pid: u32,
    pub ppid: u32,
    pub pgid: u32,
    pub sid: u32,
    pub threads: Vec<u32>,
    pub command: String,
    /// alive, zombie, stopped or helper (core's task_state).
    pub state: String,
    pub files: Vec<OpenFile>,
}

/// CRIU's task states (criu/include/pid.h, compel's task-state.h); a zombie is dumped as
/// TASK_DEAD. Zombies and helpers have no memory.
pub(super) const TASK_ALIVE: u64 = 0x01;
const TASK_DEAD: u64 = 0x02;
pub(super) const TASK_STOPPED: u64 = 0x03;
const TASK_ZOMBIE: u64 = 0x06;
const TASK_HELPER: u64 = 0x80;

fn state_name(s: u64) -> String {
    match s {
        TASK_ALIVE => "alive",
        TASK_DEAD | TASK_ZOMBIE => "zombie",
        TASK_STOPPED => "stopped",
        TASK_HELPER => "helper",
        _ => "unknown",
    }
    .to_string()
}

#[derive(Debug, Clone, Serialize)]
pub struct OpenFile {
    pub fd: u32,
    pub kind: String,
    pub what: String,
    /// For an inet socket: the same, decoded (listed apart as the connections).
    #[serde(skip)]
    pub socket: Option<Socket>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Socket {
    pub protocol: String,
    pub local: String,
    pub remote: String,
    pub state: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct Connection {
    pub pid: u32,
    pub fd: u32,
    #[serde(flatten)]
    pub socket: Socket,
}

/// The TCP (and UDP) sockets among the processes' open files.
pub fn connections(processes: &[Process]) -> Vec<Connection> {
    processes
        .iter()
        .flat_map(|p| {
            p.files.iter().filter_map(|f| {
                Some(Connection {
                    pid: p.pid,
                    fd: f.fd,
                    socket: f.socket.clone()?,
                })
            })
        })
        .collect()
}

impl Contents {
    /// Whether a file is one of the small images read for inspection and verification.
    pub fn wants(name: &str, size: u64) -> bool {
        size <= MAX_SMALL
            && (matches!(
                name,
                "pstree.img"
                    | "inventory.img"
                    | "files.img"
                    | "seccomp.img"
                    | RECORD_FILE
                    | VOLUMES_INDEX
            ) || ["core-", "ids-", "fdinfo-", "pagemap-"]
                .iter()
                .any(|p| name.starts_with(p)))
    }

    pub fn add_name(&mut self, name: &str) {
        self.names.insert(name.to_string());
    }

    pub fn add_small(&mut self, name: &str, data: Vec<u8>) {
        self.small.insert(name.to_string(), data);
    }

    /// Reads an archive (fully checked, see `read`), keeping the small images; with
    /// `metadata_only`, stops where the bulk (memory pages, rootfs diff, volumes) begins.
    pub fn from_archive(
        input: Input,
        quiet: bool,
        metadata_only: bool,
    ) -> Result<(Manifest, Self)> {
        let label = input.label.clone();
        let mut c = Contents::default();
        let m = read_archive(
            input,
            quiet,
            |_| Ok(()),
            |entry, data| {
                if metadata_only && layout::is_bulk(&entry.name) {
                    return Ok(Flow::Stop);
                }
                let name = layout::dir_name(&entry.name).unwrap_or_default();
                if Self::wants(&name, entry.size) {
                    let mut buf = Vec::with_capacity(entry.size as usize);
                    data.read_to_end(&mut buf).map_err(|e| ImageError::Broken {
                        archive: label.clone(),
                        reason: format!("entry {:?}: truncated or corrupt: {e}", entry.name),
                    })?;
                    c.add_small(&name, buf);
                }
                Ok(Flow::Continue)
            },
        )?;
        for e in &m.entries {
            if let Ok(n) = layout::dir_name(&e.name) {
                c.add_name(&n);
            }
        }
        Ok((m, c))
    }

    pub fn from_dir(dir: &Path) -> Result<Self> {
        let mut c = Contents::default();
        let rd = std::fs::read_dir(dir).map_err(ImageError::io(dir, "read directory"))?;
        for e in rd.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            let Ok(md) = e.metadata() else { continue };
            if !md.is_file() {
                continue;
            }
            if Self::wants(&name, md.len()) {
                let data = std::fs::read(e.path()).map_err(ImageError::io(e.path(), "read"))?;
                c.add_small(&name, data);
            }
            c.add_name(&name);
        }
        if let Ok(data) = std::fs::read(dir.join(VOLUMES_INDEX)) {
            c.add_small(VOLUMES_INDEX, data);
        }
        Ok(c)
    }

    /// The mount destinations whose contents the checkpoint holds, from its volumes index
    /// (what a restore with `--with-volumes` would write), not from the manifest's summary.
    pub fn volume_destinations(&self) -> Vec<String> {
        self.small
            .get(VOLUMES_INDEX)
            .and_then(|j| serde_json::from_slice::<super::volumes::Index>(j).ok())
            .map(|i| i.destinations())
            .unwrap_or_default()
    }

    pub fn record_json(&self) -> Option<&[u8]> {
        self.small.get(RECORD_FILE).map(Vec::as_slice)
    }

    pub(super) fn image(&self, name: &str) -> Option<Vec<Fields>> {
        let img = self.small.get(name)?;
        messages(img)?.into_iter().map(Fields::parse).collect()
    }

    /// The process tree (pstree.img), each with its command (core) and open files (fdinfo,
    /// files.img).
    pub fn processes(&self) -> Vec<Process> {
        let files = self.files();
        // Files saved as external (the container's stdio on the host) by CRIU's key.
        let external: BTreeMap<String, String> = self
            .record_json()
            .and_then(|j| serde_json::from_slice::<super::record::Record>(j).ok())
            .map(|r| r.stdio.into_iter().map(|f| (f.key, f.path)).collect())
            .unwrap_or_default();
        self.image("pstree.img")
            .unwrap_or_default()
            .iter()
            .map(|p| {
                let pid = p.u64(1) as u32;
                let core = self.image(&format!("core-{pid}.img")).unwrap_or_default();
                let core = core.first();
                let tc = core.and_then(|c| c.message(3));
                let command = tc.as_ref().and_then(|tc| tc.string(6)).unwrap_or_default();
                let state = state_name(tc.as_ref().map_or(0, |tc| tc.u64(1)));
                let files_id = self.files_id(pid);
                let fds = files_id
                    .and_then(|id| self.image(&format!("fdinfo-{id}.img")))
                    .unwrap_or_default()
                    .iter()
                    .map(|fd| {
                        let (kind, mut what, socket) =
                            describe_fd(fd.u64(3), files.get(&fd.u64(1)));
                        // CRIU names the container's stdio by its key (`file[18:3]`);
                        // the record keeps the path it had.
                        if let Some(path) = external.get(&what) {
                            what = format!("{path} (the container's stdio, outside the image)");
                        }
                        OpenFile {
                            fd: fd.u64(4) as u32,
                            kind,
                            what,
                            socket,
                        }
                    })
                    .collect();
                Process {
                    pid,
                    ppid: p.u64(2) as u32,
                    pgid: p.u64(3) as u32,
                    sid: p.u64(4) as u32,
                    threads: if state == "zombie" {
                        Vec::new()
                    } else {
                        p.varints(5).map(|t| t as u32).collect()
                    },
                    command,
                    state,
                    files: fds,
                }
            })
            .collect()
    }

    /// files.img by file id.
    fn files(&self) -> BTreeMap<u64, Fields> {
        self.image("files.img")
            .unwrap_or_default()
            .into_iter()
            .map(|f| (f.u64(2), f))
            .collect()
    }

    /// A process's kernel-object and namespace ids (task_kobj_ids_entry): in ids-PID.img
    /// (CRIU 4), or in its core image.
    pub(super) fn task_ids(&self, pid: u32) -> Option<Fields> {
        if let Some(ids) = self.image(&format!("ids-{pid}.img")) {
            return ids.into_iter().next();
        }
        let core = self.image(&format!("core-{pid}.img"))?;
        core.into_iter().next()?.message(4)
    }

    /// The id of a process's file table.
    fn files_id(&self, pid: u32) -> Option<u64> {
        self.task_ids(pid).map(|ids| ids.u64(2))
    }

    /// The first file a restore needs that is missing or unreadable, if any.
    pub fn missing(&self) -> Option<String> {
        for need in [RECORD_FILE, "inventory.img", "pstree.img"] {
            if !self.names.contains(need) {
                return Some(format!("{need} is missing"));
            }
        }
        let tree = match self.image("pstree.img") {
            Some(t) if !t.is_empty() => t,
            _ => return Some("pstree.img is not a readable process tree".into()),
        };
        for p in &tree {
            let pid = p.u64(1);
            let core = format!("core-{pid}.img");
            if !self.names.contains(&core) {
                return Some(format!("{core} is missing (process {pid})"));
            }
            let state = self
                .image(&core)
                .and_then(|c| c.first().and_then(|c| c.message(3)).map(|tc| tc.u64(1)));
            if matches!(state, Some(TASK_DEAD | TASK_ZOMBIE | TASK_HELPER)) {
                // A zombie or helper: no memory, no files, and no meaningful thread list.
                continue;
            }
            for t in p.varints(5).filter(|t| *t != pid) {
                let core = format!("core-{t}.img");
                if !self.names.contains(&core) {
                    return Some(format!("{core} is missing (thread {t} of process {pid})"));
                }
            }
            for kind in ["mm", "pagemap"] {
                let f = format!("{kind}-{pid}.img");
                if !self.names.contains(&f) {
                    return Some(format!("{f} is missing (process {pid})"));
                }
            }
            let head = self.image(&format!("pagemap-{pid}.img"));
            let Some(pages_id) = head.as_ref().and_then(|h| h.first()).map(|h| h.u64(1)) else {
                return Some(format!("pagemap-{pid}.img is not readable"));
            };
            let pages = format!("pages-{pages_id}.img");
            if !self.names.contains(&pages) {
                return Some(format!("{pages} is missing (the memory of process {pid})"));
            }
            if let Some(id) = self.files_id(pid as u32) {
                let f = format!("fdinfo-{id}.img");
                if !self.names.contains(&f) {
                    return Some(format!("{f} is missing (the open files of process {pid})"));
                }
            }
        }
        None
    }
}

/// An inet_sk_entry (sk-inet.proto).
fn inet_socket(sk: &Fields) -> Socket {
    Socket {
        protocol: match sk.u64(5) {
            6 => "tcp".into(),
            17 => "udp".into(),
            n => format!("proto {n}"),
        },
        local: address(sk.u64(3), &sk.varints(11).collect::<Vec<_>>(), sk.u64(7)),
        remote: address(sk.u64(3), &sk.varints(12).collect::<Vec<_>>(), sk.u64(8)),
        state: tcp_state(sk.u64(6)),
    }
}

/// A file's kind (fdinfo.proto's fd_types), what it is, and the socket an inet socket is.
fn describe_fd(kind: u64, file: Option<&Fields>) -> (String, String, Option<Socket>) {
    let name = match kind {
        1 => "file",
        2 => "pipe",
        3 => "fifo",
        4 => "inet socket",
        5 => "unix socket",
        6 => "eventfd",
        7 => "eventpoll",
        8 => "inotify",
        9 => "signalfd",
        10 => "packet socket",
        11 => "tty",
        12 => "fanotify",
        13 => "netlink socket",
        14 => "namespace",
        15 => "tun",
        16 => "external",
        17 => "timerfd",
        18 => "memfd",
        19 => "bpf map",
        20 => "pidfd",
        65534 => "controlling tty",
        _ => "other",
    };
    let what = match (kind, file) {
        (1, Some(f)) => f.message(3).and_then(|r| r.string(6)).unwrap_or_default(),
        (2, Some(f)) => f
            .message(18)
            .map(|p| format!("pipe:[{}]", p.u64(2)))
            .unwrap_or_default(),
        (3, Some(f)) => f
            .message(17)
            .map(|p| format!("fifo:[{}]", p.u64(2)))
            .unwrap_or_default(),
        (4, Some(f)) => {
            let socket = f.message(4).map(|sk| inet_socket(&sk));
            let what = socket
                .as_ref()
                .map(|s| format!("{} {} -> {} {}", s.protocol, s.local, s.remote, s.state))
                .unwrap_or_default();
            return (name.to_string(), what, socket);
        }
        (16, Some(f)) => f
            .message(15)
            .map(|e| format!("external {}", e.u64(1)))
            .unwrap_or_default(),
        _ => String::new(),
    };
    (name.to_string(), what, None)
}

/// An address as CRIU saves it: the raw in_addr/in6_addr words, in memory order.
fn address(family: u64, words: &[u64], port: u64) -> String {
    let bytes: Vec<u8> = words
        .iter()
        .flat_map(|w| (*w as u32).to_le_bytes())
        .collect();
    match (family, bytes.len()) {
        (2, 4..) => format!(
            "{}:{port}",
            Ipv4Addr::new(bytes[0], bytes[1], bytes[2], bytes[3])
        ),
        (10, 16..) => {
            let a = Ipv6Addr::from(<[u8; 16]>::try_from(&bytes[..16]).unwrap_or([0; 16]));
            match a.to_ipv4_mapped() {
                Some(v4) => format!("{v4}:{port}"),
                None => format!("[{a}]:{port}"),
            }
        }
        (2, _) => format!("0.0.0.0:{port}"),
        _ => format!("[::]:{port}"),
    }
}

fn tcp_state(s: u64) -> String {
    match s {
        1 => "ESTABLISHED",
        2 => "SYN_SENT",
        3 => "SYN_RECV",
        4 => "FIN_WAIT1",
        5 => "FIN_WAIT2",
        6 => "TIME_WAIT",
        7 => "CLOSE",
        8 => "CLOSE_WAIT",
        9 => "LAST_ACK",
        10 => "LISTEN",
        11 => "CLOSING",
        _ => "UNKNOWN",
    }
    .to_string()
}

#[cfg(test)]
mod tests {
    use super::super::criu_image::build::*;
    use super::*;

    fn msg(f: impl FnOnce(&mut Vec<u8>)) -> Vec<u8> {
        let mut m = Vec::new();
        f(&mut m);
        m
    }

    /// A one-process checkpoint: pid 1 "sh" with fd 3 an established TCP socket.
    fn contents() -> Contents {
        let mut c = Contents::default();
        let pstree = msg(|m| {
            field_varint(1, 1, m);
            field_varint(2, 0, m);
            field_varint(5, 1, m);
        });
        let tc = msg(|m| {
            field_varint(1, TASK_ALIVE, m);
            field_bytes(6, b"sh", m);
        });
        let ids = msg(|m| field_varint(2, 7, m));
        let core = msg(|m| {
            field_varint(1, 1, m);
            field_bytes(3, &tc, m);
            field_bytes(4, &ids, m);
        });
        let fdinfo = msg(|m| {
            field_varint(1, 42, m);
            field_varint(3, 4, m);
            field_varint(4, 3, m);
        });
        let sk = msg(|m| {
            field_varint(3, 2, m);
            field_varint(5, 6, m);
            field_varint(6, 1, m);
            field_varint(7, 5000, m);
            field_varint(8, 40000, m);
            field_varint(11, u64::from(u32::from_le_bytes([127, 0, 0, 1])), m);
            field_varint(12, u64::from(u32::from_le_bytes([127, 0, 0, 2])), m);
        });
        let file = msg(|m| {
            field_varint(1, 4, m);
            field_varint(2, 42, m);
            field_bytes(4, &sk, m);
        });
        let head = msg(|m| field_varint(1, 9, m));
        c.add_small("pstree.img", image(&[pstree]));
        c.add_small("core-1.img", image(&[core]));
        c.add_small("fdinfo-7.img", image(&[fdinfo]));
        c.add_small("files.img", image(&[file]));
        c.add_small("pagemap-1.img", image(&[head]));
        for n in [
            RECORD_FILE,
            "inventory.img",
            "pstree.img",
            "core-1.img",
            "mm-1.img",
            "pagemap-1.img",
            "fdinfo-7.img",
            "files.img",
            "pages-9.img",
        ] {
            c.add_name(n);
        }
        c
    }

    #[test]
    fn reads_the_tree_files_and_connections() {
        let c = contents();
        let p = c.processes();
        assert_eq!(p.len(), 1);
        assert_eq!((p[0].pid, p[0].command.as_str()), (1, "sh"));
        assert_eq!(p[0].files[0].fd, 3);
        assert_eq!(
            p[0].files[0].what,
            "tcp 127.0.0.1:5000 -> 127.0.0.2:40000 ESTABLISHED"
        );
        let t = connections(&p);
        assert_eq!((t[0].pid, t[0].fd), (1, 3));
        assert_eq!(t[0].socket.local, "127.0.0.1:5000");
        assert_eq!(t[0].socket.state, "ESTABLISHED");
        assert_eq!(c.missing(), None);
    }

    #[test]
    fn a_zombie_needs_no_memory_images() {
        let mut c = contents();
        let pstree = msg(|m| {
            field_varint(1, 1, m);
            field_varint(5, 1, m);
        });
        let zombie = msg(|m| {
            field_varint(1, 5, m);
            field_varint(2, 1, m);
        });
        let tc = msg(|m| field_varint(1, TASK_DEAD, m));
        let core = msg(|m| field_bytes(3, &tc, m));
        c.add_small("pstree.img", image(&[pstree, zombie]));
        c.add_small("core-5.img", image(&[core]));
        c.add_name("core-5.img");
        assert_eq!(c.missing(), None);
        assert_eq!(c.processes()[1].state, "zombie");
        c.names.remove("core-5.img");
        assert!(c.missing().unwrap().starts_with("core-5.img is missing"));
        // A zombie's thread list is whatever CRIU left there.
        c.add_name("core-5.img");
        let zombie = msg(|m| {
            field_varint(1, 5, m);
            field_varint(5, 3_076_422_032, m);
        });
        let pstree = msg(|m| field_varint(1, 1, m));
        c.add_small("pstree.img", image(&[pstree, zombie]));
        assert_eq!(c.missing(), None);
    }

    #[test]
    fn names_the_first_missing_file() {
        let mut c = contents();
        c.names.remove("pages-9.img");
        assert_eq!(
            c.missing().unwrap(),
            "pages-9.img is missing (the memory of process 1)"
        );
        c.names.remove("core-1.img");
        assert!(c.missing().unwrap().starts_with("core-1.img is missing"));
    }
}
