//! The container's root filesystem, set up inside its mount namespace by the init process:
//! mounts, device nodes, pivot_root, masked and readonly paths.

pub(crate) mod devices;
pub mod diff;
mod flags;
mod mounts;
mod paths;
mod pivot;
mod resolve;
pub mod snapshot_layer;

pub use devices::{create_dev_symlinks, create_devices};
pub use flags::{parse_options, MountOptions, KNOWN_OPTIONS};
pub use mounts::{bind_source, cgroup_mounts, is_bind, make_mount_points, mount_all, prepare_root};
pub use paths::{mask_paths, readonly_paths, remount_root_readonly};
pub use pivot::{chroot_into, enter_root, no_pivot};
pub use resolve::{InRoot, RootDir};

use std::path::{Component, Path, PathBuf};

/// `root` joined with a container path, refusing to leave `root` through `..`.
pub fn join_in(root: &Path, inner: &Path) -> PathBuf {
    let mut out = root.to_path_buf();
    for c in inner.components() {
        match c {
            Component::Normal(n) => out.push(n),
            Component::ParentDir if out != root => {
                out.pop();
            }
            _ => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn join_in_stays_inside() {
        let r = Path::new("/b/rootfs");
        assert_eq!(
            join_in(r, Path::new("/proc")),
            PathBuf::from("/b/rootfs/proc")
        );
        assert_eq!(
            join_in(r, Path::new("/../../etc")),
            PathBuf::from("/b/rootfs/etc")
        );
        assert_eq!(
            join_in(r, Path::new("/a/../b")),
            PathBuf::from("/b/rootfs/b")
        );
    }
}
