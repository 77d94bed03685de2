//! Responses encoded by the `kafka-protocol` crate into one framed buffer.
//! (Fetch has its own writer, [`fetch_writer`](super::fetch_writer), to send record data
//! from files.)
//!
//! | offset | size | field                                                  |
//! |-------:|-----:|--------------------------------------------------------|
//! |      0 |    4 | size (i32): bytes after this field                     |
//! |      4 |    4 | correlation_id (i32), echoed from the request          |
//! |      8 |    1 | header v1 only: tagged field count, always 0           |
//! |    8/9 |    … | body, per API key and version                          |
//!
//! The header version follows from the API key and version
//! ([`ApiKey::response_header_version`]); ApiVersions always uses v0 so that
//! a client that does not yet know the broker's versions can read it.

use bytes::{BufMut, BytesMut};
use kafka_protocol::messages::ApiKey;
use kafka_protocol::protocol::Encodable;
use thiserror::Error;

use crate::frame::SIZE_PREFIX_BYTES;

/// The errors of the `kafka-protocol` encoders, boxed to keep their cause.
pub type EncodeSource = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Why a response could not be encoded. Each is a broker bug (a field set
/// that the version lacks, a response over 2 GiB), not a client's fault.
#[derive(Debug, Error)]
pub enum ResponseError {
    #[error("cannot encode the {api_key:?} v{api_version} response")]
    Encode {
        api_key: ApiKey,
        api_version: i16,
        #[source]
        source: EncodeSource,
    },
    #[error("{api_key:?} v{api_version} response of {size_bytes} bytes does not fit a frame")]
    TooLarge {
        api_key: ApiKey,
        api_version: i16,
        size_bytes: usize,
    },
    #[error(
        "{api_key:?} v{api_version} response encoded to {encoded_bytes} bytes but its size was computed as {computed_bytes}"
    )]
    SizeMismatch {
        api_key: ApiKey,
        api_version: i16,
        computed_bytes: usize,
        encoded_bytes: usize,
    },
}

/// Bytes of a response header of `header_version`: the correlation id, and
/// in v1 an empty tagged fields section.
pub fn header_bytes(header_version: i16) -> usize {
    if header_version >= 1 { 5 } else { 4 }
}

/// Writes a response header; the caller has written the size prefix.
pub fn put_header(buf: &mut impl BufMut, header_version: i16, correlation_id: i32) {
    buf.put_i32(correlation_id);
    if header_version >= 1 {
        buf.put_u8(0);
    }
}

/// `kafka-protocol` fails with `anyhow::Error`, which boxes into
/// [`EncodeSource`] without this crate naming `anyhow`.
fn encode_error<E: Into<EncodeSource>>(
    api_key: ApiKey,
    api_version: i16,
) -> impl FnOnce(E) -> ResponseError {
    move |err| ResponseError::Encode {
        api_key,
        api_version,
        source: err.into(),
    }
}

/// Encodes a whole response frame: size prefix, header, body. The buffer is
/// allocated once, at its final size.
pub fn encode<T: Encodable>(
    api_key: ApiKey,
    api_version: i16,
    correlation_id: i32,
    body: &T,
) -> Result<BytesMut, ResponseError> {
    let header_version = api_key.response_header_version(api_version);
    let body_bytes = body
        .compute_size(api_version)
        .map_err(encode_error(api_key, api_version))?;
    let size_bytes = header_bytes(header_version) + body_bytes;
    let Ok(size) = i32::try_from(size_bytes) else {
        return Err(ResponseError::TooLarge {
            api_key,
            api_version,
            size_bytes,
        });
    };
    let mut buf = BytesMut::with_capacity(SIZE_PREFIX_BYTES + size_bytes);
    buf.put_i32(size);
    put_header(&mut buf, header_version, correlation_id);
    body.encode(&mut buf, api_version)
        .map_err(encode_error(api_key, api_version))?;
    // A wrong size prefix would desynchronise the client's stream, so a
    // compute_size/encode disagreement must not reach the socket.
    let encoded_bytes = buf.len() - SIZE_PREFIX_BYTES;
    if encoded_bytes != size_bytes {
        return Err(ResponseError::SizeMismatch {
            api_key,
            api_version,
            computed_bytes: size_bytes,
            encoded_bytes,
        });
    }
    Ok(buf)
}

#[cfg(test)]
mod tests {
    use kafka_protocol::messages::{FetchResponse, MetadataResponse};

    use super::*;

    #[test]
    fn header_v0_is_the_correlation_id() {
        let frame = encode(
            ApiKey::Metadata,
            1,
            0x0102_0304,
            &MetadataResponse::default(),
        )
        .expect("encode");
        // Metadata v1 body: brokers [], controller_id, topics []: 12 bytes.
        assert_eq!(&frame[..8], &[0, 0, 0, 16, 1, 2, 3, 4]);
        assert_eq!(frame.len(), SIZE_PREFIX_BYTES + 4 + 12);
    }

    #[test]
    fn header_v1_adds_an_empty_tagged_fields_section() {
        let frame = encode(ApiKey::Metadata, 9, 7, &MetadataResponse::default()).expect("encode");
        assert_eq!(&frame[4..9], &[0, 0, 0, 7, 0]);
        let size = i32::from_be_bytes(frame[..4].try_into().expect("4 bytes"));
        assert_eq!(size as usize, frame.len() - SIZE_PREFIX_BYTES);
    }

    #[test]
    fn size_prefix_counts_header_and_body() {
        for version in [0, 1, 9, 12] {
            let frame =
                encode(ApiKey::Metadata, version, 1, &MetadataResponse::default()).expect("encode");
            let body_bytes = MetadataResponse::default()
                .compute_size(version)
                .expect("size");
            let header = header_bytes(ApiKey::Metadata.response_header_version(version));
            assert_eq!(frame.len(), SIZE_PREFIX_BYTES + header + body_bytes);
            assert_eq!(
                crate::frame::check(&frame, 1 << 20),
                Ok(Some(header + body_bytes))
            );
        }
    }

    #[test]
    fn a_field_the_version_lacks_is_an_error_with_its_cause() {
        // session_id only exists from Fetch v7.
        let body = FetchResponse::default().with_session_id(5);
        let err = encode(ApiKey::Fetch, 4, 1, &body).expect_err("v4 has no session id");
        assert!(matches!(
            err,
            ResponseError::Encode {
                api_key: ApiKey::Fetch,
                api_version: 4,
                ..
            }
        ));
        assert!(std::error::Error::source(&err).is_some());
    }
}
