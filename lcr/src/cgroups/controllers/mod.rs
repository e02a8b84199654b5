//! One file per controller behind one trait: what each writes for a config's resources on
//! v1 and on v2, and what it adds to the statistics.

mod blkio;
mod cpu;
mod cpuset;
mod devices;
mod hugetlb;
mod memory;
mod network;
mod pids;
mod unified;

use oci_spec::runtime::LinuxResources;

use super::hierarchy::Dir;
use super::stats::Stats;
use super::Version;
use crate::Result;

pub(super) trait Controller: Sync {
    /// Its v1 hierarchy; on v2 the controller enabled in the parents' subtree_control (None
    /// for what needs none).
    fn name(&self) -> &'static str;

    /// Whether `r` asks anything of it (on this cgroup version).
    fn wanted(&self, r: &LinuxResources, version: Version) -> bool;

    fn apply(&self, dir: &Dir, r: &LinuxResources) -> Result<()>;

    fn stats(&self, _dir: &Dir, _st: &mut Stats) {}
}

/// In the order they are applied (cpuset before anything may run; memory before the devices
/// shut off what a write needs is not a concern: all are files of the cgroup).
pub(super) const ALL: &[&dyn Controller] = &[
    &cpuset::Cpuset,
    &memory::Memory,
    &cpu::Cpu,
    &cpu::Cpuacct,
    &pids::Pids,
    &blkio::Blkio,
    &hugetlb::Hugetlb,
    &devices::Devices,
    &network::NetCls,
    &network::NetPrio,
    &unified::Unified,
];

pub(super) use cpuset::inherit_parent as cpuset_inherit;

/// The v2 controllers lcr enables for its cgroups (those the host has).
pub(super) const V2_CONTROLLERS: &[&str] = &["cpuset", "cpu", "io", "memory", "pids", "hugetlb"];
