//! The OCI runtime features document (runtime-spec `features.md`): what of a config lcr
//! implements, for callers that choose options by it (containerd, CRI-O). `lcr features`.

use std::collections::HashMap;

use oci_spec::runtime::{
    ApparmorBuilder, Arch, CgroupBuilder, Features, FeaturesBuilder, IntelRdtBuilder, LinuxFeature,
    LinuxFeatureBuilder, LinuxSeccompAction, Seccomp, SeccompBuilder, SelinuxBuilder,
};

use crate::hooks::Kind;
use crate::{Error, Result};

/// The oldest config version lcr runs.
pub const OCI_VERSION_MIN: &str = "1.0.0";

/// The seccomp actions lcr loads (no `SCMP_ACT_NOTIFY`: lcr has no seccomp agent).
pub const SECCOMP_ACTIONS: &[LinuxSeccompAction] = &[
    LinuxSeccompAction::ScmpActAllow,
    LinuxSeccompAction::ScmpActErrno,
    LinuxSeccompAction::ScmpActKill,
    LinuxSeccompAction::ScmpActKillProcess,
    LinuxSeccompAction::ScmpActKillThread,
    LinuxSeccompAction::ScmpActLog,
    LinuxSeccompAction::ScmpActTrace,
    LinuxSeccompAction::ScmpActTrap,
];

const SECCOMP_OPERATORS: &[&str] = &[
    "SCMP_CMP_EQ",
    "SCMP_CMP_GE",
    "SCMP_CMP_GT",
    "SCMP_CMP_LE",
    "SCMP_CMP_LT",
    "SCMP_CMP_MASKED_EQ",
    "SCMP_CMP_NE",
];

/// Architectures a profile may name, kept when this libseccomp knows them.
const SECCOMP_ARCHS: &[&str] = &[
    "SCMP_ARCH_AARCH64",
    "SCMP_ARCH_ARM",
    "SCMP_ARCH_MIPS",
    "SCMP_ARCH_MIPS64",
    "SCMP_ARCH_MIPS64N32",
    "SCMP_ARCH_MIPSEL",
    "SCMP_ARCH_MIPSEL64",
    "SCMP_ARCH_MIPSEL64N32",
    "SCMP_ARCH_PPC",
    "SCMP_ARCH_PPC64",
    "SCMP_ARCH_PPC64LE",
    "SCMP_ARCH_RISCV64",
    "SCMP_ARCH_S390",
    "SCMP_ARCH_S390X",
    "SCMP_ARCH_X32",
    "SCMP_ARCH_X86",
    "SCMP_ARCH_X86_64",
];

const HOOKS: &[Kind] = &[
    Kind::Prestart,
    Kind::CreateRuntime,
    Kind::CreateContainer,
    Kind::StartContainer,
    Kind::Poststart,
    Kind::Poststop,
];

fn built(what: &str, cause: oci_spec::OciSpecError) -> Error {
    Error::Spec {
        what: format!("features: {what}"),
        cause,
    }
}

/// What this build of lcr implements.
pub fn runtime_features() -> Result<Features> {
    let mut options: Vec<String> = crate::rootfs::KNOWN_OPTIONS
        .iter()
        .map(|s| s.to_string())
        .collect();
    options.sort();
    FeaturesBuilder::default()
        .oci_version_min(OCI_VERSION_MIN)
        .oci_version_max(oci_spec::runtime::Spec::default().version().clone())
        .hooks(
            HOOKS
                .iter()
                .map(|k| k.name().to_string())
                .collect::<Vec<_>>(),
        )
        .mount_options(options)
        .linux(linux_features()?)
        .annotations(annotations())
        .build()
        .map_err(|e| built("document", e))
}

/// Namespaces, capabilities, cgroups, seccomp; no AppArmor, SELinux or Intel RDT.
fn linux_features() -> Result<LinuxFeature> {
    let cgroup = CgroupBuilder::default()
        .v1(true)
        .v2(true)
        .systemd(false)
        .systemd_user(false)
        .rdma(false)
        .build()
        .map_err(|e| built("cgroup", e))?;
    let mut caps: Vec<caps::Capability> = caps::all().into_iter().collect();
    caps.sort_by_key(|c| c.index());
    LinuxFeatureBuilder::default()
        .namespaces(crate::process::namespaces::ALL.to_vec())
        .capabilities(caps.iter().map(|c| c.to_string()).collect::<Vec<_>>())
        .cgroup(cgroup)
        .seccomp(seccomp_features()?)
        .apparmor(
            ApparmorBuilder::default()
                .enabled(false)
                .build()
                .map_err(|e| built("apparmor", e))?,
        )
        .selinux(
            SelinuxBuilder::default()
                .enabled(false)
                .build()
                .map_err(|e| built("selinux", e))?,
        )
        .intel_rdt(
            IntelRdtBuilder::default()
                .enabled(false)
                .build()
                .map_err(|e| built("intelRdt", e))?,
        )
        .build()
        .map_err(|e| built("linux", e))
}

/// The actions and operators lcr loads, and the architectures this libseccomp knows.
fn seccomp_features() -> Result<Seccomp> {
    let archs: Vec<Arch> = SECCOMP_ARCHS
        .iter()
        .filter(|a| a.parse::<libseccomp::ScmpArch>().is_ok())
        .filter_map(|a| serde_json::from_value(serde_json::Value::from(*a)).ok())
        .collect();
    SeccompBuilder::default()
        .enabled(true)
        .actions(SECCOMP_ACTIONS.to_vec())
        .operators(
            SECCOMP_OPERATORS
                .iter()
                .map(|s| s.to_string())
                .collect::<Vec<_>>(),
        )
        .archs(archs)
        .known_flags(Vec::<String>::new())
        .supported_flags(Vec::<String>::new())
        .build()
        .map_err(|e| built("seccomp", e))
}

fn annotations() -> HashMap<String, String> {
    let mut a = HashMap::new();
    a.insert(
        "io.github.lcr.version".to_string(),
        env!("CARGO_PKG_VERSION").to_string(),
    );
    // Callers that learned runc's keys read checkpoint support from this one.
    a.insert(
        "org.opencontainers.runc.checkpoint.enabled".to_string(),
        "true".to_string(),
    );
    if let Ok(v) = libseccomp::ScmpVersion::current() {
        a.insert(
            "io.github.seccomp.libseccomp.version".to_string(),
            format!("{}.{}.{}", v.major, v.minor, v.micro),
        );
    }
    a
}
