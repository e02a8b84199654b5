//! Containers ↔ CRIU: `lcr checkpoint` builds one dump request from a container (rootfs as
//! root, external mounts keyed by destination, stdio declared external, the freezer cgroup,
//! joined namespaces as external) and `lcr restore` recreates a container from the images in
//! a new cgroup with the restore bundle's limits and mount sources.

mod dump;
mod isolation;
mod mounts;
mod record;
mod restore;
mod settings;
mod stats;
mod stdio;
mod volumes;
mod watchdog;

pub use dump::{checkpoint, CheckpointOpts, CheckpointReport};
pub use mounts::{ExternalMount, MountKind};
pub use record::{Record, RECORD_FILE};
pub use restore::{check_origin, restore, RestoreOpts, DEFAULT_TIMEOUT};
pub use settings::CriuSettings;
pub use stats::{DumpStats, RestoreStats};
pub use stdio::{StdioFile, StdioKind};
