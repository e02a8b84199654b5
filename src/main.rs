//! The `lcr` command: parse flags (runc-compatible), call the library, print.

mod cli;

fn main() {
    // Rust ignores SIGPIPE; an ignored signal stays ignored across exec, so the containers'
    // processes would inherit it. Restore the default (which also makes `lcr list | head` end
    // quietly, as a CLI should).
    // SAFETY: setting a signal disposition to SIG_DFL before any thread exists.
    unsafe { libc::signal(libc::SIGPIPE, libc::SIG_DFL) };
    std::process::exit(cli::main());
}
