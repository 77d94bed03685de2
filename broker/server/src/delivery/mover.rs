//! The mover: for each delay-level partition this broker leads, it moves
//! the records whose time has come to the level's target topic, exactly
//! once.
//!
//! A level has one delay and its batches carry their append time, so its
//! records fall due in log order: the mover keeps a position (the next
//! offset to move) and the next due time per partition, never an index of
//! records. A move is one transaction of the level partition's own
//! transactional id (`__runnel-delivery-<topic>-<partition>`): the records
//! are appended to the target partitions as transactional batches, the new
//! position is committed as an offset of the group [`DELIVERY_GROUP`] in
//! the same transaction, and the commit markers end it. A crash anywhere
//! leaves either the whole move or none of it for `read_committed`
//! readers: on restart the position is the last committed one, and the
//! first step, InitProducerId for the same transactional id, aborts a move
//! left open.
//!
//! Only what `read_committed` readers of the level see is moved: records
//! up to its last stable offset, without aborted transactions or control
//! batches.
//!
//! Any delay: an entry topic (`delivery.levels`) is moved like a level of
//! no delay, but each of its records is due at its own time (see
//! [`super::due_time`]). A record not yet due hops to one of its target's
//! levels (see [`super::wheel`]) carrying `runnel-deliver-at`, in the same
//! kind of transaction; the level's mover looks at that header when the
//! record's level delay is over, and hops it again or delivers it. The
//! wheel of a target is every level topic of that target.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::sync::Arc;
use std::time::Duration;

use runnel_client::partitioner::{murmur2, to_positive};
use runnel_http::error_chain;
use runnel_log::batch::Batches;
use runnel_log::txn_index::AbortedTxn;
use runnel_log::{BatchBuilder, BatchHeader, LogError};
use runnel_protocol::records::{BatchRecords, RecordView, copy_headers_except, header_pairs};
use thiserror::Error;

use super::due_time::{DELAY_HEADER, DELIVER_AT_HEADER, due_time};
use super::wheel::{Hop, next_hop};

use crate::cluster_metadata::ClusterMetadata;
use crate::group_coordinator::{Commit, GroupCoordinator, OFFSETS_TOPIC, OffsetsError};
use crate::internal_topics::InternalTopics;
use crate::level_config::{self, DeliveryConfig, LevelConfig};
use crate::metrics::BrokerMetrics;
use crate::replica_manager::ReplicaManager;
use crate::topic_admin::TopicOpError;
use crate::topics::effective_config;
use crate::txn_coordinator::{TxnCoordinator, TxnRequestError};

/// The group whose committed offsets are the movers' positions (its
/// offsets never expire: the broker keeps them), and the headers a moved
/// record gets.
pub use runnel_client::delivery::{DELIVERY_GROUP, DUE_HEADER, SOURCE_HEADER};

/// The most bytes of a level partition one move reads.
const MAX_MOVE_BYTES: u64 = 1 << 20;
/// The longest the mover sleeps: new records in a level are seen this
/// soon (their due time is a delay after their append anyway).
const MAX_IDLE: Duration = Duration::from_millis(50);
/// The shortest sleep between passes: records falling due meanwhile move
/// together, one transaction per level partition and pass, which bounds
/// the transactions per second (and adds at most this much lateness).
const MIN_PASS_INTERVAL: Duration = Duration::from_millis(20);
/// How long to wait before retrying a level partition whose move failed.
const RETRY_MS: i64 = 1_000;
/// The mover's transaction timeout; a move takes milliseconds.
const TXN_TIMEOUT_MS: i32 = 60_000;

#[derive(Debug, Error)]
pub enum MoveError {
    #[error("cannot create {0}")]
    InternalTopic(#[source] TopicOpError),
    #[error("cannot read or commit the mover's position")]
    Offsets(#[source] OffsetsError),
    #[error("the transaction coordinator refused the move")]
    Txn(#[source] TxnRequestError),
    #[error("cannot read level partition {topic}-{partition}")]
    Read {
        topic: String,
        partition: i32,
        #[source]
        source: LogError,
    },
    #[error("cannot read level partition {topic}-{partition}'s segment")]
    Copy {
        topic: String,
        partition: i32,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot decode a batch of {topic}-{partition} at offset {offset}")]
    Decode {
        topic: String,
        partition: i32,
        offset: i64,
        #[source]
        source: runnel_protocol::records::RecordsError,
    },
    #[error("target topic {target} does not exist")]
    NoTarget { target: String },
    #[error(
        "a record of {topic}-{partition} at offset {offset} is due in {remaining_ms} ms, but target {target} has no delay levels to hold it"
    )]
    NoLevels {
        topic: String,
        partition: i32,
        offset: i64,
        target: String,
        remaining_ms: i64,
    },
    #[error(
        "this broker does not lead target partition {topic}-{partition} (moves to a partition another broker leads are not done yet)"
    )]
    TargetNotHere { topic: String, partition: i32 },
    #[error("cannot append to target partition {topic}-{partition}")]
    Append {
        topic: String,
        partition: i32,
        #[source]
        source: LogError,
    },
}

/// The mover's transactional producer for one level partition.
#[derive(Debug)]
struct Producer {
    id: i64,
    epoch: i16,
    /// The next sequence per target partition, from 0 in each epoch.
    sequences: HashMap<(String, i32), i32>,
}

/// One level (or entry topic) partition this broker leads.
#[derive(Debug)]
struct LevelPartition {
    /// An entry topic is a level of no delay whose records say when they
    /// are due.
    level: LevelConfig,
    entry: bool,
    /// The next offset to move; `None` until read from the group.
    position: Option<i64>,
    producer: Option<Producer>,
    /// When the oldest record not moved falls due; `None` when none is
    /// waiting (or not known yet).
    next_due: Option<i64>,
    /// Not before this time (after a failure).
    retry_at: i64,
}

/// One level of a target's wheel.
#[derive(Debug, Clone, PartialEq, Eq)]
struct WheelLevel {
    topic: String,
    partitions: i32,
}

/// A target's levels, shortest first: the wheel its records hop through.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Wheel {
    delays_ms: Vec<i64>,
    levels: Vec<WheelLevel>,
}

/// Where a moved record is written: the target, or a level of its wheel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Destination {
    Target,
    Level(usize),
}

/// The records of one move, by destination partition.
#[derive(Debug, Default)]
struct Move {
    batches: BTreeMap<(Destination, i32), BatchBuilder>,
    /// Records delivered to the target.
    records: u64,
    /// Each delivered batch's (or record's) lateness in seconds, with its
    /// record count.
    lateness: Vec<(f64, u64)>,
}

/// Moves every led level partition's due records; driven by [`run`].
#[derive(Debug)]
pub struct Mover {
    replicas: Arc<ReplicaManager>,
    metadata: Arc<ClusterMetadata>,
    txns: Arc<TxnCoordinator>,
    offsets: Arc<GroupCoordinator>,
    internal: Arc<InternalTopics>,
    metrics: Arc<BrokerMetrics>,
    log_defaults: runnel_log::LogConfig,
    levels: HashMap<(String, i32), LevelPartition>,
    /// Each target's wheel, for records with their own due time.
    wheels: HashMap<String, Wheel>,
    /// The metadata image `levels` follows, by its log offset.
    followed: Option<i64>,
}

impl Mover {
    pub fn new(
        replicas: Arc<ReplicaManager>,
        metadata: Arc<ClusterMetadata>,
        txns: Arc<TxnCoordinator>,
        offsets: Arc<GroupCoordinator>,
        internal: Arc<InternalTopics>,
        metrics: Arc<BrokerMetrics>,
        log_defaults: runnel_log::LogConfig,
    ) -> Self {
        Self {
            replicas,
            metadata,
            txns,
            offsets,
            internal,
            metrics,
            log_defaults,
            levels: HashMap::new(),
            wheels: HashMap::new(),
            followed: None,
        }
    }

    /// Follows the metadata (level partitions come and go), moves what is
    /// due, and says how long to sleep before the next pass (blocking:
    /// run it off the async workers).
    pub fn pass(&mut self, now_ms: i64) -> Duration {
        self.follow_levels();
        let mut next_wake = now_ms + MAX_IDLE.as_millis() as i64;
        let keys: Vec<(String, i32)> = self.levels.keys().cloned().collect();
        for key in keys {
            let Some(mut state) = self.levels.remove(&key) else {
                continue;
            };
            if now_ms >= state.retry_at
                && let Err(err) = self.move_due(&key.0, key.1, &mut state, now_ms)
            {
                tracing::warn!(
                    topic = key.0,
                    partition = key.1,
                    error = %error_chain(&err),
                    "delayed delivery: a move failed; retrying in {RETRY_MS} ms"
                );
                state.retry_at = now_ms + RETRY_MS;
            }
            if let Some(due) = state.next_due {
                next_wake = next_wake.min(due.max(state.retry_at));
            }
            self.levels.insert(key, state);
        }
        self.report(now_ms);
        Duration::from_millis(next_wake.saturating_sub(now_ms).max(0) as u64).max(MIN_PASS_INTERVAL)
    }

    /// The level partitions this broker leads, as the metadata image has
    /// them now.
    fn follow_levels(&mut self) {
        let image = self.metadata.image();
        if self.followed == Some(image.offset()) {
            return;
        }
        self.followed = Some(image.offset());
        let node = self.metadata.node_id();
        let mut led = HashMap::new();
        let mut wheels: HashMap<String, Vec<(i64, WheelLevel)>> = HashMap::new();
        for topic in image.topics() {
            let configs: BTreeMap<String, String> = image
                .topic_config(&topic.name)
                .map(|c| (**c).clone())
                .unwrap_or_default();
            if !configs.keys().any(|k| level_config::is_delivery_key(k)) {
                continue;
            }
            let delivery = effective_config(&topic.name, &self.log_defaults, &configs)
                .ok()
                .and_then(|log| DeliveryConfig::from_configs(&topic.name, &configs, &log).ok())
                .flatten();
            let (level, entry) = match delivery {
                Some(DeliveryConfig::Level(level)) => {
                    wheels.entry(level.target.clone()).or_default().push((
                        level.delay_ms,
                        WheelLevel {
                            topic: topic.name.clone(),
                            partitions: i32::try_from(topic.partitions.len()).unwrap_or(i32::MAX),
                        },
                    ));
                    (level, false)
                }
                Some(DeliveryConfig::Entry(entry)) => (
                    LevelConfig {
                        delay_ms: 0,
                        target: entry.target,
                    },
                    true,
                ),
                None => continue,
            };
            for (partition, state) in &topic.partitions {
                if state.leader == node {
                    led.insert((topic.name.clone(), *partition), (level.clone(), entry));
                }
            }
        }
        self.wheels = wheels
            .into_iter()
            .map(|(target, mut levels)| {
                // One level per delay: two levels of one delay are the same
                // hop, the first by name takes it.
                levels.sort_by(|a, b| a.0.cmp(&b.0).then_with(|| a.1.topic.cmp(&b.1.topic)));
                levels.dedup_by_key(|(delay, _)| *delay);
                let (delays_ms, levels) = levels.into_iter().unzip();
                (target, Wheel { delays_ms, levels })
            })
            .collect();
        self.levels.retain(|key, _| led.contains_key(key));
        for (key, (level, entry)) in led {
            self.levels
                .entry(key)
                .and_modify(|state| {
                    state.level = level.clone();
                    state.entry = entry;
                })
                .or_insert(LevelPartition {
                    level,
                    entry,
                    position: None,
                    producer: None,
                    next_due: None,
                    retry_at: 0,
                });
        }
    }

    fn report(&self, now_ms: i64) {
        let mut by_level: HashMap<&str, (i64, i64)> = HashMap::new();
        for ((topic, partition), state) in &self.levels {
            let end = self
                .replicas
                .get(topic, *partition)
                .map_or(0, |p| p.high_watermark());
            let pending = state.position.map_or(0, |position| end - position).max(0);
            let waited = state
                .next_due
                .filter(|due| *due <= now_ms)
                .map_or(0, |due| now_ms - due);
            let entry = by_level.entry(topic).or_default();
            entry.0 += pending;
            entry.1 = entry.1.max(waited);
        }
        for (level, (pending, waited_ms)) in by_level {
            self.metrics
                .set_delivery_backlog(level, pending, waited_ms as f64 / 1_000.0);
        }
    }

    /// Moves the due records of one level partition, one transaction per
    /// read of up to [`MAX_MOVE_BYTES`], until none is due.
    fn move_due(
        &self,
        topic: &str,
        partition: i32,
        state: &mut LevelPartition,
        now_ms: i64,
    ) -> Result<(), MoveError> {
        let position = match state.position {
            Some(position) => position,
            None => {
                let position = self.load_position(topic, partition, now_ms)?;
                state.position = Some(position);
                position
            }
        };
        let mut producer = match state.producer.take() {
            Some(producer) => producer,
            None => self.init_producer(topic, partition, now_ms)?,
        };
        let moved = self.move_from(topic, partition, state, &mut producer, position, now_ms);
        // A failed move is aborted by the next InitProducerId: the producer
        // is dropped with it.
        if moved.is_ok() {
            state.producer = Some(producer);
        }
        moved
    }

    fn move_from(
        &self,
        topic: &str,
        partition: i32,
        state: &mut LevelPartition,
        producer: &mut Producer,
        position: i64,
        now_ms: i64,
    ) -> Result<(), MoveError> {
        let mut position = position;
        loop {
            // Only a level partition's leader moves its records.
            let Some(level_partition) = self
                .replicas
                .get(topic, partition)
                .filter(|p| p.is_leader())
            else {
                return Ok(());
            };
            let (bytes, aborted, start) = {
                let log = level_partition.log();
                let start = log.log_start_offset();
                let lso = log.last_stable_offset();
                let from = position.max(start);
                let read = log
                    .read(from, MAX_MOVE_BYTES, Some(lso), true)
                    .map_err(|source| MoveError::Read {
                        topic: topic.into(),
                        partition,
                        source,
                    })?;
                let Some(region) = read.region else {
                    state.next_due = None;
                    if from > position {
                        self.records_lost(topic, partition, position, from);
                        state.position = Some(from);
                    }
                    return Ok(());
                };
                (region, log.aborted_transactions(from, lso), start)
            };
            if position < start {
                self.records_lost(topic, partition, position, start);
                position = start;
                state.position = Some(start);
            }
            let bytes = bytes.to_vec().map_err(|source| MoveError::Copy {
                topic: topic.into(),
                partition,
                source,
            })?;
            let (moved_to, records, next_due) =
                self.collect_due(topic, partition, state, &bytes, &aborted, position, now_ms)?;
            state.next_due = next_due;
            if moved_to == position {
                return Ok(());
            }
            let target = state.level.target.as_str();
            self.commit_move(
                (topic, partition),
                target,
                producer,
                records,
                moved_to,
                now_ms,
            )?;
            position = moved_to;
            state.position = Some(moved_to);
            if next_due.is_some() {
                return Ok(());
            }
        }
    }

    /// The due batches of `bytes` from `position`, as batches for the
    /// target and the levels; returns where the move ends and when the
    /// first batch left behind falls due.
    #[allow(clippy::too_many_arguments)]
    fn collect_due(
        &self,
        topic: &str,
        partition: i32,
        state: &LevelPartition,
        bytes: &[u8],
        aborted: &[AbortedTxn],
        position: i64,
        now_ms: i64,
    ) -> Result<(i64, Move, Option<i64>), MoveError> {
        let image = self.metadata.image();
        let target = &state.level.target;
        let target_partitions = image
            .topic(target)
            .map(|t| i32::try_from(t.partitions.len()).unwrap_or(i32::MAX))
            .filter(|n| *n > 0)
            .ok_or_else(|| MoveError::NoTarget {
                target: target.clone(),
            })?;
        let no_wheel = Wheel::default();
        let wheel = self.wheels.get(target).unwrap_or(&no_wheel);
        let mut moved_to = position;
        let mut next_due = None;
        let mut out = Move::default();
        // Reused for each record: its source header, its due time written
        // out, and the headers it keeps.
        let mut source = String::new();
        let mut due_text = String::new();
        let mut kept = Vec::new();
        for batch in Batches::new(bytes) {
            // A region may end inside a batch: the next read starts there.
            let Ok((header, batch)) = batch else { break };
            if header.next_offset() <= position {
                continue;
            }
            let due = header.max_timestamp.saturating_add(state.level.delay_ms);
            if due > now_ms {
                next_due = Some(due);
                break;
            }
            moved_to = header.next_offset();
            if header.is_control() || is_aborted(&header, aborted) {
                continue;
            }
            let records = BatchRecords::decode(batch).map_err(|source| MoveError::Decode {
                topic: topic.into(),
                partition,
                offset: header.base_offset,
                source,
            })?;
            due_text.clear();
            let _ = write!(due_text, "{due}");
            let mut delivered = 0;
            for record in &records.records {
                let key = records.key(record);
                // The record's own time: the batch's max timestamp is the
                // level's append time.
                let timestamp = header.first_timestamp + record.timestamp_delta;
                let Some(own_due) = self.own_due(topic, partition, state, &records, record) else {
                    // A level's record: due with its batch, to the target.
                    let to = place(key, partition, target_partitions);
                    source.clear();
                    let _ = write!(source, "{topic}-{partition}@{}", records.offset(record));
                    out.batches
                        .entry((Destination::Target, to))
                        .or_insert_with(|| BatchBuilder::new(timestamp))
                        .push_with_headers(
                            key,
                            records.value(record),
                            timestamp,
                            (record.headers_count, records.headers(record)),
                            &[
                                (SOURCE_HEADER, source.as_bytes()),
                                (DUE_HEADER, due_text.as_bytes()),
                            ],
                        );
                    delivered += 1;
                    continue;
                };
                let remaining_ms = own_due.saturating_sub(now_ms);
                if remaining_ms > 0 && wheel.levels.is_empty() {
                    return Err(MoveError::NoLevels {
                        topic: topic.into(),
                        partition,
                        offset: records.offset(record),
                        target: target.clone(),
                        remaining_ms,
                    });
                }
                // The record keeps its headers but the delivery ones; its
                // source is where it was first produced.
                let headers = records.headers(record);
                let first_source = header_pairs(headers, record.headers_count)
                    .find(|(name, _)| *name == SOURCE_HEADER.as_bytes())
                    .and_then(|(_, value)| value);
                source.clear();
                match first_source {
                    Some(first) => source.push_str(&String::from_utf8_lossy(first)),
                    None => {
                        let _ = write!(source, "{topic}-{partition}@{}", records.offset(record));
                    }
                }
                kept.clear();
                let kept_count = copy_headers_except(
                    headers,
                    record.headers_count,
                    |name| {
                        [DELAY_HEADER, DELIVER_AT_HEADER, SOURCE_HEADER]
                            .iter()
                            .any(|drop| name == drop.as_bytes())
                    },
                    &mut kept,
                );
                let mut own_due_text = [0u8; 20];
                let own_due_text = runnel_client::delivery::DeliveryTime::At(own_due)
                    .header_value(&mut own_due_text);
                let (destination, to, time_header) = match next_hop(&wheel.delays_ms, remaining_ms)
                {
                    Hop::Deliver => {
                        out.records += 1;
                        out.lateness.push(((now_ms - own_due) as f64 / 1_000.0, 1));
                        (
                            Destination::Target,
                            place(key, partition, target_partitions),
                            DUE_HEADER,
                        )
                    }
                    Hop::Level(index) => (
                        Destination::Level(index),
                        place(key, partition, wheel.levels[index].partitions),
                        DELIVER_AT_HEADER,
                    ),
                };
                out.batches
                    .entry((destination, to))
                    .or_insert_with(|| BatchBuilder::new(timestamp))
                    .push_with_headers(
                        key,
                        records.value(record),
                        timestamp,
                        (kept_count, &kept),
                        &[
                            (SOURCE_HEADER, source.as_bytes()),
                            (time_header, own_due_text),
                        ],
                    );
            }
            if delivered > 0 {
                out.records += delivered;
                out.lateness
                    .push(((now_ms - due) as f64 / 1_000.0, delivered));
            }
        }
        Ok((moved_to, out, next_due))
    }

    /// When a record is due by its own headers: every record of an entry
    /// topic, and a level's record that hops (it carries
    /// `runnel-deliver-at`). `None` for a level's own records.
    fn own_due(
        &self,
        topic: &str,
        partition: i32,
        state: &LevelPartition,
        records: &BatchRecords,
        record: &RecordView,
    ) -> Option<i64> {
        let append_ms = records.header.max_timestamp;
        if state.entry {
            return Some(
                due_time(records.header_pairs(record), append_ms).unwrap_or_else(|err| {
                    // Checked when produced; a record from before the topic
                    // became an entry is delivered at once.
                    tracing::warn!(
                        topic,
                        partition,
                        offset = records.offset(record),
                        error = %err,
                        "delayed delivery: a record's due time can't be read; delivering it now"
                    );
                    append_ms
                }),
            );
        }
        if record.headers_count == 0
            || !records
                .header_pairs(record)
                .any(|(name, _)| name == DELIVER_AT_HEADER.as_bytes())
        {
            return None;
        }
        due_time(records.header_pairs(record), append_ms).ok()
    }

    /// Writes one move in a transaction: the target and level batches, the
    /// new position, then the commit markers.
    fn commit_move(
        &self,
        (topic, partition): (&str, i32),
        target: &str,
        producer: &mut Producer,
        moved: Move,
        moved_to: i64,
        now_ms: i64,
    ) -> Result<(), MoveError> {
        let txn_id = transactional_id(topic, partition);
        let no_wheel = Wheel::default();
        let wheel = self.wheels.get(target).unwrap_or(&no_wheel);
        let name_of = |destination: Destination| match destination {
            Destination::Target => target.to_string(),
            Destination::Level(index) => wheel.levels[index].topic.clone(),
        };
        let mut partitions: Vec<(String, i32)> = moved
            .batches
            .keys()
            .map(|(destination, p)| (name_of(*destination), *p))
            .collect();
        partitions.push((
            OFFSETS_TOPIC.to_string(),
            self.offsets.partition_of(DELIVERY_GROUP),
        ));
        self.txns
            .add_partitions(&txn_id, producer.id, producer.epoch, partitions, now_ms)
            .map_err(MoveError::Txn)?;
        for ((destination, to), builder) in moved.batches {
            let name = name_of(destination);
            let count = i32::try_from(builder.len()).unwrap_or(i32::MAX);
            let sequence = producer.sequences.entry((name.clone(), to)).or_insert(0);
            let batch = builder
                .producer(producer.id, producer.epoch, *sequence)
                .transactional()
                .into_batch();
            // Written only where this broker leads the target partition: a
            // follower's log takes only what its leader has.
            let written = self
                .replicas
                .get(&name, to)
                .filter(|p| p.is_leader())
                .ok_or_else(|| MoveError::TargetNotHere {
                    topic: name.clone(),
                    partition: to,
                })?;
            written
                .append(&batch, now_ms)
                .map_err(|source| MoveError::Append {
                    topic: name.clone(),
                    partition: to,
                    source,
                })?;
            *sequence = runnel_log::batch::increment_sequence(*sequence, count);
        }
        let commit = Commit {
            topic: topic.to_string(),
            partition,
            offset: moved_to,
            leader_epoch: -1,
            metadata: String::new(),
            expire_timestamp_ms: None,
        };
        self.offsets
            .commit_txn_offsets(
                producer.id,
                producer.epoch,
                DELIVERY_GROUP,
                &[commit],
                now_ms,
            )
            .map_err(MoveError::Offsets)?;
        let ended = self
            .txns
            .end_txn(&txn_id, producer.id, producer.epoch, true, now_ms)
            .map_err(MoveError::Txn)?;
        self.offsets.txns_ended(ended);
        self.metrics
            .record_delivery(topic, moved.records, &moved.lateness);
        Ok(())
    }

    /// Where a level partition's mover left off: its committed position,
    /// or the log start for a level never moved from.
    fn load_position(&self, topic: &str, partition: i32, now_ms: i64) -> Result<i64, MoveError> {
        self.internal
            .ensure_offsets(now_ms)
            .map_err(MoveError::InternalTopic)?;
        // Strict: a group partition not loaded here must not read as "never
        // moved", which would move everything again.
        let committed = self
            .offsets
            .committed_here(DELIVERY_GROUP, topic, partition)
            .map_err(MoveError::Offsets)?;
        if let Some(committed) = committed {
            return Ok(committed.offset);
        }
        Ok(self
            .replicas
            .get(topic, partition)
            .map_or(0, |p| p.log().log_start_offset()))
    }

    /// A new epoch of the level partition's transactional producer; a move
    /// a crash left open is aborted on the way.
    fn init_producer(
        &self,
        topic: &str,
        partition: i32,
        now_ms: i64,
    ) -> Result<Producer, MoveError> {
        self.internal
            .ensure_transactions(now_ms)
            .map_err(MoveError::InternalTopic)?;
        let initialized = self
            .txns
            .init_producer(&transactional_id(topic, partition), TXN_TIMEOUT_MS, now_ms)
            .map_err(MoveError::Txn)?;
        self.offsets.txns_ended(initialized.ended);
        Ok(Producer {
            id: initialized.producer_id,
            epoch: initialized.producer_epoch,
            sequences: HashMap::new(),
        })
    }

    fn records_lost(&self, topic: &str, partition: i32, from: i64, to: i64) {
        tracing::error!(
            topic,
            partition,
            from,
            to,
            "delayed delivery: records were deleted from the level before they were moved"
        );
    }
}

/// The partition of a record moved to a topic of `partitions`: the Java
/// client's for its key, else the same partition number.
fn place(key: Option<&[u8]>, partition: i32, partitions: i32) -> i32 {
    match key {
        Some(key) => to_positive(murmur2(key)) % partitions,
        None => partition % partitions,
    }
}

fn transactional_id(topic: &str, partition: i32) -> String {
    format!("__runnel-delivery-{topic}-{partition}")
}

/// Whether a transactional batch belongs to an aborted transaction.
fn is_aborted(header: &BatchHeader, aborted: &[AbortedTxn]) -> bool {
    header.is_transactional()
        && aborted.iter().any(|txn| {
            txn.producer_id == header.producer_id
                && txn.first_offset <= header.base_offset
                && header.base_offset < txn.last_offset
        })
}

/// Runs the mover until `stop`.
pub async fn run(mut mover: Mover, mut stop: tokio::sync::watch::Receiver<bool>) {
    loop {
        let (back, wait) = match tokio::task::spawn_blocking(move || {
            let wait = mover.pass(crate::clock::now_ms());
            (mover, wait)
        })
        .await
        {
            Ok(done) => done,
            Err(err) => {
                tracing::error!(error = %err, "delayed delivery: the mover panicked; it stops");
                return;
            }
        };
        mover = back;
        tokio::select! {
            _ = stop.changed() => return,
            _ = tokio::time::sleep(wait) => {}
        }
    }
}
