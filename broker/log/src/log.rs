//! One partition's log: its segments in a `<topic>-<partition>` directory,
//! the log start and end offsets, appends, reads, lookups, roll, flush and
//! truncation. Loading and recovery live in `load.rs`; retention, a part
//! of the log's own methods, in the submodule `log/retention.rs`.

use std::collections::BTreeMap;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use crate::batch::{HEADER_SIZE, HeaderBytes, validate, validate_for_append};
use crate::config::{LogConfig, TimestampType};
use crate::error::{LogError, Result};
use crate::leader_epoch::LeaderEpochCache;
use crate::producer_state::{ProducerStates, SequenceCheck};
use crate::region::FileRegion;
use crate::segment::{PreparedBatch, Segment};
use crate::txn_index::{self, AbortedTxn, TXN_INDEX_SUFFIX};

mod retention;

/// Smallest possible uncompressed record: length, attributes, timestamp
/// delta, offset delta, key length, value length, header count.
const MIN_RECORD_BYTES: usize = 7;

/// The leader epoch a log's appends stamp until it is told another
/// ([`PartitionLog::set_leader_epoch`]): every partition of a single
/// broker, as Metadata and ListOffsets report it.
pub const LEADER_EPOCH: i32 = 0;

/// What an append did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppendInfo {
    /// Offset given to the first record.
    pub first_offset: i64,
    /// Offset given to the last record.
    pub last_offset: i64,
    /// Largest timestamp appended (the append time for LogAppendTime).
    pub max_timestamp: i64,
    /// Set when the topic uses LogAppendTime: the time stamped on the batches.
    pub log_append_time_ms: Option<i64>,
    pub records_count: u64,
    pub size_bytes: u64,
    /// Whether the append was fsynced before returning (`flush.messages`).
    pub flushed: bool,
    /// The batch was an idempotent producer's retry of one already in the
    /// log: nothing was written, and the offsets are the first write's.
    pub duplicate: bool,
}

/// What a read found.
#[derive(Debug, Clone)]
pub struct ReadInfo {
    /// The bytes to send; `None` when there is nothing at or after the offset.
    pub region: Option<FileRegion>,
    pub log_start_offset: i64,
    pub log_end_offset: i64,
}

#[derive(Debug)]
pub struct PartitionLog {
    pub(crate) dir: PathBuf,
    pub(crate) config: LogConfig,
    pub(crate) segments: BTreeMap<i64, Segment>,
    pub(crate) log_start_offset: i64,
    pub(crate) log_end_offset: i64,
    pub(crate) recovery_point: i64,
    unflushed_messages: u64,
    first_unflushed_ms: Option<i64>,
    dir_dirty: bool,
    pub(crate) pending_deletes: Vec<retention::PendingDelete>,
    pub(crate) producers: ProducerStates,
    /// Aborted transactions, by marker offset (the `.txnindex` files).
    pub(crate) aborted: Vec<AbortedTxn>,
    /// Where each leader epoch starts (`leader-epoch-checkpoint`).
    pub(crate) leader_epochs: LeaderEpochCache,
    /// The epoch this log's leader appends stamp.
    leader_epoch: i32,
}

impl PartitionLog {
    pub(crate) fn from_parts(
        dir: PathBuf,
        config: LogConfig,
        segments: BTreeMap<i64, Segment>,
        log_start_offset: i64,
        recovery_point: i64,
    ) -> Result<Self> {
        let active = segments
            .values()
            .next_back()
            .expect("a loaded log has a segment");
        let log_end_offset = active.read_next_offset()?;
        Ok(Self {
            dir,
            config,
            segments,
            log_start_offset,
            log_end_offset,
            recovery_point: recovery_point.min(log_end_offset),
            unflushed_messages: 0,
            first_unflushed_ms: None,
            dir_dirty: false,
            pending_deletes: Vec::new(),
            producers: ProducerStates::default(),
            aborted: Vec::new(),
            leader_epochs: LeaderEpochCache::default(),
            leader_epoch: LEADER_EPOCH,
        })
    }

    /// The epoch leader appends stamp from now on (the partition's leader
    /// epoch, as the metadata gives it).
    pub fn set_leader_epoch(&mut self, epoch: i32) {
        self.leader_epoch = epoch;
    }

    /// Makes this log its partition's leader in `epoch`: appends stamp it
    /// from now on, and the epoch starts at the log end in the leader
    /// epoch cache (saved), so replicas that ask where an older epoch ends
    /// are answered before the first append, as Kafka's `makeLeader`.
    /// An epoch older than the newest this log holds (a metadata log
    /// replayed from its start passes through old ones) changes nothing.
    pub fn become_leader(&mut self, epoch: i32) -> Result<()> {
        if epoch < self.latest_epoch() {
            return Ok(());
        }
        self.leader_epoch = epoch;
        let changed = self.leader_epochs.assign(epoch, self.log_end_offset);
        self.epochs_changed(changed)
    }

    /// The first offset of `epoch` in this log, when it holds it.
    pub fn epoch_start_offset(&self, epoch: i32) -> Option<i64> {
        self.leader_epochs
            .entries()
            .iter()
            .find(|e| e.epoch == epoch)
            .map(|e| e.start_offset)
    }

    /// The newest leader epoch this log holds (`-1` when empty), what a
    /// follower sends as its `LastFetchedEpoch`.
    pub fn latest_epoch(&self) -> i32 {
        self.leader_epochs.latest().map_or(-1, |e| e.epoch)
    }

    /// The leader epochs this log holds, each with its first offset.
    pub fn leader_epochs(&self) -> &LeaderEpochCache {
        &self.leader_epochs
    }

    /// Where `epoch` ends in this log, as OffsetsForLeaderEpoch answers:
    /// the largest epoch `<= epoch` it holds and the first offset after it
    /// (the log end for the latest). `None` when it holds no epoch that
    /// old or newer.
    pub fn end_offset_for_epoch(&self, epoch: i32) -> Option<(i32, i64)> {
        self.leader_epochs
            .end_offset_for(epoch, self.log_end_offset)
    }

    /// Reads the leader epochs from `leader-epoch-checkpoint`, cut to the
    /// log's offsets. A log with data and no checkpoint (written before
    /// Runnel kept one, always in [`LEADER_EPOCH`]) gets the epoch of its
    /// first batch from its start; it is written at the next change.
    pub(crate) fn load_leader_epochs(&mut self) -> Result<()> {
        let mut epochs = LeaderEpochCache::load(&self.dir)?;
        let mut changed = epochs.truncate_from_end(self.log_end_offset);
        changed |= epochs.truncate_from_start(self.log_start_offset);
        if epochs.entries().is_empty() && self.log_end_offset > self.log_start_offset {
            let first_epoch = self.first_batch_epoch()?.unwrap_or(LEADER_EPOCH);
            epochs.assign(first_epoch, self.log_start_offset);
        }
        self.leader_epochs = epochs;
        if let Some(latest) = self.leader_epochs.latest() {
            self.leader_epoch = self.leader_epoch.max(latest.epoch);
        }
        self.epochs_changed(changed)
    }

    /// The partition leader epoch of the batch at the log start, if any.
    fn first_batch_epoch(&self) -> Result<Option<i32>> {
        let read = self.read(self.log_start_offset, HEADER_SIZE as u64, None, true)?;
        let Some(region) = read.region else {
            return Ok(None);
        };
        // Only the header: the batch may be large.
        let mut header = [0u8; HEADER_SIZE];
        if region.length < HEADER_SIZE as u64 {
            return Ok(None);
        }
        region
            .file
            .read_exact_at(&mut header, region.position)
            .map_err(|source| LogError::ReadSegment {
                path: self.dir.clone(),
                position: region.position,
                source,
            })?;
        Ok(crate::batch::BatchHeader::parse(&header)
            .ok()
            .map(|h| h.partition_leader_epoch))
    }

    /// Saves the leader epochs when `changed`.
    fn epochs_changed(&self, changed: bool) -> Result<()> {
        if changed {
            self.leader_epochs.save(&self.dir)?;
        }
        Ok(())
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn config(&self) -> &LogConfig {
        &self.config
    }

    /// Replaces the settings, e.g. after a topic config change.
    pub fn set_config(&mut self, config: LogConfig) {
        self.config = config;
    }

    pub fn log_start_offset(&self) -> i64 {
        self.log_start_offset
    }

    pub fn log_end_offset(&self) -> i64 {
        self.log_end_offset
    }

    /// Every offset below this is known to be on disk (fsynced).
    pub fn recovery_point(&self) -> i64 {
        self.recovery_point
    }

    pub fn size_bytes(&self) -> u64 {
        self.segments.values().map(Segment::size).sum()
    }

    /// The idempotent producers' state.
    pub fn producers(&self) -> &ProducerStates {
        &self.producers
    }

    /// The last stable offset: the first offset of the oldest open
    /// transaction, or the log end when none is open. `read_committed`
    /// consumers read up to it.
    pub fn last_stable_offset(&self) -> i64 {
        self.producers
            .first_unstable_offset()
            .map_or(self.log_end_offset, |o| o.min(self.log_end_offset))
    }

    /// The aborted transactions a `read_committed` fetch of `[from, upper)`
    /// overlaps, oldest first.
    pub fn aborted_transactions(&self, from: i64, upper: i64) -> Vec<AbortedTxn> {
        // Sorted by marker offset: skip those that ended before the read.
        let start = self.aborted.partition_point(|t| t.last_offset < from);
        self.aborted[start..]
            .iter()
            .filter(|t| t.first_offset < upper)
            .copied()
            .collect()
    }

    /// Writes a transaction marker for `producer_id` (as the transaction
    /// coordinator has partition leaders do): the producer's open
    /// transaction ends, and an aborted one is added to the `.txnindex`.
    pub fn append_marker(
        &mut self,
        producer_id: i64,
        producer_epoch: i16,
        kind: crate::control::ControlType,
        coordinator_epoch: i32,
        now_ms: i64,
    ) -> Result<AppendInfo> {
        let first_offset = self
            .producers
            .get(producer_id)
            .and_then(|e| e.current_txn_first_offset);
        let marker = crate::builder::BatchBuilder::marker(
            producer_id,
            producer_epoch,
            kind,
            coordinator_epoch,
            now_ms,
        )
        .build();
        let info = self.append_control(&marker, now_ms)?;
        if kind == crate::control::ControlType::Abort
            && let Some(first_offset) = first_offset
        {
            self.record_abort(producer_id, first_offset, info.first_offset)?;
        }
        Ok(info)
    }

    /// Adds an aborted transaction ending at `marker_offset`, in memory and
    /// in the `.txnindex` of the segment holding the marker (once).
    fn record_abort(
        &mut self,
        producer_id: i64,
        first_offset: i64,
        marker_offset: i64,
    ) -> Result<()> {
        if self
            .aborted
            .iter()
            .any(|t| t.producer_id == producer_id && t.last_offset == marker_offset)
        {
            return Ok(());
        }
        let entry = AbortedTxn {
            producer_id,
            first_offset,
            last_offset: marker_offset,
            last_stable_offset: self.last_stable_offset(),
        };
        let base = self
            .segments
            .range(..=marker_offset)
            .next_back()
            .map_or(marker_offset, |(b, _)| *b);
        let path = crate::segment::file_path(&self.dir, base, TXN_INDEX_SUFFIX);
        txn_index::append(&path, &entry).map_err(|source| LogError::WriteSegment {
            path: path.clone(),
            source,
        })?;
        self.aborted.push(entry);
        Ok(())
    }

    /// Forgets producers idle for `max_idle_ms` (`producer.id.expiration.ms`);
    /// returns how many.
    pub fn expire_producers(&mut self, now_ms: i64, max_idle_ms: i64) -> usize {
        self.producers.expire(now_ms, max_idle_ms)
    }

    pub fn segments(&self) -> impl Iterator<Item = &Segment> {
        self.segments.values()
    }

    pub fn active_segment(&self) -> &Segment {
        self.segments
            .values()
            .next_back()
            .expect("a log always has an active segment")
    }

    fn active_segment_mut(&mut self) -> &mut Segment {
        self.segments
            .values_mut()
            .next_back()
            .expect("a log always has an active segment")
    }

    /// Validates every batch in `batches` (one or more RecordBatch v2, as a
    /// produce request carries them), assigns offsets from the log end offset
    /// and writes them. Nothing is written when any batch is invalid, out of
    /// its producer's sequence, or a retry of a batch already written (then
    /// the answer is that batch's offsets, with `duplicate` set).
    /// Control batches (transaction markers) are refused: only the broker
    /// writes them, through [`append_control`](Self::append_control).
    pub fn append(&mut self, batches: &[u8], now_ms: i64) -> Result<AppendInfo> {
        self.append_from(batches, now_ms, false)
    }

    /// As [`append`](Self::append), for the broker's own control batches.
    pub fn append_control(&mut self, batches: &[u8], now_ms: i64) -> Result<AppendInfo> {
        self.append_from(batches, now_ms, true)
    }

    fn append_from(
        &mut self,
        batches: &[u8],
        now_ms: i64,
        control_allowed: bool,
    ) -> Result<AppendInfo> {
        if batches.is_empty() {
            return Err(LogError::EmptyAppend);
        }
        let log_append_time = self.config.message_timestamp_type == TimestampType::LogAppendTime;
        let mut prepared: Vec<PreparedBatch<'_>> = Vec::new();
        let mut next_offset = self.log_end_offset;
        let mut rest = batches;
        let mut max_timestamp = i64::MIN;
        let mut records_count = 0u64;
        // An idempotent producer's batch (alone in its append, checked
        // below); plain batches need no producer bookkeeping, nor an
        // allocation.
        let mut producer_batch: Option<(crate::batch::BatchHeader, i64)> = None;
        let mut batch_count = 0usize;
        while !rest.is_empty() {
            let index = prepared.len();
            let header = validate_for_append(rest)
                .map_err(|source| LogError::InvalidBatch { index, source })?;
            if header.is_control() && !control_allowed {
                return Err(LogError::ControlBatchFromClient { index });
            }
            let size = header.size_bytes();
            if size > self.config.max_message_bytes {
                return Err(LogError::BatchTooLarge {
                    index,
                    size,
                    max: self.config.max_message_bytes,
                });
            }
            let (batch, tail) = rest.split_at(size);
            rest = tail;
            let records = &batch[HEADER_SIZE..];
            if header.compression().ok() == Some(crate::batch::Compression::None)
                && (header.records_count as usize).saturating_mul(MIN_RECORD_BYTES) > records.len()
            {
                return Err(LogError::InvalidBatch {
                    index,
                    source: crate::batch::BatchError::InvalidOffsetRange {
                        last_offset_delta: header.last_offset_delta,
                        records_count: header.records_count,
                    },
                });
            }
            let mut patched = HeaderBytes::copy_from(batch);
            patched.set_base_offset(next_offset);
            // As Kafka's LogValidator: the leader's epoch replaces whatever
            // the producer put there (-1 from the Java client).
            patched.set_partition_leader_epoch(self.leader_epoch);
            let batch_max_timestamp = if log_append_time {
                patched.set_log_append_time(now_ms, records);
                now_ms
            } else {
                header.max_timestamp
            };
            let last_offset = next_offset + header.last_offset_delta as i64;
            max_timestamp = max_timestamp.max(batch_max_timestamp);
            records_count += header.records_count as u64;
            batch_count += 1;
            if header.producer_id >= 0 && producer_batch.is_none() {
                producer_batch = Some((header, next_offset));
            }
            prepared.push(PreparedBatch {
                header: patched,
                records,
                last_offset,
                max_timestamp: batch_max_timestamp,
            });
            next_offset = last_offset + 1;
        }
        if batch_count > 1 && producer_batch.is_some() {
            return Err(LogError::ProducerBatchNotAlone {
                batches: batch_count,
            });
        }
        if let Some((header, _)) = &producer_batch {
            let check = self
                .producers
                .check(header)
                .map_err(|source| LogError::Sequence { index: 0, source })?;
            if let SequenceCheck::Duplicate(first_write) = check {
                return Ok(AppendInfo {
                    first_offset: first_write.first_offset,
                    last_offset: first_write.last_offset,
                    max_timestamp: first_write.max_timestamp,
                    log_append_time_ms: log_append_time.then_some(now_ms),
                    records_count: 0,
                    size_bytes: 0,
                    flushed: false,
                    duplicate: true,
                });
            }
        }
        let first_offset = self.log_end_offset;
        let last_offset = next_offset - 1;
        let size_bytes: u64 = prepared.iter().map(PreparedBatch::size_bytes).sum();
        self.maybe_roll(size_bytes, max_timestamp, last_offset, now_ms)?;
        self.active_segment_mut().append(&prepared)?;
        self.log_end_offset = next_offset;
        if let Some((header, offset)) = &producer_batch {
            self.producers.update(header, *offset, now_ms);
        }
        let changed = self.leader_epochs.assign(self.leader_epoch, first_offset);
        self.epochs_changed(changed)?;
        let flushed = self.count_unflushed(records_count, now_ms)?;
        Ok(AppendInfo {
            first_offset,
            last_offset,
            max_timestamp,
            log_append_time_ms: log_append_time.then_some(now_ms),
            records_count,
            size_bytes,
            flushed,
            duplicate: false,
        })
    }

    /// Appends batches another replica's log holds (a follower's fetch from
    /// its leader, the metadata quorum's log): their offsets and leader
    /// epochs are kept, not assigned, so the first must start at the log
    /// end and each follow the one before. Each batch is checked whole (its
    /// CRC) but not its producer's sequence: the leader did. Producer state,
    /// aborted transactions and leader epochs follow the batches.
    pub fn append_as_follower(&mut self, batches: &[u8], now_ms: i64) -> Result<AppendInfo> {
        if batches.is_empty() {
            return Err(LogError::EmptyAppend);
        }
        let mut prepared: Vec<PreparedBatch<'_>> = Vec::new();
        let mut headers = Vec::new();
        let mut next_offset = self.log_end_offset;
        let mut rest = batches;
        let mut max_timestamp = i64::MIN;
        let mut records_count = 0u64;
        while !rest.is_empty() {
            let index = prepared.len();
            let header =
                validate(rest).map_err(|source| LogError::InvalidBatch { index, source })?;
            if header.base_offset != next_offset || header.last_offset_delta < 0 {
                return Err(LogError::InvalidBatch {
                    index,
                    source: crate::batch::BatchError::OffsetOutOfOrder {
                        base_offset: header.base_offset,
                        expected: next_offset,
                    },
                });
            }
            let size = header.size_bytes();
            let (batch, tail) = rest.split_at(size);
            rest = tail;
            let last_offset = header.base_offset + header.last_offset_delta as i64;
            max_timestamp = max_timestamp.max(header.max_timestamp);
            records_count += header.records_count.max(0) as u64;
            prepared.push(PreparedBatch {
                header: HeaderBytes::copy_from(batch),
                records: &batch[HEADER_SIZE..],
                last_offset,
                max_timestamp: header.max_timestamp,
            });
            headers.push((header, batch));
            next_offset = last_offset + 1;
        }
        let first_offset = self.log_end_offset;
        let last_offset = next_offset - 1;
        let size_bytes: u64 = prepared.iter().map(PreparedBatch::size_bytes).sum();
        self.maybe_roll(size_bytes, max_timestamp, last_offset, now_ms)?;
        self.active_segment_mut().append(&prepared)?;
        drop(prepared);
        self.log_end_offset = next_offset;
        let mut epochs_changed = false;
        for (header, batch) in &headers {
            epochs_changed |= self
                .leader_epochs
                .assign(header.partition_leader_epoch, header.base_offset);
            if header.producer_id < 0 {
                continue;
            }
            let txn_first_offset = self
                .producers
                .get(header.producer_id)
                .and_then(|e| e.current_txn_first_offset);
            self.producers.update(header, header.base_offset, now_ms);
            if header.is_control()
                && marker_kind(batch) == Some(crate::control::ControlType::Abort)
                && let Some(txn_first_offset) = txn_first_offset
            {
                self.record_abort(header.producer_id, txn_first_offset, header.base_offset)?;
            }
        }
        self.epochs_changed(epochs_changed)?;
        let flushed = self.count_unflushed(records_count, now_ms)?;
        Ok(AppendInfo {
            first_offset,
            last_offset,
            max_timestamp,
            log_append_time_ms: None,
            records_count,
            size_bytes,
            flushed,
            duplicate: false,
        })
    }

    /// Counts `records` appended and not yet flushed, flushing when they
    /// reach `flush.messages`; returns whether it flushed.
    fn count_unflushed(&mut self, records: u64, now_ms: i64) -> Result<bool> {
        self.unflushed_messages += records;
        self.first_unflushed_ms.get_or_insert(now_ms);
        let flushed = self.unflushed_messages >= self.config.flush_messages;
        if flushed {
            self.flush()?;
        }
        Ok(flushed)
    }

    fn maybe_roll(
        &mut self,
        incoming_bytes: u64,
        incoming_max_timestamp: i64,
        last_offset: i64,
        now_ms: i64,
    ) -> Result<()> {
        let config = &self.config;
        let active = self.active_segment();
        let reason = if active.size() > config.segment_bytes.saturating_sub(incoming_bytes) {
            Some("segment.bytes")
        } else if active.size() > 0
            && active.time_waited_for_roll(now_ms, incoming_max_timestamp) > config.segment_ms
        {
            Some("segment.ms")
        } else if active.indexes_full() {
            Some("index full")
        } else if !active.can_hold_offset(last_offset) {
            Some("offset overflow")
        } else {
            None
        };
        if let Some(reason) = reason
            && active.size() > 0
        {
            tracing::debug!(dir = %self.dir.display(), reason, base_offset = self.log_end_offset, "rolling segment");
            self.roll(now_ms)?;
        }
        if !self.active_segment().can_hold_offset(last_offset) {
            return Err(LogError::InvalidBatch {
                index: 0,
                source: crate::batch::BatchError::InvalidOffsetRange {
                    last_offset_delta: (last_offset - self.log_end_offset) as i32,
                    records_count: -1,
                },
            });
        }
        Ok(())
    }

    /// Closes the active segment and starts a new one at the log end offset.
    /// An empty active segment is kept as it is.
    pub fn roll(&mut self, now_ms: i64) -> Result<()> {
        if self.active_segment().size() == 0 {
            return Ok(());
        }
        self.active_segment_mut().make_inactive()?;
        let segment = Segment::create(&self.dir, self.log_end_offset, &self.config, now_ms)?;
        self.segments.insert(self.log_end_offset, segment);
        self.dir_dirty = true;
        // The producers' state as of the new segment's start, as Kafka takes
        // it at roll: an unclean stop reads only what came after.
        self.snapshot_producers()
    }

    /// Writes the producers' state at the log end offset.
    pub(crate) fn snapshot_producers(&self) -> Result<()> {
        crate::producer_state::write_snapshot(&self.dir, self.log_end_offset, &self.producers)
            .map_err(|source| LogError::WriteSnapshot {
                dir: self.dir.clone(),
                source,
            })
    }

    /// Reads from the batch holding `offset`: up to `max_bytes` (at least one
    /// whole batch when `min_one_batch`) and nothing at or past
    /// `max_offset` (the high watermark or last stable offset; `None` for
    /// the log end).
    pub fn read(
        &self,
        offset: i64,
        max_bytes: u64,
        max_offset: Option<i64>,
        min_one_batch: bool,
    ) -> Result<ReadInfo> {
        let info = |region| ReadInfo {
            region,
            log_start_offset: self.log_start_offset,
            log_end_offset: self.log_end_offset,
        };
        if offset < self.log_start_offset || offset > self.log_end_offset {
            return Err(LogError::OffsetOutOfRange {
                offset,
                log_start_offset: self.log_start_offset,
                log_end_offset: self.log_end_offset,
            });
        }
        let max_offset = max_offset
            .unwrap_or(self.log_end_offset)
            .min(self.log_end_offset);
        if offset >= max_offset {
            return Ok(info(None));
        }
        let first_base = self
            .segments
            .range(..=offset)
            .next_back()
            .map_or(offset, |(base, _)| *base);
        let mut segments = self.segments.range(first_base..).peekable();
        while let Some((_, segment)) = segments.next() {
            if segment.base_offset() >= max_offset {
                break;
            }
            let ends_before_max = match segments.peek() {
                Some((next_base, _)) => **next_base <= max_offset,
                None => max_offset == self.log_end_offset,
            };
            let max_position = if ends_before_max {
                segment.size()
            } else {
                match segment.translate_offset(max_offset)? {
                    Some(found) if found.header.base_offset >= max_offset => found.position,
                    Some(found) => found.position + found.header.size_bytes() as u64,
                    None => segment.size(),
                }
            };
            if let Some(region) = segment.read(offset, max_bytes, max_position, min_one_batch)? {
                return Ok(info(Some(region)));
            }
        }
        Ok(info(None))
    }

    /// The first offset whose record timestamp is `>= timestamp`, with that
    /// timestamp (ListOffsets by time).
    pub fn offset_for_timestamp(&self, timestamp: i64) -> Result<Option<(i64, i64)>> {
        // Skip segments whose data is all older than the target.
        let first = self
            .segments
            .values()
            .find(|s| s.max_timestamp().is_some_and(|(ts, _)| ts >= timestamp));
        let Some(first) = first else {
            return Ok(None);
        };
        for segment in self.segments.range(first.base_offset()..).map(|(_, s)| s) {
            if let Some(found) =
                segment.find_offset_by_timestamp(timestamp, self.log_start_offset)?
            {
                return Ok(Some(found));
            }
        }
        Ok(None)
    }

    /// The largest timestamp in the log and the offset of the batch that
    /// carries it (ListOffsets MAX_TIMESTAMP).
    pub fn max_timestamp(&self) -> Option<(i64, i64)> {
        self.segments
            .values()
            .filter_map(Segment::max_timestamp)
            .fold(None, |best: Option<(i64, i64)>, (ts, offset)| match best {
                Some((best_ts, _)) if best_ts >= ts => best,
                _ => Some((ts, offset)),
            })
    }

    /// fsyncs every segment that may hold data past the recovery point and
    /// moves the recovery point to the log end offset.
    pub fn flush(&mut self) -> Result<()> {
        let from = self
            .segments
            .range(..=self.recovery_point)
            .next_back()
            .map_or(self.recovery_point, |(base, _)| *base);
        for segment in self.segments.range(from..).map(|(_, s)| s) {
            segment.flush()?;
        }
        if self.dir_dirty {
            sync_dir(&self.dir)?;
            self.dir_dirty = false;
        }
        self.recovery_point = self.log_end_offset;
        self.unflushed_messages = 0;
        self.first_unflushed_ms = None;
        Ok(())
    }

    /// Flushes when `flush.ms` has passed since the oldest unflushed append.
    pub fn flush_if_due(&mut self, now_ms: i64) -> Result<bool> {
        match self.first_unflushed_ms {
            Some(since) if now_ms.saturating_sub(since) >= self.config.flush_ms => {
                self.flush()?;
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    /// Removes every batch at or after `offset`; the batch holding `offset`
    /// goes whole, so the new log end offset is its base offset. For a
    /// follower whose log diverged from the leader's.
    pub fn truncate_to(&mut self, offset: i64, now_ms: i64) -> Result<()> {
        if offset >= self.log_end_offset {
            // No batch goes, but an epoch this log started at its end and
            // wrote nothing in (it led a moment) does: a follower that
            // kept it would name it as its last fetched epoch, and the
            // leader, which never had it, would send it back here again.
            let changed = self.leader_epochs.truncate_from_end(offset);
            return self.epochs_changed(changed);
        }
        if offset <= self.log_start_offset {
            return self.truncate_fully_and_start_at(offset.max(self.log_start_offset), now_ms);
        }
        let doomed: Vec<i64> = self.segments.range(offset + 1..).map(|(b, _)| *b).collect();
        for base in doomed {
            self.delete_segment(base, now_ms)?;
        }
        let active = self.active_segment_mut();
        active.truncate_to(offset)?;
        let config = self.config.clone();
        let active = self.active_segment_mut();
        active.make_active(&config)?;
        self.log_end_offset = self.active_segment().read_next_offset()?;
        self.recovery_point = self.recovery_point.min(self.log_end_offset);
        let changed = self.leader_epochs.truncate_from_end(self.log_end_offset);
        self.epochs_changed(changed)?;
        self.load_producer_state(now_ms)
    }

    /// Deletes every segment and starts empty at `offset`.
    pub fn truncate_fully_and_start_at(&mut self, offset: i64, now_ms: i64) -> Result<()> {
        let bases: Vec<i64> = self.segments.keys().copied().collect();
        for base in bases {
            self.delete_segment(base, now_ms)?;
        }
        let segment = Segment::create(&self.dir, offset, &self.config, now_ms)?;
        self.segments.insert(offset, segment);
        self.dir_dirty = true;
        self.log_start_offset = offset;
        self.log_end_offset = offset;
        self.recovery_point = offset;
        let changed = !self.leader_epochs.entries().is_empty();
        self.leader_epochs = LeaderEpochCache::default();
        self.epochs_changed(changed)?;
        self.load_producer_state(now_ms)
    }

    /// Sets the producers' state from the newest snapshot at or below the
    /// log end offset and the batches after it (all of the log when there
    /// is none). Snapshots past the log end describe data that is gone and
    /// are removed.
    pub(crate) fn load_producer_state(&mut self, now_ms: i64) -> Result<()> {
        let snapshot_error = |source| LogError::WriteSnapshot {
            dir: self.dir.clone(),
            source,
        };
        let snapshots = crate::producer_state::list_snapshots(&self.dir).map_err(snapshot_error)?;
        for path in snapshots.range(self.log_end_offset + 1..).map(|(_, p)| p) {
            std::fs::remove_file(path).map_err(snapshot_error)?;
        }
        self.load_aborted()?;
        self.producers = ProducerStates::default();
        let mut from = self.log_start_offset;
        if let Some((&offset, path)) = snapshots.range(..=self.log_end_offset).next_back() {
            let loaded = std::fs::read(path)
                .map_err(|e| e.to_string())
                .and_then(|bytes| ProducerStates::decode_snapshot(&bytes, now_ms));
            match loaded {
                Ok(states) => {
                    self.producers = states;
                    from = offset;
                }
                Err(reason) => tracing::warn!(
                    path = %path.display(),
                    reason,
                    "unreadable producer state snapshot: reading the whole log instead"
                ),
            }
        }
        if from < self.log_end_offset {
            self.scan_producers_from(from, now_ms)?;
        }
        Ok(())
    }

    /// Reads every segment's `.txnindex`, leaving out entries past the log
    /// end (their files are rewritten without them).
    fn load_aborted(&mut self) -> Result<()> {
        self.aborted.clear();
        let bases: Vec<i64> = self.segments.keys().copied().collect();
        for base in bases {
            let path = crate::segment::file_path(&self.dir, base, TXN_INDEX_SUFFIX);
            let read_error = |source| LogError::ReadSegment {
                path: path.clone(),
                position: 0,
                source,
            };
            let entries = txn_index::read(&path).map_err(read_error)?;
            let kept: Vec<AbortedTxn> = entries
                .iter()
                .filter(|e| e.last_offset < self.log_end_offset)
                .copied()
                .collect();
            if kept.len() != entries.len() {
                txn_index::rewrite(&path, &kept).map_err(|source| LogError::WriteSegment {
                    path: path.clone(),
                    source,
                })?;
            }
            self.aborted.extend(kept);
        }
        self.aborted.sort_by_key(|e| e.last_offset);
        Ok(())
    }

    /// Replays the producer ids of every batch from `from` on; abort
    /// markers missing from the `.txnindex` (written just before an unclean
    /// stop) are added again.
    fn scan_producers_from(&mut self, from: i64, now_ms: i64) -> Result<()> {
        let first = self
            .segments
            .range(..=from)
            .next_back()
            .map_or(from, |(base, _)| *base);
        let mut scanned = 0u64;
        let mut aborts = Vec::new();
        {
            let producers = &mut self.producers;
            for segment in self.segments.range(first..).map(|(_, s)| s) {
                segment.scan(0, |header, _, batch| {
                    if header.next_offset() > from && header.producer_id >= 0 {
                        if header.is_control()
                            && marker_kind(batch) == Some(crate::control::ControlType::Abort)
                            && let Some(first_offset) = producers
                                .get(header.producer_id)
                                .and_then(|e| e.current_txn_first_offset)
                        {
                            aborts.push((header.producer_id, first_offset, header.base_offset));
                        }
                        producers.update(header, header.base_offset, now_ms);
                    }
                    scanned += 1;
                    true
                })?;
            }
        }
        for (producer_id, first_offset, marker_offset) in aborts {
            self.record_abort(producer_id, first_offset, marker_offset)?;
        }
        self.aborted.sort_by_key(|e| e.last_offset);
        tracing::debug!(dir = %self.dir.display(), from, batches = scanned, producers = self.producers.len(), "producer state rebuilt from the log");
        Ok(())
    }

    /// Moves the log start offset forward (DeleteRecords); whole segments
    /// below it go at the next retention pass.
    pub fn advance_log_start_offset(&mut self, offset: i64) -> Result<()> {
        if offset > self.log_end_offset {
            return Err(LogError::OffsetOutOfRange {
                offset,
                log_start_offset: self.log_start_offset,
                log_end_offset: self.log_end_offset,
            });
        }
        self.log_start_offset = self.log_start_offset.max(offset);
        let changed = self
            .leader_epochs
            .truncate_from_start(self.log_start_offset);
        self.epochs_changed(changed)
    }

    /// Flushes, writes the active segment's final time index entry and trims
    /// its indexes, as Kafka does on a clean shutdown.
    pub fn close(mut self) -> Result<()> {
        self.flush()?;
        self.snapshot_producers()?;
        self.active_segment_mut().make_inactive()?;
        self.active_segment().flush()?;
        let now = i64::MAX;
        self.unlink_due_files(now)
    }
}

/// What a control batch's marker says, if it is a transaction marker.
fn marker_kind(batch: &[u8]) -> Option<crate::control::ControlType> {
    let records = crate::records::BatchRecords::decode(batch).ok()?;
    let key = records.records.first()?.key.clone()?;
    crate::control::ControlType::parse(records.data.get(key)?)
}

pub(crate) use crate::checkpoint::sync_dir;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::batch::Batches;
    use crate::builder::BatchBuilder;
    use crate::load::LoadState;

    pub(crate) const NOW: i64 = 1_700_000_000_000;

    pub(crate) fn batch(records: usize, timestamp: i64) -> Vec<u8> {
        let mut builder = BatchBuilder::new(timestamp);
        for i in 0..records {
            builder.push(
                Some(format!("k{i}").as_bytes()),
                Some(&[b'v'; 100]),
                timestamp,
            );
        }
        builder.build()
    }

    pub(crate) fn open(dir: &Path, config: LogConfig) -> PartitionLog {
        PartitionLog::open(dir, config, LoadState::default(), NOW).expect("open")
    }

    pub(crate) fn config(pairs: &[(&str, &str)]) -> LogConfig {
        let mut config = LogConfig::default();
        for (k, v) in pairs {
            config.set(k, v).expect("valid config");
        }
        config
    }

    pub(crate) fn read_all(log: &PartitionLog, from: i64) -> Vec<(i64, i64)> {
        let mut out = Vec::new();
        let mut offset = from;
        while offset < log.log_end_offset() {
            let info = log.read(offset, 1 << 20, None, true).expect("read");
            let bytes = info.region.expect("region").to_vec().expect("bytes");
            for batch in Batches::new(&bytes) {
                let Ok((header, _)) = batch else { break };
                out.push((header.base_offset, header.last_offset()));
                offset = header.next_offset();
            }
        }
        out
    }

    #[test]
    fn appends_assign_offsets_from_the_log_end() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut log = open(dir.path(), LogConfig::default());
        let first = log.append(&batch(3, NOW), NOW).expect("append");
        assert_eq!((first.first_offset, first.last_offset), (0, 2));
        let mut two = batch(2, NOW);
        two.extend_from_slice(&batch(4, NOW));
        let second = log.append(&two, NOW).expect("append");
        assert_eq!((second.first_offset, second.last_offset), (3, 8));
        assert_eq!(second.records_count, 6);
        assert_eq!(log.log_end_offset(), 9);
        assert_eq!(read_all(&log, 0), vec![(0, 2), (3, 4), (5, 8)]);
        assert_eq!(read_all(&log, 4), vec![(3, 4), (5, 8)]);
    }

    #[test]
    fn reads_stop_at_the_max_offset() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut log = open(dir.path(), LogConfig::default());
        let (a, b) = (batch(3, NOW), batch(2, NOW));
        log.append(&a, NOW).expect("append");
        log.append(&b, NOW).expect("append");
        log.append(&batch(4, NOW), NOW).expect("append");
        let region = log
            .read(1, 1 << 20, Some(5), true)
            .expect("read")
            .region
            .expect("region");
        assert_eq!(
            (region.position, region.length),
            (0, (a.len() + b.len()) as u64)
        );
        let small = log
            .read(0, 10, None, false)
            .expect("read")
            .region
            .expect("region");
        assert_eq!(small.length, 10);
        let whole_first = log
            .read(0, 10, None, true)
            .expect("read")
            .region
            .expect("region");
        assert_eq!(whole_first.length, a.len() as u64);
    }

    #[test]
    fn reads_at_the_end_are_empty_and_past_it_out_of_range() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut log = open(dir.path(), LogConfig::default());
        log.append(&batch(1, NOW), NOW).expect("append");
        assert!(log.read(1, 100, None, true).expect("read").region.is_none());
        assert!(matches!(
            log.read(2, 100, None, true),
            Err(LogError::OffsetOutOfRange { offset: 2, .. })
        ));
        assert!(
            log.read(0, 100, Some(0), true)
                .expect("read")
                .region
                .is_none()
        );
    }

    #[test]
    fn rolls_on_segment_bytes_and_names_segments_by_base_offset() {
        let dir = tempfile::tempdir().expect("tempdir");
        let one = batch(5, NOW);
        let mut log = open(
            dir.path(),
            config(&[("segment.bytes", &(one.len() * 2).to_string())]),
        );
        for _ in 0..5 {
            log.append(&one, NOW).expect("append");
        }
        let bases: Vec<i64> = log.segments().map(Segment::base_offset).collect();
        assert_eq!(bases, vec![0, 10, 20]);
        assert!(dir.path().join("00000000000000000010.log").exists());
        // Closed segments' indexes are trimmed; the active one is preallocated.
        let closed_index =
            std::fs::metadata(dir.path().join("00000000000000000000.index")).expect("meta");
        assert_eq!(closed_index.len() % 8, 0);
        assert!(closed_index.len() < 1024);
        let active_index =
            std::fs::metadata(dir.path().join("00000000000000000020.index")).expect("meta");
        assert_eq!(active_index.len(), 10 * 1024 * 1024);
        assert_eq!(read_all(&log, 0).len(), 5);
    }

    #[test]
    fn rolls_on_segment_ms_from_the_first_batch_timestamp() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut log = open(dir.path(), config(&[("segment.ms", "1000")]));
        log.append(&batch(1, NOW), NOW).expect("append");
        log.append(&batch(1, NOW + 1000), NOW).expect("append");
        assert_eq!(log.segments().count(), 1);
        log.append(&batch(1, NOW + 1001), NOW).expect("append");
        assert_eq!(log.segments().count(), 2);
    }

    #[test]
    fn rolls_when_the_index_is_full() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut log = open(
            dir.path(),
            config(&[
                ("segment.index.bytes", "4096"),
                ("index.interval.bytes", "0"),
            ]),
        );
        let one = batch(1, NOW);
        for i in 0..600 {
            log.append(&one, NOW + i).expect("append");
        }
        assert!(log.segments().count() >= 2);
        assert_eq!(read_all(&log, 0).len(), 600);
    }

    #[test]
    fn time_lookups_find_the_first_record_at_or_after_a_timestamp() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut log = open(
            dir.path(),
            config(&[("index.interval.bytes", "0"), ("segment.bytes", "2000")]),
        );
        for i in 0..20 {
            let b = BatchBuilder::new(NOW + i * 10)
                .record(None, Some(b"a"), NOW + i * 10)
                .record(None, Some(b"b"), NOW + i * 10 + 5)
                .build();
            log.append(&b, NOW).expect("append");
        }
        assert_eq!(
            log.offset_for_timestamp(NOW).expect("lookup"),
            Some((0, NOW))
        );
        assert_eq!(
            log.offset_for_timestamp(NOW + 3).expect("lookup"),
            Some((1, NOW + 5))
        );
        assert_eq!(
            log.offset_for_timestamp(NOW + 101).expect("lookup"),
            Some((21, NOW + 105))
        );
        assert_eq!(log.offset_for_timestamp(NOW + 1000).expect("lookup"), None);
        assert_eq!(log.max_timestamp(), Some((NOW + 195, 39)));
    }

    #[test]
    fn log_append_time_stamps_the_batch_and_keeps_it_valid() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut log = open(
            dir.path(),
            config(&[("message.timestamp.type", "LogAppendTime")]),
        );
        let info = log.append(&batch(2, 5), NOW).expect("append");
        assert_eq!(info.log_append_time_ms, Some(NOW));
        let bytes = log
            .read(0, 1 << 20, None, true)
            .expect("read")
            .region
            .expect("region")
            .to_vec()
            .expect("bytes");
        let (header, _) = Batches::new(&bytes)
            .next()
            .expect("batch")
            .expect("valid crc");
        assert!(header.is_log_append_time());
        assert_eq!(header.max_timestamp, NOW);
    }

    #[test]
    fn appends_stamp_the_leader_epoch_and_keep_the_crc() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut log = open(dir.path(), LogConfig::default());
        // A producer's batch says -1, as the Java client writes it.
        let sent = batch(2, NOW);
        assert_eq!(&sent[12..16], &(-1i32).to_be_bytes());
        log.append(&sent, NOW).expect("append");
        let bytes = log
            .read(0, 1 << 20, None, true)
            .expect("read")
            .region
            .expect("region")
            .to_vec()
            .expect("bytes");
        let (header, _) = Batches::new(&bytes)
            .next()
            .expect("batch")
            .expect("valid crc");
        assert_eq!(header.partition_leader_epoch, LEADER_EPOCH);
    }

    #[test]
    fn flush_messages_moves_the_recovery_point() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut log = open(dir.path(), config(&[("flush.messages", "3")]));
        assert!(!log.append(&batch(2, NOW), NOW).expect("append").flushed);
        assert_eq!(log.recovery_point(), 0);
        assert!(log.append(&batch(1, NOW), NOW).expect("append").flushed);
        assert_eq!(log.recovery_point(), 3);
        log.append(&batch(1, NOW), NOW).expect("append");
        assert!(!log.flush_if_due(NOW).expect("flush"));
        let mut fsync_each = open(&dir.path().join("b"), config(&[("flush.messages", "1")]));
        assert!(
            fsync_each
                .append(&batch(1, NOW), NOW)
                .expect("append")
                .flushed
        );
    }

    #[test]
    fn flush_ms_flushes_once_the_oldest_unflushed_append_is_old_enough() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut log = open(dir.path(), config(&[("flush.ms", "1000")]));
        log.append(&batch(1, NOW), NOW).expect("append");
        assert!(!log.flush_if_due(NOW + 999).expect("flush"));
        assert!(log.flush_if_due(NOW + 1000).expect("flush"));
        assert_eq!(log.recovery_point(), 1);
    }

    #[test]
    fn truncate_removes_whole_batches_and_later_segments() {
        let dir = tempfile::tempdir().expect("tempdir");
        let one = batch(5, NOW);
        let mut log = open(
            dir.path(),
            config(&[("segment.bytes", &(one.len() * 2).to_string())]),
        );
        for _ in 0..5 {
            log.append(&one, NOW).expect("append");
        }
        log.truncate_to(12, NOW).expect("truncate");
        assert_eq!(log.log_end_offset(), 10);
        assert_eq!(log.segments().count(), 2);
        assert_eq!(read_all(&log, 0), vec![(0, 4), (5, 9)]);
        let again = log.append(&one, NOW).expect("append after truncate");
        assert_eq!(again.first_offset, 10);
        log.truncate_to(3, NOW).expect("truncate");
        assert_eq!(log.log_end_offset(), 0);
        assert_eq!(read_all(&log, 0), vec![]);
    }

    #[test]
    fn reopen_after_close_keeps_offsets_and_the_time_index_roll_entry() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut log = open(dir.path(), LogConfig::default());
        log.append(&batch(3, NOW), NOW).expect("append");
        log.append(&batch(3, NOW + 50), NOW).expect("append");
        log.close().expect("close");
        let timeindex =
            std::fs::read(dir.path().join("00000000000000000000.timeindex")).expect("read");
        assert_eq!(timeindex.len(), 12);
        assert_eq!(&timeindex[..8], &(NOW + 50).to_be_bytes());
        assert_eq!(&timeindex[8..], &5u32.to_be_bytes());
        let state = LoadState {
            clean_shutdown: true,
            recovery_point: 6,
            log_start_offset: 0,
        };
        let log = PartitionLog::open(dir.path(), LogConfig::default(), state, NOW).expect("reopen");
        assert_eq!(log.log_end_offset(), 6);
        assert_eq!(log.recovery_point(), 6);
        assert_eq!(log.max_timestamp(), Some((NOW + 50, 5)));
    }

    fn epochs(log: &PartitionLog) -> Vec<(i32, i64)> {
        log.leader_epochs()
            .entries()
            .iter()
            .map(|e| (e.epoch, e.start_offset))
            .collect()
    }

    #[test]
    fn an_epoch_led_without_a_write_goes_when_the_log_is_cut_at_its_end() {
        let dir = tempfile::tempdir().expect("dir");
        let mut log = open(dir.path(), LogConfig::default());
        log.become_leader(3).expect("lead");
        log.append(&batch(2, NOW), NOW).expect("append");
        // Led a moment in epoch 5, wrote nothing, then followed again.
        log.become_leader(5).expect("lead");
        assert_eq!(epochs(&log), [(3, 0), (5, 2)]);
        assert_eq!(log.latest_epoch(), 5);
        // The leader never had epoch 5: it answers where epoch 3 ends.
        log.truncate_to(2, NOW).expect("truncate");
        assert_eq!(epochs(&log), [(3, 0)]);
        assert_eq!(log.latest_epoch(), 3);
        assert_eq!(log.log_end_offset(), 2, "no batch went");
        assert_eq!(log.epoch_start_offset(3), Some(0));
        // An older epoch than the newest held changes nothing.
        log.become_leader(1).expect("old");
        assert_eq!(epochs(&log), [(3, 0)]);
    }

    #[test]
    fn a_follower_keeps_the_leaders_offsets_and_epochs() {
        let dirs = (
            tempfile::tempdir().expect("dir"),
            tempfile::tempdir().expect("dir"),
        );
        let mut leader = open(dirs.0.path(), LogConfig::default());
        leader.set_leader_epoch(3);
        leader.append(&batch(2, NOW), NOW).expect("append");
        leader.set_leader_epoch(5);
        leader.append(&batch(3, NOW), NOW).expect("append");
        assert_eq!(epochs(&leader), [(3, 0), (5, 2)]);
        assert_eq!(leader.end_offset_for_epoch(3), Some((3, 2)));
        assert_eq!(leader.end_offset_for_epoch(4), Some((3, 2)));
        assert_eq!(leader.end_offset_for_epoch(5), Some((5, 5)));
        assert_eq!(leader.end_offset_for_epoch(6), None);
        let bytes = leader
            .read(0, 1 << 20, None, true)
            .expect("read")
            .region
            .expect("region")
            .to_vec()
            .expect("bytes");

        let mut follower = open(dirs.1.path(), LogConfig::default());
        let info = follower.append_as_follower(&bytes, NOW).expect("follow");
        assert_eq!((info.first_offset, info.last_offset), (0, 4));
        assert_eq!(epochs(&follower), [(3, 0), (5, 2)]);
        assert_eq!(read_all(&follower, 0), read_all(&leader, 0));
        // The same batches again would leave a gap in offsets: refused.
        let err = follower.append_as_follower(&bytes, NOW).expect_err("gap");
        assert!(
            matches!(
                err,
                LogError::InvalidBatch {
                    source: crate::batch::BatchError::OffsetOutOfOrder {
                        base_offset: 0,
                        expected: 5
                    },
                    ..
                }
            ),
            "{err}"
        );
        // Truncating to the end of epoch 3 drops epoch 5, on disk too.
        follower.truncate_to(2, NOW).expect("truncate");
        assert_eq!(epochs(&follower), [(3, 0)]);
        drop(follower);
        let text = std::fs::read_to_string(dirs.1.path().join(crate::leader_epoch::FILE_NAME))
            .expect("checkpoint");
        assert_eq!(text, "0\n1\n3 0\n");
        let follower = open(dirs.1.path(), LogConfig::default());
        assert_eq!(epochs(&follower), [(3, 0)]);
        assert_eq!(follower.log_end_offset(), 2);
    }

    #[test]
    fn a_log_without_a_checkpoint_takes_its_first_batchs_epoch() {
        let dir = tempfile::tempdir().expect("dir");
        let mut log = open(dir.path(), LogConfig::default());
        log.set_leader_epoch(7);
        log.append(&batch(2, NOW), NOW).expect("append");
        log.append(&batch(2, NOW), NOW).expect("append");
        log.close().expect("close");
        std::fs::remove_file(dir.path().join(crate::leader_epoch::FILE_NAME)).expect("remove");
        let mut log = open(dir.path(), LogConfig::default());
        assert_eq!(epochs(&log), [(7, 0)]);
        // Its appends go on in that epoch.
        log.append(&batch(1, NOW), NOW).expect("append");
        assert_eq!(epochs(&log), [(7, 0)]);
        assert_eq!(log.end_offset_for_epoch(7), Some((7, 5)));
    }
}
