//! `lcr migrate --rootfs copy`: the destination has no rootfs beforehand; the container's
//! rootfs travels over the connection into a new bundle there, and what the container
//! wrote after the copy began reaches it with the dump.

mod common;

use common::counter::*;
use common::migration::*;
use common::twohosts::TwoHosts;
use common::*;

/// Appends its count to a file in its own rootfs each tick and checks, each tick, that the
/// file holds exactly one line per count: a copy without the changes made after it began
/// says `BAD` at the destination.
const TRAIL: &str = ": > /trail; i=0; while :; do i=$((i+1)); echo $i >> /trail; \
    n=$(wc -l < /trail); [ $n -eq $i ] || echo \"BAD trail $n at $i\"; \
    echo \"$i trail\"; echo $i > /host/n.tmp; mv /host/n.tmp /host/n; sleep 0.05; done";

fn the_rootfs_is_copied_into_an_empty_directory_there_with_its_latest_changes() {
    let Some(h) = TwoHosts::new("mig-rc") else {
        return;
    };
    let Some(c) = counter_bundle("mig-rc") else {
        return;
    };
    c.args(TRAIL);
    // No cgroupsPath: each container is put at /lcr/<its id>, so the copy there (the same
    // config) gets a cgroup of its own on this one machine.
    c.edit(|v| {
        v["linux"].as_object_mut().unwrap().remove("cgroupsPath");
    });
    let log = start_counting(&c);
    let r = Ctr::new("mig-rc2").unwrap();

    // A destination directory that is not empty is refused before anything is touched.
    let out = migrate_into(&h, &c, (&r.root, &r.id), &r.bundle, &["--rootfs", "copy"]);
    assert!(
        stderr(&out).contains("is not an empty directory"),
        "{}",
        stderr(&out)
    );
    stayed_here(&c, &r, &out, "a destination bundle in the way");

    let copied = r.tmp.path().join("copied");
    let out = migrate_into(
        &h,
        &c,
        (&r.root, &r.id),
        &copied,
        &["--rootfs", "copy", "--json"],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(
        report["rootfs_bytes"].as_u64().unwrap() > 100_000,
        "{report}"
    );
    assert!(copied.join("config.json").is_file());
    assert!(copied.join("rootfs/bin/busybox").is_file());
    assert_eq!(r.state()["status"], "running");
    counts_on_there(&r, &log);
    let n = count(&c);
    wait_until("counting on there", || count(&c) > n + 5);
    let dest_log = read(r.tmp.path().join("dest.log"));
    assert!(!dest_log.contains("BAD"), "{dest_log}");
    // The copy there is the one written to; the source's rootfs stays as it was left.
    let there = read(copied.join("rootfs/trail")).lines().count();
    let here = read(c.bundle.join("rootfs/trail")).lines().count();
    assert!(there > here, "there {there} lines, here {here}");
    r.ok(&["delete", "--force", &r.id]);
}

lcr_test_harness::tests!(
    the_rootfs_is_copied_into_an_empty_directory_there_with_its_latest_changes,
);
