use std::fmt;

use crate::rpc;

/// The oldest CRIU lcr works with: 4.1 fixed the vDSO layout of kernels >= 6.13.
pub const MIN_VERSION: Version = Version {
    major: 4,
    minor: 1,
    sublevel: 0,
    extra: 0,
    gitid: None,
    name: None,
};

/// CRIU's version as its VERSION request reports it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Version {
    pub major: u32,
    pub minor: u32,
    pub sublevel: u32,
    pub extra: u32,
    /// Set for builds from a git tree (e.g. `v4.2-15-gabcdef`).
    pub gitid: Option<String>,
    pub name: Option<String>,
}

impl Version {
    pub(crate) fn from_rpc(v: &rpc::Criu_version) -> Self {
        let nonneg = |x: i32| u32::try_from(x).unwrap_or(0);
        Self {
            major: nonneg(v.major_number()),
            minor: nonneg(v.minor_number()),
            sublevel: nonneg(v.sublevel()),
            extra: nonneg(v.extra()),
            gitid: v.gitid.clone().filter(|g| !g.is_empty()),
            name: v.name.clone().filter(|n| !n.is_empty()),
        }
    }

    /// Parses `4.2`, `4.2.1`, `4.2.1.3` and the `Version: 4.2.1` line of `criu --version`.
    pub fn parse(s: &str) -> Option<Self> {
        let s = s.trim().trim_start_matches("Version:").trim();
        let mut nums = s.split('.').map(|p| p.trim().parse::<u32>());
        let major = nums.next()?.ok()?;
        let minor = nums.next()?.ok()?;
        let sublevel = nums.next().transpose().ok()?.unwrap_or(0);
        let extra = nums.next().transpose().ok()?.unwrap_or(0);
        Some(Self {
            major,
            minor,
            sublevel,
            extra,
            gitid: None,
            name: None,
        })
    }

    fn key(&self) -> (u32, u32, u32, u32) {
        (self.major, self.minor, self.sublevel, self.extra)
    }

    /// Numeric comparison only; git builds compare by the release they are based on.
    pub fn at_least(&self, other: &Version) -> bool {
        self.key() >= other.key()
    }
}

impl PartialOrd for Version {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.key().cmp(&other.key()))
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.major, self.minor)?;
        if self.sublevel != 0 || self.extra != 0 {
            write!(f, ".{}", self.sublevel)?;
        }
        if self.extra != 0 {
            write!(f, ".{}", self.extra)?;
        }
        if let Some(g) = &self.gitid {
            write!(f, " (git {g})")?;
        }
        Ok(())
    }
}

/// Answers of a FEATURE_CHECK request: what this kernel and CRIU can do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Features {
    /// Dirty memory tracking (soft-dirty): needed for pre-dump and `track_mem`.
    pub mem_track: bool,
    /// userfaultfd with non-cooperative events: needed for lazy pages (post-copy).
    pub lazy_pages: bool,
    /// pidfd_open + pidfd_getfd: needed for the pidfd store (pid reuse detection across pre-dumps).
    pub pidfd_store: bool,
}

impl Features {
    pub(crate) fn from_rpc(f: &rpc::Criu_features) -> Self {
        Self {
            mem_track: f.mem_track(),
            lazy_pages: f.lazy_pages(),
            pidfd_store: f.pidfd_store(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_release_and_cli_forms() {
        let v = Version::parse("Version: 4.2.1\n").unwrap();
        assert_eq!((v.major, v.minor, v.sublevel), (4, 2, 1));
        assert_eq!(v.to_string(), "4.2.1");
        assert_eq!(Version::parse("3.17").unwrap().to_string(), "3.17");
        assert!(Version::parse("four").is_none());
        assert!(Version::parse("4").is_none());
    }

    #[test]
    fn compares_numerically() {
        let v = |s| Version::parse(s).unwrap();
        assert!(v("4.2.1").at_least(&MIN_VERSION));
        assert!(v("4.1").at_least(&MIN_VERSION));
        assert!(!v("3.17.1").at_least(&MIN_VERSION));
        assert!(v("4.10") > v("4.9.9"));
    }

    #[test]
    fn git_builds_keep_their_id() {
        let mut r = rpc::Criu_version::new();
        r.set_major_number(4);
        r.set_minor_number(2);
        r.set_gitid("v4.2-7-gdeadbee".into());
        let v = Version::from_rpc(&r);
        assert_eq!(v.to_string(), "4.2 (git v4.2-7-gdeadbee)");
        assert!(v.at_least(&MIN_VERSION));
    }
}
