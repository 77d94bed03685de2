//! The crate's errors: [`RaftError`] for what a step or a proposal can fail
//! with, and [`LogError`], the boxed cause a [`crate::ReplicatedLog`]
//! implementation returns.
//!
//! Bad input from the network is never an error here: a message from an
//! unknown node, in a stale epoch or for an offset out of range is answered
//! or ignored. What remains is the local log failing, after which the
//! driver should stop the node (Kafka's raft client exits too), and a
//! proposal reaching a node that is not the leader.

use crate::types::{LeaderAndEpoch, OffsetAndEpoch};

/// The cause a log implementation reports (an I/O error, a corrupt file).
pub type LogError = Box<dyn std::error::Error + Send + Sync + 'static>;

#[derive(Debug, thiserror::Error)]
pub enum RaftError {
    #[error("not the leader (current leader {current:?})")]
    NotLeader { current: LeaderAndEpoch },
    #[error("a proposal of no records at offset {offset}")]
    EmptyProposal { offset: u64 },
    #[error("appending as leader at offset {offset}")]
    AppendAsLeader {
        offset: u64,
        #[source]
        source: LogError,
    },
    #[error("appending as follower at offset {offset}")]
    AppendAsFollower {
        offset: u64,
        #[source]
        source: LogError,
    },
    #[error("truncating the log to offset {offset}")]
    Truncate {
        offset: u64,
        #[source]
        source: LogError,
    },
    #[error("writing snapshot {snapshot_id:?} at position {position}")]
    WriteSnapshot {
        snapshot_id: OffsetAndEpoch,
        position: u64,
        #[source]
        source: LogError,
    },
}
