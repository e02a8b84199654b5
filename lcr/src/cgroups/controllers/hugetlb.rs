use oci_spec::runtime::LinuxResources;

use super::{Controller, Dir, Version};
use crate::Result;

pub struct Hugetlb;

impl Controller for Hugetlb {
    fn name(&self) -> &'static str {
        "hugetlb"
    }

    fn wanted(&self, r: &LinuxResources, _: Version) -> bool {
        r.hugepage_limits().as_ref().is_some_and(|l| !l.is_empty())
    }

    fn apply(&self, dir: &Dir, r: &LinuxResources) -> Result<()> {
        let file = |size: &str| match dir.version {
            Version::V1 => format!("hugetlb.{size}.limit_in_bytes"),
            Version::V2 => format!("hugetlb.{size}.max"),
        };
        for l in r.hugepage_limits().iter().flatten() {
            dir.write(&file(l.page_size()), l.limit())?;
        }
        Ok(())
    }
}
