use libseccomp::{
    ScmpAction, ScmpArch, ScmpArgCompare, ScmpCompareOp, ScmpFilterContext, ScmpSyscall,
};
use oci_spec::runtime::{LinuxSeccomp, LinuxSeccompAction, LinuxSeccompOperator};

use super::spec_name;
use crate::{Error, Result};

fn bad(what: impl Into<String>, value: impl Into<String>, reason: impl std::fmt::Display) -> Error {
    Error::Value {
        what: what.into(),
        value: value.into(),
        reason: reason.to_string(),
    }
}

fn action(a: LinuxSeccompAction, errno: Option<u32>) -> Result<ScmpAction> {
    let errno = errno.map_or(libc::EPERM, |e| e as i32);
    Ok(match a {
        LinuxSeccompAction::ScmpActKill | LinuxSeccompAction::ScmpActKillThread => {
            ScmpAction::KillThread
        }
        LinuxSeccompAction::ScmpActKillProcess => ScmpAction::KillProcess,
        LinuxSeccompAction::ScmpActTrap => ScmpAction::Trap,
        LinuxSeccompAction::ScmpActErrno => ScmpAction::Errno(errno),
        LinuxSeccompAction::ScmpActTrace => ScmpAction::Trace(errno as u16),
        LinuxSeccompAction::ScmpActAllow => ScmpAction::Allow,
        LinuxSeccompAction::ScmpActLog => ScmpAction::Log,
        other => {
            return Err(bad(
                "linux.seccomp action",
                spec_name(&other),
                "not supported (no seccomp agent)",
            ))
        }
    })
}

fn compare(op: LinuxSeccompOperator, value: u64, value_two: Option<u64>) -> ScmpCompareOp {
    match op {
        LinuxSeccompOperator::ScmpCmpNe => ScmpCompareOp::NotEqual,
        LinuxSeccompOperator::ScmpCmpLt => ScmpCompareOp::Less,
        LinuxSeccompOperator::ScmpCmpLe => ScmpCompareOp::LessOrEqual,
        LinuxSeccompOperator::ScmpCmpEq => ScmpCompareOp::Equal,
        LinuxSeccompOperator::ScmpCmpGe => ScmpCompareOp::GreaterEqual,
        LinuxSeccompOperator::ScmpCmpGt => ScmpCompareOp::Greater,
        LinuxSeccompOperator::ScmpCmpMaskedEq => {
            let _ = value_two;
            ScmpCompareOp::MaskedEqual(value)
        }
    }
}

/// Builds the filter of an OCI seccomp profile. Syscall names this libseccomp does not know
/// are skipped with a warning (profiles list syscalls of newer kernels), as runc does.
pub fn build_filter(s: &LinuxSeccomp) -> Result<ScmpFilterContext> {
    let default = action(s.default_action(), s.default_errno_ret())?;
    let mut ctx = ScmpFilterContext::new(default).map_err(|e| {
        bad(
            "linux.seccomp.defaultAction",
            spec_name(&s.default_action()),
            e,
        )
    })?;
    // libseccomp turns no_new_privs on when it loads a filter unless told not to: whether the
    // process gets it is process.noNewPrivileges's say, and lcr sets it itself.
    ctx.set_ctl_nnp(false)
        .map_err(|e| bad("linux.seccomp", "no_new_privs attribute", e))?;
    for a in s.architectures().iter().flatten() {
        let name = spec_name(a);
        let arch: ScmpArch = name
            .parse()
            .map_err(|e| bad("linux.seccomp.architectures", name.clone(), e))?;
        ctx.add_arch(arch)
            .map_err(|e| bad("linux.seccomp.architectures", name.clone(), e))?;
    }
    for (i, rule) in s.syscalls().iter().flatten().enumerate() {
        let act = action(rule.action(), rule.errno_ret())?;
        if act == default {
            continue;
        }
        let mut cmps = Vec::new();
        for arg in rule.args().iter().flatten() {
            let v2 = arg.value_two();
            let datum = if arg.op() == LinuxSeccompOperator::ScmpCmpMaskedEq {
                v2.unwrap_or(0)
            } else {
                arg.value()
            };
            cmps.push(ScmpArgCompare::new(
                arg.index() as u32,
                compare(arg.op(), arg.value(), v2),
                datum,
            ));
        }
        for name in rule.names() {
            let Ok(sc) = ScmpSyscall::from_name(name) else {
                tracing::warn!(syscall = %name, "unknown syscall in seccomp profile ignored");
                continue;
            };
            ctx.add_rule_conditional(act, sc, &cmps)
                .map_err(|e| bad(format!("linux.seccomp.syscalls[{i}]"), name.clone(), e))?;
        }
    }
    Ok(ctx)
}

/// The BPF program `s` compiles to: what the kernel holds once it is loaded (and CRIU saves).
/// Through an unnamed memory file, since libseccomp 2.5 (Debian 12) exports only to an fd and
/// a container's init has no writable file system to count on.
pub fn compile(s: &LinuxSeccomp) -> Result<Vec<u8>> {
    use std::io::{Read, Seek};
    let fail = |reason: String| Error::Seccomp {
        stage: "compile",
        reason,
    };
    let fd = nix::sys::memfd::memfd_create(c"lcr-seccomp", nix::sys::memfd::MFdFlags::MFD_CLOEXEC)
        .map_err(|e| fail(e.to_string()))?;
    let mut f = std::fs::File::from(fd);
    build_filter(s)?
        .export_bpf(&f)
        .map_err(|e| fail(e.to_string()))?;
    let mut bpf = Vec::new();
    f.rewind()
        .and_then(|_| f.read_to_end(&mut bpf))
        .map_err(|e| fail(e.to_string()))?;
    if bpf.is_empty() || bpf.len() % std::mem::size_of::<libc::sock_filter>() != 0 {
        return Err(fail(format!("libseccomp exported {} bytes", bpf.len())));
    }
    Ok(bpf)
}

/// The SHA-256 of the BPF program `s` compiles to, so a checkpoint's filter can be compared
/// with a config's.
pub fn filter_digest(s: &LinuxSeccomp) -> Result<String> {
    use sha2::{Digest, Sha256};
    Ok(Sha256::digest(compile(s)?)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect())
}

/// Installs a compiled filter on this thread: one system call, so that it can come last
/// before exec. Without no_new_privs the kernel wants CAP_SYS_ADMIN.
pub fn load_bpf(bpf: &[u8]) -> Result<()> {
    let filters: Vec<libc::sock_filter> = bpf
        .chunks_exact(std::mem::size_of::<libc::sock_filter>())
        .map(|c| libc::sock_filter {
            code: u16::from_ne_bytes([c[0], c[1]]),
            jt: c[2],
            jf: c[3],
            k: u32::from_ne_bytes([c[4], c[5], c[6], c[7]]),
        })
        .collect();
    let prog = libc::sock_fprog {
        len: filters.len() as u16,
        filter: filters.as_ptr() as *mut libc::sock_filter,
    };
    // SAFETY: prog points at `filters`, alive across the call; the kernel copies the program.
    let r = unsafe {
        libc::syscall(
            libc::SYS_seccomp,
            libc::SECCOMP_SET_MODE_FILTER,
            0,
            &prog as *const libc::sock_fprog,
        )
    };
    if r != 0 {
        return Err(Error::Seccomp {
            stage: "load",
            reason: std::io::Error::last_os_error().to_string(),
        });
    }
    Ok(())
}
