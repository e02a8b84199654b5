use std::path::{Component, Path};

use crate::{Error, Result};

/// Where containers without an absolute `linux.cgroupsPath` are placed, at the hierarchy root.
pub const ROOT: &str = "/lcr";

/// The cgroup path (relative to each hierarchy root, with a leading `/`) of container `id`.
///
/// runc resolves a relative path against the caller's own cgroup; lcr never does, because the
/// caller's cgroup may belong to someone else (it does on the machines this project runs on).
/// `.` and `..` components are refused: `/.` would name the hierarchy root itself, `..` a
/// cgroup outside the one named.
pub fn container_cgroup_path(spec_path: Option<&Path>, id: &str) -> Result<String> {
    if let Some(p) = spec_path {
        let text = p.to_string_lossy();
        if text.split('/').any(|c| c == "." || c == "..")
            || p.components()
                .any(|c| matches!(c, Component::ParentDir | Component::CurDir))
        {
            return Err(Error::Value {
                what: "linux.cgroupsPath".into(),
                value: text.into_owned(),
                reason: "'.' and '..' components are not allowed".into(),
            });
        }
    }
    Ok(
        match spec_path.map(|p| p.to_string_lossy().trim_end_matches('/').to_string()) {
            Some(p) if p.starts_with('/') && p.len() > 1 => p,
            Some(p) if !p.is_empty() => format!("{ROOT}/{p}"),
            _ => format!("{ROOT}/{id}"),
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn absolute_paths_are_kept_and_others_go_under_lcr() {
        let p = |s: &str| container_cgroup_path(Some(Path::new(s)), "c1").unwrap();
        assert_eq!(p("/machine/c1"), "/machine/c1");
        assert_eq!(p("/machine/c1/"), "/machine/c1");
        assert_eq!(p("pods/c1"), "/lcr/pods/c1");
        assert_eq!(p(""), "/lcr/c1");
        assert_eq!(p("/"), "/lcr/c1");
        assert_eq!(container_cgroup_path(None, "c2").unwrap(), "/lcr/c2");
    }

    #[test]
    fn dot_components_are_refused() {
        for bad in ["/.", "/a/../b", "..", "a/./b", "/lcr/.."] {
            let e = container_cgroup_path(Some(Path::new(bad)), "c1").unwrap_err();
            assert!(e.to_string().contains("linux.cgroupsPath"), "{bad}: {e}");
        }
    }
}
