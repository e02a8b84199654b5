//! OCI bundles: config.json parsed with `oci-spec`, then checked for what lcr needs.

mod defaults;
mod features;
mod validate;

use std::path::{Path, PathBuf};

pub use defaults::default_spec;
pub use features::runtime_features;
use oci_spec::runtime::{LinuxNamespace, LinuxNamespaceType, Spec};

use crate::{Error, Result};

/// A bundle directory with its parsed and checked config.
#[derive(Debug, Clone)]
pub struct Bundle {
    pub dir: PathBuf,
    pub spec: Spec,
    /// The root filesystem, absolute.
    pub rootfs: PathBuf,
}

impl Bundle {
    /// Loads `dir/config.json`. Errors name the bundle, the file and the offending field.
    pub fn load(dir: &Path) -> Result<Self> {
        let dir = std::path::absolute(dir).map_err(|e| Error::Bundle {
            path: dir.to_path_buf(),
            reason: e.to_string(),
        })?;
        if !dir.is_dir() {
            return Err(Error::Bundle {
                path: dir,
                reason: "no such directory".into(),
            });
        }
        let file = dir.join("config.json");
        let spec = parse_config(&file)?;
        let rootfs = validate::check(&file, &dir, &spec)?;
        Ok(Self { dir, spec, rootfs })
    }
}

/// The config's namespaces (none without a `linux` section).
pub fn namespaces(spec: &Spec) -> impl Iterator<Item = &LinuxNamespace> {
    spec.linux()
        .as_ref()
        .and_then(|l| l.namespaces().as_ref())
        .into_iter()
        .flatten()
}

/// The network namespace the config joins by path, if it joins one.
pub fn joined_netns(spec: &Spec) -> Option<&Path> {
    namespaces(spec)
        .find(|n| n.typ() == LinuxNamespaceType::Network)
        .and_then(|n| n.path().as_deref())
}

/// Whether the config's process has a terminal.
pub fn has_terminal(spec: &Spec) -> bool {
    spec.process()
        .as_ref()
        .and_then(|p| p.terminal())
        .unwrap_or(false)
}

/// Parses a config.json; serde's path to the failing field is kept in the error.
pub fn parse_config(file: &Path) -> Result<Spec> {
    let text = std::fs::read_to_string(file).map_err(|e| Error::Config {
        file: file.to_path_buf(),
        field: "(file)".into(),
        reason: e.to_string(),
    })?;
    parse_config_text(file, &text)
}

pub(crate) fn parse_config_text(file: &Path, text: &str) -> Result<Spec> {
    let de = &mut serde_json::Deserializer::from_str(text);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let field = e.path().to_string();
        Error::Config {
            file: file.to_path_buf(),
            field: if field == "." {
                "(document)".into()
            } else {
                field
            },
            reason: e.inner().to_string(),
        }
    })
}
