use nix::unistd::{setgroups, setresgid, setresuid, Gid, Uid};
use oci_spec::runtime::User;

use crate::error::Context;
use crate::Result;

/// Switches to the process's user: groups, gid, then uid. Capabilities survive the uid change
/// (PR_SET_KEEPCAPS) so that [`super::apply_capabilities`] can set them afterwards.
pub fn apply_user(u: &User) -> Result<()> {
    if let Some(mask) = u.umask() {
        nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(mask));
    }
    let groups: Vec<Gid> = u
        .additional_gids()
        .iter()
        .flatten()
        .map(|g| Gid::from_raw(*g))
        .collect();
    // setgroups is refused in a user namespace with setgroups=deny; only call it when needed.
    if !groups.is_empty()
        || std::fs::read_to_string("/proc/self/setgroups").map_or(true, |s| s.trim() == "allow")
    {
        setgroups(&groups).ctx(|| format!("setgroups {:?}", u.additional_gids()))?;
    }
    let gid = Gid::from_raw(u.gid());
    setresgid(gid, gid, gid).ctx(|| format!("setgid {}", u.gid()))?;
    // SAFETY: prctl with integer arguments only.
    if unsafe { libc::prctl(libc::PR_SET_KEEPCAPS, 1, 0, 0, 0) } != 0 {
        return Err(std::io::Error::last_os_error()).ctx(|| "PR_SET_KEEPCAPS".into());
    }
    let uid = Uid::from_raw(u.uid());
    setresuid(uid, uid, uid).ctx(|| format!("setuid {}", u.uid()))?;
    Ok(())
}

pub fn set_no_new_privs() -> Result<()> {
    // SAFETY: prctl with integer arguments only.
    if unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) } != 0 {
        return Err(std::io::Error::last_os_error()).ctx(|| "PR_SET_NO_NEW_PRIVS".into());
    }
    Ok(())
}
