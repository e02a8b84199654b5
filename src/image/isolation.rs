//! How confined the checkpointed processes are, as CRIU's images themselves say — not as a
//! manifest or record (which an archive's author writes) claims. CRIU restores namespaces,
//! credentials, capabilities and seccomp from these images, so this is what a restore gives
//! the processes, whatever the restore bundle says; restore compares the two.

use serde::Serialize;

use super::contents::Contents;
use super::criu_image::Fields;

/// Namespace kinds by their field in task_kobj_ids_entry (core.proto), with OCI's names.
const NAMESPACES: [(u32, &str); 8] = [
    (5, "pid"),
    (6, "network"),
    (7, "ipc"),
    (8, "uts"),
    (9, "mount"),
    (10, "user"),
    (11, "cgroup"),
    (12, "time"),
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
}

impl Isolation {
    /// Reads inventory, pstree, ids and core images. `Err` says which image is unreadable.
    pub fn from_contents(c: &Contents) -> Result<Self, String> {
        let inventory = c
            .image("inventory.img")
            .and_then(|i| i.into_iter().next())
            .ok_or("inventory.img is not readable")?;
        let root_ids = inventory
            .message(3)
            .ok_or("inventory.img names no namespaces of the dumping host (root_ids)")?;
        let tree = c
            .image("pstree.img")
            .filter(|t| !t.is_empty())
            .ok_or("pstree.img is not a readable process tree")?;
        // seccomp.img: every filter program, each naming the one loaded before it.
        let filters: Vec<Fields> = c
            .image("seccomp.img")
            .and_then(|v| v.into_iter().next())
            .map(|entry| entry.all_bytes(1).filter_map(Fields::parse).collect())
            .unwrap_or_default();
        let mut iso = Isolation::default();
        let mut host = std::collections::BTreeSet::new();
        for p in &tree {
            let pid = p.u64(1) as u32;
            let core = c
                .image(&format!("core-{pid}.img"))
                .and_then(|v| v.into_iter().next())
                .ok_or(format!("core-{pid}.img is not readable"))?;
            let state = core.message(3).map_or(0, |tc| tc.u64(1));
            if state != super::contents::TASK_ALIVE && state != super::contents::TASK_STOPPED {
                continue; // zombies and helpers run nothing
            }
            let ids = c.task_ids(pid).ok_or(format!(
                "the namespace ids of process {pid} are not readable"
            ))?;
            for (field, name) in NAMESPACES {
                let (Some(mine), Some(hosts)) = (present(&ids, field), present(&root_ids, field))
                else {
                    continue;
                };
                if mine == hosts {
                    host.insert(name);
                }
            }
            for tid in p.varints(5).map(|t| t as u32) {
                let tcore = if tid == pid {
                    Some(core.clone())
                } else {
                    c.image(&format!("core-{tid}.img"))
                        .and_then(|v| v.into_iter().next())
                };
                let tcore = tcore.ok_or(format!("core-{tid}.img is not readable"))?;
                let mut t = thread_creds(pid, tid, &tcore)?;
                t.seccomp_filters = filter_chain(&filters, &tcore, tid)?;
                iso.threads.push(t);
            }
        }
        for (field, name) in NAMESPACES {
            if present(&root_ids, field).is_none() {
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

/// The digests of a thread's filter programs: from the one its core names, back along `prev`.
fn filter_chain(filters: &[Fields], core: &Fields, tid: u32) -> Result<Vec<String>, String> {
    use sha2::{Digest, Sha256};
    let Some(thread) = core.message(5) else {
        return Ok(Vec::new());
    };
    let mode = present(&thread, 11).unwrap_or(0);
    let mut at = match (mode, present(&thread, 12)) {
        (SECCOMP_FILTER, Some(i)) => i as usize,
        _ => return Ok(Vec::new()),
    };
    let mut chain = Vec::new();
    loop {
        let f = filters.get(at).ok_or(format!(
            "core-{tid}.img names seccomp filter {at}, which seccomp.img lacks"
        ))?;
        let prog = f.bytes(1).unwrap_or_default();
        chain.push(
            Sha256::digest(prog)
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect(),
        );
        match present(f, 2) {
            Some(prev) if chain.len() < filters.len() => at = prev as usize,
            Some(_) => return Err("seccomp.img: its filters' prev links loop".into()),
            None => return Ok(chain),
        }
    }
}

/// A varint field that is present (proto2 optional: absent is not 0).
fn present(f: &Fields, n: u32) -> Option<u64> {
    f.varints(n).next()
}

fn mask(words: impl Iterator<Item = u64>) -> u64 {
    words
        .take(2)
        .enumerate()
        .fold(0, |m, (i, w)| m | ((w & 0xffff_ffff) << (32 * i)))
}

fn thread_creds(pid: u32, tid: u32, core: &Fields) -> Result<ThreadCreds, String> {
    let thread = core
        .message(5)
        .ok_or(format!("core-{tid}.img has no thread_core"))?;
    let creds = thread
        .message(10)
        .ok_or(format!("core-{tid}.img has no credentials"))?;
    let four = |a, b, c, d| [a, b, c, d].map(|n| creds.u64(n) as u32);
    // CRIU before 3.x kept the seccomp mode in task_core; take it from there when the
    // thread has none.
    let seccomp_mode = present(&thread, 11)
        .or_else(|| core.message(3).and_then(|tc| present(&tc, 11)))
        .unwrap_or(0);
    Ok(ThreadCreds {
        pid,
        tid,
        uids: four(1, 3, 5, 7),
        gids: four(2, 4, 6, 8),
        inheritable: mask(creds.varints(9)),
        permitted: mask(creds.varints(10)),
        effective: mask(creds.varints(11)),
        bounding: mask(creds.varints(12)),
        ambient: mask(creds.varints(19)),
        seccomp_mode,
        seccomp_filters: Vec::new(),
        no_new_privs: creds.u64(18) != 0,
    })
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

    /// One process (pid 1) with `ids` (field, value) and credentials `creds`.
    fn contents(root: &[(u32, u64)], ids: &[(u32, u64)], creds: Vec<u8>, seccomp: u64) -> Contents {
        let mut c = Contents::default();
        let kobj = |v: &[(u32, u64)]| {
            msg(|m| {
                for (n, x) in v {
                    field_varint(*n, *x, m);
                }
            })
        };
        let inv = msg(|m| {
            field_varint(1, 2, m);
            field_bytes(3, &kobj(root), m);
        });
        c.add_small("inventory.img", inventory(&inv));
        let pstree = msg(|m| {
            field_varint(1, 1, m);
            field_varint(5, 1, m);
        });
        c.add_small("pstree.img", image(&[pstree]));
        c.add_small("ids-1.img", image(&[kobj(ids)]));
        let tc = msg(|m| field_varint(1, super::super::contents::TASK_ALIVE, m));
        let thread = msg(|m| {
            field_bytes(10, &creds, m);
            field_varint(11, seccomp, m);
        });
        let core = msg(|m| {
            field_varint(1, 1, m);
            field_bytes(3, &tc, m);
            field_bytes(5, &thread, m);
        });
        c.add_small("core-1.img", image(&[core]));
        c
    }

    fn creds(uid: u64, eff_lo: u64, eff_hi: u64) -> Vec<u8> {
        msg(|m| {
            for n in 1..=8 {
                field_varint(n, uid, m);
            }
            field_varint(11, eff_lo, m);
            field_varint(11, eff_hi, m);
            field_varint(18, 1, m);
        })
    }

    #[test]
    fn namespaces_shared_with_the_dumping_host_are_told_apart() {
        // pid and net of its own; ipc the host's.
        let root = [(5, 1), (6, 2), (7, 3)];
        let c = contents(&root, &[(5, 10), (6, 11), (7, 3)], creds(0, 0x1f, 0x1), 2);
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
        let mut c = contents(&[(5, 1)], &[(5, 2)], creds(0, 0, 0), 0);
        c.add_small("core-1.img", vec![1, 2, 3]);
        let e = Isolation::from_contents(&c).unwrap_err();
        assert!(e.contains("core-1.img"), "{e}");
    }
}
