//! A checkpoint on disk or in an archive: podman-compatible tar (+ zstd) with lcr's manifest
//! first; pack and unpack streaming, inspect and verify. Knows nothing of CRIU's RPC; reads
//! CRIU's images only to describe and check them.

pub mod compression;
mod contents;
mod digest;
mod error;
mod inspect;
pub mod isolation;
pub mod layout;
mod manifest;
mod mapped;
mod output;
mod pack;
mod progress;
mod read;
pub mod record;
pub mod stats;
pub mod tree;
mod unpack;
mod verify;
pub mod volumes;

pub use compression::Compression;
pub use contents::{connections, Connection, Contents, OpenFile, Process, Socket};
pub use error::ImageError;
pub use inspect::{inspect, render, Inspection};
pub use manifest::{Entry, Manifest, MountSummary, Origin, Summary, FORMAT};
pub use output::Output;
pub use pack::{pack, PackOpts};
pub use read::{Input, DEFAULT_MAX_TOTAL};
pub use unpack::{unpack, unpack_into, Precheck};
pub use verify::{verify, Verified};
