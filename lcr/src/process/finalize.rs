use std::convert::Infallible;
use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use nix::unistd::{access, chdir, execve, AccessFlags};
use oci_spec::runtime::{Linux, Process};

use crate::error::Context;
use crate::security::{
    apply_capabilities, apply_rlimits, apply_user, compile, drop_bounding, load_bpf,
    set_no_new_privs,
};
use crate::{Error, Result};

const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// A container process with everything that can fail done: cwd, rlimits, user,
/// capabilities, no_new_privs, the seccomp filter compiled, the executable found, the fds
/// marked. What is left is [`Ready::exec`]: the seccomp filter (under no_new_privs, as late as
/// possible so that lcr's own last steps are not filtered) and `execve`.
pub struct Ready {
    exe: CString,
    argv: Vec<CString>,
    envp: Vec<CString>,
    late_filter: Option<Vec<u8>>,
}

/// Prepares `p` in this process (the init before it reports `created`, or the exec'd process
/// before it reports its pid), so that a bad cwd, user or capability fails the command.
pub fn prepare_process(p: &Process, linux: Option<&Linux>, preserve_fds: u32) -> Result<Ready> {
    let args = p.args().clone().unwrap_or_default();
    let env: Vec<String> = p.env().clone().unwrap_or_default();
    chdir(p.cwd()).ctx(|| format!("process.cwd {}", p.cwd().display()))?;
    if let Some(r) = p.rlimits() {
        apply_rlimits(r)?;
    }
    if let Some(adj) = p.oom_score_adj() {
        std::fs::write("/proc/self/oom_score_adj", adj.to_string())
            .ctx(|| format!("process.oomScoreAdj {adj}"))?;
    }
    let filter = linux
        .and_then(|l| l.seccomp().as_ref())
        .map(compile)
        .transpose()?;
    let nnp = p.no_new_privileges().unwrap_or(false);
    // Without no_new_privs the filter must be loaded while CAP_SYS_ADMIN is still held.
    let late_filter = match (filter, nnp) {
        (Some(f), false) => {
            load_bpf(&f)?;
            None
        }
        (f, _) => f,
    };
    if let Some(c) = p.capabilities() {
        drop_bounding(c)?;
    }
    apply_user(p.user())?;
    if let Some(c) = p.capabilities() {
        apply_capabilities(c)?;
    }
    if nnp {
        set_no_new_privs()?;
    }
    let exe = resolve_executable(p)?;
    close_fds_from(3 + preserve_fds as i32);
    let cstr = |s: &str| {
        CString::new(s).map_err(|_| Error::Value {
            what: "process.args/env".into(),
            value: s.into(),
            reason: "contains a NUL byte".into(),
        })
    };
    let argv = args.iter().map(|a| cstr(a)).collect::<Result<Vec<_>>>()?;
    let envp = env.iter().map(|e| cstr(e)).collect::<Result<Vec<_>>>()?;
    let exe = CString::new(exe.as_os_str().as_bytes()).map_err(|_| Error::Value {
        what: "process.args[0]".into(),
        value: exe.display().to_string(),
        reason: "contains a NUL byte".into(),
    })?;
    Ok(Ready {
        exe,
        argv,
        envp,
        late_filter,
    })
}

impl Ready {
    /// Becomes the user's program.
    pub fn exec(self) -> Result<Infallible> {
        if let Some(f) = &self.late_filter {
            load_bpf(f)?;
        }
        let e = execve(&self.exe, &self.argv, &self.envp).unwrap_err();
        Err(e).ctx(|| format!("exec {}", self.exe.to_string_lossy()))
    }
}

/// Prepares and execs at once (`lcr exec`, where nothing waits in between).
pub fn exec_process(p: &Process, linux: Option<&Linux>, preserve_fds: u32) -> Result<Infallible> {
    prepare_process(p, linux, preserve_fds)?.exec()
}

/// The file `process.args[0]` names, looked up with the process's own `PATH`.
pub fn resolve_executable(p: &Process) -> Result<PathBuf> {
    let args = p.args().as_deref().unwrap_or_default();
    let name = args.first().ok_or_else(|| Error::Field {
        field: "process.args".into(),
        reason: "is empty: there is nothing to run".into(),
    })?;
    let path_var = p
        .env()
        .iter()
        .flatten()
        .find_map(|e| e.strip_prefix("PATH="))
        .unwrap_or(DEFAULT_PATH);
    find_executable(name, path_var)
}

/// Looks `name` up like execvp: as a path when it has a `/`, else in each `PATH` directory.
pub fn find_executable(name: &str, path_var: &str) -> Result<PathBuf> {
    let is_exec = |p: &Path| p.is_file() && access(p, AccessFlags::X_OK).is_ok();
    if name.contains('/') {
        let p = PathBuf::from(name);
        return if is_exec(&p) {
            Ok(p)
        } else {
            Err(Error::Value {
                what: "process.args[0]".into(),
                value: name.into(),
                reason: "no such executable in the container".into(),
            })
        };
    }
    path_var
        .split(':')
        .filter(|d| !d.is_empty())
        .map(|d| Path::new(d).join(name))
        .find(|p| is_exec(p))
        .ok_or_else(|| Error::Value {
            what: "process.args[0]".into(),
            value: name.into(),
            reason: format!("executable file not found in $PATH ({path_var})"),
        })
}

/// Marks every fd from `min` on close-on-exec, so only stdio and the preserved fds pass.
fn close_fds_from(min: i32) {
    let fds: Vec<i32> = std::fs::read_dir("/proc/self/fd")
        .map(|d| {
            d.flatten()
                .filter_map(|e| e.file_name().to_str()?.parse().ok())
                .collect()
        })
        .unwrap_or_default();
    for fd in fds.into_iter().filter(|&fd| fd >= min) {
        // SAFETY: fcntl on an fd number; a stale number (the read_dir fd) just fails.
        unsafe { libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_executables_like_execvp() {
        assert_eq!(
            find_executable("sh", "/nonexistent:/bin").unwrap(),
            PathBuf::from("/bin/sh")
        );
        assert!(find_executable("/bin/sh", "").is_ok());
        let e = find_executable("no-such-tool", "/bin")
            .unwrap_err()
            .to_string();
        assert!(e.contains("no-such-tool") && e.contains("$PATH"), "{e}");
    }
}
