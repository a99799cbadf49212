//! Compiles the `.proto` files with protox, a protobuf compiler written in
//! Rust, so that building needs no `protoc` on the machine. The descriptor
//! set is kept beside the generated code: tools such as grpcurl and the
//! gRPC-web test client read it instead of compiling the files again.

use std::error::Error;
use std::path::PathBuf;

use prost::Message;

/// The files to compile; protox follows their imports.
const ROOTS: &[&str] = &[
    "zitadel/user/v3alpha/user_service.proto",
    "zitadel/v1/error.proto",
    "google/rpc/status.proto",
];

fn main() -> Result<(), Box<dyn Error>> {
    println!("cargo:rerun-if-changed=zitadel");
    println!("cargo:rerun-if-changed=google");
    let out = PathBuf::from(std::env::var("OUT_DIR")?);

    // Build scripts run in the crate's directory, which is the import root.
    let descriptors = protox::compile(ROOTS, ["."])?;
    std::fs::write(
        out.join("passlink_descriptor.bin"),
        descriptors.encode_to_vec(),
    )?;

    tonic_prost_build::configure()
        // The API serves the service on its own hyper listener, and the
        // tests build their own channel: no tonic transport code needed.
        .build_transport(false)
        .codec_path("crate::codec::StrictCodec")
        .compile_fds(descriptors)?;
    Ok(())
}
