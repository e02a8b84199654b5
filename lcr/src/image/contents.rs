//! What CRIU's images say about a checkpoint: the process tree with commands and open files,
//! TCP connections, and which image files a restore needs. Built from an image directory or
//! from the small images met while reading an archive.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{Ipv4Addr, Ipv6Addr};
use std::path::Path;

use serde::Serialize;

use super::error::{ImageError, Result};
use super::layout;
use super::manifest::Manifest;
use super::read::{read_archive, Flow, Input};
use super::record::RECORD_FILE;
use criu_images::core::{Core_entry, Task_kobj_ids_entry};
use criu_images::fdinfo::{Fd_types, Fdinfo_entry, File_entry};
use criu_images::pagemap::Pagemap_head;
use criu_images::pstree::Pstree_entry;
use criu_images::sk_inet::Inet_sk_entry;
use protobuf::Message;

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

/// CRIU's task states (criu/include/pid.h, compel's task-state.h; core.proto has them as a
/// plain number); a zombie is dumped as TASK_DEAD. Zombies and helpers have no memory.
pub(super) const TASK_ALIVE: u32 = 0x01;
const TASK_DEAD: u32 = 0x02;
pub(super) const TASK_STOPPED: u32 = 0x03;
const TASK_ZOMBIE: u32 = 0x06;
const TASK_HELPER: u32 = 0x80;

fn state_name(s: u32) -> String {
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

    /// The messages of a small image, decoded; `None` when it is absent or unreadable.
    pub(super) fn image<M: Message>(&self, name: &str) -> Option<Vec<M>> {
        criu_images::decode(self.small.get(name)?).ok()
    }

    /// The first message of a small image (the only one, or the head of the others).
    pub(super) fn first<M: Message>(&self, name: &str) -> Option<M> {
        criu_images::decode_one(self.small.get(name)?).ok()
    }

    pub(super) fn core(&self, pid: u32) -> Option<Core_entry> {
        self.first(&format!("core-{pid}.img"))
    }

    pub(super) fn tree(&self) -> Option<Vec<Pstree_entry>> {
        self.image("pstree.img")
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
        let open_file = |fd: &Fdinfo_entry| {
            let (kind, mut what, socket) = describe_fd(fd.type_(), files.get(&fd.id()));
            // CRIU names the container's stdio by its key (`file[18:3]`); the record keeps
            // the path it had.
            if let Some(path) = external.get(&what) {
                what = format!("{path} (the container's stdio, outside the image)");
            }
            OpenFile {
                fd: fd.fd(),
                kind,
                what,
                socket,
            }
        };
        self.tree()
            .unwrap_or_default()
            .iter()
            .map(|p| {
                let pid = p.pid();
                let tc = self.core(pid).and_then(|c| c.tc.into_option());
                let command = tc
                    .as_ref()
                    .map(|tc| tc.comm().to_string())
                    .unwrap_or_default();
                let state = state_name(tc.as_ref().map_or(0, |tc| tc.task_state()));
                let files: Vec<OpenFile> = self
                    .files_id(pid)
                    .and_then(|id| self.image::<Fdinfo_entry>(&format!("fdinfo-{id}.img")))
                    .unwrap_or_default()
                    .iter()
                    .map(open_file)
                    .collect();
                Process {
                    pid,
                    ppid: p.ppid(),
                    pgid: p.pgid(),
                    sid: p.sid(),
                    threads: if state == "zombie" {
                        Vec::new()
                    } else {
                        p.threads.clone()
                    },
                    command,
                    state,
                    files,
                }
            })
            .collect()
    }

    /// files.img by file id.
    fn files(&self) -> BTreeMap<u32, File_entry> {
        self.image::<File_entry>("files.img")
            .unwrap_or_default()
            .into_iter()
            .map(|f| (f.id(), f))
            .collect()
    }

    /// A process's kernel-object and namespace ids: in ids-PID.img (CRIU 4), or in its core
    /// image.
    pub(super) fn task_ids(&self, pid: u32) -> Option<Task_kobj_ids_entry> {
        if let Some(ids) = self.first(&format!("ids-{pid}.img")) {
            return Some(ids);
        }
        self.core(pid)?.ids.into_option()
    }

    /// The id of a process's file table.
    fn files_id(&self, pid: u32) -> Option<u32> {
        self.task_ids(pid).map(|ids| ids.files_id())
    }

    /// The first file a restore needs that is missing or unreadable, if any.
    pub fn missing(&self) -> Option<String> {
        for need in [RECORD_FILE, "inventory.img", "pstree.img"] {
            if !self.names.contains(need) {
                return Some(format!("{need} is missing"));
            }
        }
        let tree = match self.tree() {
            Some(t) if !t.is_empty() => t,
            _ => return Some("pstree.img is not a readable process tree".into()),
        };
        tree.iter().find_map(|p| self.missing_for(p))
    }

    /// What a restore of process `p` needs and lacks: the cores of its threads, its memory
    /// (mm, pagemap and the pages these name), its open files.
    fn missing_for(&self, p: &Pstree_entry) -> Option<String> {
        let pid = p.pid();
        let core = format!("core-{pid}.img");
        if !self.names.contains(&core) {
            return Some(format!("{core} is missing (process {pid})"));
        }
        let state = self
            .core(pid)
            .and_then(|c| c.tc.into_option())
            .map(|tc| tc.task_state());
        if matches!(state, Some(TASK_DEAD | TASK_ZOMBIE | TASK_HELPER)) {
            // A zombie or helper: no memory, no files, and no meaningful thread list.
            return None;
        }
        for t in p.threads.iter().filter(|t| **t != pid) {
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
        let Some(head) = self.first::<Pagemap_head>(&format!("pagemap-{pid}.img")) else {
            return Some(format!("pagemap-{pid}.img is not readable"));
        };
        let pages = format!("pages-{}.img", head.pages_id());
        if !self.names.contains(&pages) {
            return Some(format!("{pages} is missing (the memory of process {pid})"));
        }
        if let Some(id) = self.files_id(pid) {
            let f = format!("fdinfo-{id}.img");
            if !self.names.contains(&f) {
                return Some(format!("{f} is missing (the open files of process {pid})"));
            }
        }
        None
    }
}

fn inet_socket(sk: &Inet_sk_entry) -> Socket {
    Socket {
        protocol: match sk.proto() {
            6 => "tcp".into(),
            17 => "udp".into(),
            n => format!("proto {n}"),
        },
        local: address(sk.family(), &sk.src_addr, sk.src_port()),
        remote: address(sk.family(), &sk.dst_addr, sk.dst_port()),
        state: tcp_state(sk.state()),
    }
}

/// A file's kind, what it is, and the socket an inet socket is.
fn describe_fd(kind: Fd_types, file: Option<&File_entry>) -> (String, String, Option<Socket>) {
    use Fd_types::*;
    let name = match kind {
        REG => "file",
        PIPE => "pipe",
        FIFO => "fifo",
        INETSK => "inet socket",
        UNIXSK => "unix socket",
        EVENTFD => "eventfd",
        EVENTPOLL => "eventpoll",
        INOTIFY => "inotify",
        SIGNALFD => "signalfd",
        PACKETSK => "packet socket",
        TTY => "tty",
        FANOTIFY => "fanotify",
        NETLINKSK => "netlink socket",
        NS => "namespace",
        TUNF => "tun",
        EXT => "external",
        TIMERFD => "timerfd",
        MEMFD => "memfd",
        BPFMAP => "bpf map",
        PIDFD => "pidfd",
        CTL_TTY => "controlling tty",
        _ => "other",
    };
    let Some(f) = file else {
        return (name.to_string(), String::new(), None);
    };
    let what = match kind {
        REG => f.reg.name().to_string(),
        PIPE => f
            .pipe
            .as_ref()
            .map(|p| format!("pipe:[{}]", p.pipe_id()))
            .unwrap_or_default(),
        FIFO => f
            .fifo
            .as_ref()
            .map(|p| format!("fifo:[{}]", p.pipe_id()))
            .unwrap_or_default(),
        INETSK => {
            let socket = f.isk.as_ref().map(inet_socket);
            let what = socket
                .as_ref()
                .map(|s| format!("{} {} -> {} {}", s.protocol, s.local, s.remote, s.state))
                .unwrap_or_default();
            return (name.to_string(), what, socket);
        }
        EXT => f
            .ext
            .as_ref()
            .map(|e| format!("external {}", e.id()))
            .unwrap_or_default(),
        _ => String::new(),
    };
    (name.to_string(), what, None)
}

/// An address as CRIU saves it: the raw in_addr/in6_addr words, in memory order.
fn address(family: u32, words: &[u32], port: u32) -> String {
    let bytes: Vec<u8> = words.iter().flat_map(|w| w.to_le_bytes()).collect();
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

fn tcp_state(s: u32) -> String {
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
    use super::*;
    use criu_images::core::Task_core_entry;
    use criu_images::framing::IMG_COMMON_MAGIC;

    /// An image of `msgs` (the type magic does not matter to lcr).
    fn image<M: Message>(msgs: &[M]) -> Vec<u8> {
        criu_images::encode(&[IMG_COMMON_MAGIC, 0x5027_3030], msgs)
    }

    fn pstree(pid: u32, ppid: u32, threads: &[u32]) -> Pstree_entry {
        let mut p = Pstree_entry::new();
        p.set_pid(pid);
        p.set_ppid(ppid);
        p.threads = threads.to_vec();
        p
    }

    fn core(state: u32, comm: Option<&str>, files_id: Option<u32>) -> Core_entry {
        let mut tc = Task_core_entry::new();
        tc.set_task_state(state);
        if let Some(c) = comm {
            tc.set_comm(c.into());
        }
        let mut core = Core_entry::new();
        core.tc = Some(tc).into();
        if let Some(id) = files_id {
            let mut ids = Task_kobj_ids_entry::new();
            ids.set_files_id(id);
            core.ids = Some(ids).into();
        }
        core
    }

    /// A one-process checkpoint: pid 1 "sh" with fd 3 an established TCP socket.
    fn contents() -> Contents {
        let mut c = Contents::default();
        let mut fdinfo = Fdinfo_entry::new();
        fdinfo.set_id(42);
        fdinfo.set_type(Fd_types::INETSK);
        fdinfo.set_fd(3);
        let mut sk = Inet_sk_entry::new();
        sk.set_family(2);
        sk.set_proto(6);
        sk.set_state(1);
        sk.set_src_port(5000);
        sk.set_dst_port(40000);
        sk.src_addr = vec![u32::from_le_bytes([127, 0, 0, 1])];
        sk.dst_addr = vec![u32::from_le_bytes([127, 0, 0, 2])];
        let mut file = File_entry::new();
        file.set_type(Fd_types::INETSK);
        file.set_id(42);
        file.isk = Some(sk).into();
        let mut head = Pagemap_head::new();
        head.set_pages_id(9);
        c.add_small("pstree.img", image(&[pstree(1, 0, &[1])]));
        c.add_small(
            "core-1.img",
            image(&[core(TASK_ALIVE, Some("sh"), Some(7))]),
        );
        c.add_small("fdinfo-7.img", image(&[fdinfo]));
        c.add_small("files.img", image(&[file]));
        // The head, then the entries, of another type (a vaddr no u32 holds).
        let mut pagemap = image(&[head]);
        let mut entry = criu_images::pagemap::Pagemap_entry::new();
        entry.set_vaddr(0x7fff_0000_0000);
        entry.set_nr_pages(4);
        pagemap.extend(criu_images::encode(&[], &[entry]));
        c.add_small("pagemap-1.img", pagemap);
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
        c.add_small(
            "pstree.img",
            image(&[pstree(1, 0, &[1]), pstree(5, 1, &[])]),
        );
        c.add_small("core-5.img", image(&[core(TASK_DEAD, None, None)]));
        c.add_name("core-5.img");
        assert_eq!(c.missing(), None);
        assert_eq!(c.processes()[1].state, "zombie");
        c.names.remove("core-5.img");
        assert!(c.missing().unwrap().starts_with("core-5.img is missing"));
        // A zombie's thread list is whatever CRIU left there.
        c.add_name("core-5.img");
        c.add_small(
            "pstree.img",
            image(&[pstree(1, 0, &[]), pstree(5, 0, &[3_076_422_032])]),
        );
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
