use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};

use nix::fcntl::{open, OFlag};
use nix::sys::stat::Mode;

use crate::rpc;
use crate::{Error, Result};

/// The fd number the first fd passed to CRIU gets in the CRIU process (fd 3 is the RPC socket).
pub(crate) const FIRST_PASSED_FD: i32 = 4;

/// How CRIU treats cgroups (`--manage-cgroups=MODE`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CgroupMode {
    Ignore,
    /// Restore into existing cgroups, set properties only in cgroups CRIU creates.
    Soft,
    /// Restore properties of all cgroups.
    Full,
    /// Like full, and fail when a cgroup exists with other properties.
    Strict,
    /// CRIU's own default (soft).
    Default,
}

impl CgroupMode {
    fn to_rpc(self) -> rpc::Criu_cg_mode {
        match self {
            Self::Ignore => rpc::Criu_cg_mode::IGNORE,
            Self::Soft => rpc::Criu_cg_mode::SOFT,
            Self::Full => rpc::Criu_cg_mode::FULL,
            Self::Strict => rpc::Criu_cg_mode::STRICT,
            Self::Default => rpc::Criu_cg_mode::DEFAULT,
        }
    }
}

impl std::str::FromStr for CgroupMode {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Ok(match s {
            "ignore" => Self::Ignore,
            "soft" => Self::Soft,
            "full" => Self::Full,
            "strict" => Self::Strict,
            "default" => Self::Default,
            other => {
                return Err(format!(
                    "unknown cgroup mode {other:?} (expected soft, full, strict, ignore)"
                ))
            }
        })
    }
}

/// How pre-dump copies memory out of the frozen task.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PreDumpMode {
    Splice,
    ReadV,
}

/// Typed options for one CRIU request, turned into `criu_opts`.
///
/// Fds come in two kinds, and the builder keeps them apart: `images_dir_fd`, `work_dir_fd` and
/// `status_fd` are looked up by CRIU in *this* process (`/proc/<client>/fd/N`), so they are kept
/// open here until the reply; `inherit_fd` and the page-server socket must exist in the CRIU
/// process, so they are handed to it at spawn time as fd 4, 5, …
#[derive(Debug)]
pub struct Options {
    pub(crate) opts: rpc::Criu_opts,
    pub(crate) client_fds: Vec<OwnedFd>,
    pub(crate) criu_fds: Vec<OwnedFd>,
    log_dir: Option<PathBuf>,
    /// The number, in the CRIU process, of the socket a lazy dump serves its pages on.
    lazy_ps_fd: Option<i32>,
}

impl Default for Options {
    fn default() -> Self {
        Self::new()
    }
}

macro_rules! flag_options {
    ($($(#[$doc:meta])* $name:ident => $setter:ident;)*) => {
        $(
            $(#[$doc])*
            pub fn $name(mut self, on: bool) -> Self {
                self.opts.$setter(on);
                self
            }
        )*
    };
}

impl Options {
    pub fn new() -> Self {
        let mut opts = rpc::Criu_opts::new();
        // Required by the protocol; -1 means "use images_dir".
        opts.set_images_dir_fd(-1);
        Self {
            opts,
            client_fds: Vec::new(),
            criu_fds: Vec::new(),
            log_dir: None,
            lazy_ps_fd: None,
        }
    }

    /// The raw message, for inspection and tests.
    pub fn as_rpc(&self) -> &rpc::Criu_opts {
        &self.opts
    }

    /// The directory of CRIU's log file for this request (work dir, else images dir).
    pub fn log_dir(&self) -> Option<&Path> {
        self.log_dir.as_deref()
    }

    /// The full path of the log file, when both a log file and a directory are known.
    pub fn log_path(&self) -> Option<PathBuf> {
        let file = self.opts.log_file.as_deref()?;
        Some(self.log_dir.as_deref()?.join(file))
    }

    pub fn images_dir(mut self, dir: impl AsRef<Path>) -> Self {
        let dir = dir.as_ref();
        self.opts.set_images_dir(dir.to_string_lossy().into_owned());
        if self.log_dir.is_none() || !self.opts.has_work_dir_fd() {
            self.log_dir = Some(dir.to_path_buf());
        }
        self
    }

    /// Images directory by fd (open in this process while the request runs).
    pub fn images_dir_fd(mut self, fd: OwnedFd) -> Self {
        self.opts.set_images_dir_fd(fd.as_raw_fd());
        if !self.opts.has_work_dir_fd() {
            self.log_dir = Some(PathBuf::from(format!("/proc/self/fd/{}", fd.as_raw_fd())));
        }
        self.client_fds.push(fd);
        self
    }

    /// Work directory (logs, stats-dump); opened here and passed by fd.
    pub fn work_dir(self, dir: impl AsRef<Path>) -> Result<Self> {
        let dir = dir.as_ref();
        let fd = open(
            dir,
            OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| Error::InvalidOption {
            option: "work_dir",
            reason: format!("{}: {e}", dir.display()),
        })?;
        let mut me = self.work_dir_fd(fd);
        me.log_dir = Some(dir.to_path_buf());
        Ok(me)
    }

    pub fn work_dir_fd(mut self, fd: OwnedFd) -> Self {
        self.opts.set_work_dir_fd(fd.as_raw_fd());
        self.log_dir = Some(PathBuf::from(format!("/proc/self/fd/{}", fd.as_raw_fd())));
        self.client_fds.push(fd);
        self
    }

    pub fn pid(mut self, pid: i32) -> Self {
        self.opts.set_pid(pid);
        self
    }

    /// Parent images directory, relative to the images directory (pre-dump chains).
    pub fn parent_img(mut self, path: impl Into<String>) -> Self {
        self.opts.set_parent_img(path.into());
        self
    }

    flag_options! {
        track_mem => set_track_mem;
        auto_dedup => set_auto_dedup;
        leave_running => set_leave_running;
        /// Leave the tasks stopped after dump or restore instead of resuming them.
        leave_stopped => set_leave_stopped;
        ext_unix_sk => set_ext_unix_sk;
        tcp_established => set_tcp_established;
        tcp_close => set_tcp_close;
        tcp_skip_in_flight => set_tcp_skip_in_flight;
        shell_job => set_shell_job;
        file_locks => set_file_locks;
        link_remap => set_link_remap;
        evasive_devices => set_evasive_devices;
        /// Restore the root task as a sibling of CRIU, i.e. a child of the caller.
        rst_sibling => set_rst_sibling;
        orphan_pts_master => set_orphan_pts_master;
        lazy_pages => set_lazy_pages;
        notify_scripts => set_notify_scripts;
        auto_ext_mnt => set_auto_ext_mnt;
        ext_sharing => set_ext_sharing;
        ext_masters => set_ext_masters;
        weak_sysctls => set_weak_sysctls;
        /// Print (into the log) and write `stats-dump`/`stats-restore` timings.
        display_stats => set_display_stats;
    }

    /// An external mount: on dump `key` is the mountpoint and `val` the name it is saved under;
    /// on restore `key` is that name and `val` the host path to mount there.
    pub fn ext_mnt(mut self, key: impl Into<String>, val: impl Into<String>) -> Self {
        let mut m = rpc::Ext_mount_map::new();
        m.set_key(key.into());
        m.set_val(val.into());
        self.opts.ext_mnt.push(m);
        self
    }

    /// An `--external` resource, e.g. `mnt[/data]:data`, `net[4026531992]:extnet`, `file[1f:2a]`.
    pub fn external(mut self, spec: impl Into<String>) -> Self {
        self.opts.external.push(spec.into());
        self
    }

    /// Give `fd` to the restored tasks wherever the image has the external resource `key`.
    pub fn inherit_fd(mut self, key: impl Into<String>, fd: OwnedFd) -> Self {
        let n = self.pass_to_criu(fd);
        let mut i = rpc::Inherit_fd::new();
        i.set_key(key.into());
        i.set_fd(n);
        self.opts.inherit_fd.push(i);
        self
    }

    /// Join an existing namespace on restore (`ns`: "net", "ipc", "uts", "mnt"…).
    pub fn join_ns(mut self, ns: &str, ns_file: impl AsRef<Path>, extra: Option<&str>) -> Self {
        let mut j = rpc::Join_namespace::new();
        j.set_ns(ns.to_string());
        j.set_ns_file(ns_file.as_ref().to_string_lossy().into_owned());
        if let Some(e) = extra {
            j.set_extra_opt(e.to_string());
        }
        self.opts.join_ns.push(j);
        self
    }

    /// Restore cgroups under `path` (for controller `ctrl`, or all when `None`).
    pub fn cg_root(mut self, ctrl: Option<&str>, path: impl Into<String>) -> Self {
        let mut c = rpc::Cgroup_root::new();
        if let Some(ctrl) = ctrl {
            c.set_ctrl(ctrl.to_string());
        }
        c.set_path(path.into());
        self.opts.cg_root.push(c);
        self
    }

    pub fn manage_cgroups_mode(mut self, mode: CgroupMode) -> Self {
        self.opts.set_manage_cgroups(true);
        self.opts.set_manage_cgroups_mode(mode.to_rpc());
        self
    }

    /// Freeze the tasks through this freezer cgroup path instead of ptrace-stopping them.
    pub fn freeze_cgroup(mut self, path: impl Into<String>) -> Self {
        self.opts.set_freeze_cgroup(path.into());
        self
    }

    /// Root of the restored tasks' file system.
    pub fn root(mut self, path: impl AsRef<Path>) -> Self {
        self.opts
            .set_root(path.as_ref().to_string_lossy().into_owned());
        self
    }

    /// Namespaces to create empty on restore (only `CLONE_NEWNET` is accepted by CRIU).
    pub fn empty_ns(mut self, clone_flags: u32) -> Self {
        self.opts.set_empty_ns(clone_flags);
        self
    }

    pub fn network_lock_nftables(mut self) -> Self {
        self.opts
            .set_network_lock(rpc::Criu_network_lock_method::NFTABLES);
        self
    }

    pub fn network_lock_skip(mut self) -> Self {
        self.opts
            .set_network_lock(rpc::Criu_network_lock_method::SKIP);
        self
    }

    /// Page server address and port: on dump, send pages there; on PAGE_SERVER, listen there.
    pub fn page_server(mut self, address: impl Into<String>, port: u16) -> Self {
        let ps = self.opts.ps.mut_or_insert_default();
        ps.set_address(address.into());
        ps.set_port(i32::from(port));
        self
    }

    /// A pre-connected page-server socket (handed to CRIU); no port is opened.
    pub fn page_server_fd(mut self, fd: OwnedFd) -> Self {
        let n = self.pass_to_criu(fd);
        self.opts.ps.mut_or_insert_default().set_fd(n);
        self
    }

    /// A lazy dump (`lazy_pages`) serves the pages left behind on this pre-connected socket
    /// (handed to CRIU) instead of listening on a TCP port.
    ///
    /// CRIU's RPC ignores `ps.fd` for lazy dumps (it takes only a port, and listens on every
    /// address), while its command line has `--ps-socket`. So the socket's number reaches
    /// CRIU as `ps-socket N` in the request's configuration file: a memory file handed to
    /// CRIU with the lines of the request's own configuration file (if any) and that one.
    /// It is made when the session starts ([`Options::seal`]).
    pub fn lazy_page_server_fd(mut self, fd: OwnedFd) -> Self {
        let n = self.pass_to_criu(fd);
        self.lazy_ps_fd = Some(n);
        self
    }

    /// Makes what must be made once every option is set (see
    /// [`Options::lazy_page_server_fd`]); the session calls it before it hands the fds over.
    pub(crate) fn seal(&mut self) -> Result<()> {
        let Some(n) = self.lazy_ps_fd.take() else {
            return Ok(());
        };
        let mut text = match self.opts.config_file.as_deref() {
            Some(path) => std::fs::read_to_string(path).map_err(|cause| Error::InvalidOption {
                option: "config_file",
                reason: format!("{path}: {cause}"),
            })?,
            None => String::new(),
        };
        if !text.is_empty() && !text.ends_with('\n') {
            text.push('\n');
        }
        text.push_str(&format!("ps-socket {n}\n"));
        let mut f = crate::session::memory_file(c"criu-rpc-config")?;
        std::io::Write::write_all(&mut f, text.as_bytes()).map_err(Error::Io)?;
        let m = self.pass_to_criu(f.into());
        self.opts.set_config_file(format!("/proc/self/fd/{m}"));
        Ok(())
    }

    /// CRIU writes a byte here when a page server or lazy-pages daemon is ready (obsolete in
    /// CRIU in favour of the `status-ready` notification, still honoured).
    pub fn status_fd(mut self, fd: OwnedFd) -> Self {
        self.opts.set_status_fd(fd.as_raw_fd());
        self.client_fds.push(fd);
        self
    }

    pub fn lsm_profile(mut self, profile: impl Into<String>) -> Self {
        self.opts.set_lsm_profile(profile.into());
        self
    }

    pub fn config_file(mut self, path: impl AsRef<Path>) -> Self {
        self.opts
            .set_config_file(path.as_ref().to_string_lossy().into_owned());
        self
    }

    pub fn ghost_limit(mut self, bytes: u32) -> Self {
        self.opts.set_ghost_limit(bytes);
        self
    }

    /// CRIU's log verbosity, 0 (none) to 4 (debug).
    pub fn log_level(mut self, level: i32) -> Self {
        self.opts.set_log_level(level);
        self
    }

    /// Log file name inside the work (or images) directory; no subdirectories.
    pub fn log_file(mut self, name: impl Into<String>) -> Self {
        self.opts.set_log_file(name.into());
        self
    }

    pub fn pre_dump_mode(mut self, mode: PreDumpMode) -> Self {
        self.opts.set_pre_dump_mode(match mode {
            PreDumpMode::Splice => rpc::Criu_pre_dump_mode::SPLICE,
            PreDumpMode::ReadV => rpc::Criu_pre_dump_mode::VM_READ,
        });
        self
    }

    /// Seconds CRIU may wait for the tasks to freeze.
    pub fn timeout(mut self, seconds: u32) -> Self {
        self.opts.set_timeout(seconds);
        self
    }

    pub fn skip_mnt(mut self, path: impl Into<String>) -> Self {
        self.opts.skip_mnt.push(path.into());
        self
    }

    pub fn enable_fs(mut self, fs: impl Into<String>) -> Self {
        self.opts.enable_fs.push(fs.into());
        self
    }

    /// Hand `fd` to the CRIU process; returns the number it has there.
    fn pass_to_criu(&mut self, fd: OwnedFd) -> i32 {
        let n = FIRST_PASSED_FD + self.criu_fds.len() as i32;
        self.criu_fds.push(fd);
        n
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use protobuf::Message;

    fn devnull() -> OwnedFd {
        std::fs::File::open("/dev/null").unwrap().into()
    }

    #[test]
    fn new_options_encode_with_the_required_field_set() {
        let o = Options::new();
        assert_eq!(o.as_rpc().images_dir_fd(), -1);
        let bytes = o.as_rpc().write_to_bytes().unwrap();
        let back = rpc::Criu_opts::parse_from_bytes(&bytes).unwrap();
        assert_eq!(back.images_dir_fd(), -1);
    }

    #[test]
    fn flags_and_values_land_in_their_fields() {
        let o = Options::new()
            .images_dir("/img")
            .pid(42)
            .leave_running(true)
            .tcp_established(true)
            .shell_job(false)
            .manage_cgroups_mode(CgroupMode::Soft)
            .freeze_cgroup("/sys/fs/cgroup/freezer/lcr/x")
            .ext_mnt("/data", "/data")
            .external("mnt[/etc/hosts]:hosts")
            .cg_root(None, "/lcr/y")
            .empty_ns(libc::CLONE_NEWNET as u32)
            .log_level(4)
            .log_file("dump.log");
        let r = o.as_rpc();
        assert_eq!(r.images_dir(), "/img");
        assert_eq!(r.pid(), 42);
        assert!(r.leave_running() && r.tcp_established());
        assert!(r.has_shell_job() && !r.shell_job());
        assert!(!r.has_file_locks());
        assert_eq!(r.manage_cgroups_mode(), rpc::Criu_cg_mode::SOFT);
        assert!(r.manage_cgroups());
        assert_eq!(r.ext_mnt[0].key(), "/data");
        assert_eq!(r.external, vec!["mnt[/etc/hosts]:hosts".to_string()]);
        assert_eq!(r.cg_root[0].path(), "/lcr/y");
        assert!(!r.cg_root[0].has_ctrl());
        assert_eq!(r.empty_ns(), libc::CLONE_NEWNET as u32);
        assert_eq!(o.log_path(), Some(PathBuf::from("/img/dump.log")));
    }

    #[test]
    fn criu_side_fds_are_numbered_from_four_in_order() {
        let o = Options::new()
            .inherit_fd("pipe:[1]", devnull())
            .page_server_fd(devnull())
            .inherit_fd("pipe:[2]", devnull());
        let r = o.as_rpc();
        assert_eq!(r.inherit_fd[0].fd(), 4);
        assert_eq!(r.ps.fd(), 5);
        assert_eq!(r.inherit_fd[1].fd(), 6);
        assert_eq!(o.criu_fds.len(), 3);
        assert!(o.client_fds.is_empty());
    }

    #[test]
    fn client_side_fds_keep_their_own_numbers() {
        let fd = devnull();
        let raw = fd.as_raw_fd();
        let o = Options::new().images_dir_fd(fd);
        assert_eq!(o.as_rpc().images_dir_fd(), raw);
        assert_eq!(o.client_fds.len(), 1);
        assert!(o.criu_fds.is_empty());
    }

    #[test]
    fn work_dir_wins_for_the_log_location() {
        let d = tempfile::tempdir().unwrap();
        let o = Options::new()
            .work_dir(d.path())
            .unwrap()
            .images_dir("/img")
            .log_file("restore.log");
        assert_eq!(o.log_path(), Some(d.path().join("restore.log")));
        let err = Options::new().work_dir("/nonexistent/x").unwrap_err();
        assert!(err.to_string().contains("/nonexistent/x"), "{err}");
    }

    #[test]
    fn cgroup_mode_parses_runc_names() {
        assert_eq!("soft".parse::<CgroupMode>(), Ok(CgroupMode::Soft));
        assert_eq!("strict".parse::<CgroupMode>(), Ok(CgroupMode::Strict));
        assert!("hard".parse::<CgroupMode>().unwrap_err().contains("hard"));
    }
}
