//! The code generated from proto/ by build.rs, included once, and the descriptor set
//! that reflection and validation read. The .proto files are the single source of the API.

#![allow(clippy::all, clippy::pedantic, missing_docs)]

include!(concat!(env!("OUT_DIR"), "/imageplane_protos.rs"));

/// The serialized `FileDescriptorSet` of every file in proto/ and its imports.
pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/imageplane_descriptor.bin"));

/// The descriptors of [`FILE_DESCRIPTOR_SET`], decoded once per process: the gateway's
/// routes and JSON, seed files and idempotency fingerprints all read this pool.
pub fn descriptor_pool() -> &'static prost_reflect::DescriptorPool {
    static POOL: std::sync::LazyLock<prost_reflect::DescriptorPool> =
        std::sync::LazyLock::new(|| {
            prost_reflect::DescriptorPool::decode(FILE_DESCRIPTOR_SET)
                .expect("build.rs encodes a valid descriptor set")
        });
    &POOL
}

pub use yandex::cloud::baremetal::v1alpha as baremetal;
pub use yandex::cloud::compute::v1 as compute;
pub use yandex::cloud::operation;
