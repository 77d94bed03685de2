//! The broker side of consumer groups: one `runnel_coordinator::Group`
//! state machine per group id, the JoinGroup and SyncGroup requests it
//! holds (parked on oneshot channels until an effect answers them), and a
//! timer task that runs the groups' clocks (`poll`) at their next deadline.
//! The lock is never held across an await.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use runnel_coordinator::group::{
    Effect, Group, GroupConfig, GroupDescription, GroupError, GroupState, HeartbeatRequest,
    JoinOutcome, JoinRequest, JoinResponse, LeaveMember, LeaveOutcome, SyncOutcome, SyncRequest,
    SyncResponse,
};
use runnel_coordinator::{GroupMetadataValue, RetentionClock};
use tokio::sync::{Notify, oneshot};

use crate::clock::now_ms;

/// A reply now, or one to wait for.
#[derive(Debug)]
pub enum Reply<T> {
    Now(T),
    Later(oneshot::Receiver<T>),
}

impl<T> Reply<T> {
    /// The reply; `fallback` when the group dropped the request (it was
    /// deleted, or the broker is stopping).
    pub async fn wait(self, fallback: impl FnOnce() -> T) -> T {
        match self {
            Reply::Now(reply) => reply,
            Reply::Later(rx) => rx.await.unwrap_or_else(|_| fallback()),
        }
    }
}

#[derive(Debug)]
struct Slot {
    group: Group,
    joins: HashMap<String, oneshot::Sender<JoinResponse>>,
    syncs: HashMap<String, oneshot::Sender<SyncResponse>>,
}

/// What OffsetDelete may do to a group with membership state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OffsetDeletion {
    /// The group was deleted meanwhile.
    NotFound,
    /// Empty: any of its offsets.
    Any,
    /// A consumer group with members: offsets of topics it does not
    /// subscribe to (these are the ones it does).
    Unsubscribed(std::collections::BTreeSet<String>),
    /// Members whose subscriptions cannot be read: none.
    NonEmpty,
}

/// A group record for `__consumer_offsets`: its stored form, or `None`
/// for a tombstone.
pub type GroupRecord = (String, Option<GroupMetadataValue>);

impl Slot {
    fn new(group: Group) -> Self {
        Self {
            group,
            joins: HashMap::new(),
            syncs: HashMap::new(),
        }
    }

    /// Runs the group's clocks and answers the requests its effects name;
    /// the group records to store go to `stores`.
    fn poll(&mut self, now_ms: i64, stores: &mut Vec<GroupRecord>) {
        for effect in self.group.poll(now_ms) {
            match effect {
                Effect::JoinResponse {
                    member_id,
                    response,
                } => {
                    if let Some(tx) = self.joins.remove(&member_id) {
                        let _ = tx.send(response);
                    }
                }
                Effect::SyncResponse {
                    member_id,
                    response,
                } => {
                    if let Some(tx) = self.syncs.remove(&member_id) {
                        let _ = tx.send(response);
                    }
                }
                Effect::StoreGroup { value } => {
                    stores.push((self.group.group_id().to_string(), Some(value)));
                }
                Effect::MemberEvicted { member_id, reason } => {
                    tracing::info!(
                        group = self.group.group_id(),
                        member_id,
                        ?reason,
                        "member removed from group"
                    );
                }
            }
        }
    }
}

#[derive(Debug)]
pub struct Groups {
    config: GroupConfig,
    slots: Mutex<HashMap<String, Slot>>,
    /// Woken when a deadline may have moved earlier.
    changed: Notify,
    /// Group records waiting to be written, in the order they happened.
    stores: Mutex<Vec<GroupRecord>>,
    /// Woken when `stores` has something.
    stores_ready: Notify,
}

impl Groups {
    pub fn new(config: GroupConfig) -> Self {
        Self {
            config,
            slots: Mutex::new(HashMap::new()),
            changed: Notify::new(),
            stores: Mutex::new(Vec::new()),
            stores_ready: Notify::new(),
        }
    }

    fn slots(&self) -> MutexGuard<'_, HashMap<String, Slot>> {
        self.slots.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn queue_stores(&self, records: Vec<GroupRecord>) {
        if records.is_empty() {
            return;
        }
        self.stores
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .extend(records);
        self.stores_ready.notify_one();
    }

    /// Returns once group records may have been queued since the last call.
    pub async fn stores_queued(&self) {
        self.stores_ready.notified().await;
    }

    /// Takes the queued group records, oldest first.
    pub fn take_stores(&self) -> Vec<GroupRecord> {
        std::mem::take(&mut *self.stores.lock().unwrap_or_else(PoisonError::into_inner))
    }

    /// Brings back the groups `__consumer_offsets` stored, at start.
    pub fn restore(&self, stored: impl IntoIterator<Item = (String, GroupMetadataValue)>) {
        let now = now_ms();
        let mut slots = self.slots();
        for (group_id, value) in stored {
            let group = Group::restore(group_id.clone(), self.config, &value, now);
            slots.insert(group_id, Slot::new(group));
        }
        drop(slots);
        self.changed.notify_one();
    }

    /// What `group_id`'s offset retention counts from, as Kafka's
    /// `removeExpiredOffsets`: from each commit for a group with no
    /// membership state, from the time it emptied for an empty one; a
    /// stable consumer group keeps the offsets of the topics it subscribes
    /// to and lets the others count from their commit; other groups with
    /// members keep them all.
    pub fn retention_clock(&self, group_id: &str) -> RetentionClock {
        let slots = self.slots();
        let Some(slot) = slots.get(group_id) else {
            return RetentionClock::SinceCommit;
        };
        match slot.group.state() {
            GroupState::Empty | GroupState::Dead if slot.group.state_since_ms() >= 0 => {
                RetentionClock::Since(slot.group.state_since_ms())
            }
            GroupState::Empty | GroupState::Dead => RetentionClock::SinceCommit,
            GroupState::Stable => slot
                .group
                .subscribed_topics()
                .map_or(RetentionClock::Paused, RetentionClock::SinceCommitExcept),
            _ => RetentionClock::Paused,
        }
    }

    /// Drops `group_id` if it is empty (its offsets are gone) and queues its
    /// tombstone, as Kafka's `cleanupGroupMetadata`. Returns whether it went.
    pub fn remove_if_empty(&self, group_id: &str) -> bool {
        let mut slots = self.slots();
        let empty = slots
            .get(group_id)
            .is_some_and(|s| s.group.state() == GroupState::Empty && s.joins.is_empty());
        if empty {
            slots.remove(group_id);
            drop(slots);
            self.queue_stores(vec![(group_id.to_string(), None)]);
        }
        empty
    }

    /// Which of `group_id`'s offsets OffsetDelete may remove, as Kafka's
    /// `handleDeleteOffsets`; `None` when the group has no membership state.
    pub fn offset_deletion(&self, group_id: &str) -> Option<OffsetDeletion> {
        let slots = self.slots();
        let group = &slots.get(group_id)?.group;
        Some(match group.state() {
            GroupState::Dead => OffsetDeletion::NotFound,
            GroupState::Empty => OffsetDeletion::Any,
            _ => match group.subscribed_topics() {
                Some(topics) => OffsetDeletion::Unsubscribed(topics),
                None => OffsetDeletion::NonEmpty,
            },
        })
    }

    /// Each group's state, members and rebalance count, for metrics.
    pub fn figures(&self) -> Vec<GroupFigures> {
        self.slots()
            .values()
            .map(|s| GroupFigures {
                group_id: s.group.group_id().to_string(),
                state: s.group.state().name(),
                members: s.group.members().len(),
                rebalances: s.group.rebalances(),
            })
            .collect()
    }

    /// The group ids with membership state.
    pub fn ids(&self) -> Vec<String> {
        self.slots().keys().cloned().collect()
    }

    fn with_group<R>(&self, group_id: &str, f: impl FnOnce(&mut Slot, i64) -> R) -> R {
        let now = now_ms();
        let mut stores = Vec::new();
        let result = {
            let mut slots = self.slots();
            let slot = slots
                .entry(group_id.to_string())
                .or_insert_with(|| Slot::new(Group::new(group_id, self.config)));
            let before = slot.group.state();
            let result = f(slot, now);
            slot.poll(now, &mut stores);
            tracing::debug!(group = group_id, ?before, after = ?slot.group.state(), generation = slot.group.generation_id(), members = slot.group.members().len(), held_joins = slot.joins.len(), held_syncs = slot.syncs.len(), "group request");
            result
        };
        self.queue_stores(stores);
        self.changed.notify_one();
        result
    }

    pub fn join(&self, group_id: &str, request: JoinRequest) -> Reply<JoinResponse> {
        let waiting_as = if request.member_id.is_empty() {
            request.new_member_id.clone()
        } else {
            request.member_id.clone()
        };
        self.with_group(group_id, |slot, now| match slot.group.join(request, now) {
            JoinOutcome::Response(response) => Reply::Now(response),
            JoinOutcome::Pending => {
                let (tx, rx) = oneshot::channel();
                slot.joins.insert(waiting_as, tx);
                Reply::Later(rx)
            }
        })
    }

    pub fn sync(&self, group_id: &str, request: SyncRequest) -> Reply<SyncResponse> {
        let member_id = request.member_id.clone();
        self.with_group(group_id, |slot, now| match slot.group.sync(request, now) {
            SyncOutcome::Response(response) => Reply::Now(response),
            SyncOutcome::Pending => {
                let (tx, rx) = oneshot::channel();
                slot.syncs.insert(member_id, tx);
                Reply::Later(rx)
            }
        })
    }

    pub fn heartbeat(&self, group_id: &str, request: &HeartbeatRequest) -> Result<(), GroupError> {
        let outcome = self.with_group(group_id, |slot, now| slot.group.heartbeat(request, now));
        tracing::debug!(
            group = group_id,
            member_id = request.member_id,
            generation = request.generation_id,
            ?outcome,
            "heartbeat"
        );
        outcome
    }

    pub fn leave(&self, group_id: &str, members: &[LeaveMember]) -> LeaveOutcome {
        self.with_group(group_id, |slot, now| slot.group.leave(members, now))
    }

    /// Whether `member_id` of generation `generation_id` may commit offsets
    /// for `group_id`: `None` when it may, else why not.
    pub fn check_member(
        &self,
        group_id: &str,
        member_id: &str,
        generation_id: i32,
    ) -> Option<GroupError> {
        let slots = self.slots();
        let group = &slots.get(group_id)?.group;
        if group.member(member_id).is_none() {
            return Some(GroupError::UnknownMemberId);
        }
        (group.generation_id() != generation_id).then_some(GroupError::IllegalGeneration)
    }

    /// Whether any group of that id has state (for commits of a group that
    /// never joined: those are Kafka's "simple" commits).
    pub fn exists(&self, group_id: &str) -> bool {
        self.slots()
            .get(group_id)
            .is_some_and(|s| !s.group.members().is_empty())
    }

    /// DeleteGroups for the membership side: `None` when the group has no
    /// state here, else the state machine's answer (`NonEmptyGroup` while
    /// members remain). A deleted group's slot is dropped.
    pub fn delete(&self, group_id: &str) -> Option<Result<(), GroupError>> {
        let mut slots = self.slots();
        let outcome = slots.get_mut(group_id)?.group.delete();
        if outcome.is_ok() {
            slots.remove(group_id);
            drop(slots);
            self.queue_stores(vec![(group_id.to_string(), None)]);
        }
        Some(outcome)
    }

    /// Drops the membership state of the groups `owned` picks (this broker
    /// stopped coordinating their `__consumer_offsets` partition); their
    /// held JoinGroup and SyncGroup requests are answered as on shutdown.
    /// Nothing is stored: the new coordinator reads the groups back from
    /// the partition. Returns how many groups went.
    pub fn unload(&self, owned: impl Fn(&str) -> bool) -> usize {
        let mut slots = self.slots();
        let before = slots.len();
        slots.retain(|group_id, _| !owned(group_id));
        before - slots.len()
    }

    pub fn describe(&self, group_id: &str) -> Option<GroupDescription> {
        self.slots().get(group_id).map(|s| s.group.describe())
    }

    pub fn list(&self) -> Vec<GroupDescription> {
        self.slots().values().map(|s| s.group.describe()).collect()
    }

    /// Answers every held JoinGroup and SyncGroup with
    /// COORDINATOR_NOT_AVAILABLE (their senders are dropped), so a stopping
    /// broker does not wait out rebalance timeouts; clients find the
    /// coordinator again and rejoin.
    pub fn release_waiters(&self) {
        for slot in self.slots().values_mut() {
            slot.joins.clear();
            slot.syncs.clear();
        }
    }

    /// Runs every group's clocks at its next deadline, forever.
    pub async fn run_timers(self: Arc<Self>) {
        loop {
            let next = self
                .slots()
                .values()
                .filter_map(|s| s.group.next_deadline_ms())
                .min();
            let wait = next.map_or(Duration::from_secs(1), |at| {
                Duration::from_millis(at.saturating_sub(now_ms()).max(0) as u64)
            });
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = self.changed.notified() => continue,
            }
            let now = now_ms();
            let mut stores = Vec::new();
            for slot in self.slots().values_mut() {
                slot.poll(now, &mut stores);
            }
            self.queue_stores(stores);
        }
    }
}

/// One group's membership figures.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupFigures {
    pub group_id: String,
    pub state: &'static str,
    pub members: usize,
    pub rebalances: u64,
}
