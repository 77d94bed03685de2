//! The quorum's messages, one struct per Kafka request or response body
//! (Vote, BeginQuorumEpoch, EndQuorumEpoch, Fetch and FetchSnapshot on
//! `__cluster_metadata-0`), reduced to the fields the core reads.
//!
//! The broker decodes Kafka's wire messages into these and encodes these
//! back; the sender's node id travels beside the message (it is the
//! request's `ReplicaId` / `VoterId`, or the node a response came from).
//! [`ErrorCode`] names Kafka's errors; the numbers are chosen by the API
//! handler, as everywhere in Runnel.

use bytes::Bytes;

use crate::types::{Entry, Epoch, LeaderAndEpoch, NodeId, OffsetAndEpoch};

/// The errors the quorum answers with, by Kafka's names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorCode {
    /// The request's epoch is older than the receiver's.
    FencedLeaderEpoch,
    /// The request's epoch is newer than the receiver's.
    UnknownLeaderEpoch,
    /// The receiver is not the leader (Fetch, FetchSnapshot).
    NotLeaderOrFollower,
    /// The sender is not a voter of this quorum (Vote, BeginQuorumEpoch).
    InconsistentVoterSet,
    /// FetchSnapshot asked for a snapshot the leader doesn't have.
    SnapshotNotFound,
    /// FetchSnapshot asked for a position past the snapshot's end.
    PositionOutOfRange,
}

/// Vote (KIP-595), also the pre-vote of KIP-996 when `pre_vote` is set.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct VoteRequest {
    /// The epoch the candidate runs in; for a pre-vote, the prospective's
    /// current epoch (it has not bumped it yet).
    pub replica_epoch: Epoch,
    /// The candidate's log end: (last epoch, end offset).
    pub last_offset_and_epoch: OffsetAndEpoch,
    pub pre_vote: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct VoteResponse {
    pub error: Option<ErrorCode>,
    /// The voter's current leader and epoch after handling the request.
    pub current_leader: LeaderAndEpoch,
    pub vote_granted: bool,
    /// Echoes the request, so a late answer to a pre-vote is not taken for a
    /// vote.
    pub pre_vote: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct BeginQuorumEpochRequest {
    pub leader_epoch: Epoch,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct BeginQuorumEpochResponse {
    pub error: Option<ErrorCode>,
    pub current_leader: LeaderAndEpoch,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct EndQuorumEpochRequest {
    pub leader_epoch: Epoch,
    /// Voters ordered by how far they had fetched, the most caught up first;
    /// the earlier a voter is listed, the sooner it starts an election.
    pub preferred_successors: Vec<NodeId>,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct EndQuorumEpochResponse {
    pub error: Option<ErrorCode>,
    pub current_leader: LeaderAndEpoch,
}

/// Fetch on `__cluster_metadata-0` by a voter or an observer.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct FetchRequest {
    pub current_leader_epoch: Epoch,
    /// The fetcher's (synced) log end offset.
    pub fetch_offset: u64,
    /// The epoch of the entry just before `fetch_offset` (0 if none).
    pub last_fetched_epoch: Epoch,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct FetchResponse {
    pub error: Option<ErrorCode>,
    pub current_leader: LeaderAndEpoch,
    pub high_watermark: u64,
    pub log_start_offset: u64,
    /// Entries from `fetch_offset` on; empty if either field below is set.
    pub records: Vec<Entry>,
    /// The fetcher's log diverges from the leader's: truncate to this epoch's
    /// end and fetch again.
    pub diverging_epoch: Option<OffsetAndEpoch>,
    /// The fetch offset is below the leader's log start: fetch this snapshot.
    pub snapshot_id: Option<OffsetAndEpoch>,
    /// The (fetch offset, last fetched epoch) of the request this answers.
    /// Not a wire field: the broker fills it from the request it matched by
    /// correlation id. A follower acts only on the answer to the fetch it
    /// waits for, so a late DivergingEpoch cannot truncate what it fetched
    /// since.
    pub request_position: OffsetAndEpoch,
}

/// FetchSnapshot (KIP-630): one chunk of a snapshot's bytes.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct FetchSnapshotRequest {
    pub current_leader_epoch: Epoch,
    pub snapshot_id: OffsetAndEpoch,
    pub position: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct FetchSnapshotResponse {
    pub error: Option<ErrorCode>,
    pub current_leader: LeaderAndEpoch,
    pub snapshot_id: OffsetAndEpoch,
    /// The snapshot's total size in bytes.
    pub size: u64,
    pub position: u64,
    pub unaligned_records: Bytes,
}

/// Any message of the quorum.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Message {
    VoteRequest(VoteRequest),
    VoteResponse(VoteResponse),
    BeginQuorumEpochRequest(BeginQuorumEpochRequest),
    BeginQuorumEpochResponse(BeginQuorumEpochResponse),
    EndQuorumEpochRequest(EndQuorumEpochRequest),
    EndQuorumEpochResponse(EndQuorumEpochResponse),
    FetchRequest(FetchRequest),
    FetchResponse(FetchResponse),
    FetchSnapshotRequest(FetchSnapshotRequest),
    FetchSnapshotResponse(FetchSnapshotResponse),
}

impl Message {
    /// Kafka's API name, for logs and metrics labels.
    pub fn api_name(&self) -> &'static str {
        match self {
            Message::VoteRequest(_) | Message::VoteResponse(_) => "Vote",
            Message::BeginQuorumEpochRequest(_) | Message::BeginQuorumEpochResponse(_) => {
                "BeginQuorumEpoch"
            }
            Message::EndQuorumEpochRequest(_) | Message::EndQuorumEpochResponse(_) => {
                "EndQuorumEpoch"
            }
            Message::FetchRequest(_) | Message::FetchResponse(_) => "Fetch",
            Message::FetchSnapshotRequest(_) | Message::FetchSnapshotResponse(_) => "FetchSnapshot",
        }
    }
}
