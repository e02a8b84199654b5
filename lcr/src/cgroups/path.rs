use std::path::Path;

/// Where containers without an absolute `linux.cgroupsPath` are placed, at the hierarchy root.
pub const ROOT: &str = "/lcr";

/// The cgroup path (relative to each hierarchy root, with a leading `/`) of container `id`.
///
/// runc resolves a relative path against the caller's own cgroup; lcr never does, because the
/// caller's cgroup may belong to someone else (it does on the machines this project runs on).
/// `spec_path` has no `.` or `..` components: the bundle's validation refuses them.
pub fn container_cgroup_path(spec_path: Option<&Path>, id: &str) -> String {
    match spec_path.map(|p| p.to_string_lossy().trim_end_matches('/').to_string()) {
        Some(p) if p.starts_with('/') && p.len() > 1 => p,
        Some(p) if !p.is_empty() => format!("{ROOT}/{p}"),
        _ => format!("{ROOT}/{id}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn absolute_paths_are_kept_and_others_go_under_lcr() {
        let p = |s: &str| container_cgroup_path(Some(Path::new(s)), "c1");
        assert_eq!(p("/machine/c1"), "/machine/c1");
        assert_eq!(p("/machine/c1/"), "/machine/c1");
        assert_eq!(p("pods/c1"), "/lcr/pods/c1");
        assert_eq!(p(""), "/lcr/c1");
        assert_eq!(p("/"), "/lcr/c1");
        assert_eq!(container_cgroup_path(None, "c2"), "/lcr/c2");
    }
}
