//! A network namespace made for the container starts with its loopback up, as runc brings
//! it up (its "loopback" network for a new namespace): services listening on 127.0.0.1
//! work without the container needing CAP_NET_ADMIN.

use std::os::fd::AsRawFd;

use nix::sys::socket::{socket, AddressFamily, SockFlag, SockType};

use crate::{Error, Result};

pub(super) fn up() -> Result<()> {
    let sock = socket(
        AddressFamily::Inet,
        SockType::Datagram,
        SockFlag::SOCK_CLOEXEC,
        None,
    )
    .map_err(|e| failed("socket", e))?;
    // SAFETY: ifreq is plain data; all zeroes is a valid (empty) request.
    let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
    for (dst, src) in req.ifr_name.iter_mut().zip(b"lo\0") {
        *dst = *src as libc::c_char;
    }
    // SAFETY: SIOCGIFFLAGS and SIOCSIFFLAGS read and write only the ifreq passed, which
    // lives across both calls.
    unsafe {
        if libc::ioctl(sock.as_raw_fd(), libc::SIOCGIFFLAGS, &mut req) < 0 {
            return Err(failed("SIOCGIFFLAGS", nix::Error::last()));
        }
        req.ifr_ifru.ifru_flags |= libc::IFF_UP as libc::c_short;
        if libc::ioctl(sock.as_raw_fd(), libc::SIOCSIFFLAGS, &req) < 0 {
            return Err(failed("SIOCSIFFLAGS", nix::Error::last()));
        }
    }
    Ok(())
}

fn failed(what: &str, e: nix::Error) -> Error {
    Error::Io {
        context: format!("bring the loopback up in the container's network namespace ({what})"),
        cause: e.into(),
    }
}
