//! One partition this broker hosts: its log, its leader epoch, its high
//! watermark, its role (leader, with what it knows of its followers, or
//! follower) and the two wake-ups parked requests wait on (the log end,
//! for followers' fetches; the high watermark, for consumers and
//! `acks=all` producers).
//!
//! Every leader write goes through [`Partition::append`] or
//! [`Partition::append_marker`], every follower write through
//! [`Partition::append_as_follower`]; each moves the high watermark, wakes
//! only this partition's waiters, and tells the log dirs' health of a
//! storage failure (a full disk marks the dir failing, whoever wrote: a
//! producer, a coordinator or a fetcher).
//!
//! The high watermark: on a broker alone (a quorum of one) it follows the
//! log end; a leader on a cluster moves it to the ISR's smallest log end
//! ([`LeaderState`]) and never back; a follower takes the leader's, capped
//! at its own log end. Consumers never read past it.
//!
//! Locks: the log's, then the leader state's, never the other way.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicI64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use runnel_log::control::ControlType;
use runnel_log::manager::lock;
use runnel_log::{AppendInfo, LogError, PartitionLog, SharedLog};

use super::leader_state::{IsrChange, LeaderState};
use super::purgatory::{Awaited, Wait, wait_for_high_watermarks};
use super::txn_guards::{TxnGuard, TxnGuards};
use super::watchers::{Waiter, Watchers};
use crate::storage_health::StorageHealth;

#[derive(Debug)]
pub struct Partition {
    topic: Arc<str>,
    index: i32,
    log: SharedLog,
    /// The log's directory, for errors reported after the lock is gone.
    dir: PathBuf,
    leader_epoch: AtomicI32,
    /// Whether the metadata names this broker the partition's leader (a
    /// hosted partition whose leader was fenced, or that another broker
    /// leads, answers NOT_LEADER_OR_FOLLOWER to clients).
    leader: AtomicBool,
    high_watermark: AtomicI64,
    /// The log end offset, readable without the log's lock.
    log_end: AtomicI64,
    /// What this leader knows of its followers; `None` on a follower and
    /// on a broker alone, whose ISR is itself.
    leader_state: Mutex<Option<LeaderState>>,
    /// Woken by every append: followers' fetches park here.
    log_end_watchers: Watchers,
    high_watermark_watchers: Watchers,
    /// KIP-890's verifications of transactional producers' first batches
    /// in flight (taken under the log's lock only).
    txn_guards: Mutex<TxnGuards>,
    /// Told of each write's outcome: a storage failure marks the log dir
    /// failing, a success clears it.
    storage: Arc<StorageHealth>,
}

/// What one append left: the append, the log's start offset after it and
/// the leader epoch it was written in.
#[derive(Debug, Clone)]
pub struct Appended {
    pub info: AppendInfo,
    pub log_start_offset: i64,
    pub leader_epoch: i32,
}

/// Why a producer's write was refused before it reached the log, or the
/// log's own refusal.
#[derive(Debug, thiserror::Error)]
pub enum LeaderWriteError {
    #[error("this broker no longer leads the partition")]
    NotLeader,
    #[error("the partition has {in_sync} in-sync replicas, fewer than min.insync.replicas={min}")]
    NotEnoughReplicas { in_sync: usize, min: i32 },
    /// A marker for the producer was written between the coordinator's
    /// verification and this append: the batch belongs to a transaction
    /// that ended (KIP-890).
    #[error(
        "a marker for producer {producer_id} was written since its transaction was verified: the batch's transaction has ended"
    )]
    TxnNotVerified { producer_id: i64 },
    #[error(transparent)]
    Log(#[from] LogError),
}

/// The log's error inside a write's error, if it is one (a storage
/// failure marks the log dir).
trait LogCause {
    fn log_error(&self) -> Option<&LogError>;
}

impl LogCause for LogError {
    fn log_error(&self) -> Option<&LogError> {
        Some(self)
    }
}

impl LogCause for LeaderWriteError {
    fn log_error(&self) -> Option<&LogError> {
        match self {
            Self::Log(err) => Some(err),
            _ => None,
        }
    }
}

impl Partition {
    /// Partition `index` of `topic` over `log`. Its high watermark starts
    /// at the log end when this broker alone holds it, and at the log
    /// start when it is `replicated` (a cluster): what a restarted replica
    /// wrote may never have reached the ISR, and a retry of it must not be
    /// acknowledged until it has.
    pub fn new(
        (topic, index): (Arc<str>, i32),
        log: SharedLog,
        replicated: bool,
        storage: Arc<StorageHealth>,
    ) -> Self {
        let (dir, log_start, log_end) = {
            let log = lock(&log);
            (
                log.dir().to_path_buf(),
                log.log_start_offset(),
                log.log_end_offset(),
            )
        };
        let high_watermark = if replicated { log_start } else { log_end };
        Self {
            topic,
            index,
            log,
            dir,
            leader_epoch: AtomicI32::new(0),
            leader: AtomicBool::new(true),
            high_watermark: AtomicI64::new(high_watermark),
            log_end: AtomicI64::new(log_end),
            leader_state: Mutex::new(None),
            log_end_watchers: Watchers::default(),
            high_watermark_watchers: Watchers::default(),
            txn_guards: Mutex::default(),
            storage,
        }
    }

    pub fn topic(&self) -> &str {
        &self.topic
    }

    pub fn index(&self) -> i32 {
        self.index
    }

    pub fn leader_epoch(&self) -> i32 {
        self.leader_epoch.load(Ordering::Acquire)
    }

    /// Whether this broker leads the partition (see the field).
    pub fn is_leader(&self) -> bool {
        self.leader.load(Ordering::Acquire)
    }

    fn state(&self) -> MutexGuard<'_, Option<LeaderState>> {
        self.leader_state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Makes this broker (`node_id`) the partition's leader in
    /// `leader_epoch`, with `replicas` and `isr` at `partition_epoch`. In
    /// the epoch it leads already, only the ISR and replicas are taken
    /// (an ISR change committed); followers keep what they reported.
    pub fn become_leader(
        &self,
        node_id: i32,
        leader_epoch: i32,
        partition_epoch: i32,
        (replicas, isr): (&[i32], &[i32]),
        now_ms: i64,
    ) -> Result<(), LogError> {
        let mut log = self.log();
        let mut state = self.state();
        let same_term = state.is_some() && self.is_leader() && self.leader_epoch() == leader_epoch;
        if !same_term {
            log.become_leader(leader_epoch)?;
            self.guards().clear();
        }
        let log_end = log.log_end_offset();
        match state.as_mut() {
            Some(state) if same_term => state.update(replicas, isr, partition_epoch, now_ms),
            _ => {
                *state = Some(LeaderState::new(
                    node_id,
                    replicas,
                    isr,
                    partition_epoch,
                    now_ms,
                ))
            }
        }
        let high_watermark = state
            .as_ref()
            .map_or(log_end, |s| s.high_watermark(log_end));
        drop(state);
        self.leader_epoch.store(leader_epoch, Ordering::Release);
        self.leader.store(true, Ordering::Release);
        drop(log);
        self.raise_high_watermark(high_watermark);
        Ok(())
    }

    /// Makes this broker a follower in `leader_epoch`: it stops taking
    /// writes, and producers waiting on it are woken to learn so.
    pub fn become_follower(&self, leader_epoch: i32) {
        // Under the log's lock: no producer's append is half way.
        let _log = self.log();
        *self.state() = None;
        self.guards().clear();
        self.leader.store(false, Ordering::Release);
        self.leader_epoch.store(leader_epoch, Ordering::Release);
        self.high_watermark_watchers.wake();
    }

    /// Follower `replica` fetched from `fetch_offset` while this leader's
    /// log ended at `log_end` and its epoch started at `epoch_start`: the
    /// high watermark may move (waking `acks=all` producers), and the ISR
    /// change to ask for, when the follower just caught up.
    pub fn follower_fetched(
        &self,
        replica: i32,
        fetch_offset: i64,
        (log_end, epoch_start): (i64, i64),
        now_ms: i64,
    ) -> Option<IsrChange> {
        let (high_watermark, expand) = {
            let mut state = self.state();
            let state = state.as_mut()?;
            if !state.follower_fetched(replica, fetch_offset, log_end, now_ms) {
                return None;
            }
            let high_watermark = state.high_watermark(log_end);
            let current = self.high_watermark().max(high_watermark);
            (
                high_watermark,
                state.propose_expand(replica, current, epoch_start),
            )
        };
        self.raise_high_watermark(high_watermark);
        expand
    }

    /// The ISR change to ask for when followers lagged past `max_lag_ms`.
    pub fn shrink_if_lagging(&self, now_ms: i64, max_lag_ms: i64) -> Option<IsrChange> {
        let log_end = self.log_end_offset();
        self.state()
            .as_mut()?
            .propose_shrink(log_end, now_ms, max_lag_ms)
    }

    /// Takes the ISR the controller committed at `partition_epoch` (its
    /// answer to an AlterPartition); the high watermark may move.
    pub fn isr_committed(&self, replicas: &[i32], isr: &[i32], partition_epoch: i32, now_ms: i64) {
        let log_end = self.log_end_offset();
        let high_watermark = {
            let mut state = self.state();
            let Some(state) = state.as_mut() else {
                return;
            };
            state.update(replicas, isr, partition_epoch, now_ms);
            state.high_watermark(log_end)
        };
        self.raise_high_watermark(high_watermark);
    }

    /// Forgets `change` if it is the ISR change in flight: the controller
    /// refused it (or it was never sent).
    pub fn isr_change_refused(&self, change: &IsrChange) {
        if let Some(state) = self.state().as_mut() {
            state.clear_pending(change);
        }
    }

    /// Whether `change` is still the ISR change in flight (a failed
    /// exchange is sent again only then).
    pub fn isr_change_pending(&self, change: &IsrChange) -> bool {
        self.state().as_ref().is_some_and(|s| s.is_pending(change))
    }

    /// The committed ISR's size, what `min.insync.replicas` is checked
    /// against (1 on a broker alone).
    pub fn in_sync_replicas(&self) -> usize {
        self.state().as_ref().map_or(1, |s| s.isr().len())
    }

    /// The committed ISR and partition epoch, when this broker leads on a
    /// cluster.
    pub fn isr(&self) -> Option<(Vec<i32>, i32)> {
        self.state()
            .as_ref()
            .map(|s| (s.isr().to_vec(), s.partition_epoch()))
    }

    /// The largest lag of a follower, in offsets (0 on a follower).
    pub fn max_follower_lag(&self) -> i64 {
        let log_end = self.log_end_offset();
        self.state().as_ref().map_or(0, |s| s.max_lag(log_end))
    }

    /// The log end offset, without the log's lock.
    pub fn log_end_offset(&self) -> i64 {
        self.log_end.load(Ordering::Acquire)
    }

    /// Moves the high watermark up to `offset` (never back) and wakes its
    /// waiters when it moved.
    fn raise_high_watermark(&self, offset: i64) {
        if self.high_watermark.fetch_max(offset, Ordering::AcqRel) < offset {
            self.high_watermark_watchers.wake();
        }
    }

    /// The first offset not yet known to be on every in-sync replica:
    /// consumers read below it, and `acks=all` completes at it.
    pub fn high_watermark(&self) -> i64 {
        self.high_watermark.load(Ordering::Acquire)
    }

    /// The log, for reads and for maintenance. Writes go through
    /// [`Partition::append`] so the high watermark and wake-ups follow.
    pub fn log(&self) -> MutexGuard<'_, PartitionLog> {
        lock(&self.log)
    }

    /// Appends a producer's batches as they came (see
    /// [`PartitionLog::append`]).
    pub fn append(&self, batches: &[u8], now_ms: i64) -> Result<Appended, LogError> {
        self.write(|log| append_maybe_synced(log, batches, now_ms))
    }

    /// A producer's append: refused unless this broker leads the partition
    /// at the moment of the write (a leadership change waits for the
    /// log's lock) and, for `acks=all`, the ISR has at least
    /// `min.insync.replicas` members (NOT_ENOUGH_REPLICAS).
    ///
    /// A transaction's first batch comes with the `guard` of its
    /// verification ([`Partition::begin_txn_verification`]); it is refused
    /// (TxnNotVerified) if a marker for its producer was written since,
    /// unless the producer's transaction is open here by now.
    pub fn append_from_producer(
        &self,
        batches: &[u8],
        (acks_all, guard): (bool, Option<TxnGuard>),
        now_ms: i64,
    ) -> Result<Appended, LeaderWriteError> {
        self.write(|log| {
            if !self.is_leader() {
                return Err(LeaderWriteError::NotLeader);
            }
            if acks_all {
                let min = log.config().min_insync_replicas;
                let in_sync = self.in_sync_replicas();
                if in_sync < usize::try_from(min).unwrap_or(usize::MAX) {
                    return Err(LeaderWriteError::NotEnoughReplicas { in_sync, min });
                }
            }
            if let Some(guard) = guard {
                let mut guards = self.guards();
                let stands =
                    guards.holds(guard) || txn_open(log, guard.producer_id, guard.producer_epoch);
                guards.finish(guard);
                if !stands {
                    return Err(LeaderWriteError::TxnNotVerified {
                        producer_id: guard.producer_id,
                    });
                }
            }
            Ok(append_maybe_synced(log, batches, now_ms)?)
        })
    }

    /// Starts KIP-890's verification of a transactional batch of
    /// `producer_id` at `producer_epoch`: `None` when the producer's
    /// transaction is open in this log already (no verification needed),
    /// else the guard its append must present once the coordinator said
    /// the partition is in the transaction.
    pub fn begin_txn_verification(
        &self,
        producer_id: i64,
        producer_epoch: i16,
    ) -> Option<TxnGuard> {
        let log = self.log();
        if txn_open(&log, producer_id, producer_epoch) {
            return None;
        }
        Some(self.guards().begin(producer_id, producer_epoch))
    }

    /// A verification that will not be followed by an append (the
    /// coordinator refused it).
    pub fn abandon_txn_verification(&self, guard: TxnGuard) {
        let _log = self.log();
        self.guards().finish(guard);
    }

    fn guards(&self) -> MutexGuard<'_, TxnGuards> {
        self.txn_guards
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Writes a transaction marker (see [`PartitionLog::append_marker`]).
    pub fn append_marker(
        &self,
        producer_id: i64,
        producer_epoch: i16,
        kind: ControlType,
        coordinator_epoch: i32,
        now_ms: i64,
    ) -> Result<Appended, LogError> {
        self.write(|log| {
            self.guards().marker_written(producer_id);
            log.append_marker(producer_id, producer_epoch, kind, coordinator_epoch, now_ms)
        })
    }

    fn write<E: LogCause>(
        &self,
        append: impl FnOnce(&mut PartitionLog) -> Result<AppendInfo, E>,
    ) -> Result<Appended, E> {
        let appended = {
            let mut log = self.log();
            let info = match append(&mut log) {
                Ok(info) => info,
                Err(err) => {
                    drop(log);
                    if let Some(err) = err.log_error().filter(|e| e.is_storage_failure()) {
                        self.storage
                            .write_failed(&self.dir, &runnel_http::error_chain(err));
                    }
                    return Err(err);
                }
            };
            let log_end = log.log_end_offset();
            self.log_end.store(log_end, Ordering::Release);
            // Alone, the ISR is this replica: the high watermark follows
            // the log end.
            let high_watermark = self
                .state()
                .as_ref()
                .map_or(log_end, |s| s.high_watermark(log_end));
            (
                Appended {
                    info,
                    log_start_offset: log.log_start_offset(),
                    leader_epoch: self.leader_epoch(),
                },
                high_watermark,
            )
        };
        let (appended, high_watermark) = appended;
        self.storage.write_succeeded(&self.dir);
        if !appended.info.duplicate {
            self.log_end_watchers.wake();
            self.raise_high_watermark(high_watermark);
        }
        Ok(appended)
    }

    /// Appends what the leader's log holds, as it came (see
    /// [`PartitionLog::append_as_follower`]; nothing when `batches` is
    /// empty), then takes the leader's high watermark, capped at this
    /// log's end, and its log start offset.
    pub fn append_as_follower(
        &self,
        batches: &[u8],
        leader_high_watermark: i64,
        leader_log_start: i64,
        now_ms: i64,
    ) -> Result<Option<AppendInfo>, LogError> {
        let mut log = self.log();
        let appended = if batches.is_empty() {
            None
        } else {
            match log.append_as_follower(batches, now_ms) {
                Ok(info) => Some(info),
                Err(err) => {
                    drop(log);
                    if err.is_storage_failure() {
                        self.storage
                            .write_failed(&self.dir, &runnel_http::error_chain(&err));
                    }
                    return Err(err);
                }
            }
        };
        let log_end = log.log_end_offset();
        if leader_log_start > log.log_start_offset() && leader_log_start <= log_end {
            log.advance_log_start_offset(leader_log_start)?;
        }
        self.log_end.store(log_end, Ordering::Release);
        let high_watermark = leader_high_watermark.min(log_end);
        let moved = self.high_watermark.swap(high_watermark, Ordering::AcqRel) != high_watermark;
        drop(log);
        if appended.is_some() {
            self.storage.write_succeeded(&self.dir);
            self.log_end_watchers.wake();
        }
        if moved {
            self.high_watermark_watchers.wake();
        }
        Ok(appended)
    }

    /// Cuts a follower's log back to `offset` (its tail diverged from the
    /// leader's); the high watermark is capped at the new end.
    pub fn truncate_to(&self, offset: i64, now_ms: i64) -> Result<(), LogError> {
        let mut log = self.log();
        log.truncate_to(offset, now_ms)?;
        self.after_truncation(&log);
        Ok(())
    }

    /// Empties a follower's log and starts it at `offset` (the leader's
    /// log start passed this log's end).
    pub fn truncate_fully_and_start_at(&self, offset: i64, now_ms: i64) -> Result<(), LogError> {
        let mut log = self.log();
        log.truncate_fully_and_start_at(offset, now_ms)?;
        self.after_truncation(&log);
        Ok(())
    }

    fn after_truncation(&self, log: &PartitionLog) {
        let log_end = log.log_end_offset();
        self.log_end.store(log_end, Ordering::Release);
        self.high_watermark.fetch_min(log_end, Ordering::AcqRel);
    }

    /// Blocks until the ISR holds `appended` (the high watermark passed it
    /// while this broker led in its epoch), for up to `timeout`: the
    /// coordinators' writes, which Kafka appends with `acks=-1` and
    /// answers only once replicated. At once when this broker is the only
    /// replica in sync.
    pub fn wait_replicated(
        self: &Arc<Self>,
        appended: &Appended,
        timeout: std::time::Duration,
    ) -> Awaited {
        let wait: Wait = (
            Arc::clone(self),
            appended.info.last_offset + 1,
            appended.leader_epoch,
        );
        wait_replicated(std::slice::from_ref(&wait), timeout)
            .into_iter()
            .next()
            .unwrap_or(Awaited::TimedOut)
    }

    /// Registers `waiter` to be woken by the next append (a follower's
    /// fetch waiting for data).
    pub fn watch_log_end(&self, waiter: &Waiter) {
        self.log_end_watchers.watch(waiter);
    }

    /// Registers `waiter` to be woken when the high watermark moves. Call it
    /// before checking what the waiter waits for.
    pub fn watch_high_watermark(&self, waiter: &Waiter) {
        self.high_watermark_watchers.watch(waiter);
    }
}

/// Appends a producer's (or a coordinator's) batches; an fsync per append
/// (flush.messages=1) takes milliseconds, so the runtime moves this
/// worker's other tasks elsewhere meanwhile.
fn append_maybe_synced(
    log: &mut PartitionLog,
    batches: &[u8],
    now_ms: i64,
) -> Result<AppendInfo, LogError> {
    if log.config().fsync_before_ack() {
        block_in_place_if_async(|| log.append(batches, now_ms))
    } else {
        log.append(batches, now_ms)
    }
}

/// Runs blocking disk work off the async workers' turn when called from a
/// multi-threaded runtime, and in place otherwise (tests, start-up).
fn block_in_place_if_async<T>(work: impl FnOnce() -> T) -> T {
    match tokio::runtime::Handle::try_current() {
        Ok(handle) if handle.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => {
            tokio::task::block_in_place(work)
        }
        _ => work(),
    }
}

/// Blocks until each of `waits` ended (see [`Awaited`]), for up to
/// `timeout`, from synchronous code: a coordinator's writes, or markers
/// written for another broker's coordinator.
pub fn wait_replicated(waits: &[Wait], timeout: std::time::Duration) -> Vec<Awaited> {
    let reached = |(p, offset, epoch): &Wait| {
        p.high_watermark() >= *offset && p.leader_epoch() == *epoch && p.is_leader()
    };
    if waits.iter().all(reached) {
        return vec![Awaited::Reached; waits.len()];
    }
    let deadline = tokio::time::Instant::now() + timeout;
    match tokio::runtime::Handle::try_current() {
        Ok(handle) if handle.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => {
            tokio::task::block_in_place(|| {
                handle.block_on(wait_for_high_watermarks(waits, deadline))
            })
        }
        _ => {
            tracing::warn!(
                "no runtime to wait for replication on; the writes are not known to be replicated"
            );
            vec![Awaited::TimedOut; waits.len()]
        }
    }
}

/// Whether `producer_id` has a transaction open in `log` at
/// `producer_epoch`.
fn txn_open(log: &PartitionLog, producer_id: i64, producer_epoch: i16) -> bool {
    log.producers()
        .get(producer_id)
        .is_some_and(|e| e.epoch == producer_epoch && e.current_txn_first_offset.is_some())
}
