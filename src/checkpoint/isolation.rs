//! A restore never gives processes more than the restore bundle allows: CRIU brings back the
//! namespaces, credentials, capabilities and seccomp state recorded in the images, which for
//! an imported archive are whatever its author made them. What the images say
//! ([`Isolation`]) is compared with the bundle before CRIU runs.

use std::path::Path;

use oci_spec::runtime::Spec;

use crate::image::isolation::{Isolation, ThreadCreds, SECCOMP_FILTER};
use crate::security::{capability_mask, capability_names};
use crate::{Error, Result};

/// One capability set of a thread.
type CapSet = fn(&ThreadCreds) -> u64;

/// Refuses images whose processes would be less confined than `spec` allows.
pub fn check(iso: &Isolation, spec: &Spec, image_dir: &Path, config: &Path) -> Result<()> {
    let refuse = |reason: String| Error::Isolation {
        image: image_dir.to_path_buf(),
        config: config.to_path_buf(),
        reason,
    };
    for ns in crate::spec::namespaces(spec).filter(|n| n.path().is_none()) {
        let kind = crate::security::spec_name(&ns.typ());
        if iso.host_namespaces.contains(&kind) {
            return Err(refuse(format!(
                "the config asks for a {kind} namespace of its own, and the checkpoint's \
                 processes share the {kind} namespace of the host that made it (they would \
                 run in this host's)"
            )));
        }
    }
    let process = spec.process().as_ref();
    if let Some(caps) = process.and_then(|p| p.capabilities().as_ref()) {
        let mask = |set: &Option<_>| capability_mask(set.as_ref());
        let sets: [(&str, u64, CapSet); 5] = [
            ("effective", mask(caps.effective()), |t| t.effective),
            ("permitted", mask(caps.permitted()), |t| t.permitted),
            ("inheritable", mask(caps.inheritable()), |t| t.inheritable),
            ("bounding", mask(caps.bounding()), |t| t.bounding),
            ("ambient", mask(caps.ambient()), |t| t.ambient),
        ];
        for t in &iso.threads {
            for (set, allowed, of) in &sets {
                let extra = of(t) & !allowed;
                if extra != 0 {
                    return Err(refuse(format!(
                        "thread {} (process {}) holds {} in its {set} capabilities, which \
                         process.capabilities.{set} does not grant",
                        t.tid,
                        t.pid,
                        capability_names(extra).join(", ")
                    )));
                }
            }
        }
    }
    // Ids are comparable only without a user namespace (with one, CRIU records them as the
    // host sees them).
    let own_user_ns = iso.own_namespaces.iter().any(|n| n == "user");
    if let (Some(user), false) = (process.map(|p| p.user()), own_user_ns) {
        for t in &iso.threads {
            let kinds = [
                ("uid", "uid, euid, suid, fsuid", user.uid(), t.uids),
                ("gid", "gid, egid, sgid, fsgid", user.gid(), t.gids),
            ];
            for (kind, which, wanted, held) in kinds {
                if wanted != 0 && held.contains(&0) {
                    return Err(refuse(format!(
                        "thread {} (process {}) runs with {kind} 0 ({which}: {held:?}), and \
                         process.user.{kind} is {wanted}",
                        t.tid, t.pid
                    )));
                }
            }
        }
    }
    let profile = spec.linux().as_ref().and_then(|l| l.seccomp().as_ref());
    let seccomp = profile.is_some();
    // The filter itself: the one the config compiles to, and nothing else (a checkpoint's
    // own filter may allow what the config's forbids).
    let wanted = profile.map(crate::security::filter_digest).transpose()?;
    let nnp = process.and_then(|p| p.no_new_privileges()).unwrap_or(false);
    for t in &iso.threads {
        if seccomp && t.seccomp_mode != SECCOMP_FILTER {
            return Err(refuse(format!(
                "the config confines its processes with linux.seccomp, and thread {} (process \
                 {}) has no seccomp filter",
                t.tid, t.pid
            )));
        }
        if let Some(want) = &wanted {
            if t.seccomp_filters != [want.clone()] {
                return Err(refuse(format!(
                    "thread {} (process {}) runs under seccomp filters {:?}, not the one \
                     linux.seccomp compiles to ({})",
                    t.tid,
                    t.pid,
                    t.seccomp_filters
                        .iter()
                        .map(|d| &d[..12])
                        .collect::<Vec<_>>(),
                    &want[..12]
                )));
            }
        }
        if nnp && !t.no_new_privs {
            return Err(refuse(format!(
                "process.noNewPrivileges is set, and thread {} (process {}) lacks no_new_privs",
                t.tid, t.pid
            )));
        }
    }
    Ok(())
}
