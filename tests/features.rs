//! `lcr features` reports what this kernel and CRIU support, with a consequence for each gap.

mod common;

use std::process::Command;

use common::*;

#[test]
fn features_match_criu_own_checks() {
    if prerequisites().is_none() {
        return;
    }
    let out = Command::new(lcr_bin())
        .args(["features", "--json"])
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
        eprintln!("SKIP: no usable CRIU: {}", r["criu_error"]);
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
    let text = Command::new(lcr_bin()).arg("features").output().unwrap();
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(
        text.contains(&format!("CRIU {}", r["criu_version"].as_str().unwrap())),
        "{text}"
    );
}
