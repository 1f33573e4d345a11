//! The protobuf codec of every generated service and client (build.rs names it through
//! tonic-prost-build's `codec_path`).
//!
//! It is tonic-prost's codec with one difference: a request body that is not valid
//! protobuf is the caller's mistake, so it fails with INVALID_ARGUMENT (prost's message
//! names the field it broke at) instead of tonic-prost's INTERNAL.

use prost::Message;
use std::marker::PhantomData;
use tonic::codec::{BufferSettings, Codec, DecodeBuf, Decoder};
use tonic::Status;
use tonic_prost::ProstEncoder;

/// See the module documentation.
#[derive(Debug, Clone)]
pub struct ProtobufCodec<T, U> {
    types: PhantomData<(T, U)>,
}

impl<T, U> Default for ProtobufCodec<T, U> {
    fn default() -> Self {
        ProtobufCodec { types: PhantomData }
    }
}

impl<T, U> Codec for ProtobufCodec<T, U>
where
    T: Message + Send + 'static,
    U: Message + Default + Send + 'static,
{
    type Encode = T;
    type Decode = U;
    type Encoder = ProstEncoder<T>;
    type Decoder = StrictDecoder<U>;

    fn encoder(&mut self) -> ProstEncoder<T> {
        ProstEncoder::new(BufferSettings::default())
    }

    fn decoder(&mut self) -> StrictDecoder<U> {
        StrictDecoder {
            message: PhantomData,
        }
    }
}

/// Decodes `U`; undecodable bytes are INVALID_ARGUMENT.
#[derive(Debug, Clone)]
pub struct StrictDecoder<U> {
    message: PhantomData<U>,
}

impl<U: Message + Default> Decoder for StrictDecoder<U> {
    type Item = U;
    type Error = Status;

    fn decode(&mut self, buffer: &mut DecodeBuf<'_>) -> Result<Option<U>, Status> {
        U::decode(buffer).map(Some).map_err(|error| {
            Status::invalid_argument(format!("the message is not valid protobuf: {error}"))
        })
    }

    fn buffer_settings(&self) -> BufferSettings {
        BufferSettings::default()
    }
}
