use std::path::Path;

use nix::errno::Errno;
use nix::mount::{mount, MsFlags};

use crate::error::Context;
use crate::Result;

/// Hides each path: an empty read-only tmpfs over directories, /dev/null over anything else.
/// Paths that do not exist are skipped. Runs after pivot_root, on container paths.
pub fn mask_paths(paths: &[String]) -> Result<()> {
    for p in paths {
        let path = Path::new(p);
        let r = if path.is_dir() {
            mount(
                Some("tmpfs"),
                path,
                Some("tmpfs"),
                MsFlags::MS_RDONLY,
                None::<&str>,
            )
        } else {
            mount(
                Some("/dev/null"),
                path,
                None::<&str>,
                MsFlags::MS_BIND,
                None::<&str>,
            )
        };
        match r {
            Ok(()) | Err(Errno::ENOENT) => {}
            Err(e) => return Err(e).ctx(|| format!("mask {p}")),
        }
    }
    Ok(())
}

/// Makes each path read-only (bind onto itself, remount ro); missing paths are skipped.
pub fn readonly_paths(paths: &[String]) -> Result<()> {
    for p in paths {
        let path = Path::new(p);
        match mount(
            Some(path),
            path,
            None::<&str>,
            MsFlags::MS_BIND | MsFlags::MS_REC,
            None::<&str>,
        ) {
            Ok(()) => {}
            Err(Errno::ENOENT) => continue,
            Err(e) => return Err(e).ctx(|| format!("bind {p} read-only")),
        }
        let f = MsFlags::MS_BIND
            | MsFlags::MS_REMOUNT
            | MsFlags::MS_RDONLY
            | MsFlags::MS_NOSUID
            | MsFlags::MS_NODEV
            | MsFlags::MS_NOEXEC;
        mount(Some(path), path, None::<&str>, f, None::<&str>)
            .ctx(|| format!("remount {p} read-only"))?;
    }
    Ok(())
}

pub fn remount_root_readonly() -> Result<()> {
    mount(
        None::<&str>,
        "/",
        None::<&str>,
        MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY,
        None::<&str>,
    )
    .ctx(|| "remount / read-only".into())
}
