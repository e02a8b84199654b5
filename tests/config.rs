//! What config.json asks for, checked from inside real containers.

mod common;

use common::*;
use serde_json::json;

fn user_group_and_additional_groups() {
    let Some(c) = Ctr::new("user") else { return };
    c.edit(|v| v["process"]["user"] = json!({"uid": 1000, "gid": 1001, "additionalGids": [5, 7]}));
    c.args("id -u; id -g; grep ^Groups: /proc/self/status");
    let (code, out, err) = c.run();
    assert_eq!(code, 0, "{err}");
    let l: Vec<&str> = out.lines().collect();
    assert_eq!(l[0], "1000");
    assert_eq!(l[1], "1001");
    assert_eq!(
        l[2].split_whitespace().skip(1).collect::<Vec<_>>(),
        ["5", "7"],
        "{}",
        l[2]
    );
}

fn capabilities_are_really_dropped() {
    let Some(c) = Ctr::new("caps") else { return };
    // CAP_KILL is bit 5, CAP_NET_BIND_SERVICE bit 10.
    let set = json!(["CAP_KILL", "CAP_NET_BIND_SERVICE"]);
    c.edit(|v| {
        for k in ["bounding", "effective", "permitted"] {
            v["process"]["capabilities"][k] = set.clone();
        }
        v["process"]["capabilities"]["inheritable"] = json!([]);
        v["process"]["capabilities"]["ambient"] = json!([]);
    });
    c.args(
        "grep -E '^Cap(Eff|Prm|Bnd|Inh|Amb):' /proc/self/status; hostname other 2>&1; echo rc=$?",
    );
    let (code, out, err) = c.run();
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("CapEff:\t0000000000000420"), "{out}");
    assert!(out.contains("CapPrm:\t0000000000000420"), "{out}");
    assert!(out.contains("CapBnd:\t0000000000000420"), "{out}");
    assert!(out.contains("CapInh:\t0000000000000000"), "{out}");
    // Without CAP_SYS_ADMIN the hostname cannot be changed.
    assert!(out.contains("rc=1"), "{out}");
}

fn an_rlimit_is_applied() {
    let Some(c) = Ctr::new("rlimit") else { return };
    c.edit(|v| {
        v["process"]["rlimits"] = json!([{"type": "RLIMIT_NOFILE", "soft": 123, "hard": 456}])
    });
    c.args("grep 'Max open files' /proc/self/limits");
    let (code, out, err) = c.run();
    assert_eq!(code, 0, "{err}");
    let f: Vec<&str> = out.split_whitespace().collect();
    assert_eq!(&f[3..5], ["123", "456"], "{out}");
}

fn a_readonly_rootfs_refuses_writes() {
    let Some(c) = Ctr::new("rofs") else { return };
    c.edit(|v| v["root"]["readonly"] = json!(true));
    c.args("touch /newfile 2>&1; echo rc=$?; touch /tmp/x 2>&1; echo tmp=$?");
    let (code, out, err) = c.run();
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("Read-only file system"), "{out}");
    assert!(out.contains("rc=1"), "{out}");
    assert!(!c.bundle.join("rootfs/newfile").exists());
}

fn masked_paths_are_unreadable_and_readonly_paths_unwritable() {
    let Some(c) = Ctr::new("mask") else { return };
    std::fs::write(c.bundle.join("rootfs/secret"), "top secret\n").unwrap();
    std::fs::create_dir(c.bundle.join("rootfs/secretdir")).unwrap();
    std::fs::write(c.bundle.join("rootfs/secretdir/key"), "k").unwrap();
    std::fs::create_dir(c.bundle.join("rootfs/frozen")).unwrap();
    c.edit(|v| {
        v["linux"]["maskedPaths"] = json!(["/secret", "/secretdir", "/does/not/exist"]);
        v["linux"]["readonlyPaths"] = json!(["/frozen"]);
    });
    c.args("echo [$(cat /secret)]; ls /secretdir | wc -l; touch /frozen/x 2>&1; echo ro=$?; cat /proc/kcore | wc -c");
    let (code, out, err) = c.run();
    assert_eq!(code, 0, "{err}");
    let l: Vec<&str> = out.lines().collect();
    assert_eq!(l[0], "[]", "{out}");
    assert_eq!(l[1].trim(), "0", "{out}");
    assert!(out.contains("ro=1"), "{out}");
    // The default config masks /proc/kcore too.
    assert_eq!(l.last().unwrap().trim(), "0", "{out}");
}

fn seccomp_makes_a_syscall_fail_with_the_configured_errno() {
    let Some(c) = Ctr::new("seccomp") else { return };
    c.edit(|v| {
        v["linux"]["seccomp"] = json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86"],
            "syscalls": [
                {"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 95},
                {"names": ["no_such_syscall_xyz"], "action": "SCMP_ACT_ERRNO"},
                {"names": ["setpriority"], "action": "SCMP_ACT_ERRNO",
                 "args": [{"index": 2, "value": 5, "op": "SCMP_CMP_EQ"}]}
            ]
        })
    });
    c.args("mkdir /tmp/d 2>&1; echo mkdir=$?; renice -n 5 -p $$ >/dev/null 2>&1; echo nice5=$?; renice -n 3 -p $$ >/dev/null 2>&1; echo nice3=$?");
    let (code, out, err) = c.run();
    assert_eq!(code, 0, "{err}");
    // errno 95 is EOPNOTSUPP: the errnoRet was honoured, not the default EPERM.
    assert!(
        out.contains("Operation not supported") || out.contains("Not supported"),
        "{out}"
    );
    assert!(out.contains("mkdir=1"), "{out}");
    // The argument filter denies priority 5 only.
    assert!(out.contains("nice5=1"), "{out}");
    assert!(out.contains("nice3=0"), "{out}");
}

fn the_memory_limit_is_set_and_pids_max_stops_a_fork_loop() {
    let Some(c) = Ctr::new("limits") else { return };
    c.edit(|v| {
        v["linux"]["resources"]["memory"] = json!({"limit": 64u64 << 20});
        v["linux"]["resources"]["pids"] = json!({"limit": 8});
    });
    let limit_file = if cgroup_v2() {
        "/sys/fs/cgroup/memory.max"
    } else {
        "/sys/fs/cgroup/memory/memory.limit_in_bytes"
    };
    c.args(&format!("cat {limit_file}; n=0; for i in 1 2 3 4 5 6 7 8 9 10 11 12; do sleep 5 & [ $? = 0 ] && n=$((n+1)); done 2>/dev/null; echo forks=$(ls /proc | grep -c '^[0-9]'); kill $(jobs -p) 2>/dev/null; exit 0"));
    c.run_detached();
    // The host sees the limits on the container's own cgroup.
    assert_eq!(
        c.cgroup_read("memory", "memory.limit_in_bytes"),
        (64u64 << 20).to_string()
    );
    assert_eq!(c.cgroup_read("pids", "pids.max"), "8");
    c.ok(&["delete", "--force", &c.id]);

    // pids.max = 8: the shell and at most 7 children. busybox sh gives up at the first fork
    // that fails; each fork that worked was recorded on the host first.
    let c2 = Ctr::new("limits2").unwrap();
    let host = c2.host_dir();
    c2.edit(|v| v["linux"]["resources"]["pids"] = json!({"limit": 8}));
    c2.args("for i in 1 2 3 4 5 6 7 8 9 10 11 12; do sleep 3 & echo $i >> /host/forked; done; echo all forks worked");
    let (code, out, err) = c2.run();
    let forked = read(host.join("forked")).lines().count();
    assert!(
        forked <= 7,
        "pids.max let {forked} children run: {out} {err}"
    );
    assert!(forked >= 3, "too few forks worked ({forked}): {err}");
    assert!(!out.contains("all forks worked"), "{out}");
    assert_ne!(code, 0);
    assert!(err.to_lowercase().contains("fork"), "{err}");
}

fn the_device_cgroup_denies_devices_outside_the_rules() {
    let Some(c) = Ctr::new("devices") else { return };
    // `lcr spec` denies all devices; the default ones stay usable.
    c.args("mknod /tmp/mem c 1 1 && head -c 1 /tmp/mem >/dev/null 2>&1; echo mem=$?; head -c 4 /dev/zero | wc -c");
    let (code, out, err) = c.run();
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("mem=1"),
        "/dev/mem (1:1) must be refused: {out}"
    );
    assert!(
        out.lines().last().unwrap().trim() == "4",
        "/dev/zero must work: {out}"
    );
}

fn a_user_namespace_maps_root_to_an_unprivileged_host_uid() {
    let Some(c) = Ctr::new("userns") else { return };
    c.in_user_namespace();
    let host = c.host_dir();
    std::fs::set_permissions(&host, std::os::unix::fs::PermissionsExt::from_mode(0o777)).unwrap();
    c.args("id -u > /host/uid; cat /proc/self/uid_map > /host/map; touch /host/made; sleep 30");
    c.run_detached();
    let pid = c.pid();
    wait_until("made", || host.join("made").exists());
    assert_eq!(read(host.join("uid")).trim(), "0");
    assert_eq!(
        read(host.join("map"))
            .split_whitespace()
            .collect::<Vec<_>>(),
        ["0", "100000", "65536"]
    );
    // Root in the container is uid 100000 on the host.
    let status = read(format!("/proc/{pid}/status"));
    let uid_line = status.lines().find(|l| l.starts_with("Uid:")).unwrap();
    assert!(uid_line.contains("100000"), "{uid_line}");
    use std::os::unix::fs::MetadataExt;
    assert_eq!(std::fs::metadata(host.join("made")).unwrap().uid(), 100000);
}

fn a_network_namespace_is_joined_by_path() {
    let Some(c) = Ctr::new("netns") else { return };
    let ns = NetNs::new("lcr-test");
    // A marker: a loopback address only this namespace has.
    assert!(ns
        .ip(&["addr", "add", "127.9.9.9/8", "dev", "lo"])
        .status
        .success());
    c.join_netns(&ns);
    c.args("readlink /proc/self/ns/net; ip addr show lo 2>/dev/null | grep -c 127.9.9.9");
    let (code, out, err) = c.run();
    assert_eq!(code, 0, "{err}");
    let want = std::process::Command::new("ip")
        .args(["netns", "exec", &ns.name, "readlink", "/proc/self/ns/net"])
        .output()
        .unwrap();
    assert_eq!(
        out.lines().next().unwrap(),
        String::from_utf8_lossy(&want.stdout).trim()
    );
    assert_eq!(out.lines().nth(1).unwrap().trim(), "1", "{out}");
}

/// A network namespace made for the container has its loopback up, as runc brings it up: a
/// process without CAP_NET_ADMIN can listen and connect on 127.0.0.1.
fn a_new_network_namespace_has_its_loopback_up() {
    let Some(c) = Ctr::new("lo-up") else { return };
    c.args(
        "cat /sys/class/net/lo/flags; nc -l -p 7000 -e echo pong & sleep 0.2; nc 127.0.0.1 7000",
    );
    let (code, out, err) = c.run();
    assert_eq!(code, 0, "{err}");
    let flags =
        u32::from_str_radix(out.lines().next().unwrap().trim_start_matches("0x"), 16).unwrap();
    assert_eq!(flags & 1, 1, "lo is down: {out}");
    assert_eq!(out.lines().nth(1), Some("pong"), "{out}");
}

fn no_pivot_sysctl_and_oom_score_adj() {
    let Some(c) = Ctr::new("nopivot") else { return };
    c.edit(|v| {
        v["linux"]["sysctl"] = json!({"net.ipv4.ip_forward": "1"});
        v["process"]["oomScoreAdj"] = json!(500);
    });
    c.args("cat /proc/sys/net/ipv4/ip_forward; cat /proc/self/oom_score_adj; ls /");
    let out = c.lcr(&[
        "run",
        "--no-pivot",
        "--bundle",
        c.bundle.to_str().unwrap(),
        &c.id,
    ]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_success(&out);
    let l: Vec<&str> = text.lines().collect();
    assert_eq!(
        l[0], "1",
        "sysctl in the container's own net namespace: {text}"
    );
    assert_eq!(l[1], "500");
    assert!(text.contains("bin"), "{text}");
    // The host's own setting is untouched (the container has its own net namespace).
    assert!(!c.state_dir().exists());
}

fn container_processes_get_default_signal_dispositions() {
    let Some(c) = Ctr::new("sigdfl") else { return };
    // SigIgn lists the ignored signals; SIGPIPE (13) must not be among them.
    c.args("grep ^SigIgn: /proc/self/status; yes | head -c 3 >/dev/null; echo piped=$?");
    let (code, out, err) = c.run();
    assert_eq!(code, 0, "{err}");
    let ign = u64::from_str_radix(
        out.lines()
            .next()
            .unwrap()
            .split_whitespace()
            .nth(1)
            .unwrap(),
        16,
    )
    .unwrap();
    assert_eq!(
        ign & (1 << (13 - 1)),
        0,
        "SIGPIPE is ignored in the container: {out}"
    );
    assert!(out.contains("piped=0"), "{out}");
}

lcr_test_harness::tests!(
    a_new_network_namespace_has_its_loopback_up,
    user_group_and_additional_groups,
    capabilities_are_really_dropped,
    an_rlimit_is_applied,
    a_readonly_rootfs_refuses_writes,
    masked_paths_are_unreadable_and_readonly_paths_unwritable,
    seccomp_makes_a_syscall_fail_with_the_configured_errno,
    the_memory_limit_is_set_and_pids_max_stops_a_fork_loop,
    the_device_cgroup_denies_devices_outside_the_rules,
    a_user_namespace_maps_root_to_an_unprivileged_host_uid,
    a_network_namespace_is_joined_by_path,
    no_pivot_sysctl_and_oom_score_adj,
    container_processes_get_default_signal_dispositions,
);
