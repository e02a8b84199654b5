//! One connection to the other lcr, used by several threads: the control messages in order,
//! the page-server bytes relayed both ways between the local CRIU's socket and the wire, and
//! the image files' data.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{channel, Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::wire::{
    accept_hello, pack_chunk, unpack_chunk, Channel, Frame, HostFacts, Message, Reader, Writer,
    MAX_CHUNK, PROTOCOL_VERSION,
};
use crate::{Error, Result};

/// What the reading thread hands on, in the order it came.
#[derive(Debug)]
pub enum Incoming {
    Message(Message),
    FileData(Vec<u8>),
}

type Sink = Arc<Mutex<Option<UnixStream>>>;

/// See [`Link::failure_seen_there`].
#[derive(Debug)]
pub enum SeenThere {
    Refused(String),
    Ended,
}

/// How long the other side may say nothing before the migration is given up: every phase
/// but the restore (see [`RESTORE_LIMIT`]) answers within it.
pub const QUIET_LIMIT: Duration = Duration::from_secs(120);

/// How long a restore on the other side may take (as `lcr restore --timeout`'s default).
pub const RESTORE_LIMIT: Duration = Duration::from_secs(600);

/// The sending half of a [`Link`], for another thread.
#[derive(Clone)]
pub struct Sender {
    writer: Arc<Writer<Box<dyn Write + Send>>>,
    sent: Arc<AtomicU64>,
}

impl Sender {
    pub fn send(&self, m: &Message) -> Result<()> {
        self.writer.send(m)
    }

    pub fn send_data(&self, ch: Channel, bytes: &[u8]) -> Result<()> {
        self.sent.fetch_add(bytes.len() as u64, Ordering::Relaxed);
        self.writer.data(ch, bytes)
    }
}

pub struct Link {
    writer: Arc<Writer<Box<dyn Write + Send>>>,
    incoming: Receiver<Result<Incoming>>,
    /// For [`Link::failer`]: another thread's failure, delivered as the next item.
    inject: std::sync::mpsc::Sender<Result<Incoming>>,
    pages_in: Sink,
    pages_out: Option<JoinHandle<Result<()>>>,
    /// Bytes sent on the wire (frames' payloads).
    pub sent: Arc<AtomicU64>,
    started: Instant,
    /// When the other side last sent a frame, in milliseconds after `started`.
    last_heard: Arc<AtomicU64>,
    /// The reading thread has ended (the connection closed or broke).
    ended: Arc<AtomicBool>,
}

impl Link {
    /// Starts the thread that reads `input`: Pages frames go straight to the page socket
    /// set by [`Link::relay_pages`], everything else to [`Link::recv`].
    pub fn start(input: impl Read + Send + 'static, output: impl Write + Send + 'static) -> Self {
        let (tx, incoming) = channel();
        let inject = tx.clone();
        let pages_in: Sink = Arc::new(Mutex::new(None));
        let sink = pages_in.clone();
        let started = Instant::now();
        let last_heard = Arc::new(AtomicU64::new(0));
        let heard = last_heard.clone();
        let ended = Arc::new(AtomicBool::new(false));
        let reader_ended = ended.clone();
        std::thread::spawn(move || {
            let mut reader = Reader::new(std::io::BufReader::with_capacity(1 << 20, input));
            loop {
                let frame = reader.frame();
                heard.store(started.elapsed().as_millis() as u64, Ordering::Relaxed);
                let item = match frame {
                    Ok(Some(Frame::Data(Channel::Pages, payload))) => {
                        match unpack_chunk(&payload).and_then(|raw| deliver(&sink, &raw)) {
                            Ok(()) => continue,
                            Err(e) => Err(e),
                        }
                    }
                    Ok(Some(Frame::Data(_, bytes))) => Ok(Incoming::FileData(bytes)),
                    Ok(Some(Frame::Control(Message::PagesEnd))) => {
                        // The other CRIU is done: ours sees the end of its connection.
                        if let Some(s) = sink.lock().ok().and_then(|mut s| s.take()) {
                            let _ = s.shutdown(std::net::Shutdown::Write);
                        }
                        Ok(Incoming::Message(Message::PagesEnd))
                    }
                    Ok(Some(Frame::Control(m))) => Ok(Incoming::Message(m)),
                    // Said, not left to the channel's end: the link holds a sender of its own
                    // (`failer`), so the channel never ends by itself.
                    Ok(None) => Err(closed()),
                    Err(e) => Err(e),
                };
                let failed = item.is_err();
                if tx.send(item).is_err() || failed {
                    reader_ended.store(true, Ordering::Relaxed);
                    cut(&sink);
                    return;
                }
            }
        });
        Self {
            writer: Arc::new(Writer::new(Box::new(std::io::BufWriter::with_capacity(
                1 << 20,
                output,
            )))),
            incoming,
            inject,
            pages_in,
            pages_out: None,
            sent: Arc::new(AtomicU64::new(0)),
            started,
            last_heard,
            ended,
        }
    }

    pub fn send(&self, m: &Message) -> Result<()> {
        self.writer.send(m)
    }

    /// A handle that sends on this link from another thread.
    pub fn sender(&self) -> Sender {
        Sender {
            writer: self.writer.clone(),
            sent: self.sent.clone(),
        }
    }

    /// Ends the relayed page-server connection here: this side's CRIU sees it close.
    pub fn cut_pages(&self) {
        cut(&self.pages_in);
    }

    /// A handle for the thread that watches this side's page server: its failure becomes
    /// the next thing [`Link::recv`] returns, and the relayed connection is cut (the pages
    /// still coming would wait for ever on a server that is gone).
    pub fn failer(&self) -> impl Fn(Error) + Send + 'static {
        let (inject, sink) = (self.inject.clone(), self.pages_in.clone());
        move |e| {
            let _ = inject.send(Err(e));
            cut(&sink);
        }
    }

    /// What the other side says within `wait` (other messages meanwhile are dropped) after a
    /// local failure that it may explain better: its refusal (its disk filled, its page
    /// server failed), or the connection's end (the link went dead, the receiver was killed).
    pub fn failure_seen_there(&self, wait: Duration) -> Option<SeenThere> {
        let deadline = Instant::now() + wait;
        loop {
            let left = deadline.checked_duration_since(Instant::now())?;
            match self.incoming.recv_timeout(left) {
                Ok(Ok(Incoming::Message(Message::Refused { reason }))) => {
                    return Some(SeenThere::Refused(reason))
                }
                Ok(Ok(_)) => continue,
                Ok(Err(_)) | Err(RecvTimeoutError::Disconnected) => return Some(SeenThere::Ended),
                Err(RecvTimeoutError::Timeout) if self.ended.load(Ordering::Relaxed) => {
                    return Some(SeenThere::Ended)
                }
                Err(RecvTimeoutError::Timeout) => return None,
            }
        }
    }

    /// The next message or file data; an error when the other side closed the connection
    /// or said nothing for [`QUIET_LIMIT`].
    pub fn recv(&self) -> Result<Incoming> {
        self.recv_within(QUIET_LIMIT)
    }

    /// As [`Link::recv`], with `limit` as the longest the connection may stay idle (page
    /// data flowing meanwhile counts as activity).
    pub fn recv_within(&self, limit: Duration) -> Result<Incoming> {
        loop {
            // In slices: a connection that ended stays ended for every later call.
            match self
                .incoming
                .recv_timeout(limit.min(Duration::from_secs(1)))
            {
                Ok(item) => return item,
                Err(RecvTimeoutError::Disconnected) => return Err(closed()),
                Err(RecvTimeoutError::Timeout) if self.ended.load(Ordering::Relaxed) => {
                    return Err(closed())
                }
                Err(RecvTimeoutError::Timeout) if self.idle() < limit => continue,
                Err(RecvTimeoutError::Timeout) => {
                    return Err(Error::Protocol(format!(
                        "the other side sent nothing for {} s",
                        limit.as_secs()
                    )))
                }
            }
        }
    }

    /// How long since the other side last sent anything.
    fn idle(&self) -> Duration {
        let last = Duration::from_millis(self.last_heard.load(Ordering::Relaxed));
        self.started.elapsed().saturating_sub(last)
    }

    /// The next control message (file data here is a protocol error).
    pub fn message(&self) -> Result<Message> {
        self.message_within(QUIET_LIMIT)
    }

    pub fn message_within(&self, limit: Duration) -> Result<Message> {
        match self.recv_within(limit)? {
            Incoming::Message(m) => Ok(m),
            Incoming::FileData(_) => Err(Error::Protocol("file data without a file".into())),
        }
    }

    pub fn hello(&self, host: HostFacts) -> Result<()> {
        self.send(&Message::Hello {
            protocol: PROTOCOL_VERSION,
            host,
        })
    }

    /// The other side's hello (or its refusal).
    pub fn expect_hello(&self) -> Result<HostFacts> {
        match self.message()? {
            Message::Refused { reason } => Err(Error::Refused {
                host: "the destination".into(),
                reason,
            }),
            other => accept_hello(other),
        }
    }

    /// Relays `socket` (this side's end of CRIU's page-server connection) over the wire:
    /// what arrives on the Pages channel is written into it, what CRIU writes is sent, and
    /// when CRIU closes it the other side is told (`PagesEnd`).
    pub fn relay_pages(&mut self, socket: UnixStream) -> Result<()> {
        let reading = socket.try_clone().map_err(|cause| Error::Io {
            context: "page-server socket".into(),
            cause,
        })?;
        *self
            .pages_in
            .lock()
            .map_err(|_| Error::Protocol("the reading thread panicked".into()))? = Some(socket);
        let writer = self.writer.clone();
        let sent = self.sent.clone();
        self.pages_out = Some(std::thread::spawn(move || {
            let mut reading = reading;
            let mut buf = vec![0u8; MAX_CHUNK];
            loop {
                let n = match reading.read(&mut buf) {
                    Ok(0) => break,
                    Ok(n) => n,
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                    Err(cause) => {
                        return Err(Error::Io {
                            context: "read the page-server socket".into(),
                            cause,
                        })
                    }
                };
                let chunk = pack_chunk(&buf[..n]);
                sent.fetch_add(chunk.len() as u64, Ordering::Relaxed);
                if let Err(e) = writer.data(Channel::Pages, &chunk) {
                    // The connection is gone: CRIU must see its page server go too, or it
                    // waits for ever.
                    let _ = reading.shutdown(std::net::Shutdown::Both);
                    return Err(e);
                }
            }
            writer.send(&Message::PagesEnd)
        }));
        Ok(())
    }

    /// Waits until this side's CRIU closed its page-server connection (and the other side
    /// was told).
    pub fn pages_sent(&mut self) -> Result<()> {
        match self.pages_out.take() {
            Some(t) => t
                .join()
                .map_err(|_| Error::Protocol("the page relay panicked".into()))?,
            None => Ok(()),
        }
    }
}

fn closed() -> Error {
    Error::Protocol("the other side closed the connection".into())
}

/// The connection ended: the local CRIU's page-server socket is shut, so that a CRIU waiting
/// on the other side's answer fails instead of waiting for ever.
fn cut(sink: &Sink) {
    if let Some(s) = sink.lock().ok().and_then(|mut s| s.take()) {
        let _ = s.shutdown(std::net::Shutdown::Both);
    }
}

fn deliver(sink: &Sink, bytes: &[u8]) -> Result<()> {
    let mut guard = sink
        .lock()
        .map_err(|_| Error::Protocol("a relay thread panicked".into()))?;
    let socket = guard
        .as_mut()
        .ok_or_else(|| Error::Protocol("page data without a page server".into()))?;
    socket.write_all(bytes).map_err(|cause| Error::Io {
        context: "write the page-server socket".into(),
        cause,
    })
}
