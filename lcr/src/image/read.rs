//! Reading an archive with every check an untrusted input needs, whatever is done with the
//! entries (extracted, hashed only, or read for inspection):
//! - the manifest must come first, be small, parse, and have a known format;
//! - every later entry must be a regular file the manifest lists (or one of its directories),
//!   with a safe name, no setuid/setgid bits, the listed size, and the listed SHA-256;
//! - links, device nodes, fifos and other entry types are refused;
//! - decompressed bytes are capped by what the manifest declares, so a zstd bomb stops early;
//! - an archive that ends before every listed entry arrived is truncated.

use std::cell::Cell;
use std::collections::{HashMap, HashSet};
use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::rc::Rc;

use super::compression::decompressor;
use super::digest::HashingReader;
use super::error::{ImageError, Result};
use super::layout;
use super::manifest::{self, Entry, Manifest};
use super::progress::Progress;

/// What to do after an entry.
#[derive(Debug, PartialEq, Eq)]
pub enum Flow {
    Continue,
    /// Stop reading (the rest is neither read nor checked).
    Stop,
}

/// An archive to read: a file, or standard input for `-`.
pub struct Input {
    pub label: String,
    pub reader: Box<dyn BufRead + Send>,
    /// The most the archive may declare (its manifest's total): the manifest is the author's
    /// word, so it is bounded here, not only by itself.
    pub max_total: u64,
    /// Stops the reading midway.
    pub cancel: crate::cancel::Cancel,
    /// The archive is this process's standard input.
    pub is_stdin: bool,
}

/// The default [`Input::max_total`]: 64 GiB.
pub const DEFAULT_MAX_TOTAL: u64 = 64 << 30;

impl Input {
    pub fn open(path: &Path) -> Result<Self> {
        if path == Path::new("-") {
            use std::io::IsTerminal;
            if std::io::stdin().is_terminal() {
                return Err(ImageError::Broken {
                    archive: "standard input".into(),
                    reason: "is a terminal: pipe the archive in".into(),
                });
            }
            return Ok(Self {
                label: "standard input".into(),
                reader: Box::new(BufReader::with_capacity(1 << 20, std::io::stdin())),
                max_total: DEFAULT_MAX_TOTAL,
                cancel: Default::default(),
                is_stdin: true,
            });
        }
        let f = std::fs::File::open(path).map_err(ImageError::io(path, "open archive"))?;
        if f.metadata().map(|m| m.is_dir()).unwrap_or(false) {
            return Err(ImageError::Broken {
                archive: path.display().to_string(),
                reason: "is a directory, not an archive".into(),
            });
        }
        Ok(Self::from_reader(path.display().to_string(), f))
    }

    /// An archive read from any stream (a pipe, a socket), named by `label` in errors.
    pub fn from_reader(
        label: impl Into<String>,
        reader: impl std::io::Read + Send + 'static,
    ) -> Self {
        Self {
            label: label.into(),
            reader: Box::new(BufReader::with_capacity(1 << 20, reader)),
            max_total: DEFAULT_MAX_TOTAL,
            cancel: Default::default(),
            is_stdin: false,
        }
    }

    /// Reading stops once `token` is cancelled.
    pub fn cancel(mut self, token: &crate::cancel::Cancel) -> Self {
        self.cancel = token.clone();
        self
    }

    /// Sets the most the archive may declare.
    pub fn max_total(mut self, bytes: u64) -> Self {
        self.max_total = bytes;
        self
    }
}

/// Shared between the capped reader (inside the tar reader) and the loop that raises the cap.
#[derive(Default)]
struct Budget {
    read: Cell<u64>,
    limit: Cell<u64>,
    exceeded: Cell<bool>,
}

struct Capped {
    inner: Box<dyn Read>,
    budget: Rc<Budget>,
    progress: Rc<Progress>,
}

impl Read for Capped {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.progress.check()?;
        let left = self
            .budget
            .limit
            .get()
            .saturating_sub(self.budget.read.get());
        if left == 0 {
            self.budget.exceeded.set(true);
            return Err(std::io::Error::other(
                "decompressed data exceeds the manifest",
            ));
        }
        let want = buf.len().min(left.min(usize::MAX as u64) as usize);
        let n = self.inner.read(&mut buf[..want])?;
        self.budget.read.set(self.budget.read.get() + n as u64);
        self.progress.add(n as u64);
        Ok(n)
    }
}

/// Tar overhead allowed per entry beyond its data: header, a long-name or PAX header with its
/// own data block, padding.
const PER_ENTRY_OVERHEAD: u64 = 4096;
/// Allowed for the directory entries and the end-of-archive blocks.
const SLACK: u64 = 1 << 20;

/// How errors name the archive, and how a failed read is told apart: a decompression bomb
/// (the cap was hit), an interruption, or damage.
struct Check<'a> {
    label: &'a str,
    budget: &'a Budget,
}

impl Check<'_> {
    fn broken(&self, reason: String) -> ImageError {
        ImageError::Broken {
            archive: self.label.to_string(),
            reason,
        }
    }

    fn refused(&self, entry: &str, reason: String) -> ImageError {
        ImageError::Refused {
            archive: self.label.to_string(),
            entry: layout::shortened(entry),
            reason,
        }
    }

    /// An I/O error mid-archive.
    fn stream(&self, e: std::io::Error) -> ImageError {
        if self.budget.exceeded.get() {
            self.broken(format!(
                "decompresses to more than the manifest declares (over {} bytes): refused as a possible decompression bomb",
                self.budget.limit.get()
            ))
        } else if crate::cancel::is_interrupt(&e) {
            self.broken(e.to_string())
        } else {
            self.broken(format!("truncated or corrupt: {e}"))
        }
    }
}

/// Reads `input`, checking everything (see the module doc): the manifest first (`on_manifest`
/// may refuse it before anything else is read), then each entry's header, its place in the
/// manifest, and its data's size and checksum. `on_entry` gets each listed file with a reader
/// over its data (what it does not read is still hashed). Returns the manifest.
pub fn read_archive(
    input: Input,
    quiet: bool,
    mut on_manifest: impl FnMut(&Manifest) -> Result<()>,
    mut on_entry: impl FnMut(&Entry, &mut dyn Read) -> Result<Flow>,
) -> Result<Manifest> {
    let label = input.label.clone();
    let budget = Rc::new(Budget::default());
    budget
        .limit
        .set(manifest::MAX_SIZE + PER_ENTRY_OVERHEAD * 2);
    let check = Check {
        label: &label,
        budget: &budget,
    };
    let progress = Rc::new(Progress::new("import", None, quiet).with_cancel(input.cancel.clone()));
    let inner = decompressor(input.reader).map_err(|r| check.broken(r))?;
    let mut tar = tar::Archive::new(Capped {
        inner,
        budget: budget.clone(),
        progress: progress.clone(),
    });
    let mut entries = tar.entries().map_err(|e| check.stream(e))?;
    let m = read_manifest(&mut entries, &check, input.max_total)?;
    budget.limit.set(
        budget.read.get()
            + m.total_size()
            + PER_ENTRY_OVERHEAD * (m.entries.len() as u64 + 2)
            + SLACK,
    );
    progress.set_total(m.total_size());
    on_manifest(&m)?;
    // Looked up once per entry: a linear search made 140,000 entries take half a minute.
    let index: HashMap<String, usize> = m
        .entries
        .iter()
        .enumerate()
        .map(|(i, e)| (e.name.clone(), i))
        .collect();
    let mut seen = HashSet::new();
    for e in entries {
        let mut e = e.map_err(|e| check.stream(e))?;
        let Some(name) = check_header(&mut e, &check)? else {
            continue;
        };
        let listed = match index.get(name.as_str()) {
            Some(&i) => &m.entries[i],
            None => return Err(check.refused(&name, "not in the manifest".into())),
        };
        if !seen.insert(name.clone()) {
            return Err(check.refused(&name, "appears twice".into()));
        }
        check_size(&name, e.size(), listed, &check)?;
        let mut data = HashingReader::new(e, listed.size);
        let flow = match on_entry(listed, &mut data) {
            Ok(f) => f,
            Err(_) if budget.exceeded.get() => return Err(check.stream(std::io::Error::other(""))),
            Err(e) => return Err(e),
        };
        if flow == Flow::Stop {
            progress.finish();
            return Ok(m);
        }
        verify_data(data, listed, &check)?;
    }
    progress.finish();
    if let Some(missing) = m.entries.iter().find(|e| !seen.contains(&e.name)) {
        return Err(check.broken(format!(
            "truncated: the archive ends before {:?} ({} of {} entries present)",
            missing.name,
            seen.len(),
            m.entries.len()
        )));
    }
    Ok(m)
}

/// The first entry, which must be the manifest: a small plain file, valid, and declaring no
/// more than `max_total` bytes.
fn read_manifest<R: Read>(
    entries: &mut tar::Entries<'_, R>,
    check: &Check,
    max_total: u64,
) -> Result<Manifest> {
    let mut first = match entries.next() {
        Some(e) => e.map_err(|e| check.stream(e))?,
        None => return Err(check.broken("empty archive: no manifest".into())),
    };
    let first_name = String::from_utf8_lossy(&first.path_bytes()).into_owned();
    if first_name != layout::MANIFEST {
        return Err(check.broken(format!(
            "the first entry is {first_name:?}, not {}: not an lcr archive (or not one lcr can check)",
            layout::MANIFEST
        )));
    }
    if first.header().entry_type() != tar::EntryType::Regular
        || first.size() > manifest::MAX_SIZE
        || first.header().mode().unwrap_or(0) & 0o6000 != 0
    {
        return Err(check.refused(
            layout::MANIFEST,
            format!(
                "not a plain regular file (no setuid/setgid) of at most {} bytes",
                manifest::MAX_SIZE
            ),
        ));
    }
    let mut text = Vec::new();
    first.read_to_end(&mut text).map_err(|e| check.stream(e))?;
    let m: Manifest = serde_json::from_slice(&text)
        .map_err(|e| check.broken(format!("{}: {e}", layout::MANIFEST)))?;
    m.check().map_err(|r| check.broken(r))?;
    if m.total_size() > max_total {
        return Err(check.broken(format!(
            "its manifest declares {} bytes, more than the {} allowed (--max-size)",
            m.total_size(),
            max_total
        )));
    }
    Ok(m)
}

/// An entry's name, if its header is one lcr archives have: a regular file under a known
/// directory, named once (tar readers differ on which name wins when an entry carries several
/// — GNU long name, PAX path, the header's own — so one that names it otherwise is refused,
/// and no reader can be shown one file and unpack another), with no setuid/setgid bits.
/// `None` for the directory entries lcr writes.
fn check_header<R: Read>(e: &mut tar::Entry<'_, R>, check: &Check) -> Result<Option<String>> {
    let name = String::from_utf8(e.path_bytes().into_owned())
        .map_err(|_| check.refused("(not UTF-8)", "entry names must be UTF-8".into()))?;
    if let Some(pax) = e.pax_extensions().map_err(|e| check.stream(e))? {
        for ext in pax {
            let ext = ext.map_err(|e| check.stream(e))?;
            if ext.key_bytes() == b"path" && ext.value_bytes() != name.as_bytes() {
                return Err(check.refused(
                    &name,
                    format!(
                        "its PAX path {:?} names another file",
                        layout::shortened(&String::from_utf8_lossy(ext.value_bytes()))
                    ),
                ));
            }
        }
    }
    let h = e.header();
    let mode = h.mode().unwrap_or(0);
    if mode & 0o6000 != 0 {
        return Err(check.refused(&name, format!("setuid/setgid bits (mode {mode:o})")));
    }
    let refused = |why: String| Err(check.refused(&name, why));
    match h.entry_type() {
        tar::EntryType::Regular => {}
        tar::EntryType::Directory if layout::is_known_dir(&name) => return Ok(None),
        tar::EntryType::Directory => return refused("a directory lcr archives do not have".into()),
        t @ (tar::EntryType::Symlink | tar::EntryType::Link) => {
            let target = e
                .link_name_bytes()
                .map(|b| String::from_utf8_lossy(&b).into_owned())
                .unwrap_or_default();
            let kind = if t == tar::EntryType::Symlink {
                "symbolic"
            } else {
                "hard"
            };
            return refused(format!(
                "a {kind} link to {target:?}: lcr archives hold no links"
            ));
        }
        tar::EntryType::Char | tar::EntryType::Block => return refused("a device node".into()),
        tar::EntryType::Fifo => return refused("a fifo".into()),
        other => return refused(format!("entry type {other:?}")),
    }
    layout::dir_name(&name).map_err(|why| check.refused(&name, why))?;
    Ok(Some(name))
}

/// An entry larger than the manifest says is refused (it would be read past its word); a
/// smaller one is damage.
fn check_size(name: &str, size: u64, listed: &Entry, check: &Check) -> Result<()> {
    if size > listed.size {
        return Err(check.refused(
            name,
            format!(
                "{size} bytes, larger than the {} the manifest says",
                listed.size
            ),
        ));
    }
    if size < listed.size {
        return Err(check.broken(format!(
            "entry {name:?}: {size} bytes, the manifest says {}",
            listed.size
        )));
    }
    Ok(())
}

/// Reads what the caller left of an entry's data and compares its checksum with the
/// manifest's.
fn verify_data<R: Read>(mut data: HashingReader<R>, listed: &Entry, check: &Check) -> Result<()> {
    std::io::copy(&mut data, &mut std::io::sink()).map_err(|e| check.stream(e))?;
    if data.count != listed.size {
        return Err(check.broken(format!("entry {:?} is truncated", listed.name)));
    }
    let actual = data.finish();
    if actual != listed.sha256 {
        return Err(ImageError::Checksum {
            archive: check.label.to_string(),
            entry: listed.name.clone(),
            expected: listed.sha256.clone(),
            actual,
        });
    }
    Ok(())
}

/// Copies an entry's data to `out` (`out_path` for messages) in large blocks.
pub fn copy_entry(
    archive: &str,
    entry: &Entry,
    data: &mut dyn Read,
    out: &mut impl std::io::Write,
    out_path: &Path,
) -> Result<u64> {
    let mut buf = vec![0u8; 1 << 20];
    let mut total = 0;
    loop {
        let n = match data.read(&mut buf) {
            Ok(0) => return Ok(total),
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => {
                return Err(ImageError::Broken {
                    archive: archive.to_string(),
                    reason: format!("entry {:?}: truncated or corrupt: {e}", entry.name),
                })
            }
        };
        out.write_all(&buf[..n])
            .map_err(ImageError::io(out_path, "write"))?;
        total += n as u64;
    }
}
