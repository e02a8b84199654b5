//! The index of bind-mount contents saved with `--with-volumes`: `volumes/index.json` says
//! which tar under `volumes/` holds which mount destination.

use std::path::Path;

use serde::{Deserialize, Serialize};

use super::layout::VOLUMES_DIR;

pub const INDEX: &str = "index.json";

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Index {
    pub volumes: Vec<Volume>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Volume {
    /// Mount point in the container.
    pub destination: String,
    /// Host source at checkpoint time.
    pub source: String,
    /// The tar's file name under `volumes/`.
    pub file: String,
    /// Whether the source was a single file rather than a directory.
    pub is_file: bool,
}

impl Index {
    pub fn read(dir: &Path) -> Option<Self> {
        let text = std::fs::read(dir.join(VOLUMES_DIR).join(INDEX)).ok()?;
        serde_json::from_slice(&text).ok()
    }

    pub fn destinations(&self) -> Vec<String> {
        self.volumes.iter().map(|v| v.destination.clone()).collect()
    }
}
