//! Facts the kernel tells, read in one place: a process's stat line and a mount table from
//! /proc, and the page size.

use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;

/// The fields of /proc/PID/stat lcr uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stat {
    /// The command name (field 2), without its parentheses.
    pub comm: String,
    /// The state letter (field 3): `R`, `S`, `Z`, …
    pub state: char,
    pub ppid: i32,
    /// Clock ticks since boot (field 22): with the pid, what names a process for good.
    pub start_time: u64,
}

impl Stat {
    pub fn is_zombie(&self) -> bool {
        matches!(self.state, 'Z' | 'X')
    }
}

/// /proc/PID/stat of `pid`; `None` when there is no such process.
pub fn read_stat(pid: i32) -> Option<Stat> {
    parse_stat(&std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?)
}

fn parse_stat(s: &str) -> Option<Stat> {
    // The command name may hold spaces and parentheses: it ends at the last ')'.
    let open = s.find('(')?;
    let close = s.rfind(')')?;
    let mut fields = s.get(close + 1..)?.split_whitespace();
    let state = fields.next()?.chars().next()?;
    let ppid = fields.next()?.parse().ok()?;
    // Field 4 was the ppid; the start time is field 22, 17 further fields on.
    let start_time = fields.nth(17)?.parse().ok()?;
    Some(Stat {
        comm: s.get(open + 1..close)?.to_string(),
        state,
        ppid,
        start_time,
    })
}

/// The start time of `pid` (clock ticks since boot) and whether it is a zombie.
pub fn stat(pid: i32) -> Option<(u64, bool)> {
    read_stat(pid).map(|s| (s.start_time, s.is_zombie()))
}

pub fn start_time(pid: i32) -> Option<u64> {
    read_stat(pid).map(|s| s.start_time)
}

/// Whether `pid` is still the process that started at `start` and has not exited.
pub fn is_alive(pid: i32, start: u64) -> bool {
    pid > 0 && read_stat(pid).is_some_and(|s| s.start_time == start && !s.is_zombie())
}

/// The parent pid and command line of `pid`, for `ps`.
pub fn ppid_and_cmdline(pid: i32) -> Option<(i32, String)> {
    let st = read_stat(pid)?;
    let raw = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    let mut cmd: String = raw
        .split(|b| *b == 0)
        .filter(|a| !a.is_empty())
        .map(|a| String::from_utf8_lossy(a).into_owned())
        .collect::<Vec<_>>()
        .join(" ");
    if cmd.is_empty() {
        cmd = format!("[{}]", st.comm);
    }
    Some((st.ppid, cmd))
}

/// The start time of `pid`, which must exist: a record with start time 0 would never match
/// the process again.
pub fn start_time_of(pid: i32) -> crate::Result<u64> {
    start_time(pid).ok_or(crate::Error::ProcessGone(pid))
}

/// The kernel's page size in bytes.
pub fn page_size() -> u64 {
    nix::unistd::sysconf(nix::unistd::SysconfVar::PAGE_SIZE)
        .ok()
        .flatten()
        .map_or(4096, |v| v as u64)
}

/// One line of a mountinfo table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountInfo {
    pub id: u64,
    pub mount_point: PathBuf,
    pub fstype: String,
}

/// The mount table of `pid`'s mount namespace (`None`: this process's).
pub fn mountinfo(pid: Option<i32>) -> std::io::Result<Vec<MountInfo>> {
    let path = match pid {
        Some(p) => format!("/proc/{p}/mountinfo"),
        None => "/proc/self/mountinfo".to_string(),
    };
    Ok(parse_mountinfo(&std::fs::read_to_string(path)?))
}

fn parse_mountinfo(text: &str) -> Vec<MountInfo> {
    text.lines()
        .filter_map(|line| {
            let (left, right) = line.split_once(" - ")?;
            let mut l = left.split(' ');
            let id = l.next()?.parse().ok()?;
            let mount_point = unescape_mountinfo(l.nth(3)?);
            let fstype = right.split(' ').next()?.to_string();
            Some(MountInfo {
                id,
                mount_point,
                fstype,
            })
        })
        .collect()
}

/// mountinfo writes space, tab, newline and backslash as octal escapes (`\040`).
fn unescape_mountinfo(field: &str) -> PathBuf {
    let b = field.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let octal = b
            .get(i + 1..i + 4)
            .filter(|d| d.iter().all(|c| (b'0'..=b'7').contains(c)));
        match (b[i], octal) {
            (b'\\', Some(d)) => {
                out.push((d[0] - b'0') * 64 + (d[1] - b'0') * 8 + (d[2] - b'0'));
                i += 4;
            }
            (c, _) => {
                out.push(c);
                i += 1;
            }
        }
    }
    PathBuf::from(std::ffi::OsStr::from_bytes(&out))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn our_own_process_is_alive_and_a_wrong_start_time_is_not() {
        let me = std::process::id() as i32;
        let start = start_time(me).unwrap();
        assert!(is_alive(me, start));
        assert!(!is_alive(me, start + 1));
        assert!(!is_alive(-1, start));
        let (ppid, cmd) = ppid_and_cmdline(me).unwrap();
        assert!(ppid > 0 && !cmd.is_empty());
    }

    #[test]
    fn stat_lines_with_odd_command_names_parse() {
        let line = "42 (a (b) c) S 7 42 42 0 -1 4194560 1 0 0 0 0 0 0 0 20 0 1 0 12345 1000 10";
        let s = parse_stat(line).unwrap();
        assert_eq!(
            (s.comm.as_str(), s.state, s.ppid, s.start_time),
            ("a (b) c", 'S', 7, 12345)
        );
    }

    #[test]
    fn mountinfo_lines_parse() {
        let text = "36 35 98:0 /mnt1 /mnt/a\\040b rw,noatime master:1 - ext3 /dev/root rw\n\
                    40 36 0:30 / /sys/fs/cgroup/memory rw shared:9 - cgroup cgroup rw,memory\n";
        let m = parse_mountinfo(text);
        assert_eq!(m.len(), 2);
        assert_eq!(m[0].id, 36);
        assert_eq!(m[0].mount_point, PathBuf::from("/mnt/a b"));
        assert_eq!(m[1].fstype, "cgroup");
    }

    #[test]
    fn mountinfo_escapes() {
        assert_eq!(unescape_mountinfo("/a\\040b"), PathBuf::from("/a b"));
        assert_eq!(unescape_mountinfo("/plain"), PathBuf::from("/plain"));
    }
}
