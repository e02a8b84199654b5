//! A client for CRIU's RPC interface, spoken over `criu swrk` on a `SOCK_SEQPACKET` socketpair.
//!
//! This crate knows nothing of containers: it turns typed [`Options`] into `criu_req` messages,
//! runs one CRIU process per [`Session`], answers CRIU's notifications through a caller-supplied
//! [`NotifyHandler`], and reports failures with CRIU's own reason ([`Error::Criu`]).
//!
//! # Why `rust-criu`'s generated types
//! The protobuf message types come from the `rust-criu` crate's public `rpc` module (generated
//! from CRIU's `rpc.proto` by `protobuf-codegen`), re-exported here as [`rpc`]. Its copy of
//! `rpc.proto` is current (lazy pages, pidfd store, pre-dump modes, `ps.fd`), so generating our
//! own would duplicate it byte for byte. The price is pinning the exact `protobuf` runtime version
//! that crate was generated with (`=3.7.2` in the workspace). Everything else — the session, the
//! reply sizing, fd passing, notifications, errors — is ours, because `rust-criu`'s client reads
//! into a fixed buffer, takes a bare `fn` pointer for notifications and drops the restored pid.
//!
//! # Example
//! ```no_run
//! use criurpc::{Criu, Options};
//! let criu = Criu::new();
//! let version = criu.version()?;
//! let features = criu.features()?;
//! println!("CRIU {version}: dirty tracking {}", features.mem_track);
//! let opts = Options::new().images_dir("/tmp/img").pid(1234).leave_running(true);
//! criu.dump(opts, &mut |_n: &mut criurpc::Notify| Ok(()))?;
//! # Ok::<(), criurpc::Error>(())
//! ```

mod client;
mod error;
mod fdpass;
mod lazy_pages;
mod log_excerpt;
mod notify;
mod options;
mod session;
mod version;

pub use client::{Criu, PageServer, RestoreResult};
pub use error::{Error, Result};
pub use lazy_pages::{LazyPages, LAZY_PAGES_LOG};
pub use log_excerpt::log_excerpt;
pub use notify::{Notify, NotifyHandler};
pub use options::{CgroupMode, Options, PreDumpMode};
pub use rust_criu::rust_criu_protobuf::rpc;
pub use session::{RequestKind, Session};
pub use version::{Features, Version, MIN_VERSION};
