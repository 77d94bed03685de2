//! The values the quorum speaks in: node ids, epochs and offsets, log
//! entries, and the persisted `quorum-state` (Kafka's `QuorumStateData`).
//!
//! Offsets are `u64` and epochs `u32` here; Kafka's wire types are `int64`
//! and `int32` with `-1` for "none", which the broker maps to `Option` at
//! the edge.

use bytes::Bytes;

/// A node's `node.id`.
pub type NodeId = i32;

/// A leader epoch. Epoch 0 is the epoch before any election; no leader is
/// ever elected in it.
pub type Epoch = u32;

/// A position in the log with the epoch of the entry just before it: the
/// end of an epoch (`DivergingEpoch`), a snapshot id (`SnapshotId`), or a
/// log's (end offset, last epoch) compared in a vote.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct OffsetAndEpoch {
    /// Exclusive end offset.
    pub offset: u64,
    pub epoch: Epoch,
}

impl OffsetAndEpoch {
    pub const fn new(offset: u64, epoch: Epoch) -> Self {
        OffsetAndEpoch { offset, epoch }
    }

    /// Whether a log ending here is at least as up-to-date as one ending at
    /// `other`: the last epoch decides, then the end offset (KIP-595's vote
    /// check).
    pub fn is_up_to_date_with(&self, other: &OffsetAndEpoch) -> bool {
        (self.epoch, self.offset) >= (other.epoch, other.offset)
    }
}

/// What an entry carries. The leader writes a [`Payload::LeaderChange`] at
/// the start of its epoch (Kafka's `LeaderChangeMessage` control record):
/// the high watermark may only move once an entry of the leader's own epoch
/// is committed, and this one is always there.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Payload {
    LeaderChange { leader_id: NodeId },
    Data(Bytes),
}

/// One entry of the replicated log. For the broker an entry is a record
/// batch of `__cluster_metadata-0`: `offset` is its base offset, `epoch` its
/// partition leader epoch, and it spans `record_count` offsets, as Kafka
/// counts offsets per record, not per batch. The core never looks inside
/// [`Payload::Data`].
///
/// Every position the core deals in (log end, high watermark, fetch
/// offset, epoch end, snapshot id) is an entry boundary, since logs only
/// grow and shrink by whole entries.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Entry {
    pub offset: u64,
    pub epoch: Epoch,
    /// How many offsets the entry spans (its batch's records count); at
    /// least 1.
    pub record_count: u32,
    pub payload: Payload,
}

impl Entry {
    /// The offset of the entry's last record.
    pub fn last_offset(&self) -> u64 {
        self.next_offset() - 1
    }

    /// The offset just past the entry: where the next one starts.
    pub fn next_offset(&self) -> u64 {
        self.offset + u64::from(self.record_count.max(1))
    }
}

/// What a leader appends for the state machine: a record batch's bytes and
/// how many records (offsets) it holds.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Proposal {
    pub data: Bytes,
    /// At least 1.
    pub record_count: u32,
}

/// A payload of one record.
impl From<Bytes> for Proposal {
    fn from(data: Bytes) -> Self {
        Proposal {
            data,
            record_count: 1,
        }
    }
}

/// The persisted election state, Kafka's `quorum-state` file: written (and
/// synced) before the node acts on it, read back at start.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct QuorumStateData {
    pub leader_epoch: Epoch,
    pub leader_id: Option<NodeId>,
    pub voted_id: Option<NodeId>,
}

/// Which of KIP-595's (and KIP-996's) states a node is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    Unattached,
    Prospective,
    Candidate,
    Leader,
    Follower,
    Resigned,
}

/// The leader a node knows of, as Kafka's `LeaderIdAndEpoch`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct LeaderAndEpoch {
    pub leader_id: Option<NodeId>,
    pub epoch: Epoch,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn last_epoch_decides_before_the_end_offset() {
        let longer_older = OffsetAndEpoch::new(10, 1);
        let shorter_newer = OffsetAndEpoch::new(3, 2);
        assert!(shorter_newer.is_up_to_date_with(&longer_older));
        assert!(!longer_older.is_up_to_date_with(&shorter_newer));
        assert!(longer_older.is_up_to_date_with(&longer_older));
    }
}
