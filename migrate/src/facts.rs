//! What each host says of itself in its hello, and the pre-flight that compares the two
//! before the container is touched.

use lcr::checkpoint::Criu;

use crate::wire::HostFacts;
use crate::{Error, Result};

/// This host's facts, found with the same probes as `lcr check`.
pub fn this_host(criu: &Criu) -> Result<HostFacts> {
    let (version, features) = criu.supported_features().map_err(|e| Error::Refused {
        host: "this host".into(),
        reason: e.to_string(),
    })?;
    Ok(HostFacts {
        lcr_version: env!("CARGO_PKG_VERSION").to_string(),
        criu_version: version.to_string(),
        arch: lcr::image::record::machine_arch(),
        kernel: lcr::image::record::kernel_release(),
        cgroup_version: format!("{:?}", lcr::cgroups::Version::detect()).to_lowercase(),
        dirty_tracking: features.mem_track,
        lazy_pages: features.lazy_pages,
        lazy_dump_blocker: if features.lazy_pages {
            lcr::check::lazy_pages_blocker()
        } else {
            Some("CRIU finds no non-cooperative userfaultfd in this kernel".into())
        },
    })
}

/// Why the source's images cannot be restored on the destination, if they cannot: another
/// architecture, or a CRIU there older than here.
pub fn mismatch(source: &HostFacts, dest: &HostFacts) -> Option<String> {
    if source.arch != dest.arch {
        return Some(format!(
            "the destination is {} and this host {}: CRIU images do not cross architectures",
            dest.arch, source.arch
        ));
    }
    lcr::checkpoint::criu_older(&dest.criu_version, &source.criu_version).then(|| {
        format!(
            "the destination has CRIU {}, older than this host's {}: install CRIU {} or newer there (scripts/install-criu.sh)",
            dest.criu_version, source.criu_version, source.criu_version
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts(arch: &str, criu: &str) -> HostFacts {
        HostFacts {
            criu_version: criu.into(),
            arch: arch.into(),
            ..HostFacts::example()
        }
    }

    #[test]
    fn architecture_and_an_older_criu_are_refused() {
        assert!(mismatch(&facts("x86_64", "4.2.1"), &facts("x86_64", "4.2.1")).is_none());
        assert!(mismatch(&facts("x86_64", "4.1"), &facts("x86_64", "4.2.1")).is_none());
        let e = mismatch(&facts("x86_64", "4.2.1"), &facts("x86_64", "4.1")).unwrap();
        assert!(e.contains("older"), "{e}");
        let e = mismatch(&facts("x86_64", "4.2.1"), &facts("aarch64", "4.2.1")).unwrap();
        assert!(e.contains("architectures"), "{e}");
    }
}
