//! Which namespaces a container creates and which it joins by path.

use std::os::fd::OwnedFd;
use std::path::Path;

use nix::fcntl::{open, OFlag};
use nix::sched::{setns, unshare, CloneFlags};
use nix::sys::stat::Mode;
use oci_spec::runtime::{LinuxNamespace, LinuxNamespaceType};

use crate::error::Context;
use crate::Result;

/// Every kind of namespace lcr creates or joins.
pub const ALL: &[LinuxNamespaceType] = &[
    LinuxNamespaceType::Cgroup,
    LinuxNamespaceType::Ipc,
    LinuxNamespaceType::Mount,
    LinuxNamespaceType::Network,
    LinuxNamespaceType::Pid,
    LinuxNamespaceType::User,
    LinuxNamespaceType::Uts,
    LinuxNamespaceType::Time,
];

pub fn clone_flag(t: LinuxNamespaceType) -> CloneFlags {
    match t {
        LinuxNamespaceType::Mount => CloneFlags::CLONE_NEWNS,
        LinuxNamespaceType::Cgroup => CloneFlags::CLONE_NEWCGROUP,
        LinuxNamespaceType::Uts => CloneFlags::CLONE_NEWUTS,
        LinuxNamespaceType::Ipc => CloneFlags::CLONE_NEWIPC,
        LinuxNamespaceType::User => CloneFlags::CLONE_NEWUSER,
        LinuxNamespaceType::Pid => CloneFlags::CLONE_NEWPID,
        LinuxNamespaceType::Network => CloneFlags::CLONE_NEWNET,
        LinuxNamespaceType::Time => CloneFlags::from_bits_retain(libc::CLONE_NEWTIME),
    }
}

/// The name of a namespace in /proc/PID/ns/ (and in CRIU's `join_ns`).
pub fn proc_name(t: LinuxNamespaceType) -> &'static str {
    match t {
        LinuxNamespaceType::Mount => "mnt",
        LinuxNamespaceType::Cgroup => "cgroup",
        LinuxNamespaceType::Uts => "uts",
        LinuxNamespaceType::Ipc => "ipc",
        LinuxNamespaceType::User => "user",
        LinuxNamespaceType::Pid => "pid",
        LinuxNamespaceType::Network => "net",
        LinuxNamespaceType::Time => "time",
    }
}

/// Namespaces to join (already opened, so a bad path fails before anything is made) and the
/// flags of the ones to create.
pub struct Plan {
    join_user: Option<OwnedFd>,
    join_other: Vec<(LinuxNamespaceType, OwnedFd)>,
    pub new_user: bool,
    new_other: CloneFlags,
}

impl Plan {
    pub fn from_spec(namespaces: &[LinuxNamespace]) -> Result<Self> {
        let mut plan = Plan {
            join_user: None,
            join_other: Vec::new(),
            new_user: false,
            new_other: CloneFlags::empty(),
        };
        for ns in namespaces {
            match ns.path() {
                Some(p) => {
                    let fd = open_ns(p)?;
                    if ns.typ() == LinuxNamespaceType::User {
                        plan.join_user = Some(fd);
                    } else {
                        plan.join_other.push((ns.typ(), fd));
                    }
                }
                None if ns.typ() == LinuxNamespaceType::User => plan.new_user = true,
                None => plan.new_other |= clone_flag(ns.typ()),
            }
        }
        Ok(plan)
    }

    /// Joins all namespaces of a running process (for exec), by /proc/PID/ns/*.
    pub fn join_all_of(pid: i32, types: &[LinuxNamespaceType]) -> Result<Self> {
        let own = |t| std::fs::read_link(format!("/proc/self/ns/{}", proc_name(t))).ok();
        let mut plan = Plan {
            join_user: None,
            join_other: Vec::new(),
            new_user: false,
            new_other: CloneFlags::empty(),
        };
        for &t in types {
            let path = format!("/proc/{pid}/ns/{}", proc_name(t));
            // Joining a namespace we are already in is pointless and, for user, refused.
            if std::fs::read_link(&path).ok() == own(t) {
                continue;
            }
            let fd = open_ns(Path::new(&path))?;
            if t == LinuxNamespaceType::User {
                plan.join_user = Some(fd);
            } else {
                plan.join_other.push((t, fd));
            }
        }
        Ok(plan)
    }

    /// Stage one, part one: enter (or make) the user namespace.
    pub fn enter_user(&self) -> Result<()> {
        if let Some(fd) = &self.join_user {
            setns(fd, CloneFlags::CLONE_NEWUSER).ctx(|| "join user namespace".into())?;
        }
        if self.new_user {
            unshare(CloneFlags::CLONE_NEWUSER).ctx(|| "new user namespace".into())?;
        }
        Ok(())
    }

    /// Stage one, part two (after the cgroup is joined): the other namespaces. The mount
    /// namespace is joined last, since the paths of the others are looked up before.
    pub fn enter_rest(&self) -> Result<()> {
        let (mnt, rest): (Vec<_>, Vec<_>) = self
            .join_other
            .iter()
            .partition(|(t, _)| *t == LinuxNamespaceType::Mount);
        for (t, fd) in rest.into_iter().chain(mnt) {
            setns(fd, clone_flag(*t)).ctx(|| format!("join {} namespace", proc_name(*t)))?;
        }
        if !self.new_other.is_empty() {
            unshare(self.new_other).ctx(|| format!("unshare {:?}", self.new_other))?;
        }
        Ok(())
    }
}

fn open_ns(p: &Path) -> Result<OwnedFd> {
    open(p, OFlag::O_RDONLY | OFlag::O_CLOEXEC, Mode::empty())
        .ctx(|| format!("open namespace {}", p.display()))
}
