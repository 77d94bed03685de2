//! Kafka framing: a request frame (size prefix, request header with
//! correlation id and client id, body) and a response frame (size prefix,
//! response header, body), built and read without sockets so they test
//! alone; [`read_frame`] reads one frame off a stream.
//!
//! [`request_frame`], [`response_frame`] and [`decode_response_as`] take
//! any body (a quorum message, a `kafka-protocol` struct, bytes the broker
//! encoded); [`encode_request`], [`encode_response`] and
//! [`decode_response`] are the quorum's messages through them. The
//! transport and the controller client share them.

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::{ApiKey, RequestHeader, ResponseHeader};
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};
use runnel_protocol::frame::SIZE_PREFIX_BYTES;
use runnel_raft::Message;
use tokio::io::{AsyncRead, AsyncReadExt};

use super::in_flight::Sent;
use crate::wire::{KafkaRequest, KafkaResponse, WireError, response_from_kafka};

/// The largest frame accepted: a Fetch answer of [`crate::wire::FETCH_MAX_BYTES`]
/// and room for its framing.
pub const MAX_FRAME_BYTES: usize = crate::wire::FETCH_MAX_BYTES as usize + (1 << 20);

#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    #[error("encoding the {api_key:?} v{version} request header")]
    EncodeHeader {
        api_key: ApiKey,
        version: i16,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    #[error("a response frame of {len} bytes is too short for its header")]
    ShortResponse { len: usize },
    #[error("a response with correlation id {correlation_id}, which no request waits for")]
    UnknownCorrelationId { correlation_id: i32 },
    #[error("decoding the {api_key:?} v{version} response header")]
    DecodeHeader {
        api_key: ApiKey,
        version: i16,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    #[error("encoding the {api_key:?} v{version} body")]
    EncodeBody {
        api_key: ApiKey,
        version: i16,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    #[error("decoding the {api_key:?} v{version} response body")]
    DecodeBody {
        api_key: ApiKey,
        version: i16,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    #[error("a response with correlation id {found}, but request {expected} waits")]
    CorrelationMismatch { expected: i32, found: i32 },
    #[error("a frame of {size} bytes, larger than {MAX_FRAME_BYTES}")]
    TooLarge { size: usize },
    #[error("a frame with a negative size {size}")]
    NegativeSize { size: i32 },
    #[error("the frame's size {size} does not fit Kafka's prefix")]
    SizeOverflow { size: usize },
    #[error("the quorum message")]
    Wire(#[from] WireError),
    #[error("reading a frame")]
    Read(#[source] std::io::Error),
    #[error("writing a frame")]
    Write(#[source] std::io::Error),
}

/// Reserves the size prefix of a frame being built.
fn start_frame() -> BytesMut {
    let mut buf = BytesMut::with_capacity(256);
    buf.put_i32(0);
    buf
}

/// Writes the size prefix of a built frame.
fn finish_frame(mut buf: BytesMut) -> Result<Bytes, FrameError> {
    let size = buf.len() - SIZE_PREFIX_BYTES;
    let prefix = i32::try_from(size).map_err(|_| FrameError::SizeOverflow { size })?;
    buf[..SIZE_PREFIX_BYTES].copy_from_slice(&prefix.to_be_bytes());
    Ok(buf.freeze())
}

/// A whole request frame of `api_key` at `version`: the request header
/// its version needs, then what `body` writes.
pub fn request_frame(
    correlation_id: i32,
    client_id: &str,
    api_key: ApiKey,
    version: i16,
    body: impl FnOnce(&mut BytesMut) -> Result<(), FrameError>,
) -> Result<Bytes, FrameError> {
    let header = RequestHeader::default()
        .with_request_api_key(api_key as i16)
        .with_request_api_version(version)
        .with_correlation_id(correlation_id)
        .with_client_id(Some(StrBytes::from_string(client_id.to_owned())));
    let mut buf = start_frame();
    header
        .encode(&mut buf, api_key.request_header_version(version))
        .map_err(|e| FrameError::EncodeHeader {
            api_key,
            version,
            source: e.into(),
        })?;
    body(&mut buf)?;
    finish_frame(buf)
}

/// A whole request frame for `request` at `version`.
pub fn encode_request(
    correlation_id: i32,
    client_id: &str,
    request: &KafkaRequest,
    version: i16,
) -> Result<Bytes, FrameError> {
    request_frame(
        correlation_id,
        client_id,
        request.api_key(),
        version,
        |buf| Ok(request.encode(version, buf)?),
    )
}

/// Writes `body` at `version` as the body of a frame of `api_key`.
pub fn encode_body(
    body: &impl Encodable,
    api_key: ApiKey,
    version: i16,
    buf: &mut BytesMut,
) -> Result<(), FrameError> {
    body.encode(buf, version)
        .map_err(|e| FrameError::EncodeBody {
            api_key,
            version,
            source: e.into(),
        })
}

/// A whole response frame answering request `correlation_id`: a response
/// header of `header_version` (Kafka's
/// [`ApiKey::response_header_version`]), then what `body` writes.
pub fn response_frame(
    correlation_id: i32,
    header_version: i16,
    body: impl FnOnce(&mut BytesMut) -> Result<(), FrameError>,
) -> Result<Bytes, FrameError> {
    let mut buf = start_frame();
    runnel_protocol::response::put_header(&mut buf, header_version, correlation_id);
    body(&mut buf)?;
    finish_frame(buf)
}

/// A whole response frame answering request `correlation_id` of
/// `api_key` at `version`.
pub fn encode_response(
    correlation_id: i32,
    response: &KafkaResponse,
    version: i16,
) -> Result<Bytes, FrameError> {
    let header_version = response.api_key().response_header_version(version);
    response_frame(correlation_id, header_version, |buf| {
        Ok(response.encode(version, buf)?)
    })
}

/// The correlation id a response frame (without its size prefix) answers.
pub fn response_correlation_id(frame: &[u8]) -> Result<i32, FrameError> {
    let Some(id) = frame.first_chunk::<4>() else {
        return Err(FrameError::ShortResponse { len: frame.len() });
    };
    Ok(i32::from_be_bytes(*id))
}

/// Reads the response header of a frame (without its size prefix)
/// answering a request of `api_key` at `version`; returns its correlation
/// id, and leaves `frame` at the body.
pub fn decode_response_header(
    frame: &mut Bytes,
    api_key: ApiKey,
    version: i16,
) -> Result<i32, FrameError> {
    let header_version = api_key.response_header_version(version);
    let header =
        ResponseHeader::decode(frame, header_version).map_err(|e| FrameError::DecodeHeader {
            api_key,
            version,
            source: e.into(),
        })?;
    Ok(header.correlation_id)
}

/// The core's message for a response frame (without its size prefix)
/// answering `sent`.
pub fn decode_response(mut frame: Bytes, sent: &Sent) -> Result<Message, FrameError> {
    decode_response_header(&mut frame, sent.api_key, sent.version)?;
    let response = KafkaResponse::decode(sent.api_key as i16, sent.version, &mut frame)?;
    Ok(response_from_kafka(&response, &sent.request)?)
}

/// The body of a response frame (without its size prefix) answering
/// request `correlation_id` of `api_key` at `version`, as `T`. Bad bytes
/// are an error, never a panic.
pub fn decode_response_as<T: Decodable>(
    mut frame: Bytes,
    correlation_id: i32,
    api_key: ApiKey,
    version: i16,
) -> Result<T, FrameError> {
    let found = decode_response_header(&mut frame, api_key, version)?;
    if found != correlation_id {
        return Err(FrameError::CorrelationMismatch {
            expected: correlation_id,
            found,
        });
    }
    T::decode(&mut frame, version).map_err(|e| FrameError::DecodeBody {
        api_key,
        version,
        source: e.into(),
    })
}

/// Reads one frame (without its size prefix); `None` at a clean end of
/// stream between frames.
pub async fn read_frame(
    stream: &mut (impl AsyncRead + Unpin),
) -> Result<Option<Bytes>, FrameError> {
    let mut prefix = [0u8; SIZE_PREFIX_BYTES];
    match stream.read_exact(&mut prefix).await {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(FrameError::Read(e)),
    }
    let size = i32::from_be_bytes(prefix);
    let size = usize::try_from(size).map_err(|_| FrameError::NegativeSize { size })?;
    if size > MAX_FRAME_BYTES {
        return Err(FrameError::TooLarge { size });
    }
    let mut frame = BytesMut::zeroed(size);
    stream
        .read_exact(&mut frame)
        .await
        .map_err(FrameError::Read)?;
    Ok(Some(frame.freeze()))
}

#[cfg(test)]
mod tests {
    use runnel_raft::message::{VoteRequest, VoteResponse};
    use runnel_raft::{LeaderAndEpoch, OffsetAndEpoch};

    use bytes::Buf;

    use super::*;

    use crate::wire::{
        VOTE_VERSION, WireContext, request_from_kafka, request_to_kafka, response_to_kafka,
    };

    /// Skips the size prefix of a frame built here.
    fn without_prefix(mut frame: Bytes) -> Bytes {
        frame.advance(SIZE_PREFIX_BYTES.min(frame.len()));
        frame
    }

    fn ctx(local_id: i32) -> WireContext {
        WireContext {
            cluster_id: "cluster".to_owned(),
            local_id,
            voters: vec![1, 2, 3],
            endpoints: Vec::new(),
        }
    }

    #[test]
    fn a_request_and_its_answer_cross_as_kafka_frames() -> Result<(), Box<dyn std::error::Error>> {
        let vote = Message::VoteRequest(VoteRequest {
            replica_epoch: 4,
            last_offset_and_epoch: OffsetAndEpoch::new(12, 3),
            pre_vote: true,
        });
        let kafka = request_to_kafka(&ctx(1), 2, &vote)?;
        let frame = encode_request(41, "runnel-raft-1", &kafka, VOTE_VERSION)?;
        let size = i32::from_be_bytes(frame[..4].try_into()?);
        assert_eq!(usize::try_from(size)?, frame.len() - 4);

        // The receiver reads the header as the broker reads any request.
        let request = runnel_protocol::request::parse(without_prefix(frame))?;
        assert_eq!(request.api_key, ApiKey::Vote);
        assert_eq!(request.correlation_id(), 41);
        assert_eq!(
            request.header.client_id.as_ref().map(|c| c.as_str()),
            Some("runnel-raft-1")
        );
        let mut body = request.body.clone();
        let decoded = KafkaRequest::decode(ApiKey::Vote as i16, request.api_version, &mut body)?;
        assert_eq!(request_from_kafka(&ctx(2), &decoded)?, (1, vote.clone()));

        let answer = Message::VoteResponse(VoteResponse {
            error: None,
            current_leader: LeaderAndEpoch {
                leader_id: None,
                epoch: 4,
            },
            vote_granted: true,
            pre_vote: true,
        });
        let response = response_to_kafka(&ctx(2), &answer)?;
        let frame = without_prefix(encode_response(41, &response, request.api_version)?);
        assert_eq!(response_correlation_id(&frame)?, 41);
        let sent = Sent {
            api_key: ApiKey::Vote,
            version: VOTE_VERSION,
            request: vote,
        };
        assert_eq!(decode_response(frame, &sent)?, answer);
        Ok(())
    }

    #[tokio::test]
    async fn frames_are_read_whole_and_a_clean_end_is_none() -> Result<(), FrameError> {
        let mut bytes: &[u8] = &[0, 0, 0, 3, 7, 8, 9];
        assert_eq!(
            read_frame(&mut bytes).await?.as_deref(),
            Some(&[7, 8, 9][..])
        );
        assert_eq!(read_frame(&mut bytes).await?, None);
        let mut huge: &[u8] = &[0x7f, 0, 0, 0];
        assert!(matches!(
            read_frame(&mut huge).await,
            Err(FrameError::TooLarge { .. })
        ));
        Ok(())
    }
}
