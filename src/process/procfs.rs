//! Facts about processes read from /proc.

/// The start time of `pid` in clock ticks since boot (field 22 of /proc/PID/stat), and whether
/// it is a zombie. `None` when there is no such process.
pub fn stat(pid: i32) -> Option<(u64, bool)> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may hold spaces and parentheses: split after the last ')'.
    let rest = &s[s.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace();
    let state = fields.next()?;
    // Field 3 is the state; the start time is field 22, i.e. 19 further fields on.
    let start = fields.nth(18)?.parse().ok()?;
    Some((start, state == "Z" || state == "X"))
}

pub fn start_time(pid: i32) -> Option<u64> {
    stat(pid).map(|(s, _)| s)
}

/// Whether `pid` is still the process that started at `start` and has not exited.
pub fn is_alive(pid: i32, start: u64) -> bool {
    pid > 0 && matches!(stat(pid), Some((s, false)) if s == start)
}

/// The parent pid and command line of `pid`, for `ps`.
pub fn ppid_and_cmdline(pid: i32) -> Option<(i32, String)> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &s[s.rfind(')')? + 1..];
    let ppid = rest.split_whitespace().nth(1)?.parse().ok()?;
    let raw = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    let mut cmd: String = raw
        .split(|b| *b == 0)
        .filter(|a| !a.is_empty())
        .map(|a| String::from_utf8_lossy(a).into_owned())
        .collect::<Vec<_>>()
        .join(" ");
    if cmd.is_empty() {
        let name = &s[s.find('(')? + 1..s.rfind(')')?];
        cmd = format!("[{name}]");
    }
    Some((ppid, cmd))
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
}
