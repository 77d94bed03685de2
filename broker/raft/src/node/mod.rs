//! [`RaftNode`]: one node of the quorum, Kafka's `KafkaRaftClient` and
//! `QuorumState` without their I/O. The driver feeds it messages
//! ([`RaftNode::handle`]), the passing of time ([`RaftNode::poll`]) and
//! proposals ([`RaftNode::propose`]), and carries out the [`Effect`]s each
//! call returns, in order.
//!
//! This module holds the effects, the timers and the
//! transitions between epoch states; the handlers of the election messages
//! are in the child module `election` and those of Fetch and
//! FetchSnapshot in `replication`.

mod election;
mod replication;

use std::collections::BTreeSet;

pub use crate::config::{Mutation, RaftConfig};
use crate::error::RaftError;
use crate::log::ReplicatedLog;
use crate::message::{
    BeginQuorumEpochRequest, EndQuorumEpochRequest, FetchRequest, Message, VoteRequest,
};
use crate::rng::SplitMix64;
use crate::state::{
    CandidateState, EpochState, FollowerState, LeaderState, ProspectiveState, ReplicaState,
    ResignedState, UnattachedState,
};
use crate::types::{
    Entry, Epoch, LeaderAndEpoch, NodeId, OffsetAndEpoch, Payload, Proposal, QuorumStateData, Role,
};

/// What the driver must do, in the order given, each finished before the
/// next begins: a [`Effect::PersistQuorumState`] or [`Effect::FlushLog`]
/// before any later [`Effect::Send`] goes out.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Effect {
    /// Write and sync the `quorum-state` file.
    PersistQuorumState(QuorumStateData),
    /// Sync the log up to `end_offset`.
    FlushLog {
        end_offset: u64,
    },
    Send {
        to: NodeId,
        message: Message,
    },
    /// The high watermark moved: entries below it are committed and may be
    /// applied (replayed into the metadata image).
    HighWatermark {
        high_watermark: u64,
    },
    /// The node took a new role (become leader, follower, resigned...).
    RoleChanged {
        role: Role,
        epoch: Epoch,
        leader_id: Option<NodeId>,
    },
}

/// One node of the quorum. See the module doc.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RaftNode {
    pub(crate) config: RaftConfig,
    pub(crate) state: EpochState,
    pub(crate) high_watermark: u64,
    /// How far the log is known to be synced (what the node may report).
    pub(crate) synced_end_offset: u64,
    pub(crate) persisted: QuorumStateData,
    pub(crate) rng: SplitMix64,
    pub(crate) effects: Vec<Effect>,
}

impl RaftNode {
    /// A node starting (or restarting) from its `quorum-state` and its
    /// recovered log, everything of which is synced. A node that was leader
    /// comes back resigned: it never takes writes in an old epoch again.
    pub fn new(
        config: RaftConfig,
        quorum_state: QuorumStateData,
        log: &impl ReplicatedLog,
        seed: u64,
        now_ms: u64,
    ) -> Self {
        let mut rng = SplitMix64::new(seed);
        let election_deadline_ms = now_ms + random_timeout(&mut rng, config.election_timeout_ms);
        let local_id = config.node_id;
        let epoch = quorum_state.leader_epoch;
        let state = if log.last_fetched_epoch() > epoch {
            // The log is ahead of the file: start unattached in the log's
            // epoch, as Kafka's QuorumState.initialize does.
            EpochState::Unattached(UnattachedState {
                epoch: log.last_fetched_epoch(),
                voted_id: None,
                election_deadline_ms,
            })
        } else {
            match quorum_state.leader_id {
                Some(leader) if leader == local_id => EpochState::Resigned(ResignedState {
                    epoch,
                    election_deadline_ms,
                    preferred_successors: Vec::new(),
                }),
                Some(leader) => EpochState::Follower(FollowerState {
                    epoch,
                    leader_id: leader,
                    voted_id: quorum_state.voted_id,
                    fetch_deadline_ms: now_ms + config.fetch_timeout_ms,
                    in_flight: None,
                    next_fetch_ms: now_ms,
                    snapshot_fetch: None,
                    leader_resigned: false,
                    has_fetched_from_leader: false,
                }),
                None => EpochState::Unattached(UnattachedState {
                    epoch,
                    voted_id: quorum_state.voted_id,
                    election_deadline_ms,
                }),
            }
        };
        RaftNode {
            config,
            state,
            high_watermark: 0,
            synced_end_offset: log.end_offset(),
            persisted: quorum_state,
            rng,
            effects: Vec::new(),
        }
    }

    pub fn config(&self) -> &RaftConfig {
        &self.config
    }

    pub fn node_id(&self) -> NodeId {
        self.config.node_id
    }

    pub fn role(&self) -> Role {
        self.state.role()
    }

    pub fn epoch(&self) -> Epoch {
        self.state.epoch()
    }

    pub fn leader_id(&self) -> Option<NodeId> {
        self.state.leader_id(self.config.node_id)
    }

    pub fn leader_and_epoch(&self) -> LeaderAndEpoch {
        self.state.leader_and_epoch(self.config.node_id)
    }

    pub fn high_watermark(&self) -> u64 {
        self.high_watermark
    }

    /// What the `quorum-state` file holds (after the last persist effect).
    pub fn quorum_state(&self) -> QuorumStateData {
        self.persisted
    }

    /// The leader's view of its voters (DescribeQuorum's replication).
    pub fn replica_states(&self) -> Option<&std::collections::BTreeMap<NodeId, ReplicaState>> {
        match &self.state {
            EpochState::Leader(leader) => Some(&leader.voter_states),
            _ => None,
        }
    }

    /// When the driver should call [`RaftNode::poll`] next at the latest.
    pub fn next_poll_ms(&self) -> u64 {
        match &self.state {
            EpochState::Unattached(s) => s.election_deadline_ms,
            EpochState::Prospective(s) => s.election_deadline_ms,
            EpochState::Candidate(s) => s.election_deadline_ms,
            EpochState::Resigned(s) => s.election_deadline_ms,
            EpochState::Leader(s) => s.check_quorum_deadline_ms.min(s.begin_quorum_resend_ms),
            EpochState::Follower(s) => {
                let fetch = match s.in_flight {
                    Some(f) => f.sent_ms + self.config.request_timeout_ms,
                    None => s.next_fetch_ms,
                };
                s.fetch_deadline_ms.min(fetch)
            }
        }
    }

    /// Handles one message from node `from`.
    pub fn handle(
        &mut self,
        log: &mut impl ReplicatedLog,
        from: NodeId,
        message: Message,
        now_ms: u64,
    ) -> Result<Vec<Effect>, RaftError> {
        match message {
            Message::VoteRequest(r) => self.handle_vote_request(log, from, r, now_ms),
            Message::VoteResponse(r) => self.handle_vote_response(log, from, r, now_ms)?,
            Message::BeginQuorumEpochRequest(r) => self.handle_begin_quorum_epoch(from, r, now_ms),
            Message::BeginQuorumEpochResponse(r) => {
                self.handle_begin_quorum_epoch_response(from, r, now_ms)
            }
            Message::EndQuorumEpochRequest(r) => self.handle_end_quorum_epoch(from, r, now_ms),
            Message::EndQuorumEpochResponse(r) => {
                self.observe_leader(r.current_leader, now_ms);
            }
            Message::FetchRequest(r) => self.handle_fetch_request(log, from, r, now_ms),
            Message::FetchResponse(r) => self.handle_fetch_response(log, from, r, now_ms)?,
            Message::FetchSnapshotRequest(r) => {
                self.handle_fetch_snapshot_request(log, from, r, now_ms)
            }
            Message::FetchSnapshotResponse(r) => {
                self.handle_fetch_snapshot_response(log, from, r, now_ms)?
            }
        }
        self.poll_timers(log, now_ms)?;
        Ok(std::mem::take(&mut self.effects))
    }

    /// Lets time pass: election and fetch timeouts, check-quorum, resends,
    /// the leader's flush of what was proposed.
    pub fn poll(
        &mut self,
        log: &mut impl ReplicatedLog,
        now_ms: u64,
    ) -> Result<Vec<Effect>, RaftError> {
        self.poll_timers(log, now_ms)?;
        Ok(std::mem::take(&mut self.effects))
    }

    /// Appends `proposals` as the leader, each one entry spanning its
    /// record count in offsets (a plain [`Bytes`] is one record). Returns
    /// the log's end offset after them and the epoch they were written in:
    /// they are committed once the high watermark reaches that offset in
    /// that epoch. They become durable (and count for the high watermark) at
    /// the next [`RaftNode::poll`].
    pub fn propose<P: Into<Proposal>>(
        &mut self,
        log: &mut impl ReplicatedLog,
        proposals: impl IntoIterator<Item = P>,
    ) -> Result<OffsetAndEpoch, RaftError> {
        let EpochState::Leader(leader) = &self.state else {
            return Err(RaftError::NotLeader {
                current: self.leader_and_epoch(),
            });
        };
        let epoch = leader.epoch;
        let base_offset = log.end_offset();
        let mut next_offset = base_offset;
        let mut entries = Vec::new();
        for proposal in proposals {
            let Proposal { data, record_count } = proposal.into();
            if record_count == 0 {
                return Err(RaftError::EmptyProposal {
                    offset: next_offset,
                });
            }
            let entry = Entry {
                offset: next_offset,
                epoch,
                record_count,
                payload: Payload::Data(data),
            };
            next_offset = entry.next_offset();
            entries.push(entry);
        }
        log.append(&entries)
            .map_err(|source| RaftError::AppendAsLeader {
                offset: base_offset,
                source,
            })?;
        Ok(OffsetAndEpoch::new(log.end_offset(), epoch))
    }

    /// The transport lost its connection to `peer` (refused or reset, as
    /// when its process died). A follower of `peer` stops waiting out the
    /// fetch timeout: it may grant pre-votes at once and starts its own at
    /// the next poll, so a dead leader is replaced in an election's time.
    /// Only liveness changes: a leader that is alive keeps the followers
    /// that still fetch from it (they refuse pre-votes) and brings this
    /// node back with the answers to its pre-votes.
    pub fn peer_unreachable(&mut self, peer: NodeId, now_ms: u64) {
        if let EpochState::Follower(follower) = &mut self.state
            && follower.leader_id == peer
        {
            follower.fetch_deadline_ms = follower.fetch_deadline_ms.min(now_ms);
        }
    }

    /// Graceful shutdown of a leader: resign and tell the voters with
    /// EndQuorumEpoch, the most caught-up first. Anything else has nothing
    /// to hand over.
    pub fn resign(&mut self, now_ms: u64) -> Vec<Effect> {
        if let EpochState::Leader(leader) = &self.state {
            let mut successors: Vec<(u64, NodeId)> = leader
                .voter_states
                .iter()
                .map(|(id, s)| (s.end_offset.unwrap_or(0), *id))
                .collect();
            successors.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
            let preferred: Vec<NodeId> = successors.into_iter().map(|(_, id)| id).collect();
            let epoch = leader.epoch;
            self.transition_to_resigned(preferred.clone(), now_ms);
            for to in &preferred {
                self.send(
                    *to,
                    Message::EndQuorumEpochRequest(EndQuorumEpochRequest {
                        leader_epoch: epoch,
                        preferred_successors: preferred.clone(),
                    }),
                );
            }
        }
        std::mem::take(&mut self.effects)
    }

    fn poll_timers(&mut self, log: &mut impl ReplicatedLog, now_ms: u64) -> Result<(), RaftError> {
        match &self.state {
            EpochState::Unattached(s) => {
                if now_ms < s.election_deadline_ms {
                } else if self.config.is_voter(self.config.node_id) {
                    self.transition_to_prospective(log, now_ms)?;
                } else {
                    self.discover_leader(log, now_ms);
                }
            }
            EpochState::Prospective(s) => {
                if now_ms >= s.election_deadline_ms {
                    self.transition_to_prospective(log, now_ms)?;
                }
            }
            EpochState::Candidate(s) => {
                if now_ms >= s.election_deadline_ms {
                    self.transition_to_prospective(log, now_ms)?;
                }
            }
            EpochState::Resigned(s) => {
                if now_ms >= s.election_deadline_ms {
                    self.transition_to_prospective(log, now_ms)?;
                }
            }
            EpochState::Follower(s) => {
                if now_ms >= s.fetch_deadline_ms {
                    self.transition_to_prospective(log, now_ms)?;
                } else {
                    self.maybe_send_fetch(log, now_ms);
                }
            }
            EpochState::Leader(_) => self.poll_leader(log, now_ms),
        }
        Ok(())
    }

    /// An observer (a broker that is not a voter) finds the leader as
    /// Kafka's do: a Fetch to some voter, whose answer names the leader.
    fn discover_leader(&mut self, log: &impl ReplicatedLog, now_ms: u64) {
        let voters: Vec<NodeId> = self.config.voters.iter().copied().collect();
        let pick = usize::try_from(self.rng.below(voters.len() as u64)).unwrap_or(0);
        let Some(&voter) = voters.get(pick) else {
            return;
        };
        let retry_ms = now_ms + self.config.request_timeout_ms;
        let EpochState::Unattached(s) = &mut self.state else {
            return;
        };
        s.election_deadline_ms = retry_ms;
        let request = FetchRequest {
            current_leader_epoch: s.epoch,
            fetch_offset: log.end_offset(),
            last_fetched_epoch: log.last_fetched_epoch(),
        };
        self.send(voter, Message::FetchRequest(request));
    }

    fn poll_leader(&mut self, log: &mut impl ReplicatedLog, now_ms: u64) {
        self.flush_log(log);
        self.maybe_advance_leader_high_watermark();
        let majority = self.config.majority();
        let request_timeout_ms = self.config.request_timeout_ms;
        let check_interval_ms = self.config.fetch_timeout_ms * 3 / 2;
        let EpochState::Leader(leader) = &mut self.state else {
            return;
        };
        if now_ms >= leader.check_quorum_deadline_ms {
            if leader.fetched_since_check.len() + 1 >= majority {
                leader.fetched_since_check.clear();
                leader.check_quorum_deadline_ms = now_ms + check_interval_ms;
            } else {
                // Check-quorum: no majority heard from, so another leader
                // may already be elected; stop acting as leader.
                self.transition_to_resigned(Vec::new(), now_ms);
                return;
            }
        }
        if now_ms >= leader.begin_quorum_resend_ms {
            leader.begin_quorum_resend_ms = now_ms + request_timeout_ms;
            let epoch = leader.epoch;
            // Also to voters gone quiet: one stranded in a later epoch (a
            // candidate that crashed before asking anyone) can't follow us
            // and can't win against a longer log; its FencedLeaderEpoch
            // answer makes us step down so a new election takes it along.
            let fetch_timeout_ms = self.config.fetch_timeout_ms;
            let quiet: Vec<NodeId> = leader
                .voter_states
                .iter()
                .filter(|(_, s)| {
                    !s.has_acknowledged_leader
                        || s.last_fetch_ms
                            .is_none_or(|t| now_ms.saturating_sub(t) >= fetch_timeout_ms)
                })
                .map(|(id, _)| *id)
                .collect();
            for to in quiet {
                self.send(
                    to,
                    Message::BeginQuorumEpochRequest(BeginQuorumEpochRequest {
                        leader_epoch: epoch,
                    }),
                );
            }
        }
    }

    /// Syncs anything appended but not yet synced.
    pub(crate) fn flush_log(&mut self, log: &impl ReplicatedLog) {
        let end_offset = log.end_offset();
        if end_offset != self.synced_end_offset {
            self.effects.push(Effect::FlushLog { end_offset });
            self.synced_end_offset = end_offset;
        }
    }

    /// The leader's high watermark: the largest offset a majority of voters
    /// (the leader included) have synced, once it is past this epoch's
    /// LeaderChange entry.
    pub(crate) fn maybe_advance_leader_high_watermark(&mut self) {
        let EpochState::Leader(leader) = &self.state else {
            return;
        };
        let mut offsets: Vec<u64> = leader
            .voter_states
            .values()
            .filter_map(|s| s.end_offset)
            .collect();
        offsets.push(self.synced_end_offset);
        let majority = self.config.majority();
        if offsets.len() < majority {
            return;
        }
        offsets.sort_unstable_by(|a, b| b.cmp(a));
        let candidate = offsets[majority - 1];
        let own_epoch_committed = candidate > leader.epoch_start_offset
            || self.config.mutation == Mutation::HighWatermarkBeforeEpochStart;
        if own_epoch_committed && candidate > self.high_watermark {
            self.high_watermark = candidate;
            self.effects.push(Effect::HighWatermark {
                high_watermark: candidate,
            });
        }
    }

    pub(crate) fn send(&mut self, to: NodeId, message: Message) {
        self.effects.push(Effect::Send { to, message });
    }

    pub(crate) fn log_end(log: &impl ReplicatedLog) -> OffsetAndEpoch {
        OffsetAndEpoch::new(log.end_offset(), log.last_fetched_epoch())
    }

    fn random_election_timeout(&mut self) -> u64 {
        random_timeout(&mut self.rng, self.config.election_timeout_ms)
    }

    pub(crate) fn random_backoff(&mut self) -> u64 {
        self.rng.below(self.config.election_backoff_max_ms + 1)
    }

    /// Persists the state if the `quorum-state` it maps to changed, then
    /// announces the role.
    fn after_transition(&mut self) {
        let data = self.state.quorum_state_data(self.config.node_id);
        if data != self.persisted {
            self.persisted = data;
            self.effects.push(Effect::PersistQuorumState(data));
        }
        self.effects.push(Effect::RoleChanged {
            role: self.state.role(),
            epoch: self.state.epoch(),
            leader_id: self.state.leader_id(self.config.node_id),
        });
    }

    pub(crate) fn transition_to_unattached(
        &mut self,
        epoch: Epoch,
        voted_id: Option<NodeId>,
        deadline_ms: u64,
    ) {
        self.state = EpochState::Unattached(UnattachedState {
            epoch,
            voted_id,
            election_deadline_ms: deadline_ms,
        });
        self.after_transition();
    }

    /// A newer epoch seen without its leader.
    pub(crate) fn transition_to_unattached_in(&mut self, epoch: Epoch, now_ms: u64) {
        let deadline_ms = now_ms + self.random_election_timeout();
        self.transition_to_unattached(epoch, None, deadline_ms);
    }

    pub(crate) fn transition_to_follower(&mut self, epoch: Epoch, leader_id: NodeId, now_ms: u64) {
        let voted_id = if epoch == self.state.epoch() {
            self.state.voted_id(self.config.node_id)
        } else {
            None
        };
        self.state = EpochState::Follower(FollowerState {
            epoch,
            leader_id,
            voted_id,
            fetch_deadline_ms: now_ms + self.config.fetch_timeout_ms,
            in_flight: None,
            next_fetch_ms: now_ms,
            snapshot_fetch: None,
            leader_resigned: false,
            has_fetched_from_leader: false,
        });
        self.after_transition();
    }

    pub(crate) fn transition_to_resigned(
        &mut self,
        preferred_successors: Vec<NodeId>,
        now_ms: u64,
    ) {
        let epoch = self.state.epoch();
        let election_deadline_ms = now_ms + self.random_election_timeout();
        self.state = EpochState::Resigned(ResignedState {
            epoch,
            election_deadline_ms,
            preferred_successors,
        });
        self.after_transition();
    }

    /// Starts (or restarts) a pre-vote round in the current epoch.
    pub(crate) fn transition_to_prospective(
        &mut self,
        log: &mut impl ReplicatedLog,
        now_ms: u64,
    ) -> Result<(), RaftError> {
        let local_id = self.config.node_id;
        let epoch = self.state.epoch();
        let voted_id = self.state.voted_id(local_id);
        let leader_id = match &self.state {
            EpochState::Follower(s) => Some(s.leader_id),
            EpochState::Prospective(s) => s.leader_id,
            _ => None,
        };
        let deadline_ms = now_ms + self.random_election_timeout();
        if !self.config.is_voter(local_id) {
            // An observer never runs; it waits to hear of a leader.
            self.transition_to_unattached(epoch, voted_id, deadline_ms);
            return Ok(());
        }
        let voted_id = match &self.state {
            // A candidate or a resigned leader voted for itself; that vote
            // stays recorded in the epoch.
            EpochState::Candidate(_) | EpochState::Resigned(_) => Some(local_id),
            _ => voted_id,
        };
        self.state = EpochState::Prospective(ProspectiveState {
            epoch,
            voted_id,
            leader_id,
            granted: BTreeSet::from([local_id]),
            rejected: BTreeSet::new(),
            election_deadline_ms: deadline_ms,
        });
        self.after_transition();
        let request = VoteRequest {
            replica_epoch: epoch,
            last_offset_and_epoch: Self::log_end(log),
            pre_vote: true,
        };
        self.send_to_other_voters(&Message::VoteRequest(request));
        self.maybe_end_prospective(log, now_ms)
    }

    /// Ends a pre-vote round won or lost.
    pub(crate) fn maybe_end_prospective(
        &mut self,
        log: &mut impl ReplicatedLog,
        now_ms: u64,
    ) -> Result<(), RaftError> {
        let EpochState::Prospective(p) = &self.state else {
            return Ok(());
        };
        let majority = self.config.majority();
        if p.granted.len() >= majority {
            return self.transition_to_candidate(log, now_ms);
        }
        if self.config.voters.len() - p.rejected.len() < majority {
            let (epoch, voted_id, leader_id) = (p.epoch, p.voted_id, p.leader_id);
            match leader_id {
                Some(leader) => self.transition_to_follower(epoch, leader, now_ms),
                None => {
                    let deadline_ms = now_ms + self.random_backoff();
                    self.transition_to_unattached(epoch, voted_id, deadline_ms);
                }
            }
        }
        Ok(())
    }

    fn transition_to_candidate(
        &mut self,
        log: &mut impl ReplicatedLog,
        now_ms: u64,
    ) -> Result<(), RaftError> {
        let Some(epoch) = self.state.epoch().checked_add(1) else {
            // Only a faulty peer brings a node to the last epoch; no election
            // can follow it, and wrapping would reuse epochs.
            let (epoch, voted_id) = (self.state.epoch(), self.state.voted_id(self.config.node_id));
            let deadline_ms = now_ms + self.random_election_timeout();
            self.transition_to_unattached(epoch, voted_id, deadline_ms);
            return Ok(());
        };
        let election_deadline_ms = now_ms + self.random_election_timeout();
        self.state = EpochState::Candidate(CandidateState {
            epoch,
            granted: BTreeSet::from([self.config.node_id]),
            rejected: BTreeSet::new(),
            election_deadline_ms,
        });
        self.after_transition();
        // The log end offered in the vote must survive a crash.
        self.flush_log(log);
        let request = VoteRequest {
            replica_epoch: epoch,
            last_offset_and_epoch: Self::log_end(log),
            pre_vote: false,
        };
        self.send_to_other_voters(&Message::VoteRequest(request));
        self.maybe_end_candidacy(log, now_ms)
    }

    /// Becomes leader on a majority of votes; backs off on a majority of
    /// rejections.
    pub(crate) fn maybe_end_candidacy(
        &mut self,
        log: &mut impl ReplicatedLog,
        now_ms: u64,
    ) -> Result<(), RaftError> {
        let EpochState::Candidate(c) = &self.state else {
            return Ok(());
        };
        let majority = self.config.majority();
        if c.granted.len() >= majority {
            return self.transition_to_leader(log, now_ms);
        }
        if self.config.voters.len() - c.rejected.len() < majority {
            let backoff_ms = self.random_backoff();
            if let EpochState::Candidate(c) = &mut self.state {
                c.election_deadline_ms = c.election_deadline_ms.min(now_ms + backoff_ms);
            }
        }
        Ok(())
    }

    fn transition_to_leader(
        &mut self,
        log: &mut impl ReplicatedLog,
        now_ms: u64,
    ) -> Result<(), RaftError> {
        let local_id = self.config.node_id;
        let epoch = self.state.epoch();
        let epoch_start_offset = log.end_offset();
        let voter_states = self
            .config
            .voters
            .iter()
            .filter(|id| **id != local_id)
            .map(|id| (*id, ReplicaState::default()))
            .collect();
        self.state = EpochState::Leader(LeaderState {
            epoch,
            epoch_start_offset,
            voter_states,
            fetched_since_check: BTreeSet::new(),
            check_quorum_deadline_ms: now_ms + self.config.fetch_timeout_ms * 3 / 2,
            begin_quorum_resend_ms: now_ms + self.config.request_timeout_ms,
        });
        self.after_transition();
        let leader_change = Entry {
            offset: epoch_start_offset,
            epoch,
            record_count: 1,
            payload: Payload::LeaderChange {
                leader_id: local_id,
            },
        };
        log.append(std::slice::from_ref(&leader_change))
            .map_err(|source| RaftError::AppendAsLeader {
                offset: epoch_start_offset,
                source,
            })?;
        self.flush_log(log);
        self.send_to_other_voters(&Message::BeginQuorumEpochRequest(BeginQuorumEpochRequest {
            leader_epoch: epoch,
        }));
        self.maybe_advance_leader_high_watermark();
        Ok(())
    }

    fn send_to_other_voters(&mut self, message: &Message) {
        let local_id = self.config.node_id;
        let others: Vec<NodeId> = self
            .config
            .voters
            .iter()
            .copied()
            .filter(|id| *id != local_id)
            .collect();
        for to in others {
            self.send(to, message.clone());
        }
    }

    /// Moves to a newer epoch, or to the leader of this one, that a message
    /// revealed. Returns whether the state changed.
    pub(crate) fn observe_leader(&mut self, current: LeaderAndEpoch, now_ms: u64) -> bool {
        let local_id = self.config.node_id;
        let epoch = self.state.epoch();
        let leader = current.leader_id.filter(|id| *id != local_id);
        if current.epoch > epoch {
            match leader {
                Some(leader) => self.transition_to_follower(current.epoch, leader, now_ms),
                None => self.transition_to_unattached_in(current.epoch, now_ms),
            }
            return true;
        }
        // A leader of this epoch learned by a node that has none. A
        // prospective that came from following that very leader keeps
        // running: it is why it looks for another (Kafka's `hasLeader`).
        let has_no_leader = match &self.state {
            EpochState::Unattached(_) | EpochState::Candidate(_) => true,
            EpochState::Prospective(p) => p.leader_id.is_none(),
            _ => false,
        };
        if current.epoch == epoch
            && let Some(leader) = leader
            && has_no_leader
        {
            self.transition_to_follower(epoch, leader, now_ms);
            return true;
        }
        false
    }
}

fn random_timeout(rng: &mut SplitMix64, base_ms: u64) -> u64 {
    base_ms + rng.below(base_ms)
}
