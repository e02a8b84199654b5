use oci_spec::runtime::{ProcessBuilder, Spec};

/// The config `lcr spec` writes: oci-spec's defaults (the same as `runc spec`: busybox-friendly
/// mounts, masked paths, pid/net/ipc/uts/mount namespaces and cgroup on v2 hosts, a small capability set) with a
/// terminal, as runc does, unless `terminal` is false.
pub fn default_spec(terminal: bool) -> Spec {
    let mut spec = Spec::default();
    let process = spec.process().clone().unwrap_or_else(|| {
        ProcessBuilder::default()
            .build()
            .expect("an empty process builds")
    });
    let mut process = process;
    process.set_terminal(Some(terminal));
    process.set_args(Some(vec!["sh".to_string()]));
    spec.set_process(Some(process));
    spec.set_hostname(Some("lcr".to_string()));
    // Deny every device but the defaults, as `runc spec` does.
    if let Some(mut linux) = spec.linux().clone() {
        let mut res = linux.resources().clone().unwrap_or_default();
        let mut deny = oci_spec::runtime::LinuxDeviceCgroup::default();
        deny.set_allow(false);
        deny.set_access(Some("rwm".into()));
        res.set_devices(Some(vec![deny]));
        linux.set_resources(Some(res));
        // A cgroup namespace only where the host is cgroup v2 alone, as `runc spec`: under v1
        // the container's view of /proc/self/cgroup would not match its mounted hierarchies.
        if crate::cgroups::Version::detect() != crate::cgroups::Version::V2 {
            if let Some(ns) = linux.namespaces().clone() {
                linux.set_namespaces(Some(
                    ns.into_iter()
                        .filter(|n| n.typ() != oci_spec::runtime::LinuxNamespaceType::Cgroup)
                        .collect(),
                ));
            }
        }
        spec.set_linux(Some(linux));
    }
    spec
}
