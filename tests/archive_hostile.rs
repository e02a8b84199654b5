//! Hostile and broken archives, crafted byte by byte: each is refused with a message naming
//! the problem, by `lcr image unpack` and `lcr image verify` alike, and nothing appears
//! outside the (never created) target — no file at the paths the entries aim for, no
//! temporary directory left beside it.

mod common;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;
use serde_json::json;

/// One tar entry as written: any name, type, mode and link target.
struct Raw {
    name: String,
    kind: u8,
    mode: u32,
    link: String,
    data: Vec<u8>,
    /// Size written in the header, when it should differ from the data's.
    size: Option<u64>,
}

fn file(name: &str, data: &[u8]) -> Raw {
    Raw {
        name: name.into(),
        kind: b'0',
        mode: 0o600,
        link: String::new(),
        data: data.to_vec(),
        size: None,
    }
}

fn special(name: &str, kind: u8, link: &str) -> Raw {
    Raw {
        link: link.into(),
        kind,
        ..file(name, b"")
    }
}

/// A numeric header field: octal, or GNU's base-256 (high bit set) when it does not fit.
fn octal(field: &mut [u8], v: u64) {
    let s = format!("{:0width$o}", v, width = field.len() - 1);
    if s.len() < field.len() {
        field[..s.len()].copy_from_slice(s.as_bytes());
        return;
    }
    field.fill(0);
    let n = field.len();
    field[n - 8..].copy_from_slice(&v.to_be_bytes());
    field[0] = 0x80;
}

fn header(r: &Raw) -> [u8; 512] {
    let mut h = [0u8; 512];
    h[..r.name.len()].copy_from_slice(r.name.as_bytes());
    octal(&mut h[100..108], u64::from(r.mode));
    octal(&mut h[108..116], 0);
    octal(&mut h[116..124], 0);
    octal(&mut h[124..136], r.size.unwrap_or(r.data.len() as u64));
    octal(&mut h[136..148], 1_700_000_000);
    h[156] = r.kind;
    h[157..157 + r.link.len()].copy_from_slice(r.link.as_bytes());
    h[257..263].copy_from_slice(b"ustar\0");
    h[263..265].copy_from_slice(b"00");
    h[148..156].copy_from_slice(b"        ");
    let sum: u32 = h.iter().map(|&b| u32::from(b)).sum();
    let s = format!("{sum:06o}\0 ");
    h[148..156].copy_from_slice(s.as_bytes());
    h
}

fn tar_bytes(entries: &[Raw]) -> Vec<u8> {
    let mut out = Vec::new();
    for r in entries {
        out.extend_from_slice(&header(r));
        out.extend_from_slice(&r.data);
        out.resize(out.len().div_ceil(512) * 512, 0);
    }
    out.extend_from_slice(&[0u8; 1024]);
    out
}

fn sha256(data: &[u8]) -> String {
    let mut c = Command::new("sha256sum")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    c.stdin.take().unwrap().write_all(data).unwrap();
    let out = c.wait_with_output().unwrap();
    String::from_utf8_lossy(&out.stdout)
        .split(' ')
        .next()
        .unwrap()
        .to_string()
}

/// A manifest listing `files` (name, data), with `edit` applied.
fn manifest(files: &[(&str, &[u8])], edit: impl FnOnce(&mut serde_json::Value)) -> Raw {
    let mut m = json!({
        "format": 1, "lcr_version": "0.1.0", "criu_version": "4.2.1", "kernel": "6.18",
        "arch": std::env::consts::ARCH, "cgroup_version": "v1", "page_size": 4096,
        "packed": "2026-11-23T00:00:00Z",
        "container": {"id": "x", "command": ["sh"], "created": null, "checkpointed": "",
            "namespaces": [], "mounts": [], "cgroup_path": "/lcr/x", "limits": null,
            "memory_dumped": null, "rootfs_diff": false, "volumes": []},
        "entries": files.iter().map(|(n, d)| json!({"name": n, "size": d.len(), "sha256": sha256(d)})).collect::<Vec<_>>(),
    });
    edit(&mut m);
    file("lcr-manifest.json", &serde_json::to_vec(&m).unwrap())
}

const GOOD: &[u8] = b"hello images";

/// A work directory with the archive, the (never created) target, and the outside paths.
struct Case {
    dir: tempfile::TempDir,
}

impl Case {
    fn new() -> Self {
        Self {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    fn outside(&self) -> PathBuf {
        self.dir.path().join("outside")
    }

    /// Writes `bytes` as the archive and checks that unpack and verify refuse it with `want`.
    fn refused(&self, what: &str, bytes: &[u8], want: &str) {
        let archive = self.dir.path().join(format!("{what}.tar"));
        std::fs::write(&archive, bytes).unwrap();
        let target = self.dir.path().join("target");
        for args in [
            vec![
                "image",
                "unpack",
                "-q",
                archive.to_str().unwrap(),
                target.to_str().unwrap(),
            ],
            vec!["image", "verify", "-q", archive.to_str().unwrap()],
        ] {
            let out = output_via_files(Command::new(lcr_bin()).args(&args));
            let err = String::from_utf8_lossy(&out.stderr);
            assert!(!out.status.success(), "{what}: {args:?} accepted it");
            assert!(err.contains(want), "{what}: expected {want:?} in: {err}");
        }
        assert!(!target.exists(), "{what}: the target was made");
        assert!(
            !self.outside().exists(),
            "{what}: something was written outside"
        );
        let names: Vec<String> = std::fs::read_dir(self.dir.path())
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| !n.ends_with(".tar") && !n.ends_with(".zst"))
            .collect();
        assert!(names.is_empty(), "{what}: left behind {names:?}");
        std::fs::remove_file(&archive).unwrap();
    }
}

fn with_good(extra: Raw) -> Vec<u8> {
    tar_bytes(&[
        manifest(&[("checkpoint/a.img", GOOD)], |_| {}),
        extra,
        file("checkpoint/a.img", GOOD),
    ])
}

fn unsafe_names_links_devices_and_modes_are_refused() {
    let c = Case::new();
    let outside = c.outside();
    let abs = outside.to_str().unwrap().to_string();
    c.refused("absolute", &with_good(file(&abs, b"x")), "absolute path");
    c.refused(
        "dotdot",
        &with_good(file("checkpoint/../../outside", b"x")),
        "path component \"..\"",
    );
    c.refused(
        "symlink",
        &with_good(special("checkpoint/link", b'2', &abs)),
        "a symbolic link to",
    );
    c.refused(
        "hardlink",
        &with_good(special("checkpoint/hl", b'1', "../outside")),
        "a hard link to",
    );
    c.refused(
        "chardev",
        &with_good(special("checkpoint/null", b'3', "")),
        "a device node",
    );
    c.refused(
        "blockdev",
        &with_good(special("checkpoint/sda", b'4', "")),
        "a device node",
    );
    c.refused(
        "fifo",
        &with_good(special("checkpoint/fifo", b'6', "")),
        "a fifo",
    );
    let mut suid = file("checkpoint/a.img", GOOD);
    suid.mode = 0o4755;
    c.refused(
        "setuid",
        &tar_bytes(&[manifest(&[("checkpoint/a.img", GOOD)], |_| {}), suid]),
        "setuid/setgid bits",
    );
    let mut sgid_dir = special("checkpoint/", b'5', "");
    sgid_dir.mode = 0o2755;
    c.refused("setgid dir", &with_good(sgid_dir), "setuid/setgid bits");
}

fn entries_must_match_the_manifest() {
    let c = Case::new();
    c.refused(
        "unlisted",
        &with_good(file("checkpoint/extra.img", b"x")),
        "not in the manifest",
    );
    let mut big = file("checkpoint/a.img", &[7u8; 4096]);
    big.size = Some(4096);
    c.refused(
        "larger",
        &tar_bytes(&[manifest(&[("checkpoint/a.img", GOOD)], |_| {}), big]),
        "larger than the 12 the manifest says",
    );
    c.refused(
        "checksum",
        &tar_bytes(&[
            manifest(&[("checkpoint/a.img", GOOD)], |_| {}),
            file("checkpoint/a.img", b"hello IMAGES"),
        ]),
        "checksum mismatch",
    );
    c.refused(
        "twice",
        &tar_bytes(&[
            manifest(&[("checkpoint/a.img", GOOD)], |_| {}),
            file("checkpoint/a.img", GOOD),
            file("checkpoint/a.img", GOOD),
        ]),
        "appears twice",
    );
    c.refused(
        "format",
        &tar_bytes(&[
            manifest(&[("checkpoint/a.img", GOOD)], |m| m["format"] = json!(99)),
            file("checkpoint/a.img", GOOD),
        ]),
        "manifest format 99 is unknown",
    );
    c.refused(
        "not first",
        &tar_bytes(&[
            file("checkpoint/a.img", GOOD),
            manifest(&[("checkpoint/a.img", GOOD)], |_| {}),
        ]),
        "not an lcr archive",
    );
    c.refused(
        "manifest escapes",
        &tar_bytes(&[
            manifest(&[("../outside", GOOD)], |_| {}),
            file("checkpoint/a.img", GOOD),
        ]),
        "manifest entry \"../outside\": path component \"..\"",
    )
}

fn truncated_archives_and_decompression_bombs_are_refused() {
    let c = Case::new();
    let good = tar_bytes(&[
        manifest(
            &[
                ("checkpoint/a.img", GOOD),
                ("checkpoint/b.img", &[1u8; 5000]),
            ],
            |_| {},
        ),
        file("checkpoint/a.img", GOOD),
        file("checkpoint/b.img", &[1u8; 5000]),
    ]);
    // Cut inside b.img's data, and right after a.img (a missing entry).
    c.refused(
        "cut in data",
        &good[..good.len() - 1024 - 3000],
        "truncated",
    );
    let after_a = 512 + 1024 + 512 + 512;
    let manifest_len = {
        let m = &good[124..135];
        usize::from_str_radix(std::str::from_utf8(m).unwrap().trim_matches('\0'), 8).unwrap()
    };
    let cut = 512 + manifest_len.div_ceil(512) * 512 + after_a - 1024 - 512;
    c.refused("missing entry", &good[..cut], "truncated");
    let zst = zstd::encode_all(&good[..], 3).unwrap();
    c.refused("zstd cut", &zst[..zst.len() / 2], "truncated");

    // 256 MiB of PAX header data (compressed to a few KiB) before a tiny listed entry.
    let mut bomb = tar_bytes(&[manifest(&[("checkpoint/a.img", GOOD)], |_| {})]);
    bomb.truncate(bomb.len() - 1024);
    let mut pax = special("checkpoint/a.img", b'x', "");
    pax.size = Some(256 << 20);
    bomb.extend_from_slice(&header(&pax));
    let mut enc = zstd::Encoder::new(Vec::new(), 3).unwrap();
    enc.write_all(&bomb).unwrap();
    let zeros = vec![0u8; 1 << 20];
    for _ in 0..256 {
        enc.write_all(&zeros).unwrap();
    }
    enc.write_all(&tar_bytes(&[file("checkpoint/a.img", GOOD)]))
        .unwrap();
    let bomb = enc.finish().unwrap();
    assert!(bomb.len() < 1 << 20, "the bomb is small: {}", bomb.len());
    c.refused("bomb", &bomb, "decompression bomb");

    // A small archive whose manifest declares 1 TiB: refused before any data is read, by
    // the cap (64 GiB by default); with a higher cap, by the free space at the target.
    let huge = 1u64 << 40;
    let mut m = manifest(&[("checkpoint/a.img", GOOD)], |m| {
        m["entries"][0]["size"] = json!(huge);
    });
    m.size = None;
    let mut big = tar_bytes(&[m]);
    big.truncate(big.len() - 1024);
    let mut entry = file("checkpoint/a.img", b"");
    entry.size = Some(huge);
    big.extend_from_slice(&header(&entry));
    big.extend_from_slice(&[0u8; 1 << 16]);
    c.refused("declares 1 TiB", &big, "more than the 68719476736 allowed");
    let archive = c.dir.path().join("huge.tar");
    std::fs::write(&archive, &big).unwrap();
    let target = c.dir.path().join("target");
    let out = output_via_files(Command::new(lcr_bin()).args([
        "image",
        "unpack",
        "-q",
        "--max-size",
        "2T",
        archive.to_str().unwrap(),
        target.to_str().unwrap(),
    ]));
    assert!(!out.status.success(), "1 TiB unpacked");
    assert!(stderr(&out).contains("are free there"), "{}", stderr(&out));
    assert!(!target.exists());
    std::fs::remove_file(&archive).unwrap();

    c.refused("empty", b"", "empty input");
    c.refused("gzip", &[0x1f, 0x8b, 8, 0, 0, 0, 0, 0], "gzip-compressed");
}

fn a_well_formed_crafted_archive_unpacks_with_private_modes() {
    let c = Case::new();
    let bytes = with_good(special("checkpoint/", b'5', ""));
    let archive = c.dir.path().join("ok.tar");
    std::fs::write(&archive, bytes).unwrap();
    let target = c.dir.path().join("target");
    let out = output_via_files(Command::new(lcr_bin()).args([
        "image",
        "unpack",
        "-q",
        archive.to_str().unwrap(),
        target.to_str().unwrap(),
    ]));
    assert_success(&out);
    assert_eq!(std::fs::read(target.join("a.img")).unwrap(), GOOD);
    use std::os::unix::fs::PermissionsExt;
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o7777;
    assert_eq!(mode(&target), 0o700);
    assert_eq!(mode(&target.join("a.img")), 0o600);
    assert!(target.join("lcr-manifest.json").exists());
}

fn an_import_for_another_architecture_is_refused_from_its_manifest() {
    let c = Case::new();
    let bytes = tar_bytes(&[
        manifest(&[("checkpoint/a.img", GOOD)], |m| {
            m["arch"] = json!("s390x")
        }),
        file("checkpoint/a.img", GOOD),
    ]);
    let archive = c.dir.path().join("s390x.tar");
    std::fs::write(&archive, bytes).unwrap();
    let root = c.dir.path().join("state");
    let out = output_via_files(Command::new(lcr_bin()).args([
        "--root",
        root.to_str().unwrap(),
        "restore",
        "-d",
        "--bundle",
        "/nonexistent-bundle",
        "--import",
        archive.to_str().unwrap(),
        "arch-test",
    ]));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains(&format!(
            "the checkpoint is for s390x and this host is {}",
            std::env::consts::ARCH
        )),
        "{err}"
    );
    assert!(!root.join("arch-test").exists());
}

fn archives_are_neither_read_from_nor_written_to_a_terminal() {
    let c = Case::new();
    let target = c.dir.path().join("target");
    for (cmd, want) in [
        (
            format!("'{}' image unpack - '{}'", lcr_bin(), target.display()),
            "standard input: is a terminal",
        ),
        (
            format!("'{}' image pack '{}' -", lcr_bin(), c.dir.path().display()),
            "standard output is a terminal",
        ),
    ] {
        // `script` gives the command a pseudo-terminal for its stdin and stdout.
        let out = output_via_files(Command::new("script").args(["-qec", &cmd, "/dev/null"]));
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(!out.status.success(), "{cmd}: {text}");
        assert!(text.contains(want), "{cmd}: {text}");
    }
    assert!(!target.exists());
}

/// An archive of `n` empty images listed in its manifest.
fn many_entries(c: &Case, n: usize) -> PathBuf {
    let empty = sha256(b"");
    let names: Vec<String> = (0..n).map(|i| format!("checkpoint/{i}")).collect();
    let m = manifest(&[], |m| {
        m["entries"] = names
            .iter()
            .map(|n| json!({"name": n, "size": 0, "sha256": empty}))
            .collect();
    });
    let mut entries = vec![m];
    entries.extend(names.iter().map(|n| file(n, b"")));
    let archive = c.dir.path().join(format!("many-{n}.tar.zst"));
    std::fs::write(
        &archive,
        zstd::encode_all(&tar_bytes(&entries)[..], 1).unwrap(),
    )
    .unwrap();
    archive
}

/// Runs `lcr image verify` on `archive` (at most two minutes): its run time and stderr.
fn timed_verify(archive: &Path) -> (std::time::Duration, String) {
    let started = std::time::Instant::now();
    let mut child = Command::new(lcr_bin())
        .args(["image", "verify", "-q", archive.to_str().unwrap()])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    while child.try_wait().unwrap().is_none() {
        if started.elapsed() > std::time::Duration::from_secs(120) {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "verify of {} did not finish in two minutes",
                archive.display()
            );
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    let out = child.wait_with_output().unwrap();
    (
        started.elapsed(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn a_manifest_of_many_entries_is_checked_without_quadratic_lookups() {
    // Ten times the entries may take about ten times as long, not a hundred (a linear
    // lookup per entry made 140,000 entries take 34 s). Compared within this run, so the
    // machine's speed does not matter.
    let c = Case::new();
    let (small, err) = timed_verify(&many_entries(&c, 12_000));
    // Every entry was checked: it is no checkpoint (CRIU's files are missing), verify says.
    assert!(err.contains("is missing"), "{err}");
    let (large, err) = timed_verify(&many_entries(&c, 120_000));
    assert!(err.contains("is missing"), "{err}");
    let ratio = large.as_secs_f64() / small.as_secs_f64().max(0.001);
    assert!(
        ratio < 40.0,
        "12,000 entries: {small:?}, 120,000: {large:?} (x{ratio:.0})"
    );
}

/// A GNU long-name header (`././@LongLink`, type L) for the entry that follows.
fn long_name(name: &str) -> Raw {
    let mut data = name.as_bytes().to_vec();
    data.push(0);
    Raw {
        data,
        ..special("././@LongLink", b'L', "")
    }
}

/// A PAX extended header (type x) with one `path` record.
fn pax_path(path: &str) -> Raw {
    let body = format!(" path={path}\n");
    let mut len = body.len() + 2;
    if (len.to_string().len() + body.len()) != len {
        len = len.to_string().len() + body.len();
    }
    Raw {
        data: format!("{len}{body}").into_bytes(),
        ..special("pax", b'x', "")
    }
}

fn names_readers_disagree_on_or_cannot_create_are_refused_and_shown_short() {
    let c = Case::new();
    // GNU tar would take the PAX path, the tar crate the long name.
    let differential = tar_bytes(&[
        manifest(&[("checkpoint/a.img", GOOD)], |_| {}),
        long_name("checkpoint/a.img"),
        pax_path("../../../outside"),
        file("placeholder", GOOD),
    ]);
    c.refused("long name vs PAX path", &differential, "names another file");
    // A file name longer than any file system takes: verify must not pass what unpack
    // cannot make, and the error shows a shortened name.
    let long = format!("checkpoint/{}", "a".repeat(300));
    let too_long = tar_bytes(&[
        manifest(&[(long.as_str(), GOOD)], |_| {}),
        long_name(&long),
        file("placeholder", GOOD),
    ]);
    c.refused("300-byte name", &too_long, "longer than a file name may be");
    let archive = c.dir.path().join("long.tar");
    std::fs::write(&archive, &too_long).unwrap();
    let out = output_via_files(Command::new(lcr_bin()).args([
        "image",
        "verify",
        "-q",
        archive.to_str().unwrap(),
    ]));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.len() < 1000 && err.contains("bytes in all"), "{err}");
}

fn inspect_shows_what_the_archive_holds_not_what_its_manifest_claims() {
    let c = Case::new();
    let bytes = tar_bytes(&[
        manifest(&[("checkpoint/a.img", GOOD)], |m| {
            m["container"]["volumes"] = json!(["/claimed"]);
            m["container"]["namespaces"] = json!(["pid", "net"]);
        }),
        file("checkpoint/a.img", GOOD),
    ]);
    let archive = c.dir.path().join("claims.tar");
    std::fs::write(&archive, bytes).unwrap();
    let out = output_via_files(Command::new(lcr_bin()).args([
        "image",
        "inspect",
        "--json",
        archive.to_str().unwrap(),
    ]));
    assert_success(&out);
    let i: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(i["container"]["volumes"], json!([]), "{i}");
    // No images to read the namespaces from: none shown as fact.
    assert!(i.get("isolation").is_none(), "{i}");
    let out = output_via_files(Command::new(lcr_bin()).args([
        "image",
        "inspect",
        archive.to_str().unwrap(),
    ]));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("as the manifest says; the images are unreadable"),
        "{text}"
    );
}

lcr_test_harness::tests!(
    unsafe_names_links_devices_and_modes_are_refused,
    entries_must_match_the_manifest,
    truncated_archives_and_decompression_bombs_are_refused,
    a_well_formed_crafted_archive_unpacks_with_private_modes,
    an_import_for_another_architecture_is_refused_from_its_manifest,
    archives_are_neither_read_from_nor_written_to_a_terminal,
    a_manifest_of_many_entries_is_checked_without_quadratic_lookups,
    names_readers_disagree_on_or_cannot_create_are_refused_and_shown_short,
    inspect_shows_what_the_archive_holds_not_what_its_manifest_claims,
);
