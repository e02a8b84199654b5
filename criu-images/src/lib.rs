//! CRIU's image files, read with types generated from CRIU's own `.proto` files.
//!
//! An image file is a magic number (two for most images: the "common" or "service" magic,
//! then the image's own), then length-prefixed protobuf messages. [`messages`] splits a file
//! into them; [`decode`] reads each as its generated type.

#![allow(clippy::all)]

include!(concat!(env!("OUT_DIR"), "/criu/mod.rs"));

pub mod framing;

pub use framing::{decode, decode_one, encode, messages, Error};
