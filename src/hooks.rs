//! OCI hooks: each runs with the container state as JSON on stdin.

use std::io::Write;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use oci_spec::runtime::{Hook, Hooks};

use crate::{Error, Result};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Prestart,
    CreateRuntime,
    CreateContainer,
    StartContainer,
    Poststart,
    Poststop,
}

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Self::Prestart => "prestart",
            Self::CreateRuntime => "createRuntime",
            Self::CreateContainer => "createContainer",
            Self::StartContainer => "startContainer",
            Self::Poststart => "poststart",
            Self::Poststop => "poststop",
        }
    }

    pub fn of(self, h: &Hooks) -> Vec<Hook> {
        #[allow(deprecated)]
        let v = match self {
            Self::Prestart => h.prestart(),
            Self::CreateRuntime => h.create_runtime(),
            Self::CreateContainer => h.create_container(),
            Self::StartContainer => h.start_container(),
            Self::Poststart => h.poststart(),
            Self::Poststop => h.poststop(),
        };
        v.clone().unwrap_or_default()
    }
}

/// Runs the hooks of `kind` in order; the first failure stops and is returned.
pub fn run(kind: Kind, hooks: Option<&Hooks>, state_json: &str) -> Result<()> {
    let Some(h) = hooks else { return Ok(()) };
    for hook in kind.of(h) {
        run_one(kind, &hook, state_json)?;
    }
    Ok(())
}

fn run_one(kind: Kind, hook: &Hook, state_json: &str) -> Result<()> {
    let err = |reason: String| Error::Hook {
        kind: kind.name(),
        path: hook.path().clone(),
        reason,
    };
    let mut cmd = Command::new(hook.path());
    if let Some(args) = hook.args() {
        if let Some((argv0, rest)) = args.split_first() {
            cmd.arg0(argv0).args(rest);
        }
    }
    cmd.env_clear();
    for e in hook.env().iter().flatten() {
        if let Some((k, v)) = e.split_once('=') {
            cmd.env(k, v);
        }
    }
    cmd.stdin(Stdio::piped());
    let mut child = cmd.spawn().map_err(|e| err(e.to_string()))?;
    if let Some(mut stdin) = child.stdin.take() {
        // A hook that does not read its stdin must not fail the write: ignore EPIPE.
        let _ = stdin.write_all(state_json.as_bytes());
    }
    let deadline = hook
        .timeout()
        .map(|t| Instant::now() + Duration::from_secs(t.max(1) as u64));
    loop {
        match child.try_wait().map_err(|e| err(e.to_string()))? {
            Some(st) if st.success() => return Ok(()),
            Some(st) => return Err(err(format!("exited with {st}"))),
            None => {}
        }
        if deadline.is_some_and(|d| Instant::now() > d) {
            let _ = child.kill();
            let _ = child.wait();
            return Err(err(format!(
                "timed out after {}s",
                hook.timeout().unwrap_or(0)
            )));
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}
