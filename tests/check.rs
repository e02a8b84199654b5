//! `lcr check` reports what this kernel and CRIU support, with a consequence for each gap;
//! `lcr features` is the OCI runtime features document.

mod common;

use std::process::Command;

use common::*;

fn features_match_criu_own_checks() {
    if prerequisites().is_none() {
        return;
    }
    let out = Command::new(lcr_bin())
        .args(["check", "--json"])
        .output()
        .unwrap();
    assert_success(&out);
    let r: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    if r["criu_version"].is_null() {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI must have CRIU: {}",
            r["criu_error"]
        );
        lcr_test_harness::skip(format!("no usable CRIU: {}", r["criu_error"]));
        return;
    }
    let feature = |name: &str| {
        r["features"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["name"] == name)
            .unwrap_or_else(|| panic!("no {name} in {r}"))
            .clone()
    };
    let criu_says = |f: &str| {
        Command::new("criu")
            .args(["check", "--feature", f])
            .output()
            .unwrap()
            .status
            .success()
    };
    let dirty = feature("dirty memory tracking");
    assert_eq!(dirty["supported"], criu_says("mem_dirty_track"), "{dirty}");
    if dirty["supported"] == false {
        assert!(
            dirty["consequence"].as_str().unwrap().contains("pre-copy"),
            "{dirty}"
        );
    }
    assert_eq!(
        feature("lazy pages")["supported"],
        criu_says("uffd-noncoop")
    );
    assert_eq!(feature("time namespaces")["supported"], criu_says("timens"));
    // The pipe-size condition follows the sysctl.
    let pipe_max: u64 = read("/proc/sys/fs/pipe-max-size").trim().parse().unwrap();
    let pipes = feature("lazy page server pipes");
    if pipe_max < 4 << 20 {
        assert_eq!(pipes["supported"], false, "{pipes}");
        assert!(
            pipes["consequence"]
                .as_str()
                .unwrap()
                .contains("fs.pipe-max-size"),
            "{pipes}"
        );
    }
    // The table form says the same in words.
    let text = Command::new(lcr_bin()).arg("check").output().unwrap();
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(
        text.contains(&format!("CRIU {}", r["criu_version"].as_str().unwrap())),
        "{text}"
    );
}

/// `lcr features` is the OCI runtime features document, as containerd and CRI-O read it from
/// `runc features`; it claims what lcr does and nothing of CRIU's.
fn features_is_the_oci_runtime_features_document() {
    let out = Command::new(lcr_bin()).arg("features").output().unwrap();
    assert_success(&out);
    let again = Command::new(lcr_bin()).arg("features").output().unwrap();
    assert_eq!(
        out.stdout, again.stdout,
        "the same document, byte for byte, every time"
    );
    let f: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(f["ociVersionMin"], "1.0.0", "{f}");
    assert!(
        f["ociVersionMax"].as_str().unwrap().starts_with("1."),
        "{f}"
    );
    let list = |v: &serde_json::Value| -> Vec<String> {
        v.as_array()
            .unwrap_or_else(|| panic!("not a list: {v}"))
            .iter()
            .map(|s| s.as_str().unwrap().to_string())
            .collect()
    };
    let hooks = list(&f["hooks"]);
    for h in [
        "prestart",
        "createRuntime",
        "createContainer",
        "startContainer",
        "poststart",
        "poststop",
    ] {
        assert!(hooks.contains(&h.to_string()), "{h} in {hooks:?}");
    }
    let ns = list(&f["linux"]["namespaces"]);
    for n in ["cgroup", "ipc", "mount", "network", "pid", "user", "uts"] {
        assert!(ns.contains(&n.to_string()), "{n} in {ns:?}");
    }
    let caps = list(&f["linux"]["capabilities"]);
    assert!(caps.contains(&"CAP_SYS_ADMIN".to_string()), "{caps:?}");
    assert_eq!(f["linux"]["cgroup"]["v1"], true);
    assert_eq!(f["linux"]["cgroup"]["v2"], true);
    assert_eq!(f["linux"]["seccomp"]["enabled"], true);
    assert_eq!(
        f["linux"]["apparmor"]["enabled"], false,
        "no AppArmor support claimed"
    );
    assert!(
        f["annotations"]["io.github.seccomp.libseccomp.version"].is_string(),
        "{f}"
    );
    assert!(
        f.get("criu_version").is_none() && f.get("features").is_none(),
        "{f}"
    );
    // Every mount option runc's default config uses is one lcr takes.
    let options = list(&f["mountOptions"]);
    for o in [
        "nosuid",
        "noexec",
        "nodev",
        "strictatime",
        "ro",
        "rbind",
        "rprivate",
        "relatime",
    ] {
        assert!(options.contains(&o.to_string()), "{o} in {options:?}");
    }
    // runc's namespaces and capabilities are all here too.
    if let Ok(out) = Command::new("runc").arg("features").output() {
        if out.status.success() {
            let r: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
            for n in list(&r["linux"]["namespaces"]) {
                assert!(ns.contains(&n), "runc's {n} in {ns:?}");
            }
            for c in list(&r["linux"]["capabilities"]) {
                assert!(caps.contains(&c), "runc's {c} in {caps:?}");
            }
        }
    }
}

lcr_test_harness::tests!(
    features_match_criu_own_checks,
    features_is_the_oci_runtime_features_document,
);
