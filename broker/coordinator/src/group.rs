//! One consumer group under Kafka's classic protocol (JoinGroup, SyncGroup,
//! Heartbeat, LeaveGroup, DescribeGroups), as Kafka's `GroupCoordinator` and
//! `GroupMetadata`, with no clock and no sockets.
//!
//! Every request method takes `now_ms` and answers at once or with
//! `Pending`: the broker then holds that member's request until an
//! [`Effect`] answers it. Effects queue inside the group and come out of
//! [`Group::poll`], which the broker calls after every request and on a
//! timer (see [`Group::next_deadline_ms`]); `poll` also runs the clocks:
//! session expiry, the rebalance timeout, the initial rebalance delay and
//! the sync timeout.
//!
//! States follow Kafka: `Empty -> PreparingRebalance -> CompletingRebalance
//! -> Stable`, back to `PreparingRebalance` on any membership or protocol
//! change, and `Dead` once deleted. Members keep their join order, which
//! makes leader choice, vote tie-breaks and effect order deterministic.

use std::collections::{BTreeMap, BTreeSet};

use bytes::Bytes;

use crate::group_metadata::{GroupMetadataValue, MemberMetadata};

mod types;

pub use types::*;

#[cfg(test)]
mod tests;

/// The join phase in progress (state `PreparingRebalance`).
#[derive(Debug, Clone, Copy)]
struct Rebalance {
    /// Started + the largest member rebalance timeout at the start.
    deadline_ms: i64,
    /// The first rebalance of an empty group waits this long, extended by
    /// each new member up to `deadline_ms`, as Kafka's `InitialDelayedJoin`.
    initial_until_ms: Option<i64>,
}

/// A consumer group's membership and rebalance state.
#[derive(Debug, Clone)]
pub struct Group {
    group_id: String,
    config: GroupConfig,
    state: GroupState,
    generation_id: i32,
    protocol_type: Option<String>,
    protocol_name: Option<String>,
    leader_id: Option<String>,
    members: Vec<Member>,
    /// Member ids handed out with `GroupError::MemberIdRequired`, with the time by
    /// which they must rejoin.
    pending_members: BTreeMap<String, i64>,
    rebalance: Option<Rebalance>,
    /// Members of this generation that have not sent SyncGroup yet, and
    /// when they will be removed for it (Kafka's pending sync members).
    pending_sync: BTreeSet<String>,
    sync_deadline_ms: i64,
    /// When the group entered its current state.
    state_since_ms: i64,
    /// Rebalances started since this broker loaded or created the group.
    rebalances: u64,
    outbox: Vec<Effect>,
}

impl Group {
    pub fn new(group_id: impl Into<String>, config: GroupConfig) -> Self {
        Self {
            group_id: group_id.into(),
            config,
            state: GroupState::Empty,
            generation_id: 0,
            protocol_type: None,
            protocol_name: None,
            leader_id: None,
            members: Vec::new(),
            pending_members: BTreeMap::new(),
            rebalance: None,
            pending_sync: BTreeSet::new(),
            sync_deadline_ms: 0,
            state_since_ms: -1,
            rebalances: 0,
            outbox: Vec::new(),
        }
    }

    /// The group as `__consumer_offsets` last stored it, as Kafka's
    /// `GroupMetadataManager.loadGroup`: Stable with its members (their
    /// session clocks start now, so members that do not come back are
    /// evicted after their session timeout) or Empty.
    pub fn restore(
        group_id: impl Into<String>,
        config: GroupConfig,
        stored: &GroupMetadataValue,
        now_ms: i64,
    ) -> Self {
        let mut group = Self::new(group_id, config);
        group.generation_id = stored.generation;
        group.protocol_type = Some(stored.protocol_type.clone()).filter(|t| !t.is_empty());
        group.state_since_ms = stored.current_state_timestamp_ms;
        if stored.members.is_empty() {
            return group;
        }
        let protocol = stored.protocol.clone().unwrap_or_default();
        group.members = stored
            .members
            .iter()
            .map(|m| Member {
                member_id: m.member_id.clone(),
                group_instance_id: m.group_instance_id.clone(),
                client_id: m.client_id.clone(),
                client_host: m.client_host.clone(),
                session_timeout_ms: m.session_timeout_ms,
                rebalance_timeout_ms: m.rebalance_timeout_ms,
                protocol_type: stored.protocol_type.clone(),
                protocols: vec![(protocol.clone(), m.subscription.clone())],
                assignment: m.assignment.clone(),
                last_heartbeat_ms: now_ms,
                awaiting_join: false,
                awaiting_sync: false,
            })
            .collect();
        group.protocol_name = stored.protocol.clone();
        group.leader_id = stored
            .leader
            .clone()
            .filter(|id| group.index_of(id).is_some())
            .or_else(|| group.members.first().map(|m| m.member_id.clone()));
        group.state = GroupState::Stable;
        group
    }

    /// What `__consumer_offsets` keeps of the group now.
    pub fn stored_value(&self) -> GroupMetadataValue {
        let protocol = self.protocol_name.clone().unwrap_or_default();
        GroupMetadataValue {
            protocol_type: self.protocol_type.clone().unwrap_or_default(),
            generation: self.generation_id,
            protocol: self.protocol_name.clone(),
            leader: self.leader_id.clone(),
            current_state_timestamp_ms: self.state_since_ms,
            members: self
                .members
                .iter()
                .map(|m| MemberMetadata {
                    member_id: m.member_id.clone(),
                    group_instance_id: m.group_instance_id.clone(),
                    client_id: m.client_id.clone(),
                    client_host: m.client_host.clone(),
                    rebalance_timeout_ms: m.rebalance_timeout_ms,
                    session_timeout_ms: m.session_timeout_ms,
                    subscription: m.metadata(&protocol),
                    assignment: m.assignment.clone(),
                })
                .collect(),
        }
    }

    /// When the group entered its current state (-1 if never changed since
    /// it was created without a stored timestamp).
    pub fn state_since_ms(&self) -> i64 {
        self.state_since_ms
    }

    /// The topics the members subscribe to, read from their
    /// ConsumerProtocol subscriptions for the group's protocol, as Kafka's
    /// `GroupMetadata.subscribedTopics`; `None` when this is not a consumer
    /// group with a protocol, or a subscription cannot be read.
    pub fn subscribed_topics(&self) -> Option<BTreeSet<String>> {
        if self.protocol_type.as_deref() != Some("consumer") {
            return None;
        }
        let protocol = self.protocol_name.as_deref()?;
        let mut topics = BTreeSet::new();
        for member in &self.members {
            topics.extend(subscription_topics(&member.metadata(protocol))?);
        }
        Some(topics)
    }

    /// Rebalances started since this broker created or loaded the group.
    pub fn rebalances(&self) -> u64 {
        self.rebalances
    }

    pub fn group_id(&self) -> &str {
        &self.group_id
    }

    pub fn state(&self) -> GroupState {
        self.state
    }

    pub fn generation_id(&self) -> i32 {
        self.generation_id
    }

    pub fn protocol_type(&self) -> Option<&str> {
        self.protocol_type.as_deref()
    }

    pub fn protocol_name(&self) -> Option<&str> {
        self.protocol_name.as_deref()
    }

    pub fn leader_id(&self) -> Option<&str> {
        self.leader_id.as_deref()
    }

    /// Members in join order.
    pub fn members(&self) -> &[Member] {
        &self.members
    }

    pub fn member(&self, member_id: &str) -> Option<&Member> {
        self.members.iter().find(|m| m.member_id == member_id)
    }

    /// JoinGroup, as Kafka's `doJoinGroup`.
    pub fn join(&mut self, req: JoinRequest, now_ms: i64) -> JoinOutcome {
        if self.state == GroupState::Dead {
            return JoinOutcome::Response(JoinResponse::error(
                GroupError::CoordinatorNotAvailable,
                &req.member_id,
            ));
        }
        if req.session_timeout_ms < self.config.group_min_session_timeout_ms
            || req.session_timeout_ms > self.config.group_max_session_timeout_ms
        {
            return JoinOutcome::Response(JoinResponse::error(
                GroupError::InvalidSessionTimeout,
                &req.member_id,
            ));
        }
        if !self.supports_protocols(&req) {
            return JoinOutcome::Response(JoinResponse::error(
                GroupError::InconsistentGroupProtocol,
                &req.member_id,
            ));
        }
        if req.member_id.is_empty() {
            self.join_new_member(req, now_ms)
        } else {
            self.join_known_member(req, now_ms)
        }
    }

    fn join_new_member(&mut self, req: JoinRequest, now_ms: i64) -> JoinOutcome {
        if let Some(instance_id) = &req.group_instance_id
            && let Some(old) = self.static_member_index(instance_id)
        {
            return self.replace_static_member(old, req, now_ms);
        }
        if req.group_instance_id.is_none() && req.api_version >= 4 {
            let member_id = req.new_member_id;
            let deadline_ms = now_ms + i64::from(req.session_timeout_ms);
            self.pending_members.insert(member_id.clone(), deadline_ms);
            return JoinOutcome::Response(JoinResponse::error(
                GroupError::MemberIdRequired,
                &member_id,
            ));
        }
        let member_id = req.new_member_id.clone();
        self.add_member_and_rebalance(member_id, req, now_ms)
    }

    fn join_known_member(&mut self, req: JoinRequest, now_ms: i64) -> JoinOutcome {
        if self.pending_members.remove(&req.member_id).is_some() {
            let member_id = req.member_id.clone();
            return self.add_member_and_rebalance(member_id, req, now_ms);
        }
        if self.is_fenced(&req.member_id, req.group_instance_id.as_deref()) {
            return JoinOutcome::Response(JoinResponse::error(
                GroupError::FencedInstanceId,
                &req.member_id,
            ));
        }
        let Some(index) = self.index_of(&req.member_id) else {
            return JoinOutcome::Response(JoinResponse::error(
                GroupError::UnknownMemberId,
                &req.member_id,
            ));
        };
        let unchanged = self.members[index].protocols == req.protocols;
        match self.state {
            GroupState::Empty | GroupState::Dead => JoinOutcome::Response(JoinResponse::error(
                GroupError::UnknownMemberId,
                &req.member_id,
            )),
            GroupState::PreparingRebalance => self.update_member_and_rebalance(index, req, now_ms),
            GroupState::CompletingRebalance if unchanged => {
                // A retried JoinGroup: answer with the round that just ended.
                self.members[index].last_heartbeat_ms = now_ms;
                JoinOutcome::Response(self.join_response(&req.member_id))
            }
            GroupState::Stable if unchanged && !self.is_leader(&req.member_id) => {
                self.members[index].last_heartbeat_ms = now_ms;
                JoinOutcome::Response(self.join_response(&req.member_id))
            }
            // The leader rejoining means it wants a new assignment.
            GroupState::CompletingRebalance | GroupState::Stable => {
                self.update_member_and_rebalance(index, req, now_ms)
            }
        }
    }

    fn add_member_and_rebalance(
        &mut self,
        member_id: String,
        req: JoinRequest,
        now_ms: i64,
    ) -> JoinOutcome {
        if self.members.is_empty() {
            self.protocol_type = Some(req.protocol_type.clone());
        }
        if self.leader_id.is_none() {
            self.leader_id = Some(member_id.clone());
        }
        self.members.push(Member {
            member_id,
            group_instance_id: req.group_instance_id,
            client_id: req.client_id,
            client_host: req.client_host,
            session_timeout_ms: req.session_timeout_ms,
            rebalance_timeout_ms: req.rebalance_timeout_ms,
            protocol_type: req.protocol_type,
            protocols: req.protocols,
            assignment: Bytes::new(),
            last_heartbeat_ms: now_ms,
            awaiting_join: true,
            awaiting_sync: false,
        });
        if let Some(rebalance) = &mut self.rebalance
            && let Some(until) = &mut rebalance.initial_until_ms
        {
            let delay_ms = i64::from(self.config.initial_rebalance_delay_ms);
            *until = (now_ms + delay_ms).min(rebalance.deadline_ms);
        }
        self.maybe_prepare_rebalance(now_ms);
        self.try_complete_join(now_ms);
        JoinOutcome::Pending
    }

    fn update_member_and_rebalance(
        &mut self,
        index: usize,
        req: JoinRequest,
        now_ms: i64,
    ) -> JoinOutcome {
        let member = &mut self.members[index];
        member.protocols = req.protocols;
        member.rebalance_timeout_ms = req.rebalance_timeout_ms;
        member.session_timeout_ms = req.session_timeout_ms;
        member.client_id = req.client_id;
        member.client_host = req.client_host;
        member.last_heartbeat_ms = now_ms;
        member.awaiting_join = true;
        self.maybe_prepare_rebalance(now_ms);
        self.try_complete_join(now_ms);
        JoinOutcome::Pending
    }

    /// A static member restarted with a new member id, as Kafka's
    /// `updateStaticMemberAndRebalance`: the new id takes the old member's
    /// place (and assignment) and the old id is fenced.
    fn replace_static_member(
        &mut self,
        index: usize,
        req: JoinRequest,
        now_ms: i64,
    ) -> JoinOutcome {
        let new_id = req.new_member_id.clone();
        let old_id = std::mem::replace(&mut self.members[index].member_id, new_id.clone());
        let old = &mut self.members[index];
        if std::mem::take(&mut old.awaiting_join) {
            self.outbox.push(Effect::JoinResponse {
                member_id: old_id.clone(),
                response: JoinResponse::error(GroupError::FencedInstanceId, &old_id),
            });
        }
        let old = &mut self.members[index];
        if std::mem::take(&mut old.awaiting_sync) {
            self.outbox.push(Effect::SyncResponse {
                member_id: old_id.clone(),
                response: SyncResponse::error(GroupError::FencedInstanceId),
            });
        }
        if self.leader_id.as_deref() == Some(old_id.as_str()) {
            self.leader_id = Some(new_id.clone());
        }
        if self.pending_sync.remove(&old_id) {
            self.pending_sync.insert(new_id.clone());
        }
        let member = &mut self.members[index];
        member.protocols = req.protocols;
        member.rebalance_timeout_ms = req.rebalance_timeout_ms;
        member.session_timeout_ms = req.session_timeout_ms;
        member.client_id = req.client_id;
        member.client_host = req.client_host;
        member.last_heartbeat_ms = now_ms;
        match self.state {
            GroupState::Stable if self.select_protocol() == self.protocol_name => {
                JoinOutcome::Response(self.join_response(&new_id))
            }
            _ => {
                self.members[index].awaiting_join = true;
                self.maybe_prepare_rebalance(now_ms);
                self.try_complete_join(now_ms);
                JoinOutcome::Pending
            }
        }
    }

    /// SyncGroup, as Kafka's `doSyncGroup`.
    pub fn sync(&mut self, req: SyncRequest, now_ms: i64) -> SyncOutcome {
        let refused = if self.state == GroupState::Dead {
            Some(GroupError::CoordinatorNotAvailable)
        } else if self.is_fenced(&req.member_id, req.group_instance_id.as_deref()) {
            Some(GroupError::FencedInstanceId)
        } else if self.index_of(&req.member_id).is_none() {
            Some(GroupError::UnknownMemberId)
        } else if req.generation_id != self.generation_id {
            Some(GroupError::IllegalGeneration)
        } else if mismatched(req.protocol_type.as_deref(), self.protocol_type.as_deref())
            || mismatched(req.protocol_name.as_deref(), self.protocol_name.as_deref())
        {
            Some(GroupError::InconsistentGroupProtocol)
        } else {
            None
        };
        if let Some(error) = refused {
            return SyncOutcome::Response(SyncResponse::error(error));
        }
        let Some(index) = self.index_of(&req.member_id) else {
            return SyncOutcome::Response(SyncResponse::error(GroupError::UnknownMemberId));
        };
        match self.state {
            GroupState::Empty | GroupState::Dead => {
                SyncOutcome::Response(SyncResponse::error(GroupError::UnknownMemberId))
            }
            GroupState::PreparingRebalance => {
                SyncOutcome::Response(SyncResponse::error(GroupError::RebalanceInProgress))
            }
            GroupState::Stable => {
                self.pending_sync.remove(&req.member_id);
                self.members[index].last_heartbeat_ms = now_ms;
                let assignment = self.members[index].assignment.clone();
                SyncOutcome::Response(self.sync_response(assignment))
            }
            GroupState::CompletingRebalance => {
                self.pending_sync.remove(&req.member_id);
                self.members[index].last_heartbeat_ms = now_ms;
                if !self.is_leader(&req.member_id) {
                    self.members[index].awaiting_sync = true;
                    return SyncOutcome::Pending;
                }
                let mut assignments: BTreeMap<String, Bytes> =
                    req.assignments.into_iter().collect();
                for member in &mut self.members {
                    member.assignment = assignments.remove(&member.member_id).unwrap_or_default();
                }
                self.set_state(GroupState::Stable, now_ms);
                self.outbox.push(Effect::StoreGroup {
                    value: self.stored_value(),
                });
                let waiting: Vec<(String, Bytes)> = self
                    .members
                    .iter_mut()
                    .filter_map(|m| {
                        std::mem::take(&mut m.awaiting_sync)
                            .then(|| (m.member_id.clone(), m.assignment.clone()))
                    })
                    .collect();
                for (member_id, assignment) in waiting {
                    let response = self.sync_response(assignment);
                    self.outbox.push(Effect::SyncResponse {
                        member_id,
                        response,
                    });
                }
                let own = self.members[index].assignment.clone();
                SyncOutcome::Response(self.sync_response(own))
            }
        }
    }

    /// Heartbeat, as Kafka's `handleHeartbeat`.
    pub fn heartbeat(&mut self, req: &HeartbeatRequest, now_ms: i64) -> Result<(), GroupError> {
        if self.state == GroupState::Dead {
            return Err(GroupError::CoordinatorNotAvailable);
        }
        if self.is_fenced(&req.member_id, req.group_instance_id.as_deref()) {
            return Err(GroupError::FencedInstanceId);
        }
        let Some(index) = self.index_of(&req.member_id) else {
            return Err(GroupError::UnknownMemberId);
        };
        if req.generation_id != self.generation_id {
            return Err(GroupError::IllegalGeneration);
        }
        match self.state {
            GroupState::Empty | GroupState::Dead => Err(GroupError::UnknownMemberId),
            GroupState::PreparingRebalance => {
                self.members[index].last_heartbeat_ms = now_ms;
                Err(GroupError::RebalanceInProgress)
            }
            GroupState::CompletingRebalance | GroupState::Stable => {
                self.members[index].last_heartbeat_ms = now_ms;
                Ok(())
            }
        }
    }

    /// LeaveGroup (v3+ batch form; older versions pass one member). Each
    /// member is named by member id, by instance id, or both.
    pub fn leave(&mut self, members: &[LeaveMember], now_ms: i64) -> LeaveOutcome {
        if self.state == GroupState::Dead {
            let dead = Some(GroupError::CoordinatorNotAvailable);
            return LeaveOutcome {
                error: dead,
                member_errors: vec![dead; members.len()],
            };
        }
        let mut member_errors = Vec::with_capacity(members.len());
        for leaving in members {
            let instance_id = leaving.group_instance_id.as_deref();
            let member_id = match instance_id.and_then(|id| self.static_member_index(id)) {
                Some(index) if leaving.member_id.is_empty() => {
                    Some(self.members[index].member_id.clone())
                }
                Some(index) if self.members[index].member_id != leaving.member_id => {
                    member_errors.push(Some(GroupError::FencedInstanceId));
                    continue;
                }
                Some(_) => Some(leaving.member_id.clone()),
                None if instance_id.is_some() => None,
                None => self
                    .index_of(&leaving.member_id)
                    .map(|_| leaving.member_id.clone()),
            };
            match member_id.and_then(|id| self.index_of(&id)) {
                Some(index) => {
                    self.remove_member(index, now_ms);
                    member_errors.push(None);
                }
                None => member_errors.push(Some(GroupError::UnknownMemberId)),
            }
        }
        self.try_complete_join(now_ms);
        LeaveOutcome {
            error: None,
            member_errors,
        }
    }

    /// DeleteGroups: only an empty group can go.
    pub fn delete(&mut self) -> Result<(), GroupError> {
        match self.state {
            GroupState::Dead => Err(GroupError::GroupIdNotFound),
            GroupState::Empty => {
                self.state = GroupState::Dead;
                self.pending_members.clear();
                Ok(())
            }
            _ => Err(GroupError::NonEmptyGroup),
        }
    }

    /// Advances the clocks to `now_ms` and returns every effect queued
    /// since the last poll, in the order they happened.
    pub fn poll(&mut self, now_ms: i64) -> Vec<Effect> {
        self.pending_members
            .retain(|_, deadline_ms| now_ms < *deadline_ms);
        while let Some(index) = self.members.iter().position(|m| m.session_expired(now_ms)) {
            self.evict(index, EvictionReason::SessionTimeout, now_ms);
        }
        if matches!(
            self.state,
            GroupState::CompletingRebalance | GroupState::Stable
        ) && !self.pending_sync.is_empty()
            && now_ms >= self.sync_deadline_ms
        {
            let late: Vec<String> = std::mem::take(&mut self.pending_sync).into_iter().collect();
            for member_id in late {
                if let Some(index) = self.index_of(&member_id) {
                    self.evict(index, EvictionReason::SyncTimeout, now_ms);
                }
            }
        }
        self.try_complete_join(now_ms);
        std::mem::take(&mut self.outbox)
    }

    /// The earliest time at which `poll` has something to do, so the broker
    /// can set its timer; `None` when only a request can change anything.
    pub fn next_deadline_ms(&self) -> Option<i64> {
        let sessions = self
            .members
            .iter()
            .filter(|m| !m.awaiting_join && !m.awaiting_sync)
            .map(|m| m.last_heartbeat_ms + i64::from(m.session_timeout_ms));
        let rebalance = self
            .rebalance
            .map(|r| r.initial_until_ms.unwrap_or(r.deadline_ms));
        let sync = (!self.pending_sync.is_empty()).then_some(self.sync_deadline_ms);
        sessions
            .chain(self.pending_members.values().copied())
            .chain(rebalance)
            .chain(sync)
            .min()
    }

    /// DescribeGroups, as Kafka's `GroupMetadata.summary`: metadata and
    /// assignments only once Stable.
    pub fn describe(&self) -> GroupDescription {
        let stable = self.state == GroupState::Stable;
        let protocol = if stable {
            self.protocol_name.clone().unwrap_or_default()
        } else {
            String::new()
        };
        let members = self
            .members
            .iter()
            .map(|m| MemberDescription {
                member_id: m.member_id.clone(),
                group_instance_id: m.group_instance_id.clone(),
                client_id: m.client_id.clone(),
                client_host: m.client_host.clone(),
                metadata: if stable {
                    m.metadata(&protocol)
                } else {
                    Bytes::new()
                },
                assignment: if stable {
                    m.assignment.clone()
                } else {
                    Bytes::new()
                },
            })
            .collect();
        GroupDescription {
            group_id: self.group_id.clone(),
            state: self.state.name(),
            protocol_type: self.protocol_type.clone().unwrap_or_default(),
            protocol,
            members,
        }
    }

    fn set_state(&mut self, state: GroupState, now_ms: i64) {
        self.state = state;
        self.state_since_ms = now_ms;
    }

    fn index_of(&self, member_id: &str) -> Option<usize> {
        self.members.iter().position(|m| m.member_id == member_id)
    }

    fn static_member_index(&self, instance_id: &str) -> Option<usize> {
        self.members
            .iter()
            .position(|m| m.group_instance_id.as_deref() == Some(instance_id))
    }

    /// An instance id now owned by another member id.
    fn is_fenced(&self, member_id: &str, instance_id: Option<&str>) -> bool {
        instance_id
            .and_then(|id| self.static_member_index(id))
            .is_some_and(|index| self.members[index].member_id != member_id)
    }

    fn is_leader(&self, member_id: &str) -> bool {
        self.leader_id.as_deref() == Some(member_id)
    }

    /// Kafka's `supportsProtocols`: the first member sets the type; later
    /// ones must share it and one protocol with every other member.
    fn supports_protocols(&self, req: &JoinRequest) -> bool {
        if req.protocol_type.is_empty() || req.protocols.is_empty() {
            return false;
        }
        let others: Vec<&Member> = self
            .members
            .iter()
            .filter(|m| m.member_id != req.member_id || req.member_id.is_empty())
            .collect();
        if others.is_empty() {
            return true;
        }
        self.protocol_type.as_deref() == Some(req.protocol_type.as_str())
            && req
                .protocols
                .iter()
                .any(|(name, _)| others.iter().all(|m| m.supports(name)))
    }

    /// Kafka's `selectProtocol`: among the protocols every member supports,
    /// each member votes for the first it lists; most votes wins, ties go to
    /// the candidate listed first by the earliest member.
    fn select_protocol(&self) -> Option<String> {
        let first = self.members.first()?;
        let candidates: Vec<&str> = first
            .protocols
            .iter()
            .map(|(name, _)| name.as_str())
            .filter(|name| self.members.iter().all(|m| m.supports(name)))
            .collect();
        let mut votes = vec![0usize; candidates.len()];
        for member in &self.members {
            let choice = member
                .protocols
                .iter()
                .find_map(|(name, _)| candidates.iter().position(|c| c == name));
            if let Some(choice) = choice {
                votes[choice] += 1;
            }
        }
        let best = votes.iter().copied().max()?;
        let winner = votes.iter().position(|&v| v == best)?;
        Some(candidates[winner].to_owned())
    }

    fn maybe_prepare_rebalance(&mut self, now_ms: i64) {
        let from = self.state;
        if !matches!(
            from,
            GroupState::Empty | GroupState::CompletingRebalance | GroupState::Stable
        ) {
            return;
        }
        if from == GroupState::CompletingRebalance {
            // The assignment being computed is void: have everyone rejoin.
            let waiting: Vec<String> = self
                .members
                .iter_mut()
                .filter_map(|m| std::mem::take(&mut m.awaiting_sync).then(|| m.member_id.clone()))
                .collect();
            for member_id in waiting {
                self.outbox.push(Effect::SyncResponse {
                    member_id,
                    response: SyncResponse::error(GroupError::RebalanceInProgress),
                });
            }
        }
        if from != GroupState::Stable {
            for member in &mut self.members {
                member.assignment = Bytes::new();
            }
        }
        self.pending_sync.clear();
        let deadline_ms = now_ms + self.max_rebalance_timeout_ms();
        let initial_until_ms = (from == GroupState::Empty)
            .then(|| (now_ms + i64::from(self.config.initial_rebalance_delay_ms)).min(deadline_ms));
        self.rebalance = Some(Rebalance {
            deadline_ms,
            initial_until_ms,
        });
        self.rebalances += 1;
        self.set_state(GroupState::PreparingRebalance, now_ms);
    }

    fn max_rebalance_timeout_ms(&self) -> i64 {
        self.members
            .iter()
            .map(|m| i64::from(m.rebalance_timeout_ms))
            .max()
            .unwrap_or(0)
    }

    fn try_complete_join(&mut self, now_ms: i64) {
        let Some(rebalance) = self.rebalance else {
            return;
        };
        let done = match rebalance.initial_until_ms {
            // Nobody left to wait for: no point sitting out the delay.
            Some(until_ms) => now_ms >= until_ms || self.members.is_empty(),
            None => {
                now_ms >= rebalance.deadline_ms
                    || (self.pending_members.is_empty()
                        && self.members.iter().all(|m| m.awaiting_join))
            }
        };
        if done {
            self.complete_join(now_ms);
        }
    }

    /// Ends the join phase, as Kafka's `onCompleteJoin`.
    fn complete_join(&mut self, now_ms: i64) {
        self.rebalance = None;
        while let Some(index) = self.members.iter().position(|m| !m.awaiting_join) {
            self.evict(index, EvictionReason::RebalanceTimeout, now_ms);
        }
        self.generation_id += 1;
        if self.members.is_empty() {
            self.protocol_name = None;
            self.leader_id = None;
            self.set_state(GroupState::Empty, now_ms);
            self.outbox.push(Effect::StoreGroup {
                value: self.stored_value(),
            });
            return;
        }
        if self
            .leader_id
            .as_deref()
            .is_none_or(|id| self.index_of(id).is_none())
        {
            self.leader_id = Some(self.members[0].member_id.clone());
        }
        self.protocol_name = self.select_protocol();
        self.set_state(GroupState::CompletingRebalance, now_ms);
        self.sync_deadline_ms = now_ms + self.max_rebalance_timeout_ms();
        let ids: Vec<String> = self.members.iter().map(|m| m.member_id.clone()).collect();
        for member_id in ids {
            let response = self.join_response(&member_id);
            if let Some(index) = self.index_of(&member_id) {
                let member = &mut self.members[index];
                member.awaiting_join = false;
                member.last_heartbeat_ms = now_ms;
            }
            self.pending_sync.insert(member_id.clone());
            self.outbox.push(Effect::JoinResponse {
                member_id,
                response,
            });
        }
    }

    /// The JoinGroup answer of the current generation for `member_id`; the
    /// leader's lists every member with its metadata for the protocol.
    fn join_response(&self, member_id: &str) -> JoinResponse {
        let protocol = self.protocol_name.clone().unwrap_or_default();
        let is_leader = self.is_leader(member_id);
        let members = if is_leader {
            self.members
                .iter()
                .map(|m| JoinMember {
                    member_id: m.member_id.clone(),
                    group_instance_id: m.group_instance_id.clone(),
                    metadata: m.metadata(&protocol),
                })
                .collect()
        } else {
            Vec::new()
        };
        JoinResponse {
            error: None,
            generation_id: self.generation_id,
            protocol_type: self.protocol_type.clone(),
            protocol_name: self.protocol_name.clone(),
            leader: self.leader_id.clone().unwrap_or_default(),
            // Only a static leader rejoining a stable group skips assigning.
            skip_assignment: is_leader && self.state == GroupState::Stable,
            member_id: member_id.to_owned(),
            members,
        }
    }

    fn sync_response(&self, assignment: Bytes) -> SyncResponse {
        SyncResponse {
            error: None,
            protocol_type: self.protocol_type.clone(),
            protocol_name: self.protocol_name.clone(),
            assignment,
        }
    }

    fn evict(&mut self, index: usize, reason: EvictionReason, now_ms: i64) {
        let member_id = self.members[index].member_id.clone();
        self.remove_member(index, now_ms);
        self.outbox
            .push(Effect::MemberEvicted { member_id, reason });
    }

    /// Kafka's `removeMemberAndUpdateGroup`: a held request gets
    /// `GroupError::UnknownMemberId` so nothing is left hanging, and a stable or
    /// completing group rebalances.
    fn remove_member(&mut self, index: usize, now_ms: i64) {
        let member = self.members.remove(index);
        if member.awaiting_join {
            self.outbox.push(Effect::JoinResponse {
                member_id: member.member_id.clone(),
                response: JoinResponse::error(GroupError::UnknownMemberId, &member.member_id),
            });
        }
        if member.awaiting_sync {
            self.outbox.push(Effect::SyncResponse {
                member_id: member.member_id.clone(),
                response: SyncResponse::error(GroupError::UnknownMemberId),
            });
        }
        self.pending_sync.remove(&member.member_id);
        if self.is_leader(&member.member_id) {
            self.leader_id = self.members.first().map(|m| m.member_id.clone());
        }
        if matches!(
            self.state,
            GroupState::Stable | GroupState::CompletingRebalance
        ) {
            self.maybe_prepare_rebalance(now_ms);
        }
    }
}

/// The topic names of a ConsumerProtocolSubscription (any version: an
/// `i16` version, then an `i32` count of `i16`-length strings; later fields
/// are not needed). `None` when the bytes do not hold that.
fn subscription_topics(metadata: &[u8]) -> Option<Vec<String>> {
    let rest = metadata.get(2..)?;
    let count = i32::from_be_bytes(rest.get(..4)?.try_into().ok()?);
    let mut rest = rest.get(4..)?;
    let mut topics = Vec::new();
    for _ in 0..count {
        let len = i16::from_be_bytes(rest.get(..2)?.try_into().ok()?);
        let len = usize::try_from(len).ok()?;
        let name = rest.get(2..2 + len)?;
        topics.push(String::from_utf8(name.to_vec()).ok()?);
        rest = &rest[2 + len..];
    }
    Some(topics)
}

/// A request field the client may leave out (older versions) and that must
/// otherwise match the group's.
fn mismatched(requested: Option<&str>, current: Option<&str>) -> bool {
    requested.is_some_and(|r| Some(r) != current)
}
