//! The epoch states of KIP-595 and KIP-996, one struct each, as Kafka's
//! `UnattachedState`, `ProspectiveState`, `CandidateState`, `LeaderState`,
//! `FollowerState` and `ResignedState`; [`EpochState`] is the one a node is
//! in (Kafka's `QuorumState` holds it).
//!
//! The structs hold only what each state needs; the transitions between them
//! are `RaftNode`'s methods.

use std::collections::{BTreeMap, BTreeSet};

use crate::types::{Epoch, LeaderAndEpoch, NodeId, OffsetAndEpoch, QuorumStateData, Role};

/// No leader known in `epoch` (or one known but not yet followed); may
/// have voted.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct UnattachedState {
    pub epoch: Epoch,
    pub voted_id: Option<NodeId>,
    pub election_deadline_ms: u64,
}

/// Asking for pre-votes (KIP-996) before bumping the epoch.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ProspectiveState {
    pub epoch: Epoch,
    pub voted_id: Option<NodeId>,
    /// The leader followed before, to return to if the pre-vote fails.
    pub leader_id: Option<NodeId>,
    pub granted: BTreeSet<NodeId>,
    pub rejected: BTreeSet<NodeId>,
    pub election_deadline_ms: u64,
}

/// Running in `epoch`, having voted for itself.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CandidateState {
    pub epoch: Epoch,
    pub granted: BTreeSet<NodeId>,
    pub rejected: BTreeSet<NodeId>,
    pub election_deadline_ms: u64,
}

/// What the leader knows of one voter.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct ReplicaState {
    /// The voter's synced log end, from its last valid Fetch.
    pub end_offset: Option<u64>,
    pub last_fetch_ms: Option<u64>,
    /// It answered BeginQuorumEpoch or fetched in this epoch.
    pub has_acknowledged_leader: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct LeaderState {
    pub epoch: Epoch,
    /// The offset of this epoch's LeaderChange entry: the high watermark
    /// moves only past it.
    pub epoch_start_offset: u64,
    /// Every voter but the leader.
    pub voter_states: BTreeMap<NodeId, ReplicaState>,
    /// Voters heard from since the last check-quorum.
    pub fetched_since_check: BTreeSet<NodeId>,
    pub check_quorum_deadline_ms: u64,
    pub begin_quorum_resend_ms: u64,
}

/// The fetch a follower has sent and not had answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct InFlightFetch {
    pub sent_ms: u64,
    /// For a Fetch, the position it fetched from; for a FetchSnapshot, the
    /// snapshot id and the byte position.
    pub position: OffsetAndEpoch,
    pub snapshot_position: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct FollowerState {
    pub epoch: Epoch,
    pub leader_id: NodeId,
    /// The vote cast in this epoch before the leader was known.
    pub voted_id: Option<NodeId>,
    /// With no successful fetch by then, the leader is presumed gone.
    pub fetch_deadline_ms: u64,
    pub in_flight: Option<InFlightFetch>,
    pub next_fetch_ms: u64,
    /// A snapshot being fetched and the position reached.
    pub snapshot_fetch: Option<(OffsetAndEpoch, u64)>,
    /// The leader resigned (EndQuorumEpoch): pre-votes may be granted.
    pub leader_resigned: bool,
    /// A fetch from the leader succeeded since this state began (Kafka's
    /// `hasFetchedFromLeader`). Until then the leader may be out of reach,
    /// so pre-votes may be granted; otherwise two followers that each tried
    /// a pre-vote and fell back to following would refuse each other for
    /// ever.
    pub has_fetched_from_leader: bool,
}

/// A former leader of `epoch` that gave up (shutdown, check-quorum, or
/// restart): it takes no writes and votes for no one in its epoch.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ResignedState {
    pub epoch: Epoch,
    pub election_deadline_ms: u64,
    pub preferred_successors: Vec<NodeId>,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum EpochState {
    Unattached(UnattachedState),
    Prospective(ProspectiveState),
    Candidate(CandidateState),
    Leader(LeaderState),
    Follower(FollowerState),
    Resigned(ResignedState),
}

impl EpochState {
    pub fn epoch(&self) -> Epoch {
        match self {
            EpochState::Unattached(s) => s.epoch,
            EpochState::Prospective(s) => s.epoch,
            EpochState::Candidate(s) => s.epoch,
            EpochState::Leader(s) => s.epoch,
            EpochState::Follower(s) => s.epoch,
            EpochState::Resigned(s) => s.epoch,
        }
    }

    pub fn role(&self) -> Role {
        match self {
            EpochState::Unattached(_) => Role::Unattached,
            EpochState::Prospective(_) => Role::Prospective,
            EpochState::Candidate(_) => Role::Candidate,
            EpochState::Leader(_) => Role::Leader,
            EpochState::Follower(_) => Role::Follower,
            EpochState::Resigned(_) => Role::Resigned,
        }
    }

    /// The leader this node knows of in its epoch.
    pub fn leader_id(&self, local_id: NodeId) -> Option<NodeId> {
        match self {
            EpochState::Leader(_) | EpochState::Resigned(_) => Some(local_id),
            EpochState::Follower(s) => Some(s.leader_id),
            EpochState::Prospective(s) => s.leader_id,
            EpochState::Unattached(_) | EpochState::Candidate(_) => None,
        }
    }

    /// What a response tells others: a resigned leader no longer names
    /// itself.
    pub fn leader_and_epoch(&self, local_id: NodeId) -> LeaderAndEpoch {
        let leader_id = match self {
            EpochState::Resigned(_) | EpochState::Prospective(_) => None,
            other => other.leader_id(local_id),
        };
        LeaderAndEpoch {
            leader_id,
            epoch: self.epoch(),
        }
    }

    pub fn voted_id(&self, local_id: NodeId) -> Option<NodeId> {
        match self {
            EpochState::Unattached(s) => s.voted_id,
            EpochState::Prospective(s) => s.voted_id,
            EpochState::Follower(s) => s.voted_id,
            EpochState::Candidate(_) | EpochState::Leader(_) | EpochState::Resigned(_) => {
                Some(local_id)
            }
        }
    }

    /// The `quorum-state` this state is persisted as.
    pub fn quorum_state_data(&self, local_id: NodeId) -> QuorumStateData {
        QuorumStateData {
            leader_epoch: self.epoch(),
            leader_id: self.leader_id(local_id),
            voted_id: self.voted_id(local_id),
        }
    }
}
