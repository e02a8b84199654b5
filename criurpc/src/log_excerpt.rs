use std::path::Path;

/// Lines that CRIU logs as errors and that never explain a failure: root without
/// CAP_SYS_RESOURCE cannot raise its own RLIMIT_NOFILE (every run on this kind of host), and
/// CRIU's kernel probe for tun support also logs an error when the device cgroup it runs in
/// (a container's, on restore) refuses /dev/net/tun.
const HARMLESS: &[&str] = &[
    "rlimit: Can't setup RLIMIT_NOFILE for self",
    "tun: Unable to create tun",
];

/// How many lines before each error line to keep, for context.
const CONTEXT_BEFORE: usize = 2;
/// At most this many error lines are reported; the first ones are usually the cause.
const MAX_ERRORS: usize = 8;

/// Whether a CRIU error line is known noise rather than a cause.
pub(crate) fn is_harmless(line: &str) -> bool {
    HARMLESS.iter().any(|h| line.contains(h))
}

/// The first error line of an excerpt, without its timestamp and pid prefix.
pub(crate) fn first_error(excerpt: &str) -> Option<String> {
    let line = excerpt.lines().find(|l| l.contains("Error ("))?;
    Some(line[line.find("Error (")?..].trim().to_string())
}

/// The error lines of a CRIU log (`Error (…)`), each with the lines just before it, skipping
/// errors known to be harmless. `None` when the log cannot be read or shows no error.
pub fn log_excerpt(path: &Path) -> Option<String> {
    let text = std::fs::read_to_string(path).ok()?;
    excerpt_of(&text)
}

fn excerpt_of(text: &str) -> Option<String> {
    let lines: Vec<&str> = text.lines().collect();
    let mut keep = vec![false; lines.len()];
    let mut errors = 0;
    for (i, line) in lines.iter().enumerate() {
        let is_error = line.contains("Error (") || line.contains("): Error");
        if !is_error || is_harmless(line) {
            continue;
        }
        for k in keep
            .iter_mut()
            .take(i + 1)
            .skip(i.saturating_sub(CONTEXT_BEFORE))
        {
            *k = true;
        }
        errors += 1;
        if errors == MAX_ERRORS {
            break;
        }
    }
    if errors == 0 {
        return None;
    }
    let mut out = String::new();
    let mut last: Option<usize> = None;
    for (i, line) in lines.iter().enumerate().filter(|(i, _)| keep[*i]) {
        if last.is_some_and(|l| l + 1 != i) {
            out.push_str("...\n");
        }
        out.push_str(line.trim_end());
        out.push('\n');
        last = Some(i);
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_errors_with_context_and_skips_the_rlimit_noise() {
        let log = "(00.001) a\n(00.002) Error (criu/util.c:1): rlimit: Can't setup RLIMIT_NOFILE for self: EPERM\n\
                   (00.003) b\n(00.004) c\n(00.005) d\n(00.006) Error (criu/cr-dump.c:9): Can't dump pid 5\n(00.007) e\n";
        let ex = excerpt_of(log).unwrap();
        assert!(ex.contains("Can't dump pid 5"));
        assert!(ex.contains("(00.004) c") && ex.contains("(00.005) d"));
        assert!(!ex.contains("RLIMIT_NOFILE"));
        assert!(!ex.contains("(00.007) e"));
    }

    #[test]
    fn first_error_drops_the_prefix() {
        let ex = "(00.1) x\n(00.2)      1: Error (criu/files.c:1221): Unable to open fd=1\n";
        assert_eq!(
            first_error(ex).unwrap(),
            "Error (criu/files.c:1221): Unable to open fd=1"
        );
        assert!(is_harmless(
            "Error (criu/util.c:1534): rlimit: Can't setup RLIMIT_NOFILE for self: x"
        ));
    }

    #[test]
    fn no_error_no_excerpt() {
        assert_eq!(excerpt_of("(0.1) fine\n"), None);
        let only_noise = "Error (criu/util.c:1): rlimit: Can't setup RLIMIT_NOFILE for self\n";
        assert_eq!(excerpt_of(only_noise), None);
    }

    #[test]
    fn gaps_between_kept_runs_are_marked() {
        let mut log = String::from("Error (x): first\n");
        for i in 0..10 {
            log.push_str(&format!("line {i}\n"));
        }
        log.push_str("Error (y): second\n");
        let ex = excerpt_of(&log).unwrap();
        assert_eq!(
            ex,
            "Error (x): first\n...\nline 8\nline 9\nError (y): second\n"
        );
    }
}
