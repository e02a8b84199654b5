//! The framing of a CRIU image file (criu/include/magic.h, criu/protobuf.c): the magics, then
//! messages each preceded by its length (u32, little-endian).

use protobuf::Message;

/// Most images start with this, then their own magic.
pub const IMG_COMMON_MAGIC: u32 = 0x5456_4319;
/// Images of CRIU's own services (stats) start with this, then their own magic.
pub const IMG_SERVICE_MAGIC: u32 = 0x5510_5940;
/// inventory.img has its own magic alone.
pub const INVENTORY_MAGIC: u32 = 0x5831_3116;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    /// Not a CRIU image: the first word is no magic CRIU writes.
    BadMagic(u32),
    /// The file ends inside a header or a message.
    Truncated { at: usize },
    /// A message that does not decode as its type.
    Decode { index: usize, reason: String },
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Error::BadMagic(m) => write!(f, "not a CRIU image (magic {m:#010x})"),
            Error::Truncated { at } => write!(f, "cut off at byte {at}"),
            Error::Decode { index, reason } => write!(f, "message {index}: {reason}"),
        }
    }
}

impl std::error::Error for Error {}

/// The messages of an image, undecoded.
pub fn messages(img: &[u8]) -> Result<Vec<&[u8]>, Error> {
    let word = |at: usize| -> Result<u32, Error> {
        img.get(at..at + 4)
            .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .ok_or(Error::Truncated { at })
    };
    let mut at = match word(0)? {
        IMG_COMMON_MAGIC | IMG_SERVICE_MAGIC => 8,
        INVENTORY_MAGIC => 4,
        other => return Err(Error::BadMagic(other)),
    };
    if at > img.len() {
        return Err(Error::Truncated { at: img.len() });
    }
    let mut out = Vec::new();
    while at < img.len() {
        let size = word(at)? as usize;
        let body = img
            .get(at + 4..at + 4 + size)
            .ok_or(Error::Truncated { at })?;
        out.push(body);
        at += 4 + size;
    }
    Ok(out)
}

/// The messages of an image, each decoded as `M`. Fields proto2 calls required may be
/// absent (read as their defaults): what lcr reads of an image must not fail for what it
/// does not read.
pub fn decode<M: Message>(img: &[u8]) -> Result<Vec<M>, Error> {
    messages(img)?
        .into_iter()
        .enumerate()
        .map(|(index, bytes)| decode_message(index, bytes))
        .collect()
}

/// The first message of an image decoded as `M`: images such as inventory and stats hold
/// one, and some (pagemap) a head of one type followed by entries of another.
pub fn decode_one<M: Message>(img: &[u8]) -> Result<M, Error> {
    let first = messages(img)?
        .into_iter()
        .next()
        .ok_or(Error::Truncated { at: img.len() })?;
    decode_message(0, first)
}

fn decode_message<M: Message>(index: usize, bytes: &[u8]) -> Result<M, Error> {
    let mut m = M::new();
    m.merge_from_bytes(bytes).map_err(|e| Error::Decode {
        index,
        reason: e.to_string(),
    })?;
    Ok(m)
}

/// An image of `msgs` after the magic words `magics` (for tests and tools).
pub fn encode<M: Message>(magics: &[u32], msgs: &[M]) -> Vec<u8> {
    let mut img: Vec<u8> = magics.iter().flat_map(|m| m.to_le_bytes()).collect();
    for m in msgs {
        // Written as they are: a test may leave out what proto2 calls required, as a
        // damaged image would.
        m.compute_size();
        let mut bytes = Vec::new();
        let mut os = protobuf::CodedOutputStream::vec(&mut bytes);
        let written = m
            .write_to_with_cached_sizes(&mut os)
            .and_then(|()| os.flush());
        drop(os);
        if written.is_err() {
            bytes.clear();
        }
        img.extend((bytes.len() as u32).to_le_bytes());
        img.extend(bytes);
    }
    img
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pstree::Pstree_entry as PstreeEntry;

    #[test]
    fn round_trips_and_refuses_damage() {
        let mut e = PstreeEntry::new();
        e.set_pid(1);
        e.set_ppid(0);
        e.threads = vec![1, 2];
        let img = encode(
            &[IMG_COMMON_MAGIC, 0x5027_3030],
            &[e.clone(), PstreeEntry::new()],
        );
        let back: Vec<PstreeEntry> = decode(&img).unwrap();
        assert_eq!(back.len(), 2);
        assert_eq!(back[0], e);
        assert!(matches!(
            messages(&img[..img.len() - 1]),
            Err(Error::Truncated { .. })
        ));
        assert_eq!(
            messages(&[0, 1, 2, 3, 4, 5, 6, 7]),
            Err(Error::BadMagic(0x0302_0100))
        );
    }
}
