//! Checkpoint archives on real containers: export → import → restore with the counter going on,
//! through a pipe, with rootfs changes and volumes; inspect and verify on good and damaged
//! archives; failed and interrupted exports leave the container running and no file behind.

mod common;

use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use common::counter::*;
use common::*;
use serde_json::{json, Value};

fn export(c: &Ctr, file: &Path, extra: &[&str]) -> std::process::Output {
    let mut args = vec!["checkpoint", "--export", file.to_str().unwrap()];
    args.extend_from_slice(extra);
    args.push(&c.id);
    c.lcr(&args)
}

/// Temporary directories lcr (run with `dir` as its TMPDIR) made for exports and imports
/// that are still there.
fn leftovers(dir: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            let n = p.file_name().unwrap().to_string_lossy();
            n.starts_with("lcr-export-") || n.starts_with("lcr-import-")
        })
        .collect()
}

/// The names of a zstd or plain tar archive's entries, in order.
fn entry_names(file: &Path) -> Vec<String> {
    let bytes = std::fs::read(file).unwrap();
    let data = if bytes.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        zstd::decode_all(&bytes[..]).unwrap()
    } else {
        bytes
    };
    let mut ar = tar::Archive::new(&data[..]);
    ar.entries()
        .unwrap()
        .map(|e| String::from_utf8_lossy(&e.unwrap().path_bytes()).into_owned())
        .collect()
}

fn sha(file: &Path) -> String {
    let out = Command::new("sha256sum").arg(file).output().unwrap();
    String::from_utf8_lossy(&out.stdout)
        .split(' ')
        .next()
        .unwrap()
        .to_string()
}

fn an_exported_container_is_imported_and_counts_on() {
    let Some((c, log)) = counter("ar-count") else {
        return;
    };
    let before_dirs = leftovers(c.tmp.path());
    let archive = c.tmp.path().join("ctr.tar.zst");
    let out = export(&c, &archive, &[]);
    assert_success(&out);
    assert!(
        !c.state_dir().exists(),
        "exported without --leave-running: removed"
    );
    let mode = std::fs::metadata(&archive).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "archives hold process memory");
    let names = entry_names(&archive);
    assert_eq!(names[0], "lcr-manifest.json");
    for n in [
        "config.dump",
        "spec.dump",
        "stats-dump",
        "checkpoint/",
        "checkpoint/inventory.img",
        "checkpoint/lcr-checkpoint.json",
    ] {
        assert!(names.contains(&n.to_string()), "{n} in {names:?}");
    }
    let pages = names.iter().position(|n| n.contains("pages-")).unwrap();
    let last_small = names
        .iter()
        .rposition(|n| n.ends_with("inventory.img"))
        .unwrap();
    assert!(last_small < pages, "metadata before memory: {names:?}");
    let at_dump = count(&c);
    let before = lines(&log);
    let digest = sha(&archive);

    let r = Ctr::new("ar-count2").unwrap();
    carry_host_files(&c, &r);
    let log2 = r.tmp.path().join("app2.log");
    start_logging_to(&r, &r.import_args(&archive, &[]), &log2);
    wait_until("imported counting", || count(&r) > at_dump + 3);
    let after = lines(&log2);
    assert_eq!(
        after[0].0,
        before.last().unwrap().0 + 1,
        "{before:?} {after:?}"
    );
    assert_eq!(after[0].1, "1 counter keep");
    assert_eq!(r.state()["status"], "running");
    assert_eq!(sha(&archive), digest, "the archive is left as it was");
    assert_eq!(
        (leftovers(c.tmp.path()), leftovers(r.tmp.path())),
        (before_dirs, vec![]),
        "no temporary image directory left"
    );
}

fn a_pipe_carries_a_checkpoint_straight_into_a_restore() {
    let Some((c, log)) = counter("ar-pipe") else {
        return;
    };
    let r = Ctr::new("ar-pipe2").unwrap();
    carry_host_files(&c, &r);
    let lcr = lcr_bin();
    let script = format!(
        "'{lcr}' --root '{}' checkpoint --export - {} | '{lcr}' --root '{}' restore -d --import - --bundle '{}' {}",
        c.root.display(),
        c.id,
        r.root.display(),
        r.bundle.display(),
        r.id
    );
    let log2 = r.tmp.path().join("app2.log");
    let f = std::fs::File::create(&log2).unwrap();
    let st = Command::new("bash")
        .args(["-o", "pipefail", "-c", &script])
        .stdin(Stdio::null())
        .stdout(f.try_clone().unwrap())
        .stderr(f)
        .status()
        .unwrap();
    assert!(st.success(), "{}", read(&log2));
    let at_dump = lines(&log).last().unwrap().0;
    wait_until("counting after the pipe", || count(&r) > at_dump + 3);
    let after = lines(&log2);
    assert_eq!(after[0].0, at_dump + 1, "{after:?}");
    assert!(!c.state_dir().exists());
}

fn rootfs_changes_and_volumes_travel_with_the_archive() {
    let Some((c, log)) = counter_after(
        "ar-diff",
        "echo changed >> /etc/passwd; echo new > /etc/added; rm /etc/group; mkdir /data; \
         echo inside > /data/f; ",
    ) else {
        return;
    };
    std::fs::write(
        c.tmp.path().join("host/volume-file"),
        "from the source host\n",
    )
    .unwrap();
    let archive = c.tmp.path().join("diff.tar.zst");
    let out = export(&c, &archive, &["--with-rootfs-diff", "--with-volumes"]);
    assert_success(&out);
    let names = entry_names(&archive);
    for n in [
        "rootfs-diff.tar",
        "deleted.files",
        "volumes/0.tar",
        "volumes/index.json",
    ] {
        assert!(names.contains(&n.to_string()), "{n} in {names:?}");
    }
    let i: Value =
        serde_json::from_str(&c.ok(&["image", "inspect", "--json", archive.to_str().unwrap()]))
            .unwrap();
    assert_eq!(i["container"]["rootfs_diff"], true);
    assert_eq!(i["container"]["volumes"][0], "/host");
    let at_dump = lines(&log).last().unwrap().0;

    // A fresh copy of the original rootfs and an empty /host: the archive fills both in.
    let r = Ctr::new("ar-diff2").unwrap();
    let host2 = r.host_dir();
    assert!(std::fs::read_dir(&host2).unwrap().next().is_none());
    // A restore that fails after the changes were applied (here: no CRIU) undoes them.
    let root = r.bundle.join("rootfs");
    let passwd = read(root.join("etc/passwd"));
    let unpacked = r.tmp.path().join("unpacked-first");
    r.ok(&[
        "image",
        "unpack",
        "-q",
        archive.to_str().unwrap(),
        unpacked.to_str().unwrap(),
    ]);
    let out = r.lcr(&r.restore_args(&unpacked, &["--criu", "/nonexistent/criu"]));
    assert!(
        stderr(&out).contains("/nonexistent/criu"),
        "{}",
        stderr(&out)
    );
    assert!(!out.status.success(), "restored without CRIU");
    assert_eq!(read(root.join("etc/passwd")), passwd, "{}", stderr(&out));
    assert!(
        root.join("etc/group").exists(),
        "a deletion was left applied"
    );
    assert!(!root.join("etc/added").exists(), "an added file was left");
    assert!(!root.join("data").exists());
    let strays: Vec<_> = std::fs::read_dir(&root)
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with(".lcr"))
        .collect();
    assert!(strays.is_empty(), "{strays:?}");
    let log2 = r.tmp.path().join("app2.log");
    start_logging_to(&r, &r.import_args(&archive, &["--with-volumes"]), &log2);
    wait_until("counting after import", || count(&r) > at_dump + 3);
    assert_eq!(lines(&log2)[0].0, at_dump + 1);
    assert_eq!(read(root.join("etc/added")), "new\n");
    assert!(read(root.join("etc/passwd")).ends_with("changed\n"));
    assert!(
        !root.join("etc/group").exists(),
        "a deleted file stays deleted"
    );
    assert_eq!(read(root.join("data/f")), "inside\n");
    assert_eq!(read(host2.join("volume-file")), "from the source host\n");
    // Inside the restored container too.
    let out = r.lcr(&["exec", &r.id, "cat", "/etc/added", "/data/f"]);
    assert_eq!(String::from_utf8_lossy(&out.stdout), "new\ninside\n");

    // Its next checkpoint still carries the first one's changes (the baseline is the restore
    // bundle's rootfs before they were applied).
    let archive2 = r.tmp.path().join("diff2.tar.zst");
    let out = export(&r, &archive2, &["--with-rootfs-diff", "--leave-running"]);
    assert_success(&out);
    let dir = r.tmp.path().join("unpacked");
    r.ok(&[
        "image",
        "unpack",
        "-q",
        archive2.to_str().unwrap(),
        dir.to_str().unwrap(),
    ]);
    let deleted: Vec<String> = serde_json::from_str(&read(dir.join("deleted.files"))).unwrap();
    assert!(deleted.contains(&"etc/group".to_string()), "{deleted:?}");
    let diff = entry_names(&dir.join("rootfs-diff.tar"));
    assert!(diff.contains(&"etc/added".to_string()), "{diff:?}");
}

fn volumes_are_restored_only_when_asked_and_never_into_a_read_only_bind() {
    let Some((c, _log)) = counter("ar-vol") else {
        return;
    };
    let volume = c.tmp.path().join("host/volume-file");
    std::fs::write(&volume, "from the source host\n").unwrap();
    let archive = c.tmp.path().join("vol.tar.zst");
    assert_success(&export(
        &c,
        &archive,
        &["--with-volumes", "--leave-running"],
    ));

    // Without --with-volumes the restore bundle's sources are the host's: left as they are.
    let r = Ctr::new("ar-vol2").unwrap();
    carry_host_files(&c, &r);
    let mine = r.host_dir().join("volume-file");
    std::fs::write(&mine, "the restoring host's\n").unwrap();
    let out = r.lcr(&r.import_args(&archive, &[]));
    assert_success(&out);
    assert_eq!(
        read(&mine),
        "the restoring host's\n",
        "overwritten without being asked"
    );
    r.ok(&["delete", "--force", &r.id]);

    // Asked, but the bundle binds /host read-only: refused, nothing written or left.
    let ro = Ctr::new("ar-vol3").unwrap();
    carry_host_files(&c, &ro);
    let mine = ro.host_dir().join("volume-file");
    std::fs::write(&mine, "the restoring host's\n").unwrap();
    ro.edit(|v| {
        for m in v["mounts"].as_array_mut().unwrap() {
            if m["destination"] == "/host" {
                m["options"] = json!(["rbind", "ro"]);
            }
        }
    });
    let out = ro.lcr(&ro.import_args(&archive, &["--with-volumes"]));
    assert!(
        !out.status.success(),
        "volumes written into a read-only bind"
    );
    assert!(stderr(&out).contains("read-only"), "{}", stderr(&out));
    assert_eq!(read(&mine), "the restoring host's\n");
    assert!(!ro.state_dir().exists());
    assert!(!cgroup_exists(&ro.cgroup));
}

/// Offset of the first data byte of `name` in a plain tar.
fn data_offset(tar: &[u8], name: &str) -> usize {
    let mut at = 0;
    while at + 512 <= tar.len() {
        let h = &tar[at..at + 512];
        let n = String::from_utf8_lossy(&h[..100])
            .trim_end_matches('\0')
            .to_string();
        let size = usize::from_str_radix(
            String::from_utf8_lossy(&h[124..135]).trim_matches(|c: char| c == '\0' || c == ' '),
            8,
        )
        .unwrap_or(0);
        if n == name {
            return at + 512;
        }
        at += 512 + size.div_ceil(512) * 512;
    }
    panic!("{name} not in the tar");
}

fn inspect_and_verify_tell_good_archives_from_damaged_ones() {
    // With a zombie beside the counter: it has no memory images, and needs none.
    let Some((c, _log)) = counter_after("ar-verify", "(sleep 0 & exec sleep 1000) & sleep 0.2; ")
    else {
        return;
    };
    let archive = c.tmp.path().join("plain.tar");
    let out = export(&c, &archive, &["--leave-running", "--compress", "none"]);
    assert_success(&out);
    assert_eq!(c.state()["status"], "running", "--leave-running keeps it");
    let n = count(&c);
    wait_until("still counting after export", || count(&c) > n + 2);

    let ok = c.ok(&["image", "verify", archive.to_str().unwrap()]);
    assert!(ok.contains("OK"), "{ok}");
    let text = c.ok(&["image", "inspect", archive.to_str().unwrap()]);
    for want in [
        c.id.as_str(),
        "CRIU 4.",
        "Processes",
        " sh",
        &c.cgroup,
        "Memory dumped",
    ] {
        assert!(text.contains(want), "{want:?} in\n{text}");
    }
    // The stdio by the paths they had, not CRIU's keys for them.
    assert!(
        text.contains("/dev/null (the container's stdio") && !text.contains("file["),
        "{text}"
    );
    // lcr names itself as the engine, and the image the bundle names.
    let member = |name: &str| -> Value {
        let out = Command::new("tar")
            .arg("-xOf")
            .arg(&archive)
            .arg(name)
            .output()
            .unwrap();
        assert_success(&out);
        serde_json::from_slice(&out.stdout).unwrap()
    };
    assert_eq!(
        member("spec.dump")["annotations"]["io.container.manager"],
        "lcr"
    );
    assert_eq!(member("config.dump")["rootfsImageName"], COUNTER_IMAGE);
    let i: Value =
        serde_json::from_str(&c.ok(&["image", "inspect", "--json", archive.to_str().unwrap()]))
            .unwrap();
    assert_eq!(i["container"]["id"], c.id.as_str());
    assert_eq!(i["processes"][0]["pid"], 1);
    assert_eq!(i["processes"][0]["command"], "sh");
    assert!(i["container"]["memory_dumped"].as_u64().unwrap() > 0);
    let states: Vec<&str> = i["processes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["state"].as_str().unwrap())
        .collect();
    assert!(states.contains(&"zombie"), "{states:?}");

    // Unpacked, the directory verifies and inspects too.
    let dir = c.tmp.path().join("dir");
    c.ok(&[
        "image",
        "unpack",
        "-q",
        archive.to_str().unwrap(),
        dir.to_str().unwrap(),
    ]);
    assert!(c
        .ok(&["image", "verify", dir.to_str().unwrap()])
        .contains("OK"));
    assert!(c
        .ok(&["image", "inspect", dir.to_str().unwrap()])
        .contains(&c.id));

    // One flipped byte in the memory pages.
    let mut bytes = std::fs::read(&archive).unwrap();
    let at = data_offset(&bytes, "checkpoint/pages-1.img") + 100;
    bytes[at] ^= 0xff;
    let flipped = c.tmp.path().join("flipped.tar");
    std::fs::write(&flipped, &bytes).unwrap();
    let out = c.lcr(&["image", "verify", flipped.to_str().unwrap()]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("\"checkpoint/pages-1.img\": checksum mismatch"),
        "{}",
        stderr(&out)
    );
    // A restore from it is refused before anything is made, and the archive is untouched.
    let r = Ctr::new("ar-verify2").unwrap();
    carry_host_files(&c, &r);
    let digest = sha(&flipped);
    let out = r.lcr(&r.import_args(&flipped, &[]));
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("checksum mismatch"),
        "{}",
        stderr(&out)
    );
    assert!(!r.state_dir().exists());
    assert!(!cgroup_exists(&r.cgroup));
    assert_eq!(sha(&flipped), digest);

    // Cut in half.
    let half = c.tmp.path().join("half.tar");
    std::fs::write(&half, &bytes[..bytes.len() / 2]).unwrap();
    let out = c.lcr(&["image", "verify", half.to_str().unwrap()]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("truncated"), "{}", stderr(&out));

    // A directory missing a file CRIU needs (and no manifest to list it).
    std::fs::remove_file(dir.join("lcr-manifest.json")).unwrap();
    std::fs::remove_file(dir.join("pagemap-1.img")).unwrap();
    let out = c.lcr(&["image", "verify", dir.to_str().unwrap()]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("pagemap-1.img is missing"),
        "{}",
        stderr(&out)
    );
}

fn failed_and_interrupted_exports_leave_the_container_running_and_no_file() {
    // 48 MiB of random data in a tmpfs: slow to compress at zstd's level 19.
    let Some((c, _log)) = counter_after(
        "ar-intr",
        "dd if=/dev/urandom of=/dev/shm/blob bs=1M count=48 2>/dev/null; ",
    ) else {
        return;
    };

    // A path that cannot be written: refused before the container is touched.
    let out = export(&c, Path::new("/nonexistent-dir/x.tar.zst"), &[]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("/nonexistent-dir"),
        "{}",
        stderr(&out)
    );
    let n = count(&c);
    wait_until("counting after a refused export", || count(&c) > n + 2);

    // SIGTERM while the archive is being written.
    let out_dir = c.tmp.path().join("out");
    std::fs::create_dir(&out_dir).unwrap();
    let archive = out_dir.join("big.tar.zst");
    let img = c.tmp.path().join("img");
    let mut child = c
        .cmd()
        .args([
            "checkpoint",
            "--image-path",
            img.to_str().unwrap(),
            "--export",
            archive.to_str().unwrap(),
            "--compress",
            "zstd:19",
            &c.id,
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_until("the dump to finish", || img.join("stats-dump").exists());
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        child.try_wait().unwrap().is_none(),
        "the export should still be running"
    );
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    let status = child.wait().unwrap();
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    assert!(!status.success());
    assert!(err.contains("interrupted by SIGTERM"), "{err}");
    let left: Vec<_> = std::fs::read_dir(&out_dir)
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert!(
        left.is_empty(),
        "nothing under or beside the archive's name: {left:?}"
    );
    assert_eq!(c.state()["status"], "running");
    assert_eq!(c.cgroup_read("freezer", "freezer.state"), "THAWED");
    let n = count(&c);
    wait_until("counting after an interrupted export", || count(&c) > n + 2);
}

lcr_test_harness::tests!(
    an_exported_container_is_imported_and_counts_on,
    a_pipe_carries_a_checkpoint_straight_into_a_restore,
    rootfs_changes_and_volumes_travel_with_the_archive,
    volumes_are_restored_only_when_asked_and_never_into_a_read_only_bind,
    inspect_and_verify_tell_good_archives_from_damaged_ones,
    failed_and_interrupted_exports_leave_the_container_running_and_no_file,
);
