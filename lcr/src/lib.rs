//! lcr: an OCI container runtime with CRIU checkpoint, restore and migration.
//!
//! The library holds everything but argument parsing: [`spec`] reads bundles, [`container`]
//! runs the lifecycle, [`process`] forks and sets up the container's processes, [`rootfs`],
//! [`cgroups`] and [`security`] apply the config, [`hooks`] runs OCI hooks.

pub mod cancel;
pub mod cgroups;
pub mod check;
pub mod checkpoint;
pub mod container;
mod error;
pub mod fsutil;
pub mod hooks;
pub mod image;
pub mod process;
pub mod procfs;
pub mod rootfs;
pub mod security;
pub mod spec;

pub use error::{Context, Error, Result};
