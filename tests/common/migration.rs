//! Running `lcr migrate` between the two "hosts" of [`super::twohosts`], and what a failed
//! migration must leave.

use super::counter::{count, lines};
use super::twohosts::{TwoHosts, DEST_ADDR};
use super::*;

/// `lcr migrate` of `c` into `r` (its bundle there) through `h`, with `extra` flags.
pub fn migrate(h: &TwoHosts, c: &Ctr, r: &Ctr, extra: &[&str]) -> std::process::Output {
    migrate_into(h, c, (&r.root, &r.id), &r.bundle, extra)
}

/// `lcr migrate` of `c` to container `id` under state root `root` there, from `bundle`; the
/// container's output there goes to `dest.log` beside the bundle.
pub fn migrate_into(
    h: &TwoHosts,
    c: &Ctr,
    dest: (&std::path::Path, &str),
    bundle: &std::path::Path,
    extra: &[&str],
) -> std::process::Output {
    output_via_files(&mut migrate_command(h, c, dest, bundle, extra))
}

pub fn migrate_command(
    h: &TwoHosts,
    c: &Ctr,
    (root, id): (&std::path::Path, &str),
    bundle: &std::path::Path,
    extra: &[&str],
) -> std::process::Command {
    let dest_log = bundle.with_file_name("dest.log");
    let mut cmd = c.cmd();
    cmd.arg("migrate")
        .arg(&c.id)
        .arg(format!("ssh://root@{DEST_ADDR}"))
        .arg("--ssh")
        .arg(&h.ssh)
        .args(["--dest-lcr", lcr_bin(), "--dest-id", id])
        .arg("--dest-root")
        .arg(root)
        .arg("--dest-bundle")
        .arg(bundle)
        .arg("--dest-log")
        .arg(dest_log)
        .args(extra);
    cmd
}

/// The source counts on, never left frozen, and the destination has nothing of it.
pub fn stayed_here(c: &Ctr, r: &Ctr, out: &std::process::Output, what: &str) {
    assert_eq!(out.status.code(), Some(1), "{what}: {}", stderr(out));
    assert_eq!(
        c.state()["status"],
        "running",
        "{what}: the source is not running"
    );
    let n = count(c);
    wait_until("counting on at the source", || count(c) > n + 2);
    assert!(
        !r.lcr(&["state", &r.id]).status.success(),
        "{what}: left on the destination"
    );
    assert!(
        !cgroup_exists(&r.cgroup),
        "{what}: a cgroup left on the destination"
    );
}

/// An ssh (for `--ssh`) whose connection ends after `bytes` sent to the destination.
pub fn cut_ssh(h: &TwoHosts, bytes: u64) -> std::path::PathBuf {
    byte_by_byte_ssh(h, Some(bytes))
}

/// An ssh (for `--ssh`) that passes what goes to the destination on a byte per write (dd
/// passes each byte as it comes; head would hold them back): slowed to seconds per MB, and
/// cut after `count` bytes if given.
pub fn byte_by_byte_ssh(h: &TwoHosts, count: Option<u64>) -> std::path::PathBuf {
    let (name, limit) = match count {
        Some(n) => (format!("ssh-cut-{n}"), format!(" count={n}")),
        None => ("ssh-slow".to_string(), String::new()),
    };
    let path = h.tmp.path().join(name);
    std::fs::write(
        &path,
        format!(
            "#!/bin/sh\ndd bs=1{limit} status=none | {} \"$@\"\n",
            h.ssh.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    path
}

/// `r` (the destination) counts on, in its log `dest.log`, from the number after the last
/// one `log` (the source's) holds.
pub fn counts_on_there(r: &Ctr, log: &Path) {
    let last_here = lines(log).last().map(|(n, _)| *n).unwrap_or(0);
    let dest_log = r.tmp.path().join("dest.log");
    wait_until("counting on at the destination", || {
        lines(&dest_log).len() > 3
    });
    assert_eq!(
        lines(&dest_log)[0].0,
        last_here + 1,
        "the count did not go on from where it stopped"
    );
}

/// Runs `cmd` with its stderr on a terminal (a pty made here, as an interactive user's) and
/// its stdout in a file: the output, and everything the terminal was shown.
pub fn output_on_a_terminal(cmd: &mut std::process::Command) -> (std::process::Output, String) {
    use std::io::Read;
    let pty = nix::pty::openpty(None, None).unwrap();
    let out = tempfile::tempfile().unwrap();
    let child = cmd
        .stdout(out.try_clone().unwrap())
        .stderr(std::process::Stdio::from(pty.slave))
        .env("TERM", "xterm")
        .spawn();
    // The command holds the terminal's other end until told otherwise: the reading below
    // ends when the last process holding it has gone.
    cmd.stderr(std::process::Stdio::null());
    let mut child = child.unwrap();
    let mut master = std::fs::File::from(pty.master);
    let shown = std::thread::spawn(move || {
        let mut all = Vec::new();
        let mut buf = [0u8; 4096];
        // A terminal whose other end closed reads as EIO, not as the end of a file.
        while let Ok(n @ 1..) = master.read(&mut buf) {
            all.extend_from_slice(&buf[..n]);
        }
        String::from_utf8_lossy(&all).into_owned()
    });
    let status = child.wait().unwrap();
    let shown = shown.join().unwrap();
    let mut stdout = Vec::new();
    let mut out = out;
    std::io::Seek::rewind(&mut out).unwrap();
    out.read_to_end(&mut stdout).unwrap();
    let output = std::process::Output {
        status,
        stdout,
        stderr: shown.clone().into_bytes(),
    };
    (output, shown)
}
