use std::path::{Path, PathBuf};

use criurpc::{CgroupMode, Criu, Options};

use crate::error::Context;
use crate::Result;

/// The CRIU settings `lcr checkpoint` and `lcr restore` share (runc's flags of the same names).
#[derive(Debug, Clone)]
pub struct CriuSettings {
    pub criu: Criu,
    /// CRIU's log and stats directory (default: the image directory).
    pub work_path: Option<PathBuf>,
    pub tcp_established: bool,
    pub ext_unix_sk: bool,
    pub shell_job: bool,
    pub file_locks: bool,
    pub manage_cgroups_mode: Option<CgroupMode>,
    pub empty_ns_network: bool,
    pub auto_dedup: bool,
    pub lazy_pages: bool,
}

impl Default for CriuSettings {
    fn default() -> Self {
        Self {
            criu: Criu::new(),
            work_path: None,
            tcp_established: false,
            ext_unix_sk: false,
            shell_job: false,
            file_locks: false,
            manage_cgroups_mode: None,
            empty_ns_network: false,
            auto_dedup: false,
            lazy_pages: false,
        }
    }
}

/// The annotation that names a CRIU configuration file for one container (runc and crun
/// honour it too); an empty value means none.
pub const CRIU_CONFIG_ANNOTATION: &str = "org.criu.config";

/// The configuration file CRIU reads for containers whose config does not name one.
pub const DEFAULT_CRIU_CONFIG: &str = "/etc/criu/lcr.conf";

/// The CRIU configuration file for a container of `spec`: its `org.criu.config` annotation,
/// else [`DEFAULT_CRIU_CONFIG`] where it exists. A named file that is missing is an error
/// (before CRIU runs), not a silent default.
pub fn criu_config_file(spec: &oci_spec::runtime::Spec) -> Result<Option<PathBuf>> {
    let named = spec
        .annotations()
        .as_ref()
        .and_then(|a| a.get(CRIU_CONFIG_ANNOTATION));
    match named.map(String::as_str) {
        Some("") => Ok(None),
        Some(p) => {
            let path = PathBuf::from(p);
            if !path.is_file() {
                return Err(crate::Error::Value {
                    what: format!("annotation {CRIU_CONFIG_ANNOTATION}"),
                    value: p.to_string(),
                    reason: "no such CRIU configuration file".into(),
                });
            }
            Ok(Some(path))
        }
        None => Ok(Some(PathBuf::from(DEFAULT_CRIU_CONFIG)).filter(|p| p.is_file())),
    }
}

impl CriuSettings {
    /// The work directory, absolute: `work_path`, else the image directory.
    pub fn work_dir(&self, image_dir: &Path) -> Result<PathBuf> {
        match &self.work_path {
            Some(w) => std::path::absolute(w).ctx(|| format!("work path {}", w.display())),
            None => Ok(image_dir.to_path_buf()),
        }
    }

    /// Sets these settings on a dump or restore request.
    pub(super) fn apply(&self, opts: Options) -> Options {
        let mut opts = opts
            .manage_cgroups_mode(self.manage_cgroups_mode.unwrap_or(CgroupMode::Soft))
            .tcp_established(self.tcp_established)
            .ext_unix_sk(self.ext_unix_sk)
            .shell_job(self.shell_job)
            .file_locks(self.file_locks)
            .auto_dedup(self.auto_dedup)
            .lazy_pages(self.lazy_pages);
        if self.empty_ns_network {
            opts = opts.empty_ns(libc::CLONE_NEWNET as u32);
        }
        network_lock(opts)
    }
}

/// CRIU locks the container's network during dump and restore with iptables by default, which
/// needs the `iptables-restore` binary; without it, use CRIU's nftables method (libnftables).
fn network_lock(opts: Options) -> Options {
    let has_iptables = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).any(|d| d.join("iptables-restore").is_file()))
        .unwrap_or(false);
    if has_iptables {
        opts
    } else {
        opts.network_lock_nftables()
    }
}
