//! The election messages: Vote (and KIP-996's pre-vote), BeginQuorumEpoch
//! and EndQuorumEpoch, on both sides.
//!
//! A vote is granted at most once per epoch, to a candidate whose log is at
//! least as up-to-date (last epoch, then end offset), and the vote is
//! persisted (an effect ahead of the response) before it is sent. A
//! pre-vote binds nothing and moves no epoch; it is refused while the voter
//! still hears from a leader, so a node cut off and healed does not depose
//! a working leader.

use crate::error::RaftError;
use crate::log::ReplicatedLog;
use crate::message::{
    BeginQuorumEpochRequest, BeginQuorumEpochResponse, EndQuorumEpochRequest,
    EndQuorumEpochResponse, ErrorCode, Message, VoteRequest, VoteResponse,
};
use crate::node::{Mutation, RaftNode};
use crate::state::EpochState;
use crate::types::{LeaderAndEpoch, NodeId};

impl RaftNode {
    pub(crate) fn handle_vote_request(
        &mut self,
        log: &impl ReplicatedLog,
        from: NodeId,
        request: VoteRequest,
        now_ms: u64,
    ) {
        let pre_vote = request.pre_vote;
        if !self.config.is_voter(from) || from == self.config.node_id {
            self.answer_vote(from, Some(ErrorCode::InconsistentVoterSet), false, pre_vote);
            return;
        }
        let epoch = self.state.epoch();
        if request.replica_epoch < epoch {
            self.answer_vote(from, None, false, pre_vote);
            return;
        }
        if !pre_vote && request.replica_epoch > epoch {
            self.transition_to_unattached_in(request.replica_epoch, now_ms);
        }
        let up_to_date = request
            .last_offset_and_epoch
            .is_up_to_date_with(&Self::log_end(log))
            || self.config.mutation == Mutation::GrantVoteWithoutLogCheck;
        let granted = if pre_vote {
            up_to_date && (request.replica_epoch > epoch || self.can_grant_pre_vote(now_ms))
        } else {
            self.can_grant_vote(from, up_to_date)
        };
        if granted && !pre_vote && self.state.voted_id(self.config.node_id) != Some(from) {
            let (epoch, deadline_ms) = (self.state.epoch(), self.election_deadline_or(now_ms));
            // Persisted (the effect comes first) before the answer goes out.
            self.transition_to_unattached(epoch, Some(from), deadline_ms);
        }
        self.answer_vote(from, None, granted, pre_vote);
    }

    fn election_deadline_or(&mut self, now_ms: u64) -> u64 {
        match &self.state {
            EpochState::Unattached(s) => s.election_deadline_ms,
            EpochState::Prospective(s) => s.election_deadline_ms,
            _ => now_ms + self.config.election_timeout_ms + self.random_backoff(),
        }
    }

    /// A standard vote in the current epoch.
    fn can_grant_vote(&self, candidate: NodeId, up_to_date: bool) -> bool {
        match &self.state {
            EpochState::Unattached(s) => match s.voted_id {
                Some(voted) => voted == candidate,
                None => up_to_date,
            },
            EpochState::Prospective(s) => match (s.voted_id, s.leader_id) {
                (Some(voted), _) => voted == candidate,
                (None, Some(_)) => false,
                (None, None) => up_to_date,
            },
            EpochState::Candidate(_)
            | EpochState::Leader(_)
            | EpochState::Follower(_)
            | EpochState::Resigned(_) => false,
        }
    }

    /// A pre-vote in the current epoch (the log check is the caller's).
    fn can_grant_pre_vote(&self, now_ms: u64) -> bool {
        match &self.state {
            EpochState::Leader(_) | EpochState::Resigned(_) => false,
            EpochState::Follower(s) => {
                !s.has_fetched_from_leader || s.leader_resigned || now_ms >= s.fetch_deadline_ms
            }
            EpochState::Unattached(_) | EpochState::Prospective(_) | EpochState::Candidate(_) => {
                true
            }
        }
    }

    fn answer_vote(
        &mut self,
        to: NodeId,
        error: Option<ErrorCode>,
        vote_granted: bool,
        pre_vote: bool,
    ) {
        let current_leader = self.leader_and_epoch();
        self.send(
            to,
            Message::VoteResponse(VoteResponse {
                error,
                current_leader,
                vote_granted,
                pre_vote,
            }),
        );
    }

    pub(crate) fn handle_vote_response(
        &mut self,
        log: &mut impl ReplicatedLog,
        from: NodeId,
        response: VoteResponse,
        now_ms: u64,
    ) -> Result<(), RaftError> {
        if !self.config.is_voter(from) || response.error.is_some() {
            return Ok(());
        }
        if self.observe_leader(response.current_leader, now_ms) {
            return Ok(());
        }
        let epoch = self.state.epoch();
        let answer_epoch = response.current_leader.epoch;
        match &mut self.state {
            EpochState::Prospective(p) if response.pre_vote && answer_epoch <= epoch => {
                if response.vote_granted {
                    p.granted.insert(from);
                } else {
                    p.rejected.insert(from);
                }
                self.maybe_end_prospective(log, now_ms)
            }
            EpochState::Candidate(c) if !response.pre_vote && answer_epoch == epoch => {
                if response.vote_granted {
                    c.granted.insert(from);
                } else {
                    c.rejected.insert(from);
                }
                self.maybe_end_candidacy(log, now_ms)
            }
            _ => Ok(()),
        }
    }

    pub(crate) fn handle_begin_quorum_epoch(
        &mut self,
        from: NodeId,
        request: BeginQuorumEpochRequest,
        now_ms: u64,
    ) {
        let error = if !self.config.is_voter(from) || from == self.config.node_id {
            Some(ErrorCode::InconsistentVoterSet)
        } else if request.leader_epoch < self.state.epoch() {
            Some(ErrorCode::FencedLeaderEpoch)
        } else {
            self.observe_leader(
                LeaderAndEpoch {
                    leader_id: Some(from),
                    epoch: request.leader_epoch,
                },
                now_ms,
            );
            None
        };
        let current_leader = self.leader_and_epoch();
        self.send(
            from,
            Message::BeginQuorumEpochResponse(BeginQuorumEpochResponse {
                error,
                current_leader,
            }),
        );
    }

    pub(crate) fn handle_begin_quorum_epoch_response(
        &mut self,
        from: NodeId,
        response: BeginQuorumEpochResponse,
        now_ms: u64,
    ) {
        if self.observe_leader(response.current_leader, now_ms) || response.error.is_some() {
            return;
        }
        let local_id = self.config.node_id;
        if let EpochState::Leader(leader) = &mut self.state
            && response.current_leader
                == (LeaderAndEpoch {
                    leader_id: Some(local_id),
                    epoch: leader.epoch,
                })
            && let Some(voter) = leader.voter_states.get_mut(&from)
        {
            voter.has_acknowledged_leader = true;
        }
    }

    pub(crate) fn handle_end_quorum_epoch(
        &mut self,
        from: NodeId,
        request: EndQuorumEpochRequest,
        now_ms: u64,
    ) {
        let error = if !self.config.is_voter(from) {
            Some(ErrorCode::InconsistentVoterSet)
        } else if request.leader_epoch < self.state.epoch() {
            Some(ErrorCode::FencedLeaderEpoch)
        } else {
            self.observe_leader(
                LeaderAndEpoch {
                    leader_id: Some(from),
                    epoch: request.leader_epoch,
                },
                now_ms,
            );
            let local_id = self.config.node_id;
            let position = request
                .preferred_successors
                .iter()
                .position(|id| *id == local_id);
            let backoff_ms = self.end_epoch_backoff(position);
            if let EpochState::Follower(follower) = &mut self.state
                && follower.leader_id == from
                && follower.epoch == request.leader_epoch
            {
                // The leader is going: look for the next one soon, the most
                // caught-up voters first.
                follower.leader_resigned = true;
                follower.fetch_deadline_ms = follower.fetch_deadline_ms.min(now_ms + backoff_ms);
            }
            None
        };
        let current_leader = self.leader_and_epoch();
        self.send(
            from,
            Message::EndQuorumEpochResponse(EndQuorumEpochResponse {
                error,
                current_leader,
            }),
        );
    }

    /// How long a follower waits after EndQuorumEpoch: none for the first
    /// preferred successor, doubling down the list, the full election
    /// timeout for a voter not listed.
    fn end_epoch_backoff(&mut self, position: Option<usize>) -> u64 {
        let step_ms = (self.config.election_backoff_max_ms / 8).max(1);
        match position {
            Some(0) => 0,
            Some(p) => {
                let shift = u32::try_from(p.min(6)).unwrap_or(6);
                (step_ms << shift).min(self.config.election_backoff_max_ms)
            }
            None => self.config.election_timeout_ms + self.random_backoff(),
        }
    }
}
