//! Host-to-host live migration of lcr containers, over the ssh the user already has.
//!
//! Where a container goes ([`destination`]); how the receiving lcr is started there without
//! a shell reinterpreting anything ([`ssh`]); the framed, typed, versioned protocol the two
//! lcr processes speak over that one connection ([`wire`], [`link`]: the page-server bytes
//! relayed through it, so no port is opened); the two roles ([`source`], [`receive`]).

pub mod destination;
mod error;
mod facts;
mod link;
mod pending;
pub mod receive;
pub mod resolve;
mod rootfs_copy;
pub mod source;
pub mod ssh;
pub mod strategy;
pub mod wire;

pub use destination::Destination;
pub use error::{Error, Result};
pub use link::RESTORE_LIMIT;
pub use strategy::Strategy;
