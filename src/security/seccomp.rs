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

/// The SHA-256 of the BPF program `s` compiles to: what the kernel holds once it is loaded
/// (and CRIU saves), so a checkpoint's filter can be compared with a config's.
pub fn filter_digest(s: &LinuxSeccomp) -> Result<String> {
    use sha2::{Digest, Sha256};
    use std::io::{Read, Seek};
    let fail = |reason: String| Error::Other {
        context: "export seccomp filter".into(),
        reason,
    };
    // Through a file: libseccomp 2.5 (Debian 12) has no export to memory.
    let mut f = tempfile::tempfile().map_err(|e| fail(e.to_string()))?;
    build_filter(s)?
        .export_bpf(&f)
        .map_err(|e| fail(e.to_string()))?;
    let mut bpf = Vec::new();
    f.rewind()
        .and_then(|_| f.read_to_end(&mut bpf))
        .map_err(|e| fail(e.to_string()))?;
    Ok(Sha256::digest(&bpf)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect())
}

pub fn load_filter(ctx: &ScmpFilterContext) -> Result<()> {
    ctx.load().map_err(|e| Error::Other {
        context: "load seccomp filter".into(),
        reason: e.to_string(),
    })
}
