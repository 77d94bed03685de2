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
//! - [`config`]: [`RaftConfig`], Kafka's `controller.quorum.*` settings.
//! - [`node`]: [`RaftNode`], its effects and transitions.
//! - `node/election`: Vote, BeginQuorumEpoch and EndQuorumEpoch handling.
//! - `node/replication`: Fetch and FetchSnapshot handling, the high watermark.
//! - [`memory_log`]: an in-memory log with an unsynced tail, for the
//!   simulation, the model check and tests.
//! - [`rng`]: the seeded random source.
//! - [`error`]: [`RaftError`] and the log's error type.
//!
//! # Driving a node
//!
//! The driver (the broker, or the simulation in `tests/`) owns the log, the
//! `quorum-state` file, the sockets and the clock. It decodes Kafka's
//! messages into [`Message`] and calls [`RaftNode::handle`]; it calls
//! [`RaftNode::poll`] by [`RaftNode::next_poll_ms`] (and after a
//! proposal); it proposes with [`RaftNode::propose`] and shuts a leader
//! down with [`RaftNode::resign`]. Every call returns [`Effect`]s, which the
//! driver carries out in order, each finished before the next: the vote in
//! a [`Effect::PersistQuorumState`] is on disk before the
//! [`Effect::Send`] that grants it, and a [`Effect::FlushLog`] is done
//! before a Fetch reports the offset.
//!
//! ```
//! use bytes::Bytes;
//! use runnel_raft::{Effect, MemoryLog, QuorumStateData, RaftConfig, RaftNode, Role};
//!
//! # fn main() -> Result<(), runnel_raft::RaftError> {
//! let mut log = MemoryLog::new(); // the broker: __cluster_metadata-0
//! let config = RaftConfig::new(1, [1]); // node.id, controller.quorum.voters
//! let mut node = RaftNode::new(config, QuorumStateData::default(), &log, 7, 0);
//! let mut now_ms = node.next_poll_ms();
//! let mut carry_out = |effects: Vec<Effect>, log: &mut MemoryLog| {
//!     for effect in effects {
//!         match effect {
//!             Effect::PersistQuorumState(_data) => { /* write and fsync quorum-state */ }
//!             Effect::FlushLog { .. } => log.flush(),
//!             Effect::Send { .. } => { /* encode as Kafka's request or response */ }
//!             Effect::HighWatermark { .. } => { /* replay committed records */ }
//!             Effect::RoleChanged { .. } => { /* become controller, or not */ }
//!         }
//!     }
//! };
//! let effects = node.poll(&mut log, now_ms)?; // a quorum of one elects itself
//! carry_out(effects, &mut log);
//! assert_eq!(node.role(), Role::Leader);
//! let end = node.propose(&mut log, [Bytes::from_static(b"record batch")])?;
//! now_ms += 1;
//! let effects = node.poll(&mut log, now_ms)?;
//! carry_out(effects, &mut log);
//! assert_eq!(node.high_watermark(), end.offset);
//! # Ok(())
//! # }
//! ```

pub mod config;
pub mod error;
pub mod log;
pub mod memory_log;
pub mod message;
pub mod node;
pub mod rng;
pub mod state;
pub mod types;

pub use error::{LogError, RaftError};
pub use log::{ReplicatedLog, SnapshotChunk};
pub use memory_log::MemoryLog;
pub use message::{ErrorCode, Message};
pub use node::{Effect, Mutation, RaftConfig, RaftNode};
pub use types::{
    Entry, Epoch, LeaderAndEpoch, NodeId, OffsetAndEpoch, Payload, Proposal, QuorumStateData, Role,
};
