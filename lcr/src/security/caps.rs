use std::collections::HashSet;
use std::str::FromStr;

use ::caps::{CapSet, Capability, CapsHashSet};
use oci_spec::runtime::LinuxCapabilities;

use super::spec_name;
use crate::{Error, Result};

fn to_set(names: Option<&HashSet<oci_spec::runtime::Capability>>) -> CapsHashSet {
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
    out
}

/// A capability set as a bit mask (bit N = capability N), as the kernel and CRIU keep it.
pub fn mask(names: Option<&HashSet<oci_spec::runtime::Capability>>) -> u64 {
    to_set(names).iter().fold(0, |m, c| m | (1u64 << c.index()))
}

/// The names of the capabilities in a bit mask (`CAP_…`, or `cap N` for unknown ones).
pub fn names(mask: u64) -> Vec<String> {
    (0..64)
        .filter(|i| mask & (1 << i) != 0)
        .map(|i| {
            ::caps::all()
                .into_iter()
                .find(|c| u32::from(c.index()) == i)
                .map_or(format!("cap {i}"), |c| c.to_string())
        })
        .collect()
}

fn err(what: &str, e: ::caps::errors::CapsError) -> Error {
    Error::Capability {
        what: what.to_string(),
        reason: e.to_string(),
    }
}

/// Shrinks the bounding set. Must run before the uid switch: dropping needs CAP_SETPCAP in
/// the effective set, which a non-root uid no longer has.
pub fn drop_bounding(c: &LinuxCapabilities) -> Result<()> {
    let bounding = to_set(c.bounding().as_ref());
    for cap in ::caps::all() {
        if !bounding.contains(&cap) && ::caps::has_cap(None, CapSet::Bounding, cap).unwrap_or(false)
        {
            ::caps::drop(None, CapSet::Bounding, cap).map_err(|e| err("bounding", e))?;
        }
    }
    Ok(())
}

/// Sets the effective, permitted, inheritable and ambient sets. Called after the uid switch
/// (with keep-caps, so the permitted set survived it).
pub fn apply_capabilities(c: &LinuxCapabilities) -> Result<()> {
    let effective = to_set(c.effective().as_ref());
    let permitted = to_set(c.permitted().as_ref());
    let inheritable = to_set(c.inheritable().as_ref());
    let ambient = to_set(c.ambient().as_ref());
    // Order matters to the kernel: effective must stay within permitted at every step.
    let eff_now: CapsHashSet = effective.intersection(&permitted).copied().collect();
    ::caps::set(None, CapSet::Effective, &eff_now).map_err(|e| err("effective", e))?;
    ::caps::set(None, CapSet::Inheritable, &inheritable).map_err(|e| err("inheritable", e))?;
    ::caps::set(None, CapSet::Permitted, &permitted).map_err(|e| err("permitted", e))?;
    ::caps::set(None, CapSet::Effective, &effective).map_err(|e| err("effective", e))?;
    raise_ambient(&ambient)
}

/// Raises each ambient capability the kernel allows (it must be permitted and inheritable);
/// the others are named in one warning, as runc does: `runc spec`'s own config lists ambient
/// capabilities that are not inheritable.
fn raise_ambient(ambient: &CapsHashSet) -> Result<()> {
    ::caps::clear(None, CapSet::Ambient).map_err(|e| err("ambient", e))?;
    let mut wanted: Vec<&Capability> = ambient.iter().collect();
    wanted.sort_by_key(|c| c.index());
    let refused: Vec<String> = wanted
        .into_iter()
        .filter(|&&cap| ::caps::raise(None, CapSet::Ambient, cap).is_err())
        .map(|c| c.to_string())
        .collect();
    if !refused.is_empty() {
        tracing::warn!(
            "process.capabilities.ambient: {} not raised (an ambient capability must also be permitted and inheritable)",
            refused.join(", ")
        );
    }
    Ok(())
}
