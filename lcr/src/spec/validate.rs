use std::collections::HashSet;
use std::path::{Path, PathBuf};

use oci_spec::runtime::{Linux, LinuxNamespaceType, Spec};

use crate::{Error, Result};

/// A config field at fault, in `file`.
type Bad<'a> = &'a dyn Fn(&str, String) -> Error;

/// Checks what serde cannot: required parts, paths that must exist, consistent namespaces.
/// Returns the absolute rootfs path.
pub(super) fn check(file: &Path, bundle: &Path, spec: &Spec) -> Result<PathBuf> {
    let bad = |field: &str, reason: String| Error::Config {
        file: file.to_path_buf(),
        field: field.to_string(),
        reason,
    };
    if spec.version().trim().is_empty() {
        return Err(bad("ociVersion", "missing".into()));
    }
    let root = spec
        .root()
        .as_ref()
        .ok_or_else(|| bad("root", "missing".into()))?;
    let rootfs = bundle.join(root.path());
    if !rootfs.is_dir() {
        return Err(bad(
            "root.path",
            format!("{} is not a directory", rootfs.display()),
        ));
    }
    check_process(spec, &bad)?;
    for (i, m) in spec.mounts().iter().flatten().enumerate() {
        if !m.destination().is_absolute() {
            return Err(bad(
                &format!("mounts[{i}].destination"),
                format!("{} is not absolute", m.destination().display()),
            ));
        }
    }
    let seen = check_namespaces(spec, &bad)?;
    if let Some(l) = spec.linux() {
        check_linux(l, seen.contains(&LinuxNamespaceType::User), &bad)?;
    }
    if spec.hostname().as_ref().is_some_and(|h| !h.is_empty())
        && !seen.contains(&LinuxNamespaceType::Uts)
    {
        return Err(bad(
            "hostname",
            "setting a hostname needs a new uts namespace".into(),
        ));
    }
    Ok(rootfs)
}

fn check_process(spec: &Spec, bad: Bad) -> Result<()> {
    let process = spec
        .process()
        .as_ref()
        .ok_or_else(|| bad("process", "missing".into()))?;
    match process.args() {
        Some(a) if !a.is_empty() && !a[0].is_empty() => {}
        _ => return Err(bad("process.args", "empty: nothing to run".into())),
    }
    if !process.cwd().is_absolute() {
        return Err(bad(
            "process.cwd",
            format!("{} is not absolute", process.cwd().display()),
        ));
    }
    Ok(())
}

/// Each namespace once, joined ones existing, and mounts only with a mount namespace of the
/// container's own. Returns the types listed.
fn check_namespaces(spec: &Spec, bad: Bad) -> Result<HashSet<LinuxNamespaceType>> {
    let mut seen = HashSet::new();
    for (i, ns) in super::namespaces(spec).enumerate() {
        if !seen.insert(ns.typ()) {
            return Err(bad(
                &format!("linux.namespaces[{i}].type"),
                format!("namespace {:?} listed twice", ns.typ()),
            ));
        }
        if let Some(p) = ns.path() {
            if !p.exists() {
                return Err(bad(
                    &format!("linux.namespaces[{i}].path"),
                    format!("{} does not exist", p.display()),
                ));
            }
        }
    }
    let new_mount_ns =
        super::namespaces(spec).any(|n| n.typ() == LinuxNamespaceType::Mount && n.path().is_none());
    if !new_mount_ns && spec.mounts().as_ref().is_some_and(|m| !m.is_empty()) {
        // Without a mount namespace of its own the container is chrooted into its rootfs,
        // and its mounts would land in the host's mount table.
        return Err(bad(
            "mounts",
            "mounts need a new mount namespace (add {\"type\": \"mount\"} to linux.namespaces, or list no mounts)".into(),
        ));
    }
    Ok(seen)
}

fn check_linux(l: &Linux, has_userns: bool, bad: Bad) -> Result<()> {
    let maps = l.uid_mappings().as_ref().is_some_and(|m| !m.is_empty())
        || l.gid_mappings().as_ref().is_some_and(|m| !m.is_empty());
    if maps && !has_userns {
        return Err(bad(
            "linux.uidMappings",
            "mappings given without a user namespace".into(),
        ));
    }
    // Split as text: Path's components drop `.`, and `/.` would name the hierarchy root.
    if let Some(cg) = l.cgroups_path() {
        if cg
            .to_string_lossy()
            .split('/')
            .any(|c| c == "." || c == "..")
        {
            return Err(bad(
                "linux.cgroupsPath",
                format!("{}: '.' and '..' components are not allowed", cg.display()),
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use crate::spec::{parse_config_text, Bundle};
    use crate::Error;

    fn bundle_with(config: &str) -> (tempfile::TempDir, Result<Bundle, Error>) {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir(d.path().join("rootfs")).unwrap();
        std::fs::write(d.path().join("config.json"), config).unwrap();
        let r = Bundle::load(d.path());
        (d, r)
    }

    fn default_json() -> serde_json::Value {
        serde_json::to_value(crate::spec::default_spec(false)).unwrap()
    }

    #[test]
    fn the_default_spec_loads() {
        let (_d, b) = bundle_with(&default_json().to_string());
        let b = b.unwrap();
        assert!(b.rootfs.ends_with("rootfs"));
    }

    #[test]
    fn errors_name_the_field() {
        let mut v = default_json();
        v["process"]["args"] = serde_json::json!([]);
        let (_d, e) = bundle_with(&v.to_string());
        let e = e.unwrap_err().to_string();
        assert!(e.contains("config.json: process.args"), "{e}");

        let mut v = default_json();
        v["linux"]["namespaces"][0]["type"] = serde_json::json!("bogus");
        let (_d, e) = bundle_with(&v.to_string());
        let e = e.unwrap_err().to_string();
        assert!(
            e.contains("linux.namespaces[0].type") && e.contains("bogus"),
            "{e}"
        );

        let mut v = default_json();
        v["root"]["path"] = serde_json::json!("nope");
        let (_d, e) = bundle_with(&v.to_string());
        let e = e.unwrap_err().to_string();
        assert!(e.contains("root.path") && e.contains("nope"), "{e}");

        let mut v = default_json();
        v.as_object_mut().unwrap().remove("ociVersion");
        let (_d, e) = bundle_with(&v.to_string());
        let e = e.unwrap_err().to_string();
        assert!(e.contains("ociVersion"), "{e}");

        let mut v = default_json();
        let ns = v["linux"]["namespaces"][0].clone();
        v["linux"]["namespaces"].as_array_mut().unwrap().push(ns);
        let (_d, e) = bundle_with(&v.to_string());
        assert!(e.unwrap_err().to_string().contains("listed twice"));
    }

    #[test]
    fn cgroups_paths_with_dot_components_are_refused() {
        for bad in ["/.", "/a/../b", "..", "a/./b", "/lcr/.."] {
            let mut v = default_json();
            v["linux"]["cgroupsPath"] = serde_json::json!(bad);
            let (_d, e) = bundle_with(&v.to_string());
            let e = e.unwrap_err().to_string();
            assert!(
                e.contains("linux.cgroupsPath") && e.contains(bad),
                "{bad}: {e}"
            );
        }
        let mut v = default_json();
        v["linux"]["cgroupsPath"] = serde_json::json!("/lcr/a.b/..c");
        assert!(
            bundle_with(&v.to_string()).1.is_ok(),
            "dots inside names are fine"
        );
    }

    #[test]
    fn missing_bundle_and_bad_json_are_named() {
        let e = Bundle::load(std::path::Path::new("/nonexistent/bundle")).unwrap_err();
        assert!(e.to_string().contains("/nonexistent/bundle"), "{e}");
        let e = parse_config_text(std::path::Path::new("/b/config.json"), "{not json").unwrap_err();
        assert!(e.to_string().contains("/b/config.json"), "{e}");
    }
}
