use oci_spec::runtime::{LinuxDeviceCgroup, LinuxDeviceType};

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

/// The device rules to write: the config's, with a missing major or minor meaning "any"
/// (cgroups-rs would write 0), followed by [`ALWAYS_ALLOWED`] when the config has rules.
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
        assert!(out
            .iter()
            .any(|r| r.allow() && r.major() == Some(1) && r.minor() == Some(3)));
        assert!(out
            .iter()
            .any(|r| r.allow() && r.major() == Some(136) && r.minor() == Some(-1)));
        assert!(effective_device_rules(&[]).is_empty());
    }
}
