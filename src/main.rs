//! The `lcr` command: parse flags (runc-compatible), call the library, print.

mod cli;

fn main() {
    std::process::exit(cli::main());
}
