use std::collections::HashSet;
use std::str::FromStr;

use ::caps::{CapSet, Capability, CapsHashSet};
use oci_spec::runtime::LinuxCapabilities;

use super::spec_name;
use crate::{Error, Result};

fn to_set(names: Option<&HashSet<oci_spec::runtime::Capability>>) -> Result<CapsHashSet> {
    let mut out = CapsHashSet::new();
    for c in names.into_iter().flatten() {
        let name = spec_name(c);
        match Capability::from_str(&name) {
            Ok(cap) => {
                out.insert(cap);
            }
            // A capability this kernel/crate does not know is skipped, as runc does.
            Err(_) => tracing::warn!(capability = %name, "unknown capability ignored"),
        }
    }
    Ok(out)
}

/// Sets all five capability sets. Called after the uid switch (with keep-caps), so the
/// bounding set is dropped first while CAP_SETPCAP is still effective.
pub fn apply_capabilities(c: &LinuxCapabilities) -> Result<()> {
    let err = |what: &str, e: ::caps::errors::CapsError| Error::Other {
        context: format!("capabilities: {what}"),
        reason: e.to_string(),
    };
    let bounding = to_set(c.bounding().as_ref())?;
    for cap in ::caps::all() {
        if !bounding.contains(&cap) && ::caps::has_cap(None, CapSet::Bounding, cap).unwrap_or(false)
        {
            ::caps::drop(None, CapSet::Bounding, cap).map_err(|e| err("bounding", e))?;
        }
    }
    let effective = to_set(c.effective().as_ref())?;
    let permitted = to_set(c.permitted().as_ref())?;
    let inheritable = to_set(c.inheritable().as_ref())?;
    let ambient = to_set(c.ambient().as_ref())?;
    // Order matters to the kernel: effective must stay within permitted at every step.
    ::caps::set(
        None,
        CapSet::Effective,
        &effective.intersection(&permitted).copied().collect(),
    )
    .map_err(|e| err("effective", e))?;
    ::caps::set(None, CapSet::Inheritable, &inheritable).map_err(|e| err("inheritable", e))?;
    ::caps::set(None, CapSet::Permitted, &permitted).map_err(|e| err("permitted", e))?;
    ::caps::set(None, CapSet::Effective, &effective).map_err(|e| err("effective", e))?;
    ::caps::set(None, CapSet::Ambient, &ambient).map_err(|e| err("ambient", e))?;
    Ok(())
}
