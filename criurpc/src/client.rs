use std::path::{Path, PathBuf};
use std::process::Command;

use crate::notify::{AcceptAll, NotifyHandler};
use crate::{rpc, Error, Features, Options, RequestKind, Result, Session, Version};

/// A CRIU binary to talk to. Each operation runs its own `criu swrk` [`Session`].
#[derive(Debug, Clone)]
pub struct Criu {
    binary: PathBuf,
}

/// What a successful restore reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RestoreResult {
    /// The host pid of the restored root task.
    pub pid: i32,
}

/// A page server started by CRIU.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageServer {
    pub pid: i32,
    /// The port it listens on (0 when it serves a pre-connected socket).
    pub port: u16,
}

impl PageServer {
    pub(crate) fn from_resp(resp: &rpc::Criu_resp) -> Result<Self> {
        if !resp.ps.has_pid() {
            return Err(Error::Protocol("page-server reply without a pid".into()));
        }
        Ok(Self {
            pid: resp.ps.pid(),
            port: u16::try_from(resp.ps.port()).unwrap_or(0),
        })
    }
}

impl Default for Criu {
    fn default() -> Self {
        Self::new()
    }
}

impl Criu {
    /// `criu` as found on `PATH`.
    pub fn new() -> Self {
        Self {
            binary: PathBuf::from("criu"),
        }
    }

    /// A specific binary (a bare name is looked up on `PATH`).
    pub fn with_binary(binary: impl Into<PathBuf>) -> Self {
        Self {
            binary: binary.into(),
        }
    }

    /// The binary's full path.
    pub fn binary(&self) -> Result<PathBuf> {
        resolve(&self.binary)
    }

    /// Starts a session for requests that go on (pre-dump chains, page servers); `opts`' fds
    /// meant for the CRIU process are handed over now.
    pub fn session(&self, opts: Option<&mut Options>) -> Result<Session> {
        let fds = match opts {
            Some(o) => {
                o.seal()?;
                std::mem::take(&mut o.criu_fds)
            }
            None => Vec::new(),
        };
        Session::start(&self.binary()?, fds)
    }

    fn one_shot(
        &self,
        kind: RequestKind,
        mut opts: Option<Options>,
        handler: &mut dyn NotifyHandler,
    ) -> Result<rpc::Criu_resp> {
        let mut session = self.session(opts.as_mut())?;
        let resp = session.call(kind, opts.as_ref(), false, handler);
        session.finish();
        resp
    }

    pub fn version(&self) -> Result<Version> {
        let mut session = self.session(None)?;
        let v = session.version();
        session.finish();
        v
    }

    /// The version, or [`Error::TooOld`] when it is below [`crate::MIN_VERSION`].
    pub fn require_supported(&self) -> Result<Version> {
        let mut session = self.session(None)?;
        let v = session.require_supported();
        session.finish();
        v
    }

    /// CHECK: does this kernel have what CRIU needs for basic dump and restore?
    pub fn check(&self) -> Result<()> {
        self.one_shot(RequestKind::Check, None, &mut AcceptAll)
            .map(drop)
    }

    /// FEATURE_CHECK of every feature the RPC knows.
    pub fn features(&self) -> Result<Features> {
        let mut session = self.session(None)?;
        let f = feature_check(&mut session);
        session.finish();
        f
    }

    /// [`Criu::require_supported`] and [`Criu::features`] from one CRIU process: half the
    /// cost where both are asked at once (a migration's pre-flight, on both hosts).
    pub fn supported_features(&self) -> Result<(Version, Features)> {
        let mut session = self.session(None)?;
        let both = session
            .require_supported()
            .and_then(|v| feature_check(&mut session).map(|f| (v, f)));
        session.finish();
        both
    }

    /// `criu check --feature NAME`, for the features the RPC cannot ask about (`timens`,
    /// `cgroupns`, `uffd-noncoop`, `clone3_set_tid`, …). `Ok(false)` when unsupported.
    pub fn check_feature(&self, name: &str) -> Result<bool> {
        let bin = self.binary()?;
        let out = Command::new(&bin)
            .args(["check", "--feature", name])
            .output()
            .map_err(|cause| Error::Spawn {
                binary: bin.clone(),
                cause,
            })?;
        let text = String::from_utf8_lossy(&out.stderr).to_string()
            + &String::from_utf8_lossy(&out.stdout);
        if text.contains("Unknown feature") {
            return Err(Error::InvalidOption {
                option: "feature",
                reason: format!("criu does not know the feature {name:?}"),
            });
        }
        Ok(out.status.success())
    }

    /// DUMP. Returns whether CRIU reports the tasks as restored (only for self-dumps).
    pub fn dump(&self, opts: Options, handler: &mut dyn NotifyHandler) -> Result<bool> {
        let resp = self.one_shot(RequestKind::Dump, Some(opts), handler)?;
        Ok(resp.dump.restored())
    }

    /// SINGLE_PRE_DUMP: one pre-dump on its own session (see [`Session::call`] with
    /// [`RequestKind::PreDump`] for a chain ending in a DUMP).
    pub fn single_pre_dump(&self, opts: Options, handler: &mut dyn NotifyHandler) -> Result<()> {
        self.one_shot(RequestKind::SinglePreDump, Some(opts), handler)
            .map(drop)
    }

    /// RESTORE. The restored root is a child of CRIU, or of the caller with `rst_sibling`.
    pub fn restore(&self, opts: Options, handler: &mut dyn NotifyHandler) -> Result<RestoreResult> {
        let sibling = opts.as_rpc().rst_sibling();
        let resp = self.one_shot(RequestKind::Restore, Some(opts), handler);
        if resp.is_err() && sibling {
            reap_failed_restore_roots();
        }
        let resp = resp?;
        if !resp.restore.is_some() {
            return Err(Error::Protocol("restore reply without a pid".into()));
        }
        Ok(RestoreResult {
            pid: resp.restore.pid(),
        })
    }

    /// PAGE_SERVER: a daemonised page server (it outlives the session).
    pub fn page_server(&self, opts: Options) -> Result<PageServer> {
        let resp = self.one_shot(RequestKind::PageServer, Some(opts), &mut AcceptAll)?;
        PageServer::from_resp(&resp)
    }
}

fn feature_check(session: &mut Session) -> Result<Features> {
    let mut req = rpc::Criu_req::new();
    req.set_type(rpc::Criu_req_type::FEATURE_CHECK);
    let f = req.features.mut_or_insert_default();
    f.set_mem_track(true);
    f.set_lazy_pages(true);
    f.set_pidfd_store(true);
    let resp = session.call_req(RequestKind::FeatureCheck, req, None, &mut AcceptAll)?;
    if !resp.features.is_some() {
        return Err(Error::Protocol(
            "feature-check reply without features".into(),
        ));
    }
    Ok(Features::from_rpc(&resp.features))
}

/// After a failed `rst_sibling` restore, the half-made root task (still named `criu`) has died
/// as *our* child: reap it so no zombie is left. Only dead children named `criu` are waited for.
fn reap_failed_restore_roots() {
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return;
    };
    for t in tasks.flatten() {
        let kids = std::fs::read_to_string(t.path().join("children")).unwrap_or_default();
        for pid in kids
            .split_whitespace()
            .filter_map(|p| p.parse::<i32>().ok())
        {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
            let (Some(open), Some(close)) = (stat.find('('), stat.rfind(')')) else {
                continue;
            };
            let state = stat[close + 1..].trim_start().chars().next();
            if &stat[open + 1..close] == "criu" && state == Some('Z') {
                let pid = nix::unistd::Pid::from_raw(pid);
                let _ = nix::sys::wait::waitpid(pid, Some(nix::sys::wait::WaitPidFlag::WNOHANG));
            }
        }
    }
}

fn resolve(binary: &Path) -> Result<PathBuf> {
    if binary.components().count() > 1 {
        return if binary.is_file() {
            Ok(binary.to_path_buf())
        } else {
            Err(Error::NotFound(binary.to_path_buf()))
        };
    }
    let path = std::env::var_os("PATH")
        .unwrap_or_else(|| "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".into());
    std::env::split_paths(&path)
        .map(|d| d.join(binary))
        .find(|p| p.is_file())
        .ok_or_else(|| Error::NotFound(binary.to_path_buf()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_binary_is_named() {
        let err = Criu::with_binary("/nonexistent/criu")
            .version()
            .unwrap_err();
        assert!(matches!(err, Error::NotFound(_)));
        assert!(err.to_string().contains("/nonexistent/criu"), "{err}");
        let err = Criu::with_binary("no-such-criu-binary")
            .binary()
            .unwrap_err();
        assert!(err.to_string().contains("no-such-criu-binary"), "{err}");
    }
}
