//! A restore never gives processes more than the restore bundle allows: CRIU brings back the
//! namespaces, credentials, capabilities and seccomp state recorded in the images, which for
//! an imported archive are whatever its author made them. What the images say
//! ([`Isolation`]) is compared with the bundle before CRIU runs.

use std::path::Path;

use oci_spec::runtime::{Process, Spec};

use crate::image::isolation::{Isolation, ThreadCreds, SECCOMP_FILTER};
use crate::security::{capability_mask, capability_names};
use crate::{Error, Result};

/// One capability set of a thread.
type CapSet = fn(&ThreadCreds) -> u64;

/// Refuses images whose processes would be less confined than `spec` allows: namespaces,
/// capabilities, user and group ids, seccomp and no_new_privs, each compared in turn.
pub fn check(iso: &Isolation, spec: &Spec, image_dir: &Path, config: &Path) -> Result<()> {
    let process = spec.process().as_ref();
    let verdict = namespaces(iso, spec)
        .and_then(|()| capabilities(iso, process))
        .and_then(|()| ids(iso, process))
        .and_then(|()| seccomp(iso, spec, process));
    verdict.map_err(|reason| match reason {
        Denied::Refused(reason) => Error::Isolation {
            image: image_dir.to_path_buf(),
            config: config.to_path_buf(),
            reason,
        },
        Denied::Failed(e) => e,
    })
}

enum Denied {
    Refused(String),
    /// The comparison itself failed (the config's filter did not compile).
    Failed(Error),
}

type Verdict = std::result::Result<(), Denied>;

fn refuse(reason: String) -> Verdict {
    Err(Denied::Refused(reason))
}

/// A namespace the config makes new must not be the dumping host's own in the images.
fn namespaces(iso: &Isolation, spec: &Spec) -> Verdict {
    for ns in crate::spec::namespaces(spec).filter(|n| n.path().is_none()) {
        let kind = crate::security::spec_name(&ns.typ());
        if iso.host_namespaces.contains(&kind) {
            return refuse(format!(
                "the config asks for a {kind} namespace of its own, and the checkpoint's \
                 processes share the {kind} namespace of the host that made it (they would \
                 run in this host's)"
            ));
        }
    }
    Ok(())
}

/// No thread holds a capability its set in the config does not grant.
fn capabilities(iso: &Isolation, process: Option<&Process>) -> Verdict {
    let Some(caps) = process.and_then(|p| p.capabilities().as_ref()) else {
        return Ok(());
    };
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
                return refuse(format!(
                    "thread {} (process {}) holds {} in its {set} capabilities, which \
                     process.capabilities.{set} does not grant",
                    t.tid,
                    t.pid,
                    capability_names(extra).join(", ")
                ));
            }
        }
    }
    Ok(())
}

/// No thread runs as root when the config names another user. Ids are comparable only
/// without a user namespace (with one, CRIU records them as the host sees them).
fn ids(iso: &Isolation, process: Option<&Process>) -> Verdict {
    let own_user_ns = iso.own_namespaces.iter().any(|n| n == "user");
    let (Some(user), false) = (process.map(|p| p.user()), own_user_ns) else {
        return Ok(());
    };
    for t in &iso.threads {
        let kinds = [
            ("uid", "uid, euid, suid, fsuid", user.uid(), t.uids),
            ("gid", "gid, egid, sgid, fsgid", user.gid(), t.gids),
        ];
        for (kind, which, wanted, held) in kinds {
            if wanted != 0 && held.contains(&0) {
                return refuse(format!(
                    "thread {} (process {}) runs with {kind} 0 ({which}: {held:?}), and \
                     process.user.{kind} is {wanted}",
                    t.tid, t.pid
                ));
            }
        }
    }
    Ok(())
}

/// Under a config with linux.seccomp every thread runs under exactly the filter it compiles
/// to (a checkpoint's own filter may allow what the config's forbids); with
/// noNewPrivileges, every thread has no_new_privs.
fn seccomp(iso: &Isolation, spec: &Spec, process: Option<&Process>) -> Verdict {
    let profile = spec.linux().as_ref().and_then(|l| l.seccomp().as_ref());
    let wanted = profile
        .map(crate::security::filter_digest)
        .transpose()
        .map_err(Denied::Failed)?;
    let nnp = process.and_then(|p| p.no_new_privileges()).unwrap_or(false);
    for t in &iso.threads {
        if profile.is_some() && t.seccomp_mode != SECCOMP_FILTER {
            return refuse(format!(
                "the config confines its processes with linux.seccomp, and thread {} (process \
                 {}) has no seccomp filter",
                t.tid, t.pid
            ));
        }
        if let Some(want) = &wanted {
            if t.seccomp_filters != [want.clone()] {
                return refuse(format!(
                    "thread {} (process {}) runs under seccomp filters {:?}, not the one \
                     linux.seccomp compiles to ({})",
                    t.tid,
                    t.pid,
                    t.seccomp_filters
                        .iter()
                        .map(|d| &d[..12])
                        .collect::<Vec<_>>(),
                    &want[..12]
                ));
            }
        }
        if nnp && !t.no_new_privs {
            return refuse(format!(
                "process.noNewPrivileges is set, and thread {} (process {}) lacks no_new_privs",
                t.tid, t.pid
            ));
        }
    }
    Ok(())
}
