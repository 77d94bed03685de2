//! `runnel-raft`: the KRaft quorum core (KIP-595, with KIP-996 pre-vote,
//! check-quorum and KIP-630 snapshots), written sans-io: a node is
//! `(state, message or time, now) -> effects`, with no sockets, files or
//! clocks inside, and randomness only from a seed.
//!
//! - [`types`]: node ids, epochs, offsets, entries, the `quorum-state` data.
//! - [`message`]: Vote, BeginQuorumEpoch, EndQuorumEpoch, Fetch and
//!   FetchSnapshot bodies as the core reads them, and Kafka's error names.
//! - [`log`]: [`ReplicatedLog`], the narrow view of the local log.
//! - [`state`]: the epoch states (unattached, prospective, candidate,
//!   leader, follower, resigned).
//! - [`node`]: [`RaftNode`], its configuration, effects and transitions.
//! - `election`: Vote, BeginQuorumEpoch and EndQuorumEpoch handling.
//! - `replication`: Fetch and FetchSnapshot handling, the high watermark.
//! - [`memory_log`]: an in-memory log with an unsynced tail, for the
//!   simulation, the model check and tests.
//! - [`rng`]: the seeded random source.
//! - [`error`]: [`RaftError`] and the log's error type.
//!
//! The driver (the broker, or the simulation in `tests/`) decodes Kafka's
//! messages into [`Message`], calls [`RaftNode::handle`], [`RaftNode::poll`]
//! (by [`RaftNode::next_poll_ms`]) and [`RaftNode::propose`], and carries out
//! the returned [`Effect`]s in order.

mod election;
pub mod error;
pub mod log;
pub mod memory_log;
pub mod message;
pub mod node;
mod replication;
pub mod rng;
pub mod state;
pub mod types;

pub use error::{LogError, RaftError};
pub use log::{ReplicatedLog, SnapshotChunk};
pub use memory_log::MemoryLog;
pub use message::{ErrorCode, Message};
pub use node::{Effect, Mutation, RaftConfig, RaftNode};
pub use types::{
    Entry, Epoch, LeaderAndEpoch, NodeId, OffsetAndEpoch, Payload, QuorumStateData, Role,
};
