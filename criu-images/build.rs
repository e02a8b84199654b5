//! Generates Rust types from CRIU's image definitions (proto/, copied from CRIU 4.2.1's
//! images/ with their MIT licence), with the pure-Rust parser: no protoc needed.

fn main() {
    let protos: Vec<std::path::PathBuf> = std::fs::read_dir("proto")
        .expect("criu-images/proto")
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "proto"))
        .collect();
    protobuf_codegen::Codegen::new()
        .pure()
        .include("proto")
        .inputs(&protos)
        .cargo_out_dir("criu")
        .run_from_script();
    println!("cargo:rerun-if-changed=proto");
}
