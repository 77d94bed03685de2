//! Requests: the header read from a frame, the body left as bytes until the
//! API handler decodes it.
//!
//! A request frame (the bytes after the size prefix, see [`crate::frame`]):
//!
//! | offset | size | field                                              |
//! |-------:|-----:|----------------------------------------------------|
//! |      0 |    2 | request_api_key (i16)                              |
//! |      2 |    2 | request_api_version (i16)                          |
//! |      4 |    4 | correlation_id (i32)                               |
//! |      8 |    … | client_id (nullable string, i16 length)            |
//! |      … |    … | header v2 only: tagged fields (unsigned varint count, then fields) |
//! |      … |    … | body, per API key and version                      |
//!
//! The header version follows from the API key and version
//! ([`ApiKey::request_header_version`]): v1 for classic versions, v2 for
//! flexible ones. Every header starts with the same 8 bytes, so the
//! correlation id of a request with an unknown API key can still be logged.
//!
//! Decoding reads from `Bytes`, so the client id and the body share the
//! frame's memory instead of copying it.

use bytes::{Buf, Bytes};
use kafka_protocol::messages::{ApiKey, RequestHeader};
use kafka_protocol::protocol::Decodable;
use thiserror::Error;

/// Bytes every request header starts with: api key, api version and
/// correlation id.
pub const FIXED_HEADER_BYTES: usize = 8;

/// The errors of the `kafka-protocol` decoders, boxed to keep their cause.
pub type DecodeSource = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Why a request frame could not be read.
#[derive(Debug, Error)]
pub enum RequestError {
    #[error(
        "request frame is {len_bytes} bytes, shorter than the {FIXED_HEADER_BYTES}-byte start of every request header"
    )]
    TooShort { len_bytes: usize },
    #[error("request has unknown api key {key} (correlation id {correlation_id})")]
    UnknownApiKey { key: i16, correlation_id: i32 },
    #[error(
        "cannot decode the request header of {api_key:?} v{api_version} (correlation id {correlation_id})"
    )]
    DecodeHeader {
        api_key: ApiKey,
        api_version: i16,
        correlation_id: i32,
        #[source]
        source: DecodeSource,
    },
    #[error(
        "cannot decode the body of {api_key:?} v{api_version} (correlation id {correlation_id})"
    )]
    DecodeBody {
        api_key: ApiKey,
        api_version: i16,
        correlation_id: i32,
        #[source]
        source: DecodeSource,
    },
}

/// A request with its header decoded and its body still encoded.
#[derive(Debug, Clone)]
pub struct Request {
    pub api_key: ApiKey,
    pub api_version: i16,
    pub header: RequestHeader,
    /// The bytes after the header: a slice of the frame, not a copy.
    pub body: Bytes,
}

impl Request {
    pub fn correlation_id(&self) -> i32 {
        self.header.correlation_id
    }
}

/// Reads the header of a request frame (the bytes after the size prefix).
/// Short or garbage frames give an error, never a panic. The API version is
/// not checked against what the broker serves: that is the handler's call,
/// since an unsupported version still gets an answer.
pub fn parse(frame: Bytes) -> Result<Request, RequestError> {
    let Some(fixed) = frame.first_chunk::<FIXED_HEADER_BYTES>() else {
        return Err(RequestError::TooShort {
            len_bytes: frame.len(),
        });
    };
    let mut fixed = &fixed[..];
    let key = fixed.get_i16();
    let api_version = fixed.get_i16();
    let correlation_id = fixed.get_i32();
    let api_key = ApiKey::try_from(key).map_err(|()| RequestError::UnknownApiKey {
        key,
        correlation_id,
    })?;
    let header_version = api_key.request_header_version(api_version);
    let mut rest = frame;
    let header = RequestHeader::decode(&mut rest, header_version).map_err(|err| {
        RequestError::DecodeHeader {
            api_key,
            api_version,
            correlation_id,
            source: err.into(),
        }
    })?;
    Ok(Request {
        api_key,
        api_version,
        header,
        body: rest,
    })
}

/// Decodes the body of `request` as `T` at the request's version.
///
/// Garbage gives an error, never a panic or an abort. Element counts and
/// lengths in the body come from the client and are not tied to the frame
/// size (capped by [`crate::frame::check`]); upstream `kafka-protocol` 0.17
/// reserves memory for them before decoding an element, so a 14-byte
/// Metadata request could abort the process on a ~154 GB allocation. The
/// workspace uses a patched copy (`vendor/kafka-protocol`, see its
/// `RUNNEL-PATCH.md`) that bounds each reservation by the bytes left.
pub fn decode_body<T: Decodable>(request: &Request) -> Result<T, RequestError> {
    let mut body = request.body.clone();
    T::decode(&mut body, request.api_version).map_err(|err| RequestError::DecodeBody {
        api_key: request.api_key,
        api_version: request.api_version,
        correlation_id: request.header.correlation_id,
        source: err.into(),
    })
}

#[cfg(test)]
mod tests {
    use bytes::{BufMut, BytesMut};
    use kafka_protocol::messages::{
        MetadataRequest, TopicName, metadata_request::MetadataRequestTopic,
    };
    use kafka_protocol::protocol::{Encodable, StrBytes};

    use super::*;

    fn frame<T: Encodable>(api_key: ApiKey, version: i16, correlation_id: i32, body: &T) -> Bytes {
        let header = RequestHeader::default()
            .with_request_api_key(api_key as i16)
            .with_request_api_version(version)
            .with_correlation_id(correlation_id)
            .with_client_id(Some(StrBytes::from_static_str("runnel-test")));
        let mut buf = BytesMut::new();
        header
            .encode(&mut buf, api_key.request_header_version(version))
            .expect("encode header");
        body.encode(&mut buf, version).expect("encode body");
        buf.freeze()
    }

    fn metadata_request() -> MetadataRequest {
        MetadataRequest::default().with_topics(Some(vec![
            MetadataRequestTopic::default()
                .with_name(Some(TopicName(StrBytes::from_static_str("orders")))),
        ]))
    }

    #[test]
    fn parses_a_classic_header_and_decodes_the_body() {
        let body = metadata_request();
        let request = parse(frame(ApiKey::Metadata, 4, 42, &body)).expect("parse");
        assert_eq!(request.api_key, ApiKey::Metadata);
        assert_eq!(request.api_version, 4);
        assert_eq!(request.correlation_id(), 42);
        assert_eq!(request.header.client_id.as_deref(), Some("runnel-test"));
        let decoded: MetadataRequest = decode_body(&request).expect("decode body");
        assert_eq!(decoded, body);
    }

    #[test]
    fn parses_a_flexible_header_with_tagged_fields() {
        let body = metadata_request();
        let frame = frame(ApiKey::Metadata, 12, 7, &body);
        // Header v2: 8 fixed bytes, client id (2 + 11), tagged field count.
        assert_eq!(frame[8 + 2 + 11], 0);
        let request = parse(frame).expect("parse");
        assert_eq!(request.correlation_id(), 7);
        let decoded: MetadataRequest = decode_body(&request).expect("decode body");
        assert_eq!(decoded, body);
    }

    #[test]
    fn body_is_a_slice_of_the_frame() {
        let frame = frame(ApiKey::Metadata, 4, 1, &metadata_request());
        let start = frame.as_ptr() as usize;
        let request = parse(frame).expect("parse");
        assert_eq!(request.body.as_ptr() as usize, start + 8 + 2 + 11);
    }

    #[test]
    fn unknown_api_key_keeps_the_correlation_id() {
        let mut raw = BytesMut::new();
        raw.put_i16(9999);
        raw.put_i16(0);
        raw.put_i32(1234);
        raw.put_i16(-1);
        match parse(raw.freeze()) {
            Err(RequestError::UnknownApiKey {
                key: 9999,
                correlation_id: 1234,
            }) => {}
            other => panic!("expected UnknownApiKey, got {other:?}"),
        }
    }

    #[test]
    fn short_frames_are_errors() {
        for len in 0..FIXED_HEADER_BYTES {
            let raw = Bytes::from(vec![0u8; len]);
            assert!(matches!(
                parse(raw),
                Err(RequestError::TooShort { len_bytes }) if len_bytes == len
            ));
        }
        // The fixed part is there but the client id length is cut off.
        let raw = Bytes::from_static(&[0, 3, 0, 4, 0, 0, 0, 9, 0]);
        assert!(matches!(
            parse(raw),
            Err(RequestError::DecodeHeader {
                api_key: ApiKey::Metadata,
                correlation_id: 9,
                ..
            })
        ));
    }

    #[test]
    fn truncated_body_is_an_error() {
        let frame = frame(ApiKey::Metadata, 4, 5, &metadata_request());
        let request = parse(frame.slice(..frame.len() - 3)).expect("header is whole");
        let err = decode_body::<MetadataRequest>(&request).expect_err("body is cut");
        assert!(matches!(
            err,
            RequestError::DecodeBody {
                correlation_id: 5,
                ..
            }
        ));
        assert!(std::error::Error::source(&err).is_some());
    }

    /// xorshift64: deterministic garbage without a dependency.
    fn next(state: &mut u64) -> u64 {
        *state ^= *state << 13;
        *state ^= *state >> 7;
        *state ^= *state << 17;
        *state
    }

    #[test]
    fn random_frames_never_panic() {
        let mut state = 0x9E37_79B9_7F4A_7C15;
        let mut parsed = 0;
        for _ in 0..10_000 {
            let len = (next(&mut state) % 48) as usize;
            let mut raw: Vec<u8> = (0..len).map(|_| next(&mut state) as u8).collect();
            // Most frames get a real API key so the header decoder sees them.
            if len >= 2 && !next(&mut state).is_multiple_of(4) {
                let key = (next(&mut state) % 70) as i16;
                raw[..2].copy_from_slice(&key.to_be_bytes());
            }
            if parse(Bytes::from(raw)).is_ok() {
                parsed += 1;
            }
        }
        // Some garbage is a valid header (e.g. a null client id); most is not.
        assert!(parsed < 10_000);
    }
}
