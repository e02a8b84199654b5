use std::fmt;
use std::io::IoSliceMut;
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use nix::sys::socket::{
    recv, recvmsg, send, socketpair, AddressFamily, ControlMessageOwned, MsgFlags, SockFlag,
    SockType,
};
use protobuf::Message;

use crate::client::PageServer;
use crate::fdpass::spawn_with_fds;
use crate::log_excerpt::{first_error, is_harmless};
use crate::notify::{Notify, NotifyHandler};
use crate::options::FIRST_PASSED_FD;
use crate::{log_excerpt, rpc, Error, Options, Result};

/// The socket's number in the CRIU process: `criu swrk 3`.
const SWRK_FD: i32 = 3;
/// At most this many fds arrive with one reply (CRIU sends one, with `orphan-pts-master`).
const MAX_FDS_PER_REPLY: usize = 8;
/// How long a CRIU that lost its socket may take to exit before it is killed.
const EXIT_GRACE: Duration = Duration::from_secs(10);

/// The kinds of request CRIU's RPC interface takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestKind {
    Dump,
    PreDump,
    SinglePreDump,
    Restore,
    Check,
    FeatureCheck,
    Version,
    PageServer,
    PageServerChild,
    WaitPid,
}

impl RequestKind {
    fn to_rpc(self) -> rpc::Criu_req_type {
        use rpc::Criu_req_type as T;
        match self {
            Self::Dump => T::DUMP,
            Self::PreDump => T::PRE_DUMP,
            Self::SinglePreDump => T::SINGLE_PRE_DUMP,
            Self::Restore => T::RESTORE,
            Self::Check => T::CHECK,
            Self::FeatureCheck => T::FEATURE_CHECK,
            Self::Version => T::VERSION,
            Self::PageServer => T::PAGE_SERVER,
            Self::PageServerChild => T::PAGE_SERVER_CHLD,
            Self::WaitPid => T::WAIT_PID,
        }
    }

    /// The type of the final reply: CRIU answers PAGE_SERVER_CHLD with a PAGE_SERVER reply.
    fn reply_type(self) -> rpc::Criu_req_type {
        match self {
            Self::PageServerChild => rpc::Criu_req_type::PAGE_SERVER,
            other => other.to_rpc(),
        }
    }
}

impl fmt::Display for RequestKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Dump => "dump",
            Self::PreDump => "pre-dump",
            Self::SinglePreDump => "single pre-dump",
            Self::Restore => "restore",
            Self::Check => "check",
            Self::FeatureCheck => "feature check",
            Self::Version => "version",
            Self::PageServer => "page-server",
            Self::PageServerChild => "page-server (child)",
            Self::WaitPid => "wait-pid",
        })
    }
}

/// One `criu swrk` process and the socket to it. Most requests end the session (CRIU exits
/// after answering); PRE_DUMP chains, page servers, VERSION and FEATURE_CHECK may go on.
///
/// Dropping a session closes the socket and reaps CRIU (killing it if it does not exit),
/// so no CRIU process or fd outlives it.
pub struct Session {
    binary: PathBuf,
    sock: Option<OwnedFd>,
    child: Option<Child>,
    /// CRIU's stderr: an unnamed memory file, so nothing CRIU prints reaches lcr's caller
    /// (podman's and containerd's container logs, a user's terminal). Its tail is quoted
    /// when CRIU dies without answering.
    stderr: Option<std::fs::File>,
}

/// How much of CRIU's stderr an error quotes.
const STDERR_TAIL: usize = 2048;

impl Session {
    /// Starts `binary swrk 3`, handing it `criu_fds` as fd 4, 5, …
    pub fn start(binary: &Path, criu_fds: Vec<OwnedFd>) -> Result<Self> {
        let (ours, theirs) = socketpair(
            AddressFamily::Unix,
            SockType::SeqPacket,
            None,
            SockFlag::SOCK_CLOEXEC,
        )
        .map_err(|e| Error::Io(e.into()))?;
        let mut passed = Vec::with_capacity(1 + criu_fds.len());
        passed.push(theirs);
        passed.extend(criu_fds);
        debug_assert_eq!(SWRK_FD + 1, FIRST_PASSED_FD);
        let stderr = stderr_sink()?;
        let mut cmd = Command::new(binary);
        cmd.arg("swrk")
            .arg(SWRK_FD.to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr.try_clone().map_err(Error::Io)?);
        let child = spawn_with_fds(&mut cmd, &passed, SWRK_FD).map_err(|cause| {
            if cause.kind() == std::io::ErrorKind::NotFound {
                Error::NotFound(binary.to_path_buf())
            } else {
                Error::Spawn {
                    binary: binary.to_path_buf(),
                    cause,
                }
            }
        })?;
        // Our copies of CRIU's end (and of the fds it inherited) close here, so that a CRIU
        // crash reads as EOF rather than a hang.
        drop(passed);
        tracing::debug!(pid = child.id(), binary = %binary.display(), "criu swrk started");
        Ok(Self {
            binary: binary.to_path_buf(),
            sock: Some(ours),
            child: Some(child),
            stderr: Some(stderr),
        })
    }

    /// The pid of the `criu swrk` process.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Sends one request and answers its notifications until the final reply.
    ///
    /// `keep_open` asks CRIU to wait for another request afterwards (CRIU allows it only for
    /// page servers, VERSION and FEATURE_CHECK; a PRE_DUMP may always be followed by more
    /// PRE_DUMPs and a final DUMP).
    pub fn call(
        &mut self,
        kind: RequestKind,
        opts: Option<&Options>,
        keep_open: bool,
        handler: &mut dyn NotifyHandler,
    ) -> Result<rpc::Criu_resp> {
        let mut req = rpc::Criu_req::new();
        req.set_type(kind.to_rpc());
        if let Some(o) = opts {
            req.opts = protobuf::MessageField::some(o.opts.clone());
        }
        if keep_open {
            req.set_keep_open(true);
        }
        self.call_req(kind, req, opts, handler)
    }

    pub(crate) fn call_req(
        &mut self,
        kind: RequestKind,
        req: rpc::Criu_req,
        opts: Option<&Options>,
        handler: &mut dyn NotifyHandler,
    ) -> Result<rpc::Criu_resp> {
        let log_path = opts.and_then(Options::log_path);
        self.send(&req)?;
        let mut refused: Option<(String, String)> = None;
        loop {
            let Some((resp, fds)) = self.recv()? else {
                let status = self.reap();
                let said = self
                    .stderr_tail()
                    .map(|t| format!("; it printed: {t}"))
                    .unwrap_or_default();
                return Err(Error::Criu {
                    request: kind,
                    errno: 0,
                    errmsg: Some(format!("criu exited without answering ({status}){said}")),
                    log_excerpt: log_path.as_deref().and_then(log_excerpt),
                    log_file: log_path,
                });
            };
            if resp.type_() == rpc::Criu_req_type::NOTIFY {
                let answer = self.handle_notify(&resp, fds, handler);
                if let Err((script, reason)) = &answer {
                    tracing::warn!(%script, %reason, "refusing criu notification");
                    refused.get_or_insert((script.clone(), reason.clone()));
                }
                let mut ack = rpc::Criu_req::new();
                ack.set_type(rpc::Criu_req_type::NOTIFY);
                ack.set_notify_success(answer.is_ok());
                self.send(&ack)?;
                continue;
            }
            if resp.type_() != kind.reply_type() && resp.type_() != rpc::Criu_req_type::EMPTY {
                return Err(Error::Protocol(format!(
                    "expected a {:?} reply to the {kind} request, got {:?}",
                    kind.reply_type(),
                    resp.type_()
                )));
            }
            if let Some((script, reason)) = refused {
                return Err(Error::NotifyRefused {
                    request: kind,
                    script,
                    reason,
                });
            }
            if !resp.success() {
                let excerpt = log_path.as_deref().and_then(log_excerpt);
                // cr_errmsg is CRIU's first error, which on hosts without CAP_SYS_RESOURCE is
                // always the harmless rlimit one: prefer the first real error of the log.
                let errmsg = resp
                    .cr_errmsg
                    .clone()
                    .map(|m| m.trim().to_string())
                    .filter(|m| !m.is_empty() && !is_harmless(m))
                    .or_else(|| excerpt.as_deref().and_then(first_error))
                    .or_else(|| {
                        // CRIU answers an unknown request with type EMPTY and no text.
                        (resp.type_() == rpc::Criu_req_type::EMPTY)
                            .then(|| "criu rejected the request".to_string())
                    });
                return Err(Error::Criu {
                    request: kind,
                    errno: resp.cr_errno(),
                    errmsg,
                    log_excerpt: excerpt,
                    log_file: log_path,
                });
            }
            return Ok(resp);
        }
    }

    fn handle_notify(
        &self,
        resp: &rpc::Criu_resp,
        mut fds: Vec<OwnedFd>,
        handler: &mut dyn NotifyHandler,
    ) -> Result<(), (String, String)> {
        let script = resp.notify.script().to_string();
        let pid = resp.notify.has_pid().then(|| resp.notify.pid());
        let fd = if fds.is_empty() {
            None
        } else {
            Some(fds.remove(0))
        };
        tracing::debug!(%script, ?pid, "criu notification");
        let mut n = Notify::new(script.clone(), pid, fd);
        handler.notify(&mut n).map_err(|reason| (script, reason))
    }

    /// VERSION, keeping the session open for the request that follows (saves a CRIU start).
    pub fn version(&mut self) -> Result<crate::Version> {
        let resp = self.call(
            RequestKind::Version,
            None,
            true,
            &mut crate::notify::AcceptAll,
        )?;
        if !resp.version.is_some() {
            return Err(Error::Protocol("version reply without a version".into()));
        }
        Ok(crate::Version::from_rpc(&resp.version))
    }

    /// [`Session::version`], or [`Error::TooOld`] below [`crate::MIN_VERSION`].
    pub fn require_supported(&mut self) -> Result<crate::Version> {
        let v = self.version()?;
        if !v.at_least(&crate::MIN_VERSION) {
            return Err(Error::TooOld {
                found: v.to_string(),
                needed: crate::MIN_VERSION.to_string(),
            });
        }
        Ok(v)
    }

    /// PAGE_SERVER_CHLD: a page server that is a child of this CRIU process, to be waited for
    /// with [`Session::wait_pid`] on the same session.
    pub fn page_server_child(&mut self, opts: &Options) -> Result<PageServer> {
        let resp = self.call(
            RequestKind::PageServerChild,
            Some(opts),
            true,
            &mut crate::notify::AcceptAll,
        )?;
        PageServer::from_resp(&resp)
    }

    /// WAIT_PID: waits for a child of this CRIU process; returns its raw wait status.
    pub fn wait_pid(&mut self, pid: i32) -> Result<i32> {
        let mut req = rpc::Criu_req::new();
        req.set_type(RequestKind::WaitPid.to_rpc());
        req.set_pid(u32::try_from(pid).map_err(|_| Error::InvalidOption {
            option: "pid",
            reason: format!("{pid} is not a pid"),
        })?);
        let resp = self.call_req(
            RequestKind::WaitPid,
            req,
            None,
            &mut crate::notify::AcceptAll,
        )?;
        Ok(resp.status())
    }

    /// Ends the session: closes the socket and waits for CRIU to exit.
    pub fn finish(mut self) -> ExitStatus {
        self.reap()
    }

    fn sock(&self) -> Result<&OwnedFd> {
        self.sock
            .as_ref()
            .ok_or_else(|| Error::Protocol("the session is already closed".into()))
    }

    fn send(&self, req: &rpc::Criu_req) -> Result<()> {
        let bytes = req.write_to_bytes()?;
        let n = send(self.sock()?.as_raw_fd(), &bytes, MsgFlags::MSG_NOSIGNAL)
            .map_err(|e| Error::Io(e.into()))?;
        if n != bytes.len() {
            return Err(Error::Protocol(format!(
                "short send to criu: {n} of {} bytes",
                bytes.len()
            )));
        }
        Ok(())
    }

    /// Receives one whole message, sized first with `MSG_PEEK | MSG_TRUNC` so no reply is ever
    /// cut, plus any fds sent with it. `None` at EOF (CRIU exited).
    fn recv(&self) -> Result<Option<(rpc::Criu_resp, Vec<OwnedFd>)>> {
        let fd = self.sock()?.as_fd();
        let mut probe = [0u8; 1];
        // Peeking without a control buffer installs no fds (they stay queued for the real read).
        let len = loop {
            match recv(
                fd.as_raw_fd(),
                &mut probe,
                MsgFlags::MSG_PEEK | MsgFlags::MSG_TRUNC,
            ) {
                Err(nix::errno::Errno::EINTR) => continue,
                other => break other.map_err(|e| Error::Io(e.into()))?,
            }
        };
        if len == 0 {
            return Ok(None);
        }
        let mut buf = vec![0u8; len];
        let mut cmsg = nix::cmsg_space!([std::os::fd::RawFd; MAX_FDS_PER_REPLY]);
        let mut iov = [IoSliceMut::new(&mut buf)];
        let msg = recvmsg::<()>(
            fd.as_raw_fd(),
            &mut iov,
            Some(&mut cmsg),
            MsgFlags::MSG_CMSG_CLOEXEC,
        )
        .map_err(|e| Error::Io(e.into()))?;
        let mut fds = Vec::new();
        for c in msg.cmsgs().map_err(|e| Error::Io(e.into()))? {
            if let ControlMessageOwned::ScmRights(raw) = c {
                // SAFETY: SCM_RIGHTS fds were just installed in this process for us alone.
                fds.extend(raw.into_iter().map(|r| unsafe { OwnedFd::from_raw_fd(r) }));
            }
        }
        if msg
            .flags
            .intersects(MsgFlags::MSG_TRUNC | MsgFlags::MSG_CTRUNC)
        {
            return Err(Error::Protocol(format!(
                "criu reply truncated ({len} bytes, flags {:?})",
                msg.flags
            )));
        }
        let n = msg.bytes;
        let resp = rpc::Criu_resp::parse_from_bytes(&buf[..n])?;
        Ok(Some((resp, fds)))
    }

    /// The last lines CRIU wrote to its stderr, if any.
    fn stderr_tail(&self) -> Option<String> {
        use std::io::{Read, Seek, SeekFrom};
        let mut f = self.stderr.as_ref()?;
        let len = f.seek(SeekFrom::End(0)).ok()?;
        f.seek(SeekFrom::Start(len.saturating_sub(STDERR_TAIL as u64)))
            .ok()?;
        let mut buf = Vec::new();
        f.read_to_end(&mut buf).ok()?;
        let text = String::from_utf8_lossy(&buf);
        let text = text.trim();
        (!text.is_empty()).then(|| text.lines().collect::<Vec<_>>().join(" / "))
    }

    /// Closes the socket and waits for CRIU, killing it after a grace period.
    fn reap(&mut self) -> ExitStatus {
        self.sock = None;
        let Some(mut child) = self.child.take() else {
            return ExitStatus::default();
        };
        let (status, killed) = wait_or_kill(&mut child, EXIT_GRACE);
        if killed {
            tracing::warn!(pid = child.id(), binary = %self.binary.display(), "criu did not exit, killed it");
        }
        status
    }
}

/// Gives `child` up to `grace` to exit by itself, then kills it; its status, and whether it
/// had to be killed.
pub(crate) fn wait_or_kill(child: &mut Child, grace: Duration) -> (ExitStatus, bool) {
    let deadline = Instant::now() + grace;
    loop {
        match child.try_wait() {
            Ok(Some(st)) => return (st, false),
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(5)),
            _ => {
                let _ = child.kill();
                return (child.wait().unwrap_or_default(), true);
            }
        }
    }
}

/// An unnamed in-memory file for CRIU's stderr.
fn stderr_sink() -> Result<std::fs::File> {
    memory_file(c"criu-stderr")
}

/// An unnamed in-memory file (close-on-exec).
pub(crate) fn memory_file(name: &std::ffi::CStr) -> Result<std::fs::File> {
    let fd = nix::sys::memfd::memfd_create(name, nix::sys::memfd::MFdFlags::MFD_CLOEXEC)
        .map_err(|e| Error::Io(e.into()))?;
    Ok(std::fs::File::from(fd))
}

impl Drop for Session {
    fn drop(&mut self) {
        self.reap();
    }
}
