//! The protocol between the migrating lcr and the receiving one, over ssh's stdin/stdout:
//! frames of `[channel: u8][length: u32, big-endian][payload]`. The control channel carries
//! typed messages (JSON), the others raw bytes: CRIU's page-server traffic, relayed between
//! the two CRIU processes, and the image files. Both sides say their protocol version first
//! and refuse another.

use std::io::{Read, Write};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// Raised whenever a message changes meaning; the two sides must agree.
pub const PROTOCOL_VERSION: u32 = 1;

/// The largest payload of one frame: data is sent in chunks below it, and a frame that
/// claims more is refused before anything is allocated for it.
pub const MAX_FRAME: u32 = 4 << 20;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Channel {
    Control = 0,
    /// CRIU's page-server connection, relayed byte for byte; each payload is a chunk of it,
    /// compressed (see [`pack_chunk`]).
    Pages = 1,
    /// The contents of the image file announced last on the control channel.
    File = 2,
}

impl Channel {
    fn from_byte(b: u8) -> Result<Self> {
        match b {
            0 => Ok(Self::Control),
            1 => Ok(Self::Pages),
            2 => Ok(Self::File),
            other => Err(Error::Protocol(format!("unknown channel {other}"))),
        }
    }
}

/// The most one chunk of page-server traffic holds before compression.
pub const MAX_CHUNK: usize = 1 << 20;

/// A chunk as it goes on the wire: a byte saying how (0 as it is, 1 zstd), then the bytes.
/// Memory pages are often zeros or text: compressed they cross a slow link in less time;
/// what does not shrink goes as it is.
pub fn pack_chunk(raw: &[u8]) -> Vec<u8> {
    match zstd::bulk::compress(raw, 1) {
        Ok(z) if z.len() < raw.len() => {
            let mut out = Vec::with_capacity(z.len() + 1);
            out.push(1);
            out.extend(z);
            out
        }
        _ => {
            let mut out = Vec::with_capacity(raw.len() + 1);
            out.push(0);
            out.extend_from_slice(raw);
            out
        }
    }
}

/// The chunk [`pack_chunk`] made; refuses one that would unpack to more than
/// [`MAX_CHUNK`] bytes (a peer cannot make this side allocate more).
pub fn unpack_chunk(payload: &[u8]) -> Result<Vec<u8>> {
    match payload.split_first() {
        Some((0, raw)) => Ok(raw.to_vec()),
        Some((1, z)) => zstd::bulk::decompress(z, MAX_CHUNK)
            .map_err(|e| Error::Protocol(format!("a page chunk that does not decompress: {e}"))),
        _ => Err(Error::Protocol("a page chunk of unknown encoding".into())),
    }
}

/// What the host a side runs on can do, as that side found it (the same probes as
/// `lcr check`): compared before the container is touched.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostFacts {
    pub lcr_version: String,
    pub criu_version: String,
    pub arch: String,
    pub kernel: String,
    pub cgroup_version: String,
    /// The kernel tracks dirty pages (soft-dirty): this host can pre-dump (pre-copy source).
    pub dirty_tracking: bool,
    /// Non-cooperative userfaultfd: this host can restore lazily (post-copy destination).
    pub lazy_pages: bool,
    /// Why this host cannot serve a lazy dump's pages (post-copy source), if it cannot.
    #[serde(default)]
    pub lazy_dump_blocker: Option<String>,
}

/// The control messages, in the order of a migration: both say hello (the receiver only
/// once its own pre-flight passed, else it refuses); the source asks for a page server and
/// dumps into it (`Pages` frames both ways until each side's `PagesEnd`); the other image
/// files follow (`File` + its data); `Restore`; the receiver restores, makes the container
/// complete and reports `Running`; the source then removes its frozen copy and says `Done`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "kebab-case")]
pub enum Message {
    /// Sent first by each side.
    Hello {
        protocol: u32,
        host: HostFacts,
    },
    /// The receiving side refuses (pre-flight or later), saying why; nothing is left there.
    Refused {
        reason: String,
    },
    /// Start a page server for the memory that follows on the Pages channel: about `memory`
    /// bytes (the container's memory use here), which the receiver must have room for.
    /// `lazy` (post-copy): the pages stay on the source until the restored container asks;
    /// the receiver keeps its end of the connection for its lazy-pages daemon.
    /// Pre-copy: `round` N (1, 2, …) of pre-dumped pages goes into the receiver's `pre-N`
    /// beside the final images, and `parent` names the round the pages not sent again are
    /// in (for the final dump, the last round).
    StartPages {
        memory: u64,
        #[serde(default)]
        lazy: bool,
        #[serde(default)]
        round: Option<u32>,
        #[serde(default)]
        parent: Option<u32>,
    },
    PagesReady,
    /// `--rootfs copy`: the container's config (JSON) and its rootfs follow, about `size`
    /// bytes of files, as a zstd-compressed tar on the File channel up to `RootfsEnd`.
    RootfsStart {
        config: String,
        size: u64,
    },
    RootfsEnd,
    /// The receiver made the bundle from them.
    RootfsReady,
    /// This side's half of the page-server connection closed.
    PagesEnd,
    /// An image file follows on the File channel, `size` bytes.
    File {
        name: String,
        size: u64,
    },
    /// Every image is there: restore.
    Restore,
    /// The container runs on the receiving side, complete (its init is `pid` there).
    Running {
        pid: i32,
    },
    /// Post-copy: the receiver's lazy-pages daemon took every page; the container there is
    /// complete (and kept, whatever happens to the connection).
    PagesArrived,
    /// The source removed its copy: the migration is over.
    Done,
    /// Something failed on the sending side; the other undoes what it made.
    Abort {
        reason: String,
    },
}

/// One frame read.
#[derive(Debug, PartialEq, Eq)]
pub enum Frame {
    Control(Message),
    Data(Channel, Vec<u8>),
}

/// Writes frames; shared by the threads that relay data and the one that sends messages.
pub struct Writer<W: Write> {
    out: Mutex<W>,
}

impl<W: Write> Writer<W> {
    pub fn new(out: W) -> Self {
        Self {
            out: Mutex::new(out),
        }
    }

    /// What was written to (tests read it back).
    pub fn into_inner(self) -> W {
        self.out.into_inner().unwrap_or_else(|e| e.into_inner())
    }

    pub fn send(&self, m: &Message) -> Result<()> {
        let json =
            serde_json::to_vec(m).map_err(|e| Error::Protocol(format!("encode {m:?}: {e}")))?;
        self.frame(Channel::Control, &json)
    }

    /// Data on `ch`, cut into frames of at most [`MAX_FRAME`] bytes.
    pub fn data(&self, ch: Channel, mut bytes: &[u8]) -> Result<()> {
        while !bytes.is_empty() {
            let n = bytes.len().min(MAX_FRAME as usize);
            self.frame(ch, &bytes[..n])?;
            bytes = &bytes[n..];
        }
        Ok(())
    }

    fn frame(&self, ch: Channel, payload: &[u8]) -> Result<()> {
        let mut out = self
            .out
            .lock()
            .map_err(|_| Error::Protocol("a writer thread panicked".into()))?;
        let io = |cause| Error::Io {
            context: "send to the other lcr".into(),
            cause,
        };
        out.write_all(&[ch as u8]).map_err(io)?;
        out.write_all(&(payload.len() as u32).to_be_bytes())
            .map_err(io)?;
        out.write_all(payload).map_err(io)?;
        out.flush().map_err(io)
    }
}

/// Reads frames.
pub struct Reader<R: Read> {
    input: R,
}

impl<R: Read> Reader<R> {
    pub fn new(input: R) -> Self {
        Self { input }
    }

    /// The next frame; `None` when the other side closed the connection between frames (a
    /// close inside one is an error).
    pub fn frame(&mut self) -> Result<Option<Frame>> {
        let mut head = [0u8; 5];
        match read_full(&mut self.input, &mut head)? {
            0 => return Ok(None),
            5 => {}
            _ => {
                return Err(Error::Protocol(
                    "the connection closed inside a frame".into(),
                ))
            }
        }
        let ch = Channel::from_byte(head[0])?;
        let len = u32::from_be_bytes([head[1], head[2], head[3], head[4]]);
        if len > MAX_FRAME {
            return Err(Error::Protocol(format!(
                "a frame of {len} bytes, more than the {MAX_FRAME} allowed"
            )));
        }
        let mut payload = vec![0u8; len as usize];
        if read_full(&mut self.input, &mut payload)? != payload.len() {
            return Err(Error::Protocol(
                "the connection closed inside a frame".into(),
            ));
        }
        Ok(Some(match ch {
            Channel::Control => {
                Frame::Control(serde_json::from_slice(&payload).map_err(|e| {
                    Error::Protocol(format!("a control message lcr cannot read: {e}"))
                })?)
            }
            data => Frame::Data(data, payload),
        }))
    }
}

/// The other side's facts from its hello; refuses another protocol version, or anything
/// but a hello.
pub fn accept_hello(m: Message) -> Result<HostFacts> {
    match m {
        Message::Hello { protocol, host } if protocol == PROTOCOL_VERSION => Ok(host),
        Message::Hello { protocol, host } => Err(Error::Protocol(format!(
            "the other side (lcr {}) speaks protocol {protocol}, this lcr {PROTOCOL_VERSION}: install the same lcr on both hosts",
            host.lcr_version
        ))),
        other => Err(Error::Protocol(format!("expected a hello, got {other:?}"))),
    }
}

/// Reads until `buf` is full or the input ends; how much was read.
fn read_full(r: &mut impl Read, buf: &mut [u8]) -> Result<usize> {
    let mut got = 0;
    while got < buf.len() {
        match r.read(&mut buf[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(cause) => {
                return Err(Error::Io {
                    context: "read from the other lcr".into(),
                    cause,
                })
            }
        }
    }
    Ok(got)
}

#[cfg(test)]
impl HostFacts {
    /// A host of this machine's kind, for tests to vary.
    pub(crate) fn example() -> Self {
        HostFacts {
            lcr_version: "0.1.0".into(),
            criu_version: "4.2.1".into(),
            arch: "x86_64".into(),
            kernel: "6.18".into(),
            cgroup_version: "v1".into(),
            dirty_tracking: false,
            lazy_pages: true,
            lazy_dump_blocker: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts() -> HostFacts {
        HostFacts::example()
    }

    #[test]
    fn messages_and_data_round_trip_in_order() {
        let w = Writer::new(Vec::new());
        w.send(&Message::Hello {
            protocol: PROTOCOL_VERSION,
            host: facts(),
        })
        .unwrap();
        let big = vec![7u8; MAX_FRAME as usize + 10];
        w.data(Channel::Pages, &big).unwrap();
        w.send(&Message::File {
            name: "core-1.img".into(),
            size: 3,
        })
        .unwrap();
        w.data(Channel::File, b"abc").unwrap();
        let bytes = w.out.into_inner().unwrap();
        let mut r = Reader::new(&bytes[..]);
        let Some(Frame::Control(hello)) = r.frame().unwrap() else {
            panic!("no hello")
        };
        assert_eq!(accept_hello(hello).unwrap(), facts());
        let mut pages = Vec::new();
        for _ in 0..2 {
            match r.frame().unwrap() {
                Some(Frame::Data(Channel::Pages, d)) => pages.extend(d),
                other => panic!("{other:?}"),
            }
        }
        assert_eq!(pages, big);
        assert!(matches!(
            r.frame().unwrap(),
            Some(Frame::Control(Message::File { size: 3, .. }))
        ));
        assert_eq!(
            r.frame().unwrap(),
            Some(Frame::Data(Channel::File, b"abc".to_vec()))
        );
        assert_eq!(r.frame().unwrap(), None);
    }

    #[test]
    fn chunks_shrink_when_they_can_and_bombs_are_refused() {
        let zeros = vec![0u8; MAX_CHUNK];
        let packed = pack_chunk(&zeros);
        assert!(packed.len() < 1000, "{}", packed.len());
        assert_eq!(unpack_chunk(&packed).unwrap(), zeros);
        let noise: Vec<u8> = (0..4096u32)
            .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
            .collect();
        assert_eq!(unpack_chunk(&pack_chunk(&noise)).unwrap(), noise);
        let bomb = [
            vec![1u8],
            zstd::bulk::compress(&vec![0u8; MAX_CHUNK + 1], 1).unwrap(),
        ]
        .concat();
        assert!(unpack_chunk(&bomb).is_err());
        assert!(unpack_chunk(&[7, 1, 2]).is_err());
    }

    #[test]
    fn damage_and_other_versions_are_refused() {
        // A frame cut short, an unknown channel, a frame larger than allowed.
        assert!(Reader::new(&[0u8, 0, 0, 0, 9, b'{'][..]).frame().is_err());
        assert!(Reader::new(&[9u8, 0, 0, 0, 0][..]).frame().is_err());
        let huge = [[1u8].as_slice(), &(MAX_FRAME + 1).to_be_bytes()].concat();
        assert!(Reader::new(&huge[..]).frame().is_err());
        // Garbage on the control channel.
        assert!(Reader::new(&[0u8, 0, 0, 0, 2, b'h', b'i'][..])
            .frame()
            .is_err());
        let e = accept_hello(Message::Hello {
            protocol: PROTOCOL_VERSION + 1,
            host: facts(),
        })
        .unwrap_err();
        assert!(e.to_string().contains("protocol 2"), "{e}");
        assert!(accept_hello(Message::Done).is_err());
    }
}
