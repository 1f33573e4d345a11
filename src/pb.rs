//! The code generated from proto/ by build.rs, included once, and the descriptor set
//! that reflection and validation read. The .proto files are the single source of the API.
//! Beside them, two helpers for the API's types: a body in `google.api.HttpBody` parts,
//! and a count as an int64.

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

/// A count as the API's int64 (saturating: no count comes near `i64::MAX`).
pub fn int64(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

/// `data` as the parts of a stream of `google.api.HttpBody`, each of at most `part_bytes`
/// (one part, empty, for no data), the media type in the first: how a body that is not
/// JSON travels in a streaming method, whichever way.
pub fn http_body_parts(
    content_type: &str,
    data: &[u8],
    part_bytes: usize,
) -> Vec<google::api::HttpBody> {
    let parts: Vec<&[u8]> = match data.is_empty() {
        true => vec![data],
        false => data.chunks(part_bytes).collect(),
    };
    parts
        .into_iter()
        .enumerate()
        .map(|(index, part)| google::api::HttpBody {
            content_type: match index {
                0 => content_type.to_string(),
                _ => String::new(),
            },
            data: part.to_vec(),
            extensions: Vec::new(),
        })
        .collect()
}

pub use yandex::cloud::baremetal::v1alpha as baremetal;
pub use yandex::cloud::compute::v1 as compute;
pub use yandex::cloud::operation;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_body_goes_in_parts_with_its_media_type_in_the_first() {
        let parts = http_body_parts("text/x", &[1, 2, 3, 4, 5], 2);
        let shape: Vec<(&str, Vec<u8>)> = parts
            .iter()
            .map(|part| (part.content_type.as_str(), part.data.clone()))
            .collect();
        assert_eq!(
            shape,
            [("text/x", vec![1, 2]), ("", vec![3, 4]), ("", vec![5])]
        );
        let empty = http_body_parts("text/x", &[], 2);
        assert_eq!(empty.len(), 1);
        assert_eq!(empty[0].content_type, "text/x");
    }
}
