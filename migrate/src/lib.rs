//! Host-to-host migration of lcr containers: source and destination roles, the stop-and-copy,
//! pre-copy and post-copy strategies, and the ssh transport between them.
//!
//! The pipeline is built on `lcr::checkpoint` once checkpoint and restore land; this crate holds
//! its place in the workspace so the dependency direction (`migrate → lcr`) is fixed from the start.
