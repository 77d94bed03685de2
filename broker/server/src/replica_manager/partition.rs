//! One partition this broker hosts: its log, its leader epoch, its high
//! watermark and the two wake-ups parked requests wait on (the log end, for
//! followers once replication lands; the high watermark, for consumers and
//! `acks=all` producers).
//!
//! Every write goes through [`Partition::append`] or
//! [`Partition::append_marker`], which move the high watermark, wake only
//! this partition's waiters, and tell the log dirs' health of a storage
//! failure (a full disk marks the dir failing, whoever wrote: a producer
//! or a coordinator). On one broker the in-sync replicas are
//! this broker alone, so the high watermark follows the log end; with
//! replication it becomes the ISR's smallest log end. Consumers never read
//! past it.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicI64, Ordering};
use std::sync::{Arc, MutexGuard};

use runnel_log::control::ControlType;
use runnel_log::manager::lock;
use runnel_log::{AppendInfo, LogError, PartitionLog, SharedLog};

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
    /// Woken by every append: followers' fetches will park here once
    /// replication lands.
    log_end_watchers: Watchers,
    high_watermark_watchers: Watchers,
    /// Told of each write's outcome: a storage failure marks the log dir
    /// failing, a success clears it.
    storage: Arc<StorageHealth>,
}

/// What one append left: the append and the log's start offset after it.
#[derive(Debug, Clone)]
pub struct Appended {
    pub info: AppendInfo,
    pub log_start_offset: i64,
}

impl Partition {
    pub fn new(
        topic: Arc<str>,
        index: i32,
        log: SharedLog,
        leader_epoch: i32,
        storage: Arc<StorageHealth>,
    ) -> Self {
        let (dir, log_end) = {
            let log = lock(&log);
            (log.dir().to_path_buf(), log.log_end_offset())
        };
        Self {
            topic,
            index,
            log,
            dir,
            leader_epoch: AtomicI32::new(leader_epoch),
            leader: AtomicBool::new(true),
            high_watermark: AtomicI64::new(log_end),
            log_end_watchers: Watchers::default(),
            high_watermark_watchers: Watchers::default(),
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

    /// Takes the leader epoch the metadata gives this partition.
    pub fn set_leader_epoch(&self, leader_epoch: i32) {
        self.leader_epoch.store(leader_epoch, Ordering::Release);
    }

    /// Whether this broker leads the partition (see the field).
    pub fn is_leader(&self) -> bool {
        self.leader.load(Ordering::Acquire)
    }

    /// Takes the leadership the metadata gives this broker.
    pub fn set_leader(&self, leader: bool) {
        self.leader.store(leader, Ordering::Release);
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
        self.write(|log| {
            if log.config().fsync_before_ack() {
                // An fsync per append (flush.messages=1) takes
                // milliseconds: let the runtime move this worker's other
                // tasks elsewhere meanwhile.
                block_in_place_if_async(|| log.append(batches, now_ms))
            } else {
                log.append(batches, now_ms)
            }
        })
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
            log.append_marker(producer_id, producer_epoch, kind, coordinator_epoch, now_ms)
        })
    }

    fn write(
        &self,
        append: impl FnOnce(&mut PartitionLog) -> Result<AppendInfo, LogError>,
    ) -> Result<Appended, LogError> {
        let appended = {
            let mut log = self.log();
            let info = match append(&mut log) {
                Ok(info) => info,
                Err(err) => {
                    drop(log);
                    if err.is_storage_failure() {
                        self.storage
                            .write_failed(&self.dir, &runnel_http::error_chain(&err));
                    }
                    return Err(err);
                }
            };
            // One replica in sync: this one. The store happens under the
            // log lock so the high watermark never moves backwards.
            self.high_watermark
                .store(log.log_end_offset(), Ordering::Release);
            Appended {
                info,
                log_start_offset: log.log_start_offset(),
            }
        };
        self.storage.write_succeeded(&self.dir);
        if !appended.info.duplicate {
            self.log_end_watchers.wake();
            self.high_watermark_watchers.wake();
        }
        Ok(appended)
    }

    /// Registers `waiter` to be woken when the high watermark moves. Call it
    /// before checking what the waiter waits for.
    pub fn watch_high_watermark(&self, waiter: &Waiter) {
        self.high_watermark_watchers.watch(waiter);
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
