use oci_spec::runtime::PosixRlimit;

use super::spec_name;
use crate::{Error, Result};

fn resource(name: &str) -> Option<u32> {
    Some(match name {
        "RLIMIT_CPU" => libc::RLIMIT_CPU,
        "RLIMIT_FSIZE" => libc::RLIMIT_FSIZE,
        "RLIMIT_DATA" => libc::RLIMIT_DATA,
        "RLIMIT_STACK" => libc::RLIMIT_STACK,
        "RLIMIT_CORE" => libc::RLIMIT_CORE,
        "RLIMIT_RSS" => libc::RLIMIT_RSS,
        "RLIMIT_NPROC" => libc::RLIMIT_NPROC,
        "RLIMIT_NOFILE" => libc::RLIMIT_NOFILE,
        "RLIMIT_MEMLOCK" => libc::RLIMIT_MEMLOCK,
        "RLIMIT_AS" => libc::RLIMIT_AS,
        "RLIMIT_LOCKS" => libc::RLIMIT_LOCKS,
        "RLIMIT_SIGPENDING" => libc::RLIMIT_SIGPENDING,
        "RLIMIT_MSGQUEUE" => libc::RLIMIT_MSGQUEUE,
        "RLIMIT_NICE" => libc::RLIMIT_NICE,
        "RLIMIT_RTPRIO" => libc::RLIMIT_RTPRIO,
        "RLIMIT_RTTIME" => libc::RLIMIT_RTTIME,
        _ => return None,
    })
}

pub fn apply_rlimits(limits: &[PosixRlimit]) -> Result<()> {
    for l in limits {
        let name = spec_name(&l.typ());
        let res = resource(&name).ok_or_else(|| Error::Value {
            what: "process.rlimits[].type".into(),
            value: name.clone(),
            reason: "unknown rlimit".into(),
        })?;
        let lim = libc::rlimit {
            rlim_cur: l.soft(),
            rlim_max: l.hard(),
        };
        // SAFETY: setrlimit reads a valid rlimit struct; no memory is shared.
        if unsafe { libc::setrlimit(res as _, &lim) } != 0 {
            let e = std::io::Error::last_os_error();
            let hint = if e.raw_os_error() == Some(libc::EPERM) {
                " (raising a hard limit needs CAP_SYS_RESOURCE)"
            } else {
                ""
            };
            return Err(Error::Value {
                what: format!("process.rlimits {name}"),
                value: format!("soft {} hard {}", l.soft(), l.hard()),
                reason: format!("{e}{hint}"),
            });
        }
    }
    Ok(())
}
