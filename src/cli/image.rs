use std::path::PathBuf;

use lcr::cancel::{Cancel, SignalGuard};
use lcr::image::{self, Compression, Input, Output, PackOpts};

#[derive(clap::Args)]
/// Checkpoint archives: pack, unpack, inspect, verify.
pub struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(clap::Subcommand)]
enum Command {
    /// Pack an image directory (made by `lcr checkpoint --image-path`) into an archive.
    Pack {
        dir: PathBuf,
        /// Archive to write (`-`: standard output).
        file: PathBuf,
        /// zstd, zstd:LEVEL (1-19) or none.
        #[arg(long, default_value = "zstd")]
        compress: Compression,
        #[arg(short, long)]
        quiet: bool,
    },
    /// Unpack an archive (`-`: standard input) into a new image directory, checking it.
    Unpack {
        file: PathBuf,
        dir: PathBuf,
        #[arg(short, long)]
        quiet: bool,
        #[command(flatten)]
        max_size: super::MaxSize,
    },
    /// Show what a checkpoint (archive or image directory) holds.
    Inspect {
        path: PathBuf,
        #[arg(long)]
        json: bool,
    },
    /// Check a checkpoint's manifest, checksums and CRIU files; non-zero on the first problem.
    Verify {
        path: PathBuf,
        #[arg(short, long)]
        quiet: bool,
        #[command(flatten)]
        max_size: super::MaxSize,
    },
}

/// One arm per `lcr image` subcommand (~80 lines: each a few lines of flags into one
/// library call and its output).
pub fn run(a: Args) -> anyhow::Result<i32> {
    match a.command {
        Command::Pack {
            dir,
            file,
            compress,
            quiet,
        } => {
            let cancel = Cancel::new();
            let _signals = SignalGuard::install(&cancel);
            let out = Output::create(&file)?;
            let opts = PackOpts {
                compression: compress,
                quiet,
                destination: out.label(),
                cancel,
            };
            let (m, out) = image::pack(&dir, out, &opts)?;
            out.commit()?;
            if !quiet && file.as_os_str() != "-" {
                eprintln!(
                    "packed {} files ({} bytes) into {}",
                    m.entries.len(),
                    m.total_size(),
                    file.display()
                );
            }
        }
        Command::Unpack {
            file,
            dir,
            quiet,
            max_size,
        } => {
            let cancel = Cancel::new();
            let _signals = SignalGuard::install(&cancel);
            let input = Input::open(&file)?
                .max_total(max_size.bytes)
                .cancel(&cancel);
            let m = image::unpack(input, &dir, quiet, &|_| Ok(()))?;
            if !quiet {
                eprintln!(
                    "unpacked {} files ({} bytes), checksums verified, into {}",
                    m.entries.len(),
                    m.total_size(),
                    dir.display()
                );
            }
        }
        Command::Inspect { path, json } => {
            let i = image::inspect(&path)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&i)?);
            } else {
                print!("{}", image::render(&i));
            }
        }
        Command::Verify {
            path,
            quiet,
            max_size,
        } => {
            let v = image::verify(&path, quiet, max_size.bytes)?;
            if v.checksums {
                println!(
                    "{}: OK: {} files, {} bytes, sizes and SHA-256 match the manifest, CRIU's files are complete",
                    path.display(),
                    v.files,
                    v.bytes
                );
            } else {
                println!(
                    "{}: OK: CRIU's files are complete; no manifest, so no checksums to check",
                    path.display()
                );
            }
        }
    }
    Ok(0)
}
