//! One partition's log: its segments in a `<topic>-<partition>` directory,
//! the log start and end offsets, appends, reads, lookups, roll, flush,
//! truncation and retention. Loading and recovery live in `load.rs`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::batch::{HEADER_SIZE, HeaderBytes, validate_for_append};
use crate::config::{LogConfig, TimestampType};
use crate::error::{LogError, Result};
use crate::region::FileRegion;
use crate::segment::{DELETED_SUFFIX, PreparedBatch, Segment};

/// Smallest possible uncompressed record: length, attributes, timestamp
/// delta, offset delta, key length, value length, header count.
const MIN_RECORD_BYTES: usize = 7;

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
struct PendingDelete {
    paths: [PathBuf; 3],
    due_ms: i64,
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
    pending_deletes: Vec<PendingDelete>,
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
        })
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
    /// and writes them. Nothing is written when any batch is invalid.
    pub fn append(&mut self, batches: &[u8], now_ms: i64) -> Result<AppendInfo> {
        if batches.is_empty() {
            return Err(LogError::EmptyAppend);
        }
        let log_append_time = self.config.message_timestamp_type == TimestampType::LogAppendTime;
        let mut prepared: Vec<PreparedBatch<'_>> = Vec::new();
        let mut next_offset = self.log_end_offset;
        let mut rest = batches;
        let mut max_timestamp = i64::MIN;
        let mut records_count = 0u64;
        while !rest.is_empty() {
            let index = prepared.len();
            let header = validate_for_append(rest)
                .map_err(|source| LogError::InvalidBatch { index, source })?;
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
            let batch_max_timestamp = if log_append_time {
                patched.set_log_append_time(now_ms, records);
                now_ms
            } else {
                header.max_timestamp
            };
            let last_offset = next_offset + header.last_offset_delta as i64;
            max_timestamp = max_timestamp.max(batch_max_timestamp);
            records_count += header.records_count as u64;
            prepared.push(PreparedBatch {
                header: patched,
                records,
                last_offset,
                max_timestamp: batch_max_timestamp,
            });
            next_offset = last_offset + 1;
        }
        let first_offset = self.log_end_offset;
        let last_offset = next_offset - 1;
        let size_bytes: u64 = prepared.iter().map(PreparedBatch::size_bytes).sum();
        self.maybe_roll(size_bytes, max_timestamp, last_offset, now_ms)?;
        self.active_segment_mut().append(&prepared)?;
        self.log_end_offset = next_offset;
        self.unflushed_messages += records_count;
        self.first_unflushed_ms.get_or_insert(now_ms);
        let flushed = self.unflushed_messages >= self.config.flush_messages;
        if flushed {
            self.flush()?;
        }
        Ok(AppendInfo {
            first_offset,
            last_offset,
            max_timestamp,
            log_append_time_ms: log_append_time.then_some(now_ms),
            records_count,
            size_bytes,
            flushed,
        })
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
        if let Some(reason) = reason {
            if active.size() > 0 {
                tracing::debug!(dir = %self.dir.display(), reason, base_offset = self.log_end_offset, "rolling segment");
                self.roll(now_ms)?;
            }
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
        Ok(())
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
        for segment in self.segments.range(first_base..).map(|(_, s)| s) {
            if segment.base_offset() >= max_offset {
                break;
            }
            let max_position = match segment.translate_offset(max_offset)? {
                Some(found) if found.header.base_offset >= max_offset => found.position,
                Some(found) => found.position + found.header.size_bytes() as u64,
                None => segment.size(),
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
            return Ok(());
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
        Ok(())
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
        Ok(())
    }

    /// Applies `retention.ms`, `retention.bytes` and the log start offset:
    /// removes whole segments from the oldest, renaming their files
    /// `.deleted`; unlinks files whose `file.delete.delay.ms` has passed.
    /// Returns how many segments were removed.
    pub fn apply_retention(&mut self, now_ms: i64) -> Result<usize> {
        let mut deletable = Vec::new();
        let mut bytes_over = if self.config.retention_bytes >= 0 {
            self.size_bytes() as i64 - self.config.retention_bytes
        } else {
            i64::MIN
        };
        let bases: Vec<i64> = self.segments.keys().copied().collect();
        for (i, base) in bases.iter().enumerate() {
            let segment = &self.segments[base];
            let next_base = bases.get(i + 1).copied();
            let is_last_and_empty = next_base.is_none() && segment.size() == 0;
            let below_start = next_base.is_some_and(|next| next <= self.log_start_offset);
            let delete_policy = self.config.cleanup_policy.delete;
            let expired = delete_policy
                && self.config.retention_ms >= 0
                && now_ms - segment.largest_timestamp() > self.config.retention_ms;
            let over_size = delete_policy && bytes_over - segment.size() as i64 >= 0;
            if is_last_and_empty || !(below_start || expired || over_size) {
                break;
            }
            if over_size {
                bytes_over -= segment.size() as i64;
            }
            deletable.push(*base);
        }
        if deletable.len() == self.segments.len() {
            // Deleting the active segment too: start a fresh one first.
            self.roll(now_ms)?;
        }
        for base in &deletable {
            self.delete_segment(*base, now_ms)?;
        }
        if let Some(first) = self.segments.keys().next() {
            self.log_start_offset = self.log_start_offset.max(*first);
        }
        if !deletable.is_empty() {
            tracing::info!(dir = %self.dir.display(), segments = deletable.len(), log_start_offset = self.log_start_offset, "retention removed segments");
        }
        self.unlink_due_files(now_ms)?;
        Ok(deletable.len())
    }

    /// Takes a segment out of the log and renames its files `.deleted`.
    pub(crate) fn delete_segment(&mut self, base_offset: i64, now_ms: i64) -> Result<()> {
        let Some(mut segment) = self.segments.remove(&base_offset) else {
            return Ok(());
        };
        segment.rename_files("", DELETED_SUFFIX)?;
        self.pending_deletes.push(PendingDelete {
            paths: segment.paths_with_suffix(DELETED_SUFFIX),
            due_ms: now_ms.saturating_add(self.config.file_delete_delay_ms),
        });
        self.unlink_due_files(now_ms)
    }

    fn unlink_due_files(&mut self, now_ms: i64) -> Result<()> {
        let mut result = Ok(());
        self.pending_deletes.retain(|pending| {
            if pending.due_ms > now_ms {
                return true;
            }
            for path in &pending.paths {
                if let Err(source) = std::fs::remove_file(path) {
                    if source.kind() != std::io::ErrorKind::NotFound && result.is_ok() {
                        result = Err(LogError::Delete {
                            path: path.clone(),
                            source,
                        });
                    }
                }
            }
            false
        });
        result
    }

    /// Flushes, writes the active segment's final time index entry and trims
    /// its indexes, as Kafka does on a clean shutdown.
    pub fn close(mut self) -> Result<()> {
        self.flush()?;
        self.active_segment_mut().make_inactive()?;
        self.active_segment().flush()?;
        let now = i64::MAX;
        self.unlink_due_files(now)
    }
}

pub(crate) fn sync_dir(dir: &Path) -> Result<()> {
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|source| LogError::Flush {
            path: dir.to_path_buf(),
            source,
        })
}
