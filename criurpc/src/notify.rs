use std::os::fd::OwnedFd;

/// One notification from CRIU (`criu_notify`), delivered while a request runs.
///
/// CRIU waits for the answer: the operation continues only when the handler returns `Ok`.
#[derive(Debug)]
pub struct Notify {
    /// The action-script name: `pre-dump`, `post-dump`, `network-lock`, `network-unlock`,
    /// `pre-restore`, `setup-namespaces`, `post-setup-namespaces`, `post-restore`,
    /// `pre-resume`, `post-resume`, `orphan-pts-master`, `status-ready`, …
    pub script: String,
    /// The pid CRIU attached to the notification (e.g. the restored root on `post-restore`).
    pub pid: Option<i32>,
    fd: Option<OwnedFd>,
}

impl Notify {
    pub(crate) fn new(script: String, pid: Option<i32>, fd: Option<OwnedFd>) -> Self {
        Self { script, pid, fd }
    }

    /// The fd sent with the notification (the pty master on `orphan-pts-master`), taken once.
    pub fn take_fd(&mut self) -> Option<OwnedFd> {
        self.fd.take()
    }
}

/// Answers CRIU's notifications. An `Err` is sent to CRIU as a failure, which makes CRIU
/// abort the operation; the error text is kept for the caller ([`crate::Error::NotifyRefused`]).
pub trait NotifyHandler {
    fn notify(&mut self, n: &mut Notify) -> Result<(), String>;
}

impl<F: FnMut(&mut Notify) -> Result<(), String>> NotifyHandler for F {
    fn notify(&mut self, n: &mut Notify) -> Result<(), String> {
        self(n)
    }
}

/// A handler that accepts every notification.
pub(crate) struct AcceptAll;

impl NotifyHandler for AcceptAll {
    fn notify(&mut self, _: &mut Notify) -> Result<(), String> {
        Ok(())
    }
}
