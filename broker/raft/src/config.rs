//! [`RaftConfig`]: a node's quorum settings by Kafka's names, parsed by the
//! broker from `server.properties`; and [`Mutation`], the bugs planted on
//! purpose that the tests must catch.

use std::collections::BTreeSet;

use crate::types::NodeId;

/// The quorum's settings, by Kafka's `controller.quorum.*` names.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RaftConfig {
    /// `node.id`.
    pub node_id: NodeId,
    /// The ids of `controller.quorum.voters`.
    pub voters: BTreeSet<NodeId>,
    /// `controller.quorum.election.timeout.ms`: the base of the randomized
    /// timeout (each wait is in `[t, 2t)`).
    pub election_timeout_ms: u64,
    /// `controller.quorum.election.backoff.max.ms`: the longest wait after a
    /// lost election.
    pub election_backoff_max_ms: u64,
    /// `controller.quorum.fetch.timeout.ms`: a follower that has not fetched
    /// successfully for this long looks for a new leader; a leader that has
    /// not heard from a majority for 1.5 times this long resigns.
    pub fetch_timeout_ms: u64,
    /// `controller.quorum.request.timeout.ms`: when an unanswered Fetch or
    /// BeginQuorumEpoch is sent again.
    pub request_timeout_ms: u64,
    /// How long a follower waits before fetching again after an empty
    /// answer (the stand-in for the leader's long poll, `fetch.max.wait`).
    pub fetch_backoff_ms: u64,
    pub max_fetch_entries: usize,
    pub max_snapshot_chunk_bytes: usize,
    /// A bug planted on purpose, to show the simulation finds it.
    #[doc(hidden)]
    pub mutation: Mutation,
}

impl RaftConfig {
    /// Kafka's defaults.
    pub fn new(node_id: NodeId, voters: impl IntoIterator<Item = NodeId>) -> Self {
        RaftConfig {
            node_id,
            voters: voters.into_iter().collect(),
            election_timeout_ms: 1000,
            election_backoff_max_ms: 1000,
            fetch_timeout_ms: 2000,
            request_timeout_ms: 2000,
            fetch_backoff_ms: 500,
            max_fetch_entries: 512,
            max_snapshot_chunk_bytes: 1 << 20,
            mutation: Mutation::None,
        }
    }

    pub fn majority(&self) -> usize {
        self.voters.len() / 2 + 1
    }

    pub fn is_voter(&self, id: NodeId) -> bool {
        self.voters.contains(&id)
    }
}

/// Bugs the simulation must catch; never set outside tests.
#[doc(hidden)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Mutation {
    #[default]
    None,
    /// Grant votes without comparing logs.
    GrantVoteWithoutLogCheck,
    /// Let the leader's high watermark move before an entry of its own
    /// epoch is committed.
    HighWatermarkBeforeEpochStart,
}
