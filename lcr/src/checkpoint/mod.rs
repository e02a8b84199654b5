//! Containers ↔ CRIU: `lcr checkpoint` builds one dump request from a container (rootfs as
//! root, external mounts keyed by destination, stdio declared external, the freezer cgroup,
//! joined namespaces as external) and `lcr restore` recreates a container from the images in
//! a new cgroup with the restore bundle's limits and mount sources.

mod clone;
mod compat;
mod criu_root;
mod dump;
mod dump_request;
mod frozen;
mod images;
mod isolation;
mod mounts;
mod network_lock;
mod page_server;
mod preflight;
mod restore;
mod settings;
mod stdio;
mod volumes;
mod watchdog;

pub use crate::image::record::{Record, RECORD_FILE};
pub use crate::image::stats::{DumpStats, RestoreStats};
pub use clone::CloneOpts;
pub use compat::{check_origin, criu_older};
/// What the CLI names of CRIU itself: which binary, and runc's `--manage-cgroups-mode`.
pub use criurpc::{CgroupMode, Criu, LazyPages, Version as CriuVersion};
pub use dump::{begin, checkpoint, CheckpointOpts, CheckpointReport, Dumped, Hold, OnImages};
pub use frozen::{Frozen, HandOver};
pub use images::ImageDir;
pub use mounts::{ExternalMount, MountKind};
pub use page_server::{serve_lazy_pages, serve_pages, PageServer};
pub use restore::{begin_restore, restore, Images, RestoreOpts, Restored, DEFAULT_TIMEOUT};
pub use settings::CriuSettings;
pub use stdio::{StdioFile, StdioKind};
