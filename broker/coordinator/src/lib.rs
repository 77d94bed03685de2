//! `runnel-coordinator`: the group and transaction state machines, written
//! as `(state, request, now) -> (state, effects)` with no I/O.
//!
//! - [`group`]: one consumer group's classic-protocol rebalance state machine.
//! - [`group_metadata`]: the stored form of a group (GroupMetadataValue).
//! - [`offsets_topic`]: the `__consumer_offsets` key/value record formats,
//!   byte-compatible with Apache Kafka.
//! - `record_codec`: the field encodings those records share (versions,
//!   strings, varints, tagged fields) and their error type.
//! - [`partition`]: which `__consumer_offsets` partition coordinates a group
//!   (Java `String.hashCode`, as Kafka).
//! - [`offsets`]: the in-memory committed offsets, rebuilt by replaying
//!   `__consumer_offsets` and expired by retention.
//! - [`txn`]: one transactional id's state machine (InitProducerId,
//!   AddPartitionsToTxn, EndTxn, timeouts).
//! - [`txn_log`]: the `__transaction_state` key/value record formats.

pub mod group;
pub mod group_metadata;
pub mod offsets;
pub mod offsets_topic;
pub mod partition;
mod record_codec;
pub mod txn;
pub mod txn_log;

pub use group::{
    Effect, EvictionReason, Group, GroupConfig, GroupDescription, GroupState, HeartbeatRequest,
    JoinMember, JoinOutcome, JoinRequest, JoinResponse, LeaveMember, LeaveOutcome, Member,
    MemberDescription, SyncOutcome, SyncRequest, SyncResponse,
};
pub use group_metadata::{GroupMetadataValue, MemberMetadata};
pub use offsets::{OffsetStore, RetentionClock};
pub use offsets_topic::{OffsetKey, OffsetValue, OffsetsRecord, OffsetsRecordError};
pub use partition::{coordinator_partition, java_string_hash};
