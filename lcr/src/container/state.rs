use std::collections::HashMap;
use std::fmt;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// A container's status, as the OCI runtime spec names it (plus `paused`, as runc has).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Creating,
    Created,
    Running,
    Paused,
    Stopped,
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Creating => "creating",
            Self::Created => "created",
            Self::Running => "running",
            Self::Paused => "paused",
            Self::Stopped => "stopped",
        })
    }
}

/// What can be done to a container; each has the statuses it is allowed from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Start,
    Pause,
    Resume,
    Kill,
    Exec,
    Update,
    Delete,
    /// `delete --force`: from any status, the container's processes killed first.
    ForceDelete,
    Checkpoint,
}

impl Action {
    fn name(self) -> &'static str {
        match self {
            Self::Start => "start",
            Self::Pause => "pause",
            Self::Resume => "resume",
            Self::Kill => "kill",
            Self::Exec => "exec in",
            Self::Update => "update",
            Self::Delete => "delete (use --force)",
            Self::ForceDelete => "delete",
            Self::Checkpoint => "checkpoint",
        }
    }

    fn allowed_from(self, s: Status) -> bool {
        use Status::*;
        match self {
            Self::Start => s == Created,
            Self::Pause => s == Running,
            Self::Resume => s == Paused,
            Self::Kill => matches!(s, Created | Running | Paused),
            Self::Exec => matches!(s, Created | Running),
            Self::Update => matches!(s, Created | Running | Paused),
            Self::Delete => matches!(s, Stopped | Created),
            Self::ForceDelete => true,
            Self::Checkpoint => matches!(s, Running | Paused),
        }
    }

    /// The status after the action succeeds (`None`: unchanged).
    pub fn next(self) -> Option<Status> {
        match self {
            Self::Start | Self::Resume => Some(Status::Running),
            Self::Pause => Some(Status::Paused),
            _ => None,
        }
    }
}

impl Status {
    /// The transition table: an error names the container, its status and the action.
    pub fn check(self, id: &str, action: Action) -> Result<()> {
        if action.allowed_from(self) {
            Ok(())
        } else {
            Err(Error::BadState {
                id: id.to_string(),
                status: self,
                action: action.name(),
            })
        }
    }
}

/// `state.json` in the container's directory.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct State {
    pub oci_version: String,
    pub id: String,
    /// The last status lcr recorded; the live status is derived from the init process.
    pub status: Status,
    pub pid: i32,
    /// The init's start time (clock ticks since boot, /proc/PID/stat field 22): with the pid,
    /// it identifies the process, so a recycled pid is never signalled.
    pub init_start_time: u64,
    pub bundle: PathBuf,
    pub rootfs: PathBuf,
    #[serde(default)]
    pub annotations: HashMap<String, String>,
    pub created: String,
    /// Relative to each hierarchy root, e.g. `/lcr/<id>`.
    pub cgroup_path: String,
    pub owner: String,
    /// Set once restored from a checkpoint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restored_from: Option<PathBuf>,
    /// A clone's shared layer of the checkpoint's rootfs changes (its key under the state
    /// root's `layers/`), released when the clone is deleted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub snapshot_layer: Option<String>,
}

/// The state as the OCI runtime spec (and `runc state`) prints it.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct OciState<'a> {
    pub oci_version: &'a str,
    pub id: &'a str,
    pub status: Status,
    pub pid: i32,
    pub bundle: &'a std::path::Path,
    pub rootfs: &'a std::path::Path,
    pub created: &'a str,
    pub owner: &'a str,
    #[serde(skip_serializing_if = "HashMap::is_empty")]
    pub annotations: &'a HashMap<String, String>,
}

impl State {
    /// The state of a container being made from `bundle` (by create, or by restore from
    /// `restored_from`): no process yet.
    pub fn new(
        id: &str,
        bundle: &crate::spec::Bundle,
        cgroup_path: &str,
        restored_from: Option<PathBuf>,
    ) -> Self {
        Self {
            oci_version: bundle.spec.version().clone(),
            id: id.to_string(),
            status: Status::Creating,
            pid: 0,
            init_start_time: 0,
            bundle: bundle.dir.clone(),
            rootfs: bundle.rootfs.clone(),
            annotations: bundle.spec.annotations().clone().unwrap_or_default(),
            created: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true),
            cgroup_path: cgroup_path.to_string(),
            owner: "root".into(),
            restored_from,
            snapshot_layer: None,
        }
    }

    pub fn oci(&self, status: Status) -> OciState<'_> {
        OciState {
            oci_version: &self.oci_version,
            id: &self.id,
            status,
            pid: if status == Status::Stopped {
                0
            } else {
                self.pid
            },
            bundle: &self.bundle,
            rootfs: &self.rootfs,
            created: &self.created,
            owner: &self.owner,
            annotations: &self.annotations,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transitions_follow_the_table() {
        assert!(Status::Created.check("c", Action::Start).is_ok());
        assert!(Status::Running.check("c", Action::Start).is_err());
        assert!(Status::Running.check("c", Action::Pause).is_ok());
        assert!(Status::Paused.check("c", Action::Resume).is_ok());
        assert!(Status::Running.check("c", Action::Resume).is_err());
        assert!(Status::Stopped.check("c", Action::Kill).is_err());
        assert!(Status::Running.check("c", Action::Delete).is_err());
        assert!(Status::Paused.check("c", Action::ForceDelete).is_ok());
        let e = Status::Running
            .check("c", Action::Delete)
            .unwrap_err()
            .to_string();
        assert!(e.contains("use --force"), "{e}");
        assert!(Status::Stopped.check("c", Action::Delete).is_ok());
        assert!(Status::Paused.check("c", Action::Checkpoint).is_ok());
        let e = Status::Stopped
            .check("web", Action::Pause)
            .unwrap_err()
            .to_string();
        assert_eq!(e, "container \"web\" is stopped: cannot pause it");
    }
}
