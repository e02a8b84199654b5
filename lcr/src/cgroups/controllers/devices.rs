use oci_spec::runtime::{LinuxDeviceCgroup, LinuxDeviceType, LinuxResources};

use super::{Controller, Dir, Version};
use crate::Result;

/// v1's device list. On v2, device rules need an eBPF program, which lcr does not attach
/// yet: the cgroup's `set` warns and leaves them out.
pub struct Devices;

/// Devices every container may use whatever its rules say (as runc allows them): the OCI
/// default devices, the console, ptys, and mknod of anything (using a node is what is checked).
const ALWAYS_ALLOWED: &[(LinuxDeviceType, i64, i64, &str)] = &[
    (LinuxDeviceType::C, -1, -1, "m"),
    (LinuxDeviceType::B, -1, -1, "m"),
    (LinuxDeviceType::C, 1, 3, "rwm"),    // null
    (LinuxDeviceType::C, 1, 5, "rwm"),    // zero
    (LinuxDeviceType::C, 1, 7, "rwm"),    // full
    (LinuxDeviceType::C, 1, 8, "rwm"),    // random
    (LinuxDeviceType::C, 1, 9, "rwm"),    // urandom
    (LinuxDeviceType::C, 5, 0, "rwm"),    // tty
    (LinuxDeviceType::C, 5, 1, "rwm"),    // console
    (LinuxDeviceType::C, 5, 2, "rwm"),    // ptmx
    (LinuxDeviceType::C, 136, -1, "rwm"), // pts
];

impl Controller for Devices {
    fn name(&self) -> &'static str {
        "devices"
    }

    fn wanted(&self, r: &LinuxResources, version: Version) -> bool {
        version == Version::V1 && r.devices().as_ref().is_some_and(|d| !d.is_empty())
    }

    fn apply(&self, dir: &Dir, r: &LinuxResources) -> Result<()> {
        for rule in effective_device_rules(r.devices().as_deref().unwrap_or_default()) {
            let file = if rule.allow() {
                "devices.allow"
            } else {
                "devices.deny"
            };
            dir.write(file, rule_text(&rule))?;
        }
        Ok(())
    }
}

/// `type major:minor access`, `*` for any number.
fn rule_text(r: &LinuxDeviceCgroup) -> String {
    let num = |n: Option<i64>| match n {
        Some(n) if n >= 0 => n.to_string(),
        _ => "*".into(),
    };
    let typ = match r.typ().unwrap_or(LinuxDeviceType::A) {
        LinuxDeviceType::C | LinuxDeviceType::U => "c",
        LinuxDeviceType::B => "b",
        LinuxDeviceType::P => "p",
        LinuxDeviceType::A => "a",
    };
    let access = r.access().clone().unwrap_or_else(|| "rwm".into());
    format!("{typ} {}:{} {access}", num(r.major()), num(r.minor()))
}

/// The device rules to write: the config's, with a missing major or minor meaning "any",
/// followed by [`ALWAYS_ALLOWED`] when the config has rules.
pub fn effective_device_rules(rules: &[LinuxDeviceCgroup]) -> Vec<LinuxDeviceCgroup> {
    if rules.is_empty() {
        return Vec::new();
    }
    let mut out: Vec<LinuxDeviceCgroup> = rules
        .iter()
        .map(|r| {
            let mut r = r.clone();
            r.set_major(Some(r.major().unwrap_or(-1)));
            r.set_minor(Some(r.minor().unwrap_or(-1)));
            if r.typ().is_none() {
                r.set_typ(Some(LinuxDeviceType::A));
            }
            r
        })
        .collect();
    for &(typ, major, minor, access) in ALWAYS_ALLOWED {
        let mut r = LinuxDeviceCgroup::default();
        r.set_allow(true);
        r.set_typ(Some(typ));
        r.set_major(Some(major));
        r.set_minor(Some(minor));
        r.set_access(Some(access.to_string()));
        out.push(r);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deny_all_gets_wildcards_and_the_default_devices() {
        let mut deny = LinuxDeviceCgroup::default();
        deny.set_allow(false);
        deny.set_access(Some("rwm".into()));
        let out = effective_device_rules(&[deny]);
        assert_eq!(out[0].typ(), Some(LinuxDeviceType::A));
        assert_eq!((out[0].major(), out[0].minor()), (Some(-1), Some(-1)));
        assert!(!out[0].allow());
        assert_eq!(rule_text(&out[0]), "a *:* rwm");
        assert!(out
            .iter()
            .any(|r| r.allow() && r.major() == Some(1) && r.minor() == Some(3)));
        assert!(out
            .iter()
            .any(|r| r.allow() && r.major() == Some(136) && r.minor() == Some(-1)));
        assert!(out.iter().any(|r| rule_text(r) == "c 136:* rwm"));
        assert!(effective_device_rules(&[]).is_empty());
    }
}
