//! Shipping the image files (all but the memory, which went to the page server).

use std::path::Path;

use crate::link::Sender;
use crate::wire::{Channel, Message};
use crate::{Error, Result};

/// Every plain file of the image directory `dir`, in name order.
pub(super) fn send_images(dir: &Path, link: &Sender) -> Result<()> {
    let mut names: Vec<_> = std::fs::read_dir(dir)
        .map_err(|cause| Error::Io {
            context: format!("read {}", dir.display()),
            cause,
        })?
        .flatten()
        .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    for name in names {
        let data = std::fs::read(dir.join(&name)).map_err(|cause| Error::Io {
            context: format!("read {}", dir.join(&name).display()),
            cause,
        })?;
        link.send(&Message::File {
            name,
            size: data.len() as u64,
        })?;
        link.send_data(Channel::File, &data)?;
    }
    Ok(())
}
