//! Compiles proto/ into prost messages, tonic servers and clients, and a file descriptor
//! set (for reflection and descriptor-driven validation). Uses protox, so no protoc is needed.

use std::path::{Path, PathBuf};

fn proto_files(dir: &Path, found: &mut Vec<PathBuf>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            proto_files(&path, found)?;
        } else if path.extension().is_some_and(|ext| ext == "proto") {
            found.push(path);
        }
    }
    Ok(())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=proto");
    let mut files = Vec::new();
    proto_files(Path::new("proto"), &mut files)?;
    files.sort();
    let relative: Vec<PathBuf> = files
        .iter()
        .map(|path| path.strip_prefix("proto").unwrap().to_path_buf())
        .collect();

    let mut compiler = protox::Compiler::new(["proto"])?;
    compiler.include_imports(true);
    compiler.open_files(&relative)?;
    // Operations of deletes answer Any(google.protobuf.Empty): the gateway renders it as
    // JSON, so its descriptor must be in the set though no file imports it.
    compiler.open_files(["google/protobuf/empty.proto"])?;
    // Encoded by protox itself: unlike prost_types, this keeps the custom options
    // (yandex.cloud.* validation rules, google.api.http) that reflection and
    // validation read.
    let out_dir = PathBuf::from(std::env::var("OUT_DIR")?);
    std::fs::write(
        out_dir.join("imageplane_descriptor.bin"),
        compiler.encode_file_descriptor_set(),
    )?;
    let descriptors = compiler.file_descriptor_set();

    let mut messages = prost_build::Config::new();
    // prost::Name on every message: Any type URLs come from the protos, not from strings.
    messages.enable_type_names();
    messages.type_name_domain(["."], "type.googleapis.com");
    tonic_prost_build::configure()
        .build_server(true)
        .build_client(true)
        // Methods a service does not implement answer UNIMPLEMENTED.
        .generate_default_stubs(true)
        // Undecodable requests are INVALID_ARGUMENT, not INTERNAL (src/grpc_codec.rs).
        .codec_path("crate::rpc::codec::ProtobufCodec")
        .include_file("imageplane_protos.rs")
        .compile_fds_with_config(descriptors, messages)?;
    Ok(())
}
