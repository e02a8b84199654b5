//! Reading CRIU's protobuf images without generated code: an image is a magic header, then
//! length-prefixed messages; a message is walked field by field (numbers from CRIU's
//! images/*.proto). Enough for the few images lcr reads (stats, pstree, core, fdinfo, files,
//! pagemap).

use protobuf::CodedInputStream;

/// Every image starts with this (CRIU's "common" images) or the service magic (stats).
const IMG_COMMON_MAGIC: u32 = 0x5456_4319;
const IMG_SERVICE_MAGIC: u32 = 0x5510_5940;
/// inventory.img has its own magic alone (criu/include/magic.h: INVENTORY_MAGIC).
const INVENTORY_MAGIC: u32 = 0x5831_3116;

/// The messages of an image, or `None` when it is not one (bad magic or a cut-off entry).
pub fn messages(img: &[u8]) -> Option<Vec<&[u8]>> {
    let word = |at: usize| -> Option<u32> {
        Some(u32::from_le_bytes(img.get(at..at + 4)?.try_into().ok()?))
    };
    let mut at = match word(0)? {
        IMG_COMMON_MAGIC | IMG_SERVICE_MAGIC => 8,
        INVENTORY_MAGIC => 4,
        _ => return None,
    };
    let mut out = Vec::new();
    while at < img.len() {
        let size = word(at)? as usize;
        out.push(img.get(at + 4..at + 4 + size)?);
        at += 4 + size;
    }
    Some(out)
}

#[derive(Debug, Clone)]
pub enum Field {
    Varint(u64),
    Bytes(Vec<u8>),
}

/// The varint and length-delimited fields of a message, in order (fixed-size ones skipped).
#[derive(Clone)]
pub struct Fields(Vec<(u32, Field)>);

impl Fields {
    pub fn parse(msg: &[u8]) -> Option<Self> {
        let mut is = CodedInputStream::from_bytes(msg);
        let mut out = Vec::new();
        while !is.eof().ok()? {
            let tag = is.read_raw_varint32().ok()?;
            let num = tag >> 3;
            match tag & 7 {
                0 => out.push((num, Field::Varint(is.read_raw_varint64().ok()?))),
                2 => out.push((num, Field::Bytes(is.read_bytes().ok()?))),
                1 => {
                    is.read_fixed64().ok()?;
                }
                5 => {
                    is.read_fixed32().ok()?;
                }
                _ => return None,
            }
        }
        Some(Self(out))
    }

    /// A varint field (0 when absent, as proto2 defaults are).
    pub fn u64(&self, n: u32) -> u64 {
        self.varints(n).next().unwrap_or(0)
    }

    /// Every value of a repeated varint field.
    pub fn varints(&self, n: u32) -> impl Iterator<Item = u64> + '_ {
        self.0.iter().filter_map(move |(k, f)| match f {
            Field::Varint(v) if *k == n => Some(*v),
            _ => None,
        })
    }

    pub fn bytes(&self, n: u32) -> Option<&[u8]> {
        self.0.iter().find_map(|(k, f)| match f {
            Field::Bytes(b) if *k == n => Some(b.as_slice()),
            _ => None,
        })
    }

    /// Every value of a repeated length-delimited field.
    pub fn all_bytes(&self, n: u32) -> impl Iterator<Item = &[u8]> + '_ {
        self.0.iter().filter_map(move |(k, f)| match f {
            Field::Bytes(b) if *k == n => Some(b.as_slice()),
            _ => None,
        })
    }

    pub fn string(&self, n: u32) -> Option<String> {
        self.bytes(n)
            .map(|b| String::from_utf8_lossy(b).into_owned())
    }

    /// A sub-message field.
    pub fn message(&self, n: u32) -> Option<Fields> {
        Fields::parse(self.bytes(n)?)
    }
}

#[cfg(test)]
pub mod build {
    //! Writing images in tests.

    pub fn varint(mut v: u64, out: &mut Vec<u8>) {
        while v >= 0x80 {
            out.push((v as u8) | 0x80);
            v >>= 7;
        }
        out.push(v as u8);
    }

    pub fn field_varint(n: u32, v: u64, out: &mut Vec<u8>) {
        varint(u64::from(n) << 3, out);
        varint(v, out);
    }

    pub fn field_bytes(n: u32, b: &[u8], out: &mut Vec<u8>) {
        varint((u64::from(n) << 3) | 2, out);
        varint(b.len() as u64, out);
        out.extend_from_slice(b);
    }

    /// An image with the common magic, a type magic and these messages.
    pub fn image(msgs: &[Vec<u8>]) -> Vec<u8> {
        let mut img = 0x5456_4319u32.to_le_bytes().to_vec();
        img.extend(0x5027_3030u32.to_le_bytes());
        for m in msgs {
            img.extend((m.len() as u32).to_le_bytes());
            img.extend(m);
        }
        img
    }

    /// inventory.img: its own magic only, then the message.
    pub fn inventory(msg: &[u8]) -> Vec<u8> {
        let mut img = 0x5831_3116u32.to_le_bytes().to_vec();
        img.extend((msg.len() as u32).to_le_bytes());
        img.extend(msg);
        img
    }
}

#[cfg(test)]
mod tests {
    use super::build::*;
    use super::*;

    #[test]
    fn walks_messages_and_fields() {
        let mut a = Vec::new();
        field_varint(1, 300, &mut a);
        field_varint(5, 7, &mut a);
        field_varint(5, 8, &mut a);
        field_bytes(6, b"sh", &mut a);
        let img = image(&[a, vec![]]);
        let msgs = messages(&img).unwrap();
        assert_eq!(msgs.len(), 2);
        let f = Fields::parse(msgs[0]).unwrap();
        assert_eq!(f.u64(1), 300);
        assert_eq!(f.varints(5).collect::<Vec<_>>(), vec![7, 8]);
        assert_eq!(f.string(6).as_deref(), Some("sh"));
        assert_eq!(f.u64(9), 0);
        assert!(messages(&img[..img.len() - 1]).is_none());
        assert!(messages(&[0, 1, 2, 3, 4, 5, 6, 7, 9, 0, 0, 0]).is_none());
    }
}
