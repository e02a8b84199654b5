//! How confined the checkpointed processes are, as CRIU's images themselves say — not as a
//! manifest or record (which an archive's author writes) claims. CRIU restores namespaces,
//! credentials, capabilities and seccomp from these images, so this is what a restore gives
//! the processes, whatever the restore bundle says; restore compares the two.

use serde::Serialize;

use criu_images::core::{Core_entry, Seccomp_mode, Task_kobj_ids_entry};
use criu_images::creds::Creds_entry;
use criu_images::inventory::Inventory_entry;
use criu_images::seccomp::{Seccomp_entry, Seccomp_filter};

use super::contents::Contents;

/// A namespace id of task_kobj_ids_entry (core.proto); `None` when absent (proto2 optional:
/// absent is not 0).
type NsId = fn(&Task_kobj_ids_entry) -> Option<u32>;

/// Namespace kinds by their id in task_kobj_ids_entry, with OCI's names.
const NAMESPACES: [(NsId, &str); 8] = [
    (|i| i.pid_ns_id, "pid"),
    (|i| i.net_ns_id, "network"),
    (|i| i.ipc_ns_id, "ipc"),
    (|i| i.uts_ns_id, "uts"),
    (|i| i.mnt_ns_id, "mount"),
    (|i| i.user_ns_id, "user"),
    (|i| i.cgroup_ns_id, "cgroup"),
    (|i| i.time_ns_id, "time"),
];

/// SECCOMP_MODE_* (core.proto's seccomp_mode).
pub const SECCOMP_FILTER: u64 = 2;

/// One thread's credentials (creds_entry in creds.proto) and seccomp mode.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct ThreadCreds {
    pub pid: u32,
    pub tid: u32,
    /// uid, euid, suid, fsuid.
    pub uids: [u32; 4],
    /// gid, egid, sgid, fsgid.
    pub gids: [u32; 4],
    /// Capability sets as bit masks (bit N = capability N).
    pub effective: u64,
    pub permitted: u64,
    pub inheritable: u64,
    pub bounding: u64,
    pub ambient: u64,
    /// 0 none, 1 strict, 2 filter.
    pub seccomp_mode: u64,
    /// The SHA-256 of each seccomp filter program the thread runs under (seccomp.img),
    /// the last one loaded first.
    pub seccomp_filters: Vec<String>,
    pub no_new_privs: bool,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Isolation {
    /// Namespace kinds the tree has of its own: restore creates them anew.
    pub own_namespaces: Vec<String>,
    /// Namespace kinds some process shares with the host that dumped it: restore puts it in
    /// the restoring host's (CRIU's own) namespace of that kind.
    pub host_namespaces: Vec<String>,
    /// Every live thread's credentials.
    pub threads: Vec<ThreadCreds>,
    /// How CRIU locked the network during the dump, and will during the restore (the
    /// inventory's method): `iptables`, `nftables` or `skip`.
    pub network_lock: String,
}

impl Isolation {
    /// Reads inventory, pstree, ids and core images. `Err` says which image is unreadable.
    pub fn from_contents(c: &Contents) -> Result<Self, String> {
        let inventory: Inventory_entry = c
            .first("inventory.img")
            .ok_or("inventory.img is not readable")?;
        let network_lock = network_lock_name(&inventory);
        let root_ids = inventory
            .root_ids
            .into_option()
            .ok_or("inventory.img names no namespaces of the dumping host (root_ids)")?;
        let tree = c
            .tree()
            .filter(|t| !t.is_empty())
            .ok_or("pstree.img is not a readable process tree")?;
        // seccomp.img: every filter program, each naming the one loaded before it.
        let filters: Vec<Seccomp_filter> = c
            .first::<Seccomp_entry>("seccomp.img")
            .map(|e| e.seccomp_filters)
            .unwrap_or_default();
        let mut iso = Isolation {
            network_lock,
            ..Isolation::default()
        };
        let mut host = std::collections::BTreeSet::new();
        for p in &tree {
            let pid = p.pid();
            let core = c
                .core(pid)
                .ok_or(format!("core-{pid}.img is not readable"))?;
            let state = core.tc.as_ref().map_or(0, |tc| tc.task_state());
            if state != super::contents::TASK_ALIVE && state != super::contents::TASK_STOPPED {
                continue; // zombies and helpers run nothing
            }
            let ids = c.task_ids(pid).ok_or(format!(
                "the namespace ids of process {pid} are not readable"
            ))?;
            for (id, name) in NAMESPACES {
                if id(&ids).is_some() && id(&ids) == id(&root_ids) {
                    host.insert(name);
                }
            }
            for &tid in &p.threads {
                let tcore = if tid == pid {
                    Some(core.clone())
                } else {
                    c.core(tid)
                };
                let tcore = tcore.ok_or(format!("core-{tid}.img is not readable"))?;
                let mut t = thread_creds(pid, tid, &tcore)?;
                t.seccomp_filters = filter_chain(&filters, &tcore, tid)?;
                iso.threads.push(t);
            }
        }
        for (id, name) in NAMESPACES {
            if id(&root_ids).is_none() {
                continue;
            }
            if host.contains(name) {
                iso.host_namespaces.push(name.to_string());
            } else {
                iso.own_namespaces.push(name.to_string());
            }
        }
        Ok(iso)
    }
}

/// The inventory's network lock method by CRIU's name (its `NETWORK_LOCK_METHOD`); images
/// of a CRIU before the field restore with iptables.
fn network_lock_name(inventory: &Inventory_entry) -> String {
    match inventory.network_lock_method {
        None | Some(0) => "iptables".into(),
        Some(1) => "nftables".into(),
        Some(2) => "skip".into(),
        Some(n) => format!("unknown ({n})"),
    }
}

/// A thread's seccomp mode and the index of its last filter: from its thread core, or (CRIU
/// before 3.x) from the task core.
fn seccomp_of(core: &Core_entry) -> (u64, Option<u32>) {
    let mode = |m: Option<protobuf::EnumOrUnknown<Seccomp_mode>>| m.map(|m| m.value() as u64);
    match core.thread_core.as_ref() {
        Some(t) if t.seccomp_mode.is_some() => {
            (mode(t.seccomp_mode).unwrap_or(0), t.seccomp_filter)
        }
        _ => {
            let tc = core.tc.as_ref();
            (
                mode(tc.and_then(|tc| tc.old_seccomp_mode)).unwrap_or(0),
                tc.and_then(|tc| tc.old_seccomp_filter),
            )
        }
    }
}

/// The digests of a thread's filter programs: from the one its core names, back along `prev`.
fn filter_chain(
    filters: &[Seccomp_filter],
    core: &Core_entry,
    tid: u32,
) -> Result<Vec<String>, String> {
    use sha2::{Digest, Sha256};
    let mut at = match seccomp_of(core) {
        (SECCOMP_FILTER, Some(i)) => i as usize,
        _ => return Ok(Vec::new()),
    };
    let mut chain = Vec::new();
    loop {
        let f = filters.get(at).ok_or(format!(
            "core-{tid}.img names seccomp filter {at}, which seccomp.img lacks"
        ))?;
        chain.push(
            Sha256::digest(f.filter())
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect(),
        );
        match f.prev {
            Some(_) if chain.len() >= filters.len() => {
                return Err("seccomp.img: its filters' prev links loop".into())
            }
            Some(prev) => at = prev as usize,
            None => return Ok(chain),
        }
    }
}

/// A capability set as a bit mask (bit N = capability N) from CRIU's 32-bit words.
fn mask(words: &[u32]) -> u64 {
    words
        .iter()
        .take(2)
        .enumerate()
        .fold(0, |m, (i, w)| m | (u64::from(*w) << (32 * i)))
}

fn thread_creds(pid: u32, tid: u32, core: &Core_entry) -> Result<ThreadCreds, String> {
    let thread = core
        .thread_core
        .as_ref()
        .ok_or(format!("core-{tid}.img has no thread_core"))?;
    let creds: &Creds_entry = thread
        .creds
        .as_ref()
        .ok_or(format!("core-{tid}.img has no credentials"))?;
    Ok(ThreadCreds {
        pid,
        tid,
        uids: [creds.uid(), creds.euid(), creds.suid(), creds.fsuid()],
        gids: [creds.gid(), creds.egid(), creds.sgid(), creds.fsgid()],
        inheritable: mask(&creds.cap_inh),
        permitted: mask(&creds.cap_prm),
        effective: mask(&creds.cap_eff),
        bounding: mask(&creds.cap_bnd),
        ambient: mask(&creds.cap_amb),
        seccomp_mode: seccomp_of(core).0,
        seccomp_filters: Vec::new(),
        no_new_privs: creds.no_new_privs() != 0,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use criu_images::core::{Task_core_entry, Thread_core_entry};
    use criu_images::framing::{IMG_COMMON_MAGIC, INVENTORY_MAGIC};
    use criu_images::pstree::Pstree_entry;
    use protobuf::Message;

    fn image<M: Message>(msgs: &[M]) -> Vec<u8> {
        criu_images::encode(&[IMG_COMMON_MAGIC, 0x5027_3030], msgs)
    }

    /// Ids with the namespaces pid, net and ipc set as given.
    fn kobj(pid: u32, net: u32, ipc: u32) -> Task_kobj_ids_entry {
        let mut ids = Task_kobj_ids_entry::new();
        ids.set_pid_ns_id(pid);
        ids.set_net_ns_id(net);
        ids.set_ipc_ns_id(ipc);
        ids
    }

    /// One process (pid 1) with `ids` and credentials `creds`.
    fn contents(
        root: Task_kobj_ids_entry,
        ids: Task_kobj_ids_entry,
        creds: Creds_entry,
        seccomp: Seccomp_mode,
    ) -> Contents {
        let mut c = Contents::default();
        let mut inv = Inventory_entry::new();
        inv.set_img_version(2);
        inv.root_ids = Some(root).into();
        c.add_small(
            "inventory.img",
            criu_images::encode(&[INVENTORY_MAGIC], &[inv]),
        );
        let mut p = Pstree_entry::new();
        p.set_pid(1);
        p.threads = vec![1];
        c.add_small("pstree.img", image(&[p]));
        c.add_small("ids-1.img", image(&[ids]));
        let mut tc = Task_core_entry::new();
        tc.set_task_state(super::super::contents::TASK_ALIVE);
        let mut thread = Thread_core_entry::new();
        thread.creds = Some(creds).into();
        thread.set_seccomp_mode(seccomp);
        let mut core = Core_entry::new();
        core.tc = Some(tc).into();
        core.thread_core = Some(thread).into();
        c.add_small("core-1.img", image(&[core]));
        c
    }

    fn creds(uid: u32, eff_lo: u32, eff_hi: u32) -> Creds_entry {
        let mut c = Creds_entry::new();
        c.set_uid(uid);
        c.set_euid(uid);
        c.set_suid(uid);
        c.set_fsuid(uid);
        c.set_gid(uid);
        c.set_egid(uid);
        c.set_sgid(uid);
        c.set_fsgid(uid);
        c.cap_eff = vec![eff_lo, eff_hi];
        c.set_no_new_privs(1);
        c
    }

    #[test]
    fn namespaces_shared_with_the_dumping_host_are_told_apart() {
        // pid and net of its own; ipc the host's.
        let c = contents(
            kobj(1, 2, 3),
            kobj(10, 11, 3),
            creds(0, 0x1f, 0x1),
            Seccomp_mode::filter,
        );
        let iso = Isolation::from_contents(&c).unwrap();
        assert_eq!(iso.own_namespaces, vec!["pid", "network"]);
        assert_eq!(iso.host_namespaces, vec!["ipc"]);
        let t = &iso.threads[0];
        assert_eq!(t.uids, [0; 4]);
        assert_eq!(t.effective, 0x1f | (1 << 32));
        assert_eq!(t.seccomp_mode, SECCOMP_FILTER);
        assert!(t.no_new_privs);
    }

    #[test]
    fn unreadable_images_are_named() {
        let mut c = contents(
            kobj(1, 0, 0),
            kobj(2, 0, 0),
            creds(0, 0, 0),
            Seccomp_mode::disabled,
        );
        c.add_small("core-1.img", vec![1, 2, 3]);
        let e = Isolation::from_contents(&c).unwrap_err();
        assert!(e.contains("core-1.img"), "{e}");
    }
}
