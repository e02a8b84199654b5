//! Which strategy `lcr migrate` takes and says, and post-copy: the container runs at the
//! destination before its memory has moved, pulls its pages over the same ssh connection,
//! and counts on from where it stopped, with no port opened on either host.

mod common;

use common::counter::*;
use common::migration::*;
use common::twohosts::TwoHosts;
use common::*;

/// What lcr needs to serve a lazy dump's pages without CAP_SYS_RESOURCE (see MACHINE.md).
const LAZY_PIPE_MAX: &str = "4194304";

fn auto_says_which_strategy_and_why_and_pre_copy_is_refused_with_the_reason() {
    let Some(h) = TwoHosts::new("mig-auto") else {
        return;
    };
    let Some((c, _log)) = counter("mig-auto") else {
        return;
    };
    let r = bundle_on_same_rootfs(&c, "mig-auto2");
    let dirty = lcr::checkpoint::Criu::new()
        .features()
        .is_ok_and(|f| f.mem_track);
    if dirty {
        lcr_test_harness::skip("this kernel tracks dirty pages: pre-copy is not refused for the kernel here (the kernel lane runs that case)");
        return;
    }
    let out = migrate(&h, &c, &r, &["--strategy", "pre-copy"]);
    let err = stderr(&out);
    assert!(
        err.contains("pre-copy is not possible") && err.contains("dirty pages"),
        "{err}"
    );
    stayed_here(&c, &r, &out, "pre-copy refused");

    // With the default fs.pipe-max-size there is no post-copy either: auto takes stop-copy
    // and says why (the same sysctl is raised by the post-copy test, and put back).
    if lcr::check::lazy_pages_blocker().is_none() {
        lcr_test_harness::skip(
            "fs.pipe-max-size already allows lazy dumps here: auto would take post-copy",
        );
        return;
    }
    let out = migrate(&h, &c, &r, &["--strategy", "post-copy"]);
    let err = stderr(&out);
    assert!(
        err.contains("post-copy is not possible") && err.contains("fs.pipe-max-size"),
        "{err}"
    );
    stayed_here(&c, &r, &out, "post-copy refused");
    let out = migrate(&h, &c, &r, &[]);
    let err = stderr(&out);
    assert!(out.status.success(), "{err}");
    assert!(
        err.contains("by stop-copy (no pre-copy (")
            && err.contains("no post-copy (this host: fs.pipe-max-size"),
        "{err}"
    );
    assert_eq!(r.state()["status"], "running");
    r.ok(&["delete", "--force", &r.id]);
}

fn post_copy_runs_the_container_there_first_and_its_pages_follow() {
    let Some(h) = TwoHosts::new("mig-pc") else {
        return;
    };
    let Some((c, log)) = counter("mig-pc") else {
        return;
    };
    let r = bundle_on_same_rootfs(&c, "mig-pc2");
    let _pipes = Sysctl::set("fs.pipe-max-size", LAZY_PIPE_MAX);
    let ports = h.watch_ports();
    let out = migrate(&h, &c, &r, &["--json"]);
    let opened = ports.new_ones();
    assert!(
        out.status.success(),
        "{}\nsshd: {}",
        stderr(&out),
        h.sshd_log()
    );
    assert!(opened.is_empty(), "ports opened: {opened:?}");
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    eprintln!("{report}");
    assert_eq!(report["strategy"], "post-copy", "{report}");
    assert!(
        report["strategy_reason"]
            .as_str()
            .unwrap()
            .contains("lazy pages work on both hosts"),
        "{report}"
    );
    assert!(report["downtime_ms"].as_u64().unwrap() > 0, "{report}");
    assert!(
        !c.lcr(&["state", &c.id]).status.success(),
        "still on the source"
    );
    assert_eq!(r.state()["status"], "running");
    counts_on_there(&r, &log);
    r.ok(&["delete", "--force", &r.id]);
}

/// The switch is the restore there: a connection cut afterwards, with most pages still
/// here, cannot thaw this copy (the other ran) and cannot leave the other (it lacks its
/// memory). The receiver removes its copy, this one stays frozen with all its memory, lcr
/// exits 3 saying how to finish, and `lcr migrate --resolve` brings it back counting.
fn post_copy_cut_after_the_switch_leaves_the_frozen_source_to_resume() {
    let Some(h) = TwoHosts::new("mig-pcc") else {
        return;
    };
    // About 16 MiB of memory that must move after the switch, and that does not compress.
    let Some((c, _log)) = counter_after("mig-pcc", &incompressible(12 << 20)) else {
        return;
    };
    let r = bundle_on_same_rootfs(&c, "mig-pcc2");
    let _pipes = Sysctl::set("fs.pipe-max-size", LAZY_PIPE_MAX);
    // The images are a few hundred kB; the memory is far beyond 2 MB.
    let cut = cut_ssh(&h, 2_000_000);
    let out = migrate(
        &h,
        &c,
        &r,
        &["--strategy", "post-copy", "--ssh", cut.to_str().unwrap()],
    );
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(3), "{err}");
    assert!(
        err.contains("running on"),
        "the switch was not reached: {err}"
    );
    assert!(err.contains("left frozen here"), "{err}");
    assert_eq!(c.status(), "paused", "the source must stay frozen: {err}");
    wait_until("the receiver to remove its copy", || {
        !r.lcr(&["state", &r.id]).status.success() && !cgroup_exists(&r.cgroup)
    });
    // `--resolve` asks the destination (nothing there) and resumes the copy here; asked
    // again, there is nothing left to resolve.
    let said = c.ok(&["migrate", "--resolve", &c.id]);
    assert_eq!(c.status(), "running", "{said}");
    let n = count(&c);
    wait_until("counting on at the source", || count(&c) > n + 2);
    let again = c.lcr(&["migrate", "--resolve", &c.id]);
    assert_eq!(again.status.code(), Some(1));
    assert!(
        stderr(&again).contains("nothing to resolve"),
        "{}",
        stderr(&again)
    );
}

lcr_test_harness::tests!(
    post_copy_cut_after_the_switch_leaves_the_frozen_source_to_resume,
    auto_says_which_strategy_and_why_and_pre_copy_is_refused_with_the_reason,
    post_copy_runs_the_container_there_first_and_its_pages_follow,
);
