//! Compiles Umbra's .proto files with protox (no protoc) and generates the
//! prost messages and tonic clients/servers from the resulting descriptors.

use std::{env, error::Error, fs, path::PathBuf};

use prost::Message as _;

/// Every .proto file of the crate, relative to the crate root (which is the
/// include root, so these are also the files' names in the descriptors).
const PROTO_FILES: &[&str] = &[
    "google/rpc/status.proto",
    "p4/config/v1/p4types.proto",
    "p4/config/v1/p4info.proto",
    "p4/v1/p4data.proto",
    "p4/v1/p4runtime.proto",
    "umbra/device/v1/device.proto",
    "umbra/management/v1/management.proto",
];

fn main() -> Result<(), Box<dyn Error>> {
    let root = PathBuf::from(env::var("CARGO_MANIFEST_DIR")?);
    let out_dir = PathBuf::from(env::var("OUT_DIR")?);
    for dir in ["google", "p4", "umbra"] {
        println!("cargo:rerun-if-changed={}", root.join(dir).display());
    }
    for file in PROTO_FILES {
        println!("cargo:rerun-if-changed={}", root.join(file).display());
    }

    // Source info is kept for code generation so the proto comments become
    // rustdoc; imports (google/protobuf/any.proto) are kept so the set is
    // self-contained for prost-reflect.
    let fds = protox::Compiler::new([&root])?
        .include_imports(true)
        .include_source_info(true)
        .open_files(PROTO_FILES)?
        .file_descriptor_set();

    // The embedded set is only used for reflection (text format), which does
    // not need comments: strip them to keep the binary small. It is the
    // P4Runtime schema only (tests/descriptors.rs compares it with the
    // official one, file for file), so Umbra's own packages are left out.
    let mut embedded = fds.clone();
    embedded
        .file
        .retain(|file| !file.name().starts_with("umbra/"));
    for file in &mut embedded.file {
        file.source_code_info = None;
    }
    fs::write(
        out_dir.join("umbra_descriptor_set.bin"),
        embedded.encode_to_vec(),
    )?;

    // A conntrack tuple's addresses are `Bytes`: decoding them slices the
    // received buffer instead of allocating four small vectors per
    // replicated entry (each change batch is decoded twice on its way to
    // a shadow: by the replicator and by the shadow's agent).
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        .bytes(".umbra.device.v1.Tuple")
        .compile_fds(fds)?;
    Ok(())
}
