//! Where an archive is written: a file that appears under its name only once complete (an
//! unnamed O_TMPFILE in the target directory, linked in at the end; mode 0600 because it holds
//! process memory), standard output, or any stream (a pipe, a socket).

use std::fs::File;
use std::io::Write;
use std::os::fd::AsRawFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use super::error::{ImageError, Result};

pub enum Output {
    File(ArchiveFile),
    Stdout(std::io::Stdout),
    /// A stream the caller opened (a pipe, a socket), named by `label` in errors.
    Stream {
        label: String,
        writer: Box<dyn Write + Send>,
    },
}

impl Output {
    /// `-` is standard output.
    pub fn create(path: &Path) -> Result<Self> {
        if path == Path::new("-") {
            use std::io::IsTerminal;
            if std::io::stdout().is_terminal() {
                return Err(ImageError::Broken {
                    archive: "-".into(),
                    reason: "standard output is a terminal: redirect it to a file or a pipe".into(),
                });
            }
            return Ok(Output::Stdout(std::io::stdout()));
        }
        ArchiveFile::create(path).map(Output::File)
    }

    /// What errors call it: the archive's path, or standard output.
    pub fn label(&self) -> String {
        match self {
            Output::File(f) => f.path.display().to_string(),
            Output::Stdout(_) => "standard output".into(),
            Output::Stream { label, .. } => label.clone(),
        }
    }

    /// Makes the archive visible under its name (a no-op for standard output).
    pub fn commit(self) -> Result<()> {
        match self {
            Output::File(f) => f.commit(),
            Output::Stdout(mut s) => s
                .flush()
                .map_err(ImageError::io("-", "flush standard output")),
            Output::Stream { label, mut writer } => {
                writer.flush().map_err(ImageError::io(label, "flush"))
            }
        }
    }
}

impl Write for Output {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match self {
            Output::File(f) => f.file.write(buf),
            Output::Stdout(s) => s.write(buf),
            Output::Stream { writer, .. } => writer.write(buf),
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        match self {
            Output::File(f) => f.file.flush(),
            Output::Stdout(s) => s.flush(),
            Output::Stream { writer, .. } => writer.flush(),
        }
    }
}

pub struct ArchiveFile {
    file: File,
    path: PathBuf,
    /// Set when the filesystem has no O_TMPFILE: a hidden name in the same directory,
    /// removed unless committed.
    named: Option<PathBuf>,
}

impl ArchiveFile {
    pub fn create(path: &Path) -> Result<Self> {
        let dir = match path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
            _ => PathBuf::from("."),
        };
        if path.file_name().is_none() {
            return Err(ImageError::Broken {
                archive: path.display().to_string(),
                reason: "not a file name".into(),
            });
        }
        if path.is_dir() {
            return Err(ImageError::Broken {
                archive: path.display().to_string(),
                reason: "is a directory".into(),
            });
        }
        let tmpfile = std::fs::OpenOptions::new()
            .write(true)
            .mode(0o600)
            .custom_flags(libc::O_TMPFILE)
            .open(&dir);
        match tmpfile {
            Ok(file) => Ok(Self {
                file,
                path: path.to_path_buf(),
                named: None,
            }),
            Err(e)
                if matches!(
                    e.raw_os_error(),
                    Some(libc::EOPNOTSUPP) | Some(libc::EISDIR) | Some(libc::EINVAL)
                ) =>
            {
                let named = dir.join(format!(
                    ".{}.partial-{}",
                    path.file_name().unwrap_or_default().to_string_lossy(),
                    std::process::id()
                ));
                let file = std::fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .mode(0o600)
                    .open(&named)
                    .map_err(ImageError::io(&named, "create"))?;
                Ok(Self {
                    file,
                    path: path.to_path_buf(),
                    named: Some(named),
                })
            }
            Err(e) => Err(ImageError::Io {
                path: path.to_path_buf(),
                context: format!("create in {}", dir.display()),
                cause: e,
            }),
        }
    }

    pub fn commit(mut self) -> Result<()> {
        let path = self.path.clone();
        self.file
            .sync_all()
            .map_err(ImageError::io(&path, "sync"))?;
        if let Some(named) = self.named.take() {
            return std::fs::rename(&named, &path)
                .map_err(ImageError::io(&path, "rename into place"));
        }
        let proc_path = format!("/proc/self/fd/{}", self.file.as_raw_fd());
        let link = |to: &Path| {
            nix::unistd::linkat(
                nix::fcntl::AT_FDCWD,
                proc_path.as_str(),
                nix::fcntl::AT_FDCWD,
                to,
                nix::fcntl::AtFlags::AT_SYMLINK_FOLLOW,
            )
        };
        match link(&path) {
            Ok(()) => Ok(()),
            Err(nix::errno::Errno::EEXIST) => {
                // Replace an existing file atomically: link under a hidden name, rename over.
                let tmp = path.with_file_name(format!(
                    ".{}.new-{}",
                    path.file_name().unwrap_or_default().to_string_lossy(),
                    std::process::id()
                ));
                link(&tmp).map_err(|e| ImageError::Io {
                    path: tmp.clone(),
                    context: "link the archive".into(),
                    cause: e.into(),
                })?;
                std::fs::rename(&tmp, &path).map_err(|e| {
                    let _ = std::fs::remove_file(&tmp);
                    ImageError::Io {
                        path: path.clone(),
                        context: "rename into place".into(),
                        cause: e,
                    }
                })
            }
            Err(e) => Err(ImageError::Io {
                path,
                context: "link the archive into place".into(),
                cause: e.into(),
            }),
        }
    }
}

impl Drop for ArchiveFile {
    fn drop(&mut self) {
        if let Some(n) = &self.named {
            let _ = std::fs::remove_file(n);
        }
    }
}
