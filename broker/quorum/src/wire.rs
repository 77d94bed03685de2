//! `runnel-raft`'s [`Message`]s as Kafka's KRaft requests and responses:
//! Vote, BeginQuorumEpoch, EndQuorumEpoch, Fetch and FetchSnapshot on
//! `__cluster_metadata-0` (topic id `AAAAAAAAAAAAAAAAAAAAAQ`), as
//! `kafka-protocol` structs ([`KafkaRequest`], [`KafkaResponse`]) that
//! encode to and decode from bytes at a version.
//!
//! # Versions
//!
//! The newest both `kafka-protocol` 0.17 and Kafka 4.1 speak: Vote v2
//! (pre-vote), BeginQuorumEpoch v1, EndQuorumEpoch v1, Fetch v18,
//! FetchSnapshot v1 ([`VOTE_VERSION`]...). Any version the crate knows
//! decodes; a message that needs a newer version than asked for (a pre-vote
//! below Vote v2) fails to encode. The driver should send at
//! `min(ours, the peer's ApiVersions max)`.
//!
//! # Fields the core does not model
//!
//! KIP-853's fields get what a static quorum (`kraft.version` 0) sends:
//! directory ids are the nil uuid, `VoterId` is the recipient, the leader
//! endpoints of BeginQuorumEpoch and EndQuorumEpoch are this node's
//! controller listeners from [`WireContext`] (Kafka 4.1 refuses a v1
//! BeginQuorumEpoch without them), responses carry no node endpoints
//! (static voters know each other's addresses). Fetch asks for up to
//! [`FETCH_MAX_BYTES`] and does not long-poll ([`FETCH_MAX_WAIT_MS`]): the
//! core paces its fetches itself (`fetch_backoff_ms`). The follower's high
//! watermark in Fetch v18 is sent as unknown (`i64::MAX`).
//!
//! # Entries and offsets
//!
//! Kafka's offsets count records: a batch spans `base_offset..=last_offset`.
//! `runnel-raft`'s entries therefore span `record_count` offsets (one entry
//! = one batch, see [`crate::entry_batch`]); positions on the wire (fetch
//! offsets, high watermarks, diverging epochs, snapshot ids) are record
//! offsets, as Kafka's, so a Kafka voter and a Runnel voter agree on every
//! number they exchange.
//!
//! # Errors
//!
//! [`error_code`] and [`parse_error_code`] map [`ErrorCode`] to Kafka's
//! numbers and back. A response whose top-level error or partition error
//! the core has no name for is a [`WireError`] (the driver drops it and the
//! core retries on its timer). A request that can't be served (another
//! cluster, another partition, another recipient) is a [`WireError`] whose
//! [`WireError::error_code`] is the top-level error to answer with.

use bytes::{Bytes, BytesMut};
use kafka_protocol::ResponseError;
use kafka_protocol::messages::api_versions_response::ApiVersion;
use kafka_protocol::messages::{
    ApiKey, ApiVersionsResponse, BeginQuorumEpochRequest, BeginQuorumEpochResponse, BrokerId,
    EndQuorumEpochRequest, EndQuorumEpochResponse, FetchRequest, FetchResponse,
    FetchSnapshotRequest, FetchSnapshotResponse, TopicName, VoteRequest, VoteResponse,
    begin_quorum_epoch_request, begin_quorum_epoch_response, end_quorum_epoch_request,
    end_quorum_epoch_response, fetch_request, fetch_response, fetch_snapshot_request,
    fetch_snapshot_response, vote_request, vote_response,
};
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};
use runnel_raft::message as raft;
use runnel_raft::{ErrorCode, LeaderAndEpoch, Message, NodeId, OffsetAndEpoch};
use uuid::Uuid;

use crate::entry_batch::{EntryBatchError, decode_entries, encode_entries};

pub const METADATA_TOPIC: &str = "__cluster_metadata";
pub const METADATA_PARTITION: i32 = 0;
/// Kafka's fixed `__cluster_metadata` topic id, `AAAAAAAAAAAAAAAAAAAAAQ`.
pub const METADATA_TOPIC_ID: Uuid = Uuid::from_u128(1);

pub const VOTE_VERSION: i16 = 2;
pub const BEGIN_QUORUM_EPOCH_VERSION: i16 = 1;
pub const END_QUORUM_EPOCH_VERSION: i16 = 1;
pub const FETCH_VERSION: i16 = 18;
pub const FETCH_SNAPSHOT_VERSION: i16 = 1;

/// The ApiVersions versions the listener answers itself (as the broker's
/// listeners do).
pub const API_VERSIONS_MAX_VERSION: i16 = 3;

/// Kafka's `KafkaRaftClient.MAX_FETCH_SIZE_BYTES`.
pub const FETCH_MAX_BYTES: i32 = 8 * 1024 * 1024;
/// The leader answers at once; the core waits between empty fetches.
pub const FETCH_MAX_WAIT_MS: i32 = 0;

/// A controller listener of this node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// The listener's name, e.g. `CONTROLLER`.
    pub listener: String,
    pub host: String,
    pub port: u16,
}

/// What the messages carry beyond the core's fields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WireContext {
    pub cluster_id: String,
    /// This node's `node.id`.
    pub local_id: NodeId,
    /// The static voters (`controller.quorum.voters`), written into
    /// LEADER_CHANGE batches.
    pub voters: Vec<NodeId>,
    /// This node's controller listeners, sent as the leader's endpoints.
    pub endpoints: Vec<Endpoint>,
}

#[derive(Debug, thiserror::Error)]
pub enum WireError {
    #[error("{api} is a response, not a request")]
    NotARequest { api: &'static str },
    #[error("{api} is a request, not a response")]
    NotAResponse { api: &'static str },
    #[error("API key {api_key} is not one of the quorum's")]
    NotAQuorumApi { api_key: i16 },
    #[error("encoding {api} v{version}")]
    Encode {
        api: &'static str,
        version: i16,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    #[error("decoding {api} v{version}")]
    Decode {
        api: &'static str,
        version: i16,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    #[error("{api} from cluster {found:?}, this is cluster {expected:?}")]
    InconsistentClusterId {
        api: &'static str,
        expected: String,
        found: String,
    },
    #[error("{api} is not for exactly {METADATA_TOPIC}-{METADATA_PARTITION}")]
    NotMetadataPartition { api: &'static str },
    #[error("{api} is meant for voter {voter_id}, this is node {local_id}")]
    WrongRecipient {
        api: &'static str,
        voter_id: i32,
        local_id: NodeId,
    },
    #[error("{api} has {field} = {value}")]
    InvalidField {
        api: &'static str,
        field: &'static str,
        value: i64,
    },
    #[error("{api}'s {field} = {value} does not fit Kafka's field")]
    OutOfRange {
        api: &'static str,
        field: &'static str,
        value: u64,
    },
    #[error("{api} response has top-level error {code}")]
    TopLevelError { api: &'static str, code: i16 },
    #[error("{api} response has error {code}, which the quorum core does not handle")]
    UnexpectedErrorCode { api: &'static str, code: i16 },
    #[error("a {response} response does not answer a {request}")]
    ResponseMismatch {
        response: &'static str,
        request: &'static str,
    },
    #[error("{api}'s records")]
    Records {
        api: &'static str,
        #[source]
        source: EntryBatchError,
    },
}

impl WireError {
    /// The top-level error code to answer a request that failed so.
    pub fn error_code(&self) -> i16 {
        let error = match self {
            WireError::InconsistentClusterId { .. } => ResponseError::InconsistentClusterId,
            WireError::NotMetadataPartition { .. } => ResponseError::UnknownTopicOrPartition,
            WireError::WrongRecipient { .. } => ResponseError::InvalidVoterKey,
            _ => ResponseError::InvalidRequest,
        };
        error.code()
    }
}

/// Kafka's code for a core error (0 for none).
pub fn error_code(error: Option<ErrorCode>) -> i16 {
    let Some(error) = error else {
        return 0;
    };
    let kafka = match error {
        ErrorCode::FencedLeaderEpoch => ResponseError::FencedLeaderEpoch,
        ErrorCode::UnknownLeaderEpoch => ResponseError::UnknownLeaderEpoch,
        ErrorCode::NotLeaderOrFollower => ResponseError::NotLeaderOrFollower,
        ErrorCode::InconsistentVoterSet => ResponseError::InconsistentVoterSet,
        ErrorCode::SnapshotNotFound => ResponseError::SnapshotNotFound,
        ErrorCode::PositionOutOfRange => ResponseError::PositionOutOfRange,
    };
    kafka.code()
}

/// The core error a partition-level code names.
pub fn parse_error_code(api: &'static str, code: i16) -> Result<Option<ErrorCode>, WireError> {
    let Some(kafka) = ResponseError::try_from_code(code) else {
        return Ok(None);
    };
    let error = match kafka {
        ResponseError::FencedLeaderEpoch => ErrorCode::FencedLeaderEpoch,
        ResponseError::UnknownLeaderEpoch => ErrorCode::UnknownLeaderEpoch,
        ResponseError::NotLeaderOrFollower => ErrorCode::NotLeaderOrFollower,
        ResponseError::InconsistentVoterSet => ErrorCode::InconsistentVoterSet,
        ResponseError::SnapshotNotFound => ErrorCode::SnapshotNotFound,
        ResponseError::PositionOutOfRange => ErrorCode::PositionOutOfRange,
        _ => return Err(WireError::UnexpectedErrorCode { api, code }),
    };
    Ok(Some(error))
}

/// A quorum request as `kafka-protocol` holds it.
#[derive(Debug, Clone, PartialEq)]
pub enum KafkaRequest {
    Vote(VoteRequest),
    BeginQuorumEpoch(BeginQuorumEpochRequest),
    EndQuorumEpoch(EndQuorumEpochRequest),
    Fetch(FetchRequest),
    FetchSnapshot(FetchSnapshotRequest),
}

/// A quorum response as `kafka-protocol` holds it.
#[derive(Debug, Clone, PartialEq)]
pub enum KafkaResponse {
    Vote(VoteResponse),
    BeginQuorumEpoch(BeginQuorumEpochResponse),
    EndQuorumEpoch(EndQuorumEpochResponse),
    Fetch(FetchResponse),
    FetchSnapshot(FetchSnapshotResponse),
}

/// The version we send an API at.
pub fn version_of(api_key: ApiKey) -> Option<i16> {
    match api_key {
        ApiKey::Vote => Some(VOTE_VERSION),
        ApiKey::BeginQuorumEpoch => Some(BEGIN_QUORUM_EPOCH_VERSION),
        ApiKey::EndQuorumEpoch => Some(END_QUORUM_EPOCH_VERSION),
        ApiKey::Fetch => Some(FETCH_VERSION),
        ApiKey::FetchSnapshot => Some(FETCH_SNAPSHOT_VERSION),
        _ => None,
    }
}

/// `(api, min_version, max_version)` of the quorum's APIs as the listener
/// serves them: any version `kafka-protocol` decodes, up to the one we
/// send. A broker answering ApiVersions on the controller listener lists
/// these with its own.
pub fn quorum_api_versions() -> impl Iterator<Item = (ApiKey, i16, i16)> {
    [
        ApiKey::Fetch,
        ApiKey::Vote,
        ApiKey::BeginQuorumEpoch,
        ApiKey::EndQuorumEpoch,
        ApiKey::FetchSnapshot,
    ]
    .into_iter()
    .filter_map(|key| Some((key, key.valid_versions().min, version_of(key)?)))
}

/// The listener's own ApiVersions answer (when no broker is hooked in) to
/// a request of `request_version`, and the version to encode it at: the
/// quorum's APIs and ApiVersions. A version above ours is answered, as
/// Kafka does, with UNSUPPORTED_VERSION at v0 (so the client retries
/// with one from the list).
pub fn api_versions_response(request_version: i16) -> (i16, ApiVersionsResponse) {
    let api_keys = quorum_api_versions()
        .chain([(ApiKey::ApiVersions, 0, API_VERSIONS_MAX_VERSION)])
        .map(|(key, min, max)| {
            ApiVersion::default()
                .with_api_key(key as i16)
                .with_min_version(min)
                .with_max_version(max)
        })
        .collect();
    let response = ApiVersionsResponse::default().with_api_keys(api_keys);
    if (0..=API_VERSIONS_MAX_VERSION).contains(&request_version) {
        (request_version, response)
    } else {
        let code = ResponseError::UnsupportedVersion.code();
        (0, response.with_error_code(code))
    }
}

fn api_name(api_key: ApiKey) -> &'static str {
    match api_key {
        ApiKey::Vote => "Vote",
        ApiKey::BeginQuorumEpoch => "BeginQuorumEpoch",
        ApiKey::EndQuorumEpoch => "EndQuorumEpoch",
        ApiKey::Fetch => "Fetch",
        ApiKey::FetchSnapshot => "FetchSnapshot",
        _ => "another API",
    }
}

fn encode_body(
    body: &impl Encodable,
    api_key: ApiKey,
    version: i16,
    out: &mut BytesMut,
) -> Result<(), WireError> {
    body.encode(out, version).map_err(|e| WireError::Encode {
        api: api_name(api_key),
        version,
        source: e.into(),
    })
}

fn decode_body<T: Decodable>(
    api_key: ApiKey,
    version: i16,
    bytes: &mut Bytes,
) -> Result<T, WireError> {
    T::decode(bytes, version).map_err(|e| WireError::Decode {
        api: api_name(api_key),
        version,
        source: e.into(),
    })
}

fn quorum_api(api_key: i16) -> Result<ApiKey, WireError> {
    ApiKey::try_from(api_key)
        .ok()
        .filter(|key| version_of(*key).is_some())
        .ok_or(WireError::NotAQuorumApi { api_key })
}

impl KafkaRequest {
    pub fn api_key(&self) -> ApiKey {
        match self {
            KafkaRequest::Vote(_) => ApiKey::Vote,
            KafkaRequest::BeginQuorumEpoch(_) => ApiKey::BeginQuorumEpoch,
            KafkaRequest::EndQuorumEpoch(_) => ApiKey::EndQuorumEpoch,
            KafkaRequest::Fetch(_) => ApiKey::Fetch,
            KafkaRequest::FetchSnapshot(_) => ApiKey::FetchSnapshot,
        }
    }

    /// Encodes the body (no header) at `version`.
    pub fn encode(&self, version: i16, out: &mut BytesMut) -> Result<(), WireError> {
        let key = self.api_key();
        match self {
            KafkaRequest::Vote(r) => encode_body(r, key, version, out),
            KafkaRequest::BeginQuorumEpoch(r) => encode_body(r, key, version, out),
            KafkaRequest::EndQuorumEpoch(r) => encode_body(r, key, version, out),
            KafkaRequest::Fetch(r) if version <= 14 => {
                // Before v15 the replica id is a field of its own.
                let mut r = r.clone();
                r.replica_id = r.replica_state.replica_id;
                r.replica_state = Default::default();
                encode_body(&r, key, version, out)
            }
            KafkaRequest::Fetch(r) => encode_body(r, key, version, out),
            KafkaRequest::FetchSnapshot(r) => encode_body(r, key, version, out),
        }
    }

    /// Decodes a body (the header already read) of API `api_key`.
    pub fn decode(api_key: i16, version: i16, bytes: &mut Bytes) -> Result<Self, WireError> {
        let key = quorum_api(api_key)?;
        Ok(match key {
            ApiKey::Vote => KafkaRequest::Vote(decode_body(key, version, bytes)?),
            ApiKey::BeginQuorumEpoch => {
                KafkaRequest::BeginQuorumEpoch(decode_body(key, version, bytes)?)
            }
            ApiKey::EndQuorumEpoch => {
                KafkaRequest::EndQuorumEpoch(decode_body(key, version, bytes)?)
            }
            ApiKey::Fetch => KafkaRequest::Fetch(decode_body(key, version, bytes)?),
            _ => KafkaRequest::FetchSnapshot(decode_body(key, version, bytes)?),
        })
    }
}

impl KafkaResponse {
    pub fn api_key(&self) -> ApiKey {
        match self {
            KafkaResponse::Vote(_) => ApiKey::Vote,
            KafkaResponse::BeginQuorumEpoch(_) => ApiKey::BeginQuorumEpoch,
            KafkaResponse::EndQuorumEpoch(_) => ApiKey::EndQuorumEpoch,
            KafkaResponse::Fetch(_) => ApiKey::Fetch,
            KafkaResponse::FetchSnapshot(_) => ApiKey::FetchSnapshot,
        }
    }

    pub fn encode(&self, version: i16, out: &mut BytesMut) -> Result<(), WireError> {
        let key = self.api_key();
        match self {
            KafkaResponse::Vote(r) => encode_body(r, key, version, out),
            KafkaResponse::BeginQuorumEpoch(r) => encode_body(r, key, version, out),
            KafkaResponse::EndQuorumEpoch(r) => encode_body(r, key, version, out),
            KafkaResponse::Fetch(r) => encode_body(r, key, version, out),
            KafkaResponse::FetchSnapshot(r) => encode_body(r, key, version, out),
        }
    }

    pub fn decode(api_key: i16, version: i16, bytes: &mut Bytes) -> Result<Self, WireError> {
        let key = quorum_api(api_key)?;
        Ok(match key {
            ApiKey::Vote => KafkaResponse::Vote(decode_body(key, version, bytes)?),
            ApiKey::BeginQuorumEpoch => {
                KafkaResponse::BeginQuorumEpoch(decode_body(key, version, bytes)?)
            }
            ApiKey::EndQuorumEpoch => {
                KafkaResponse::EndQuorumEpoch(decode_body(key, version, bytes)?)
            }
            ApiKey::Fetch => KafkaResponse::Fetch(decode_body(key, version, bytes)?),
            _ => KafkaResponse::FetchSnapshot(decode_body(key, version, bytes)?),
        })
    }

    /// A response carrying only a top-level error, for a request that
    /// could not be served (see [`WireError::error_code`]).
    pub fn error(api_key: ApiKey, code: i16) -> Option<Self> {
        Some(match api_key {
            ApiKey::Vote => KafkaResponse::Vote(VoteResponse::default().with_error_code(code)),
            ApiKey::BeginQuorumEpoch => KafkaResponse::BeginQuorumEpoch(
                BeginQuorumEpochResponse::default().with_error_code(code),
            ),
            ApiKey::EndQuorumEpoch => KafkaResponse::EndQuorumEpoch(
                EndQuorumEpochResponse::default().with_error_code(code),
            ),
            ApiKey::Fetch => KafkaResponse::Fetch(FetchResponse::default().with_error_code(code)),
            ApiKey::FetchSnapshot => {
                KafkaResponse::FetchSnapshot(FetchSnapshotResponse::default().with_error_code(code))
            }
            _ => return None,
        })
    }
}

// ---- numbers between the core's unsigned fields and Kafka's signed ones ----

fn to_i32(api: &'static str, field: &'static str, value: u32) -> Result<i32, WireError> {
    i32::try_from(value).map_err(|_| WireError::OutOfRange {
        api,
        field,
        value: u64::from(value),
    })
}

fn to_i64(api: &'static str, field: &'static str, value: u64) -> Result<i64, WireError> {
    i64::try_from(value).map_err(|_| WireError::OutOfRange { api, field, value })
}

fn from_i32(api: &'static str, field: &'static str, value: i32) -> Result<u32, WireError> {
    u32::try_from(value).map_err(|_| WireError::InvalidField {
        api,
        field,
        value: i64::from(value),
    })
}

fn from_i64(api: &'static str, field: &'static str, value: i64) -> Result<u64, WireError> {
    u64::try_from(value).map_err(|_| WireError::InvalidField { api, field, value })
}

/// A node id where `-1` means none.
fn optional_id(
    api: &'static str,
    field: &'static str,
    id: i32,
) -> Result<Option<NodeId>, WireError> {
    match id {
        -1 => Ok(None),
        id if id >= 0 => Ok(Some(id)),
        id => Err(WireError::InvalidField {
            api,
            field,
            value: i64::from(id),
        }),
    }
}

fn node_id(api: &'static str, field: &'static str, id: i32) -> Result<NodeId, WireError> {
    optional_id(api, field, id)?.ok_or(WireError::InvalidField {
        api,
        field,
        value: i64::from(id),
    })
}

fn leader_and_epoch(
    api: &'static str,
    leader_id: i32,
    leader_epoch: i32,
) -> Result<LeaderAndEpoch, WireError> {
    Ok(LeaderAndEpoch {
        leader_id: optional_id(api, "LeaderId", leader_id)?,
        epoch: from_i32(api, "LeaderEpoch", leader_epoch)?,
    })
}

fn leader_fields(api: &'static str, leader: LeaderAndEpoch) -> Result<(BrokerId, i32), WireError> {
    Ok((
        BrokerId(leader.leader_id.unwrap_or(-1)),
        to_i32(api, "LeaderEpoch", leader.epoch)?,
    ))
}

fn topic_name() -> TopicName {
    TopicName(StrBytes::from_static_str(METADATA_TOPIC))
}

fn is_metadata_topic(name: &TopicName) -> bool {
    name.0.as_str() == METADATA_TOPIC
}

fn cluster_id(ctx: &WireContext) -> Option<StrBytes> {
    Some(StrBytes::from_string(ctx.cluster_id.clone()))
}

fn check_cluster_id(
    api: &'static str,
    ctx: &WireContext,
    found: Option<&StrBytes>,
) -> Result<(), WireError> {
    // Kafka accepts a request without a cluster id.
    match found {
        Some(found) if found.as_str() != ctx.cluster_id => Err(WireError::InconsistentClusterId {
            api,
            expected: ctx.cluster_id.clone(),
            found: found.as_str().to_owned(),
        }),
        _ => Ok(()),
    }
}

fn check_recipient(
    api: &'static str,
    ctx: &WireContext,
    voter_id: BrokerId,
) -> Result<(), WireError> {
    // -1: a v0 request, which names no recipient.
    if voter_id.0 != -1 && voter_id.0 != ctx.local_id {
        return Err(WireError::WrongRecipient {
            api,
            voter_id: voter_id.0,
            local_id: ctx.local_id,
        });
    }
    Ok(())
}

/// The one partition of a one-topic message, if it is the metadata
/// partition.
fn only<'a, T, P>(
    api: &'static str,
    topics: &'a [T],
    is_metadata: impl Fn(&T) -> bool,
    partitions: impl Fn(&'a T) -> &'a [P],
    index: impl Fn(&P) -> i32,
) -> Result<&'a P, WireError> {
    match topics {
        [topic] if is_metadata(topic) => match partitions(topic) {
            [partition] if index(partition) == METADATA_PARTITION => Ok(partition),
            _ => Err(WireError::NotMetadataPartition { api }),
        },
        _ => Err(WireError::NotMetadataPartition { api }),
    }
}

mod requests;
mod responses;

pub use requests::{request_from_kafka, request_to_kafka};
pub use responses::{response_from_kafka, response_to_kafka};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn core_errors_have_kafkas_codes_and_come_back() -> Result<(), WireError> {
        let expected = [
            (ErrorCode::FencedLeaderEpoch, 74),
            (ErrorCode::UnknownLeaderEpoch, 75),
            (ErrorCode::NotLeaderOrFollower, 6),
            (ErrorCode::InconsistentVoterSet, 94),
            (ErrorCode::SnapshotNotFound, 98),
            (ErrorCode::PositionOutOfRange, 99),
        ];
        for (error, code) in expected {
            assert_eq!(error_code(Some(error)), code, "{error:?}");
            assert_eq!(parse_error_code("Fetch", code)?, Some(error));
        }
        assert_eq!(error_code(None), 0);
        assert_eq!(parse_error_code("Fetch", 0)?, None);
        Ok(())
    }

    #[test]
    fn codes_the_core_does_not_handle_are_errors() {
        // BROKER_NOT_AVAILABLE, INVALID_REQUEST, an unknown code.
        for code in [8, 42, 999] {
            assert!(matches!(
                parse_error_code("Vote", code),
                Err(WireError::UnexpectedErrorCode { code: c, .. }) if c == code
            ));
        }
    }

    #[test]
    fn unservable_requests_answer_kafkas_top_level_codes() {
        let cluster = WireError::InconsistentClusterId {
            api: "Vote",
            expected: "a".into(),
            found: "b".into(),
        };
        assert_eq!(cluster.error_code(), 104);
        assert_eq!(
            WireError::NotMetadataPartition { api: "Fetch" }.error_code(),
            3
        );
        let recipient = WireError::WrongRecipient {
            api: "Vote",
            voter_id: 2,
            local_id: 1,
        };
        assert_eq!(recipient.error_code(), 125);
        assert_eq!(WireError::NotAQuorumApi { api_key: 0 }.error_code(), 42);
    }

    #[test]
    fn the_metadata_topic_id_is_kafkas() {
        assert_eq!(
            crate::quorum_state_file::uuid_to_base64(&METADATA_TOPIC_ID),
            "AAAAAAAAAAAAAAAAAAAAAQ"
        );
    }
}
