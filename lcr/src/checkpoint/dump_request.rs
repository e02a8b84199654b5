//! The CRIU dump request built from a container: its rootfs as root, bind mounts and devices
//! as external mounts keyed by their destination, stdio declared external, the freezer
//! cgroup, namespaces joined by path as external.

use oci_spec::runtime::LinuxNamespaceType;

use criurpc::Options;

use super::dump::Plan;
use super::CheckpointOpts;
use crate::cgroups::Cgroup;
use crate::container::Container;
use crate::error::Context;
use crate::{Error, Result};

/// The key a network namespace joined by path is saved under (as runc names it).
pub(super) const EXT_NET_KEY: &str = "extRootNetNS";

/// The dump request, and the namespaces it declares external (kind, key) for the record.
/// Whether CRIU leaves the tree running is the caller's to set.
pub(super) fn dump_options(
    container: &Container,
    cgroup: &Cgroup,
    plan: &Plan,
    opts: &mut CheckpointOpts,
) -> Result<(Options, Vec<(String, String)>)> {
    let mut request = Options::new()
        .images_dir(&plan.image_dir)
        .work_dir(&plan.work_dir)?
        .pid(container.state.pid)
        .root(&container.state.rootfs)
        .freeze_cgroup(cgroup.dir(Some("freezer")).to_string_lossy().into_owned())
        .tcp_skip_in_flight(opts.tcp_skip_in_flight)
        .link_remap(opts.link_remap)
        .orphan_pts_master(crate::spec::has_terminal(&container.spec))
        .notify_scripts(true)
        .log_level(4)
        .log_file(if opts.pre_dump {
            "pre-dump.log"
        } else {
            "dump.log"
        });
    for m in &plan.mounts {
        let d = m.destination.to_string_lossy().into_owned();
        request = request.ext_mnt(d.clone(), d);
    }
    for f in plan.stdio.iter().filter(|f| f.external) {
        request = request.external(f.key.clone());
    }
    let (mut request, external_namespaces) = external_namespaces(container, request)?;
    request = opts.settings.apply(request);
    if !super::network_lock::needed(container.state.pid, opts) {
        request = request.network_lock_skip();
    }
    if let Some(file) = super::settings::criu_config_file(&container.spec)? {
        request = request.config_file(file);
    }
    if let Some((addr, port)) = &opts.page_server {
        request = request.page_server(addr.clone(), *port);
    }
    if let Some(fd) = opts.page_server_fd.take() {
        request = if opts.settings.lazy_pages {
            request.lazy_page_server_fd(fd)
        } else {
            request.page_server_fd(fd)
        };
    }
    if let Some(fd) = opts.status_fd.take() {
        request = request.status_fd(fd);
    }
    if opts.pre_dump || opts.parent_path.is_some() {
        request = request.track_mem(true);
    }
    if let Some(p) = &opts.parent_path {
        request = request.parent_img(p.to_string_lossy().into_owned());
    }
    Ok((request, external_namespaces))
}

/// Namespaces the container joined by path are not its own: declared external, so CRIU
/// neither saves nor recreates them (only a network namespace can be).
fn external_namespaces(
    container: &Container,
    mut request: Options,
) -> Result<(Options, Vec<(String, String)>)> {
    let mut declared = Vec::new();
    for ns in crate::spec::namespaces(&container.spec) {
        let Some(path) = ns.path() else { continue };
        if ns.typ() != LinuxNamespaceType::Network {
            return Err(Error::Value {
                what: "linux.namespaces".into(),
                value: format!("{:?} joined by path", ns.typ()),
                reason: "only a network namespace joined by path can be checkpointed".into(),
            });
        }
        let ino = std::os::unix::fs::MetadataExt::ino(
            &std::fs::metadata(path).ctx(|| format!("stat {}", path.display()))?,
        );
        request = request.external(format!("net[{ino}]:{EXT_NET_KEY}"));
        declared.push(("net".to_string(), EXT_NET_KEY.to_string()));
    }
    Ok((request, declared))
}
