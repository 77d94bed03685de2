//! One segment: a `.log` file of batches and its `.index` and `.timeindex`,
//! named after the segment's base offset as 20 zero-padded digits.
//!
//! Appends write the batch bytes with one `writev` per append; index entries
//! follow Kafka's `LogSegment.append` rule: an offset index entry (batch last
//! offset → batch position) and a time index entry (max timestamp so far →
//! its offset) once more than `index.interval.bytes` were appended since the
//! previous ones.

use std::fs::{File, OpenOptions};
use std::io::{self, IoSlice, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::UNIX_EPOCH;

use crate::batch::{BatchHeader, HeaderBytes};
use crate::config::LogConfig;
use crate::error::{LogError, Result};
use crate::offset_index::OffsetIndex;
use crate::records::BatchRecords;
use crate::region::FileRegion;
use crate::scan::{ScanEnd, read_header_at, scan_batches};
use crate::time_index::TimeIndex;

pub const LOG_SUFFIX: &str = ".log";
pub const INDEX_SUFFIX: &str = ".index";
pub const TIME_INDEX_SUFFIX: &str = ".timeindex";
/// Added to the files of a segment removed by retention, truncation or the
/// cleaner, before they are unlinked.
pub const DELETED_SUFFIX: &str = ".deleted";
/// The cleaner writes its output segment under this suffix first.
pub const CLEANED_SUFFIX: &str = ".cleaned";
/// A finished cleaner output, waiting to replace the segments it cleaned.
pub const SWAP_SUFFIX: &str = ".swap";

pub use crate::file_name::file_path;

/// A batch ready to be written: its patched header and its record bytes as
/// the producer sent them.
#[derive(Debug)]
pub struct PreparedBatch<'a> {
    pub header: HeaderBytes,
    pub records: &'a [u8],
    pub last_offset: i64,
    pub max_timestamp: i64,
}

impl PreparedBatch<'_> {
    pub fn size_bytes(&self) -> u64 {
        (self.header.0.len() + self.records.len()) as u64
    }
}

/// Where the batch holding an offset starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchPosition {
    pub header: BatchHeader,
    pub position: u64,
}

#[derive(Debug)]
pub struct Segment {
    base_offset: i64,
    dir: PathBuf,
    log: Arc<File>,
    size: u64,
    offset_index: OffsetIndex,
    time_index: TimeIndex,
    index_interval_bytes: u64,
    bytes_since_last_index_entry: u64,
    /// Largest batch max timestamp in the segment and the last offset of the
    /// batch that carried it.
    max_timestamp: Option<(i64, i64)>,
    /// Max timestamp of the first batch: `segment.ms` counts from it.
    rolling_based_timestamp: Option<i64>,
    created_ms: i64,
    /// An index file did not exist when the segment was opened.
    index_missing: bool,
}

impl Segment {
    /// Creates an empty segment, replacing any stale files of that name.
    pub fn create(dir: &Path, base_offset: i64, config: &LogConfig, now_ms: i64) -> Result<Self> {
        let log_path = file_path(dir, base_offset, LOG_SUFFIX);
        for suffix in [INDEX_SUFFIX, TIME_INDEX_SUFFIX] {
            let path = file_path(dir, base_offset, suffix);
            match std::fs::remove_file(&path) {
                Err(source) if source.kind() != io::ErrorKind::NotFound => {
                    return Err(LogError::Delete { path, source });
                }
                _ => {}
            }
        }
        let log = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&log_path)
            .map_err(|source| LogError::OpenSegment {
                path: log_path.clone(),
                source,
            })?;
        let mut segment =
            Self::with_log(dir, base_offset, log, config, config.segment_index_bytes)?;
        segment.created_ms = now_ms;
        segment.index_missing = false;
        Ok(segment)
    }

    /// Opens an existing segment. Its indexes are taken as they are on disk
    /// (trimmed to their entries); call [`Segment::check_indexes`] or
    /// [`Segment::recover`] before trusting them.
    pub fn open(dir: &Path, base_offset: i64, config: &LogConfig) -> Result<Self> {
        let log_path = file_path(dir, base_offset, LOG_SUFFIX);
        let log = OpenOptions::new()
            .read(true)
            .write(true)
            .open(&log_path)
            .map_err(|source| LogError::OpenSegment {
                path: log_path.clone(),
                source,
            })?;
        let mut segment = Self::with_log(dir, base_offset, log, config, 0)?;
        segment.max_timestamp = segment.time_index.last_entry();
        Ok(segment)
    }

    fn with_log(
        dir: &Path,
        base_offset: i64,
        mut log: File,
        config: &LogConfig,
        index_bytes: usize,
    ) -> Result<Self> {
        let log_path = file_path(dir, base_offset, LOG_SUFFIX);
        let size = log
            .seek(SeekFrom::End(0))
            .map_err(|source| LogError::OpenSegment {
                path: log_path.clone(),
                source,
            })?;
        let modified_ms = log
            .metadata()
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
            .map_or(0, |d| d.as_millis() as i64);
        let index_missing = [INDEX_SUFFIX, TIME_INDEX_SUFFIX]
            .iter()
            .any(|suffix| !file_path(dir, base_offset, suffix).exists());
        let open_index = |suffix: &str| {
            let path = file_path(dir, base_offset, suffix);
            (path.clone(), move |source| LogError::OpenSegment {
                path,
                source,
            })
        };
        let (index_path, index_err) = open_index(INDEX_SUFFIX);
        let offset_index =
            OffsetIndex::open(&index_path, base_offset, index_bytes).map_err(index_err)?;
        let (time_path, time_err) = open_index(TIME_INDEX_SUFFIX);
        let time_index = TimeIndex::open(&time_path, base_offset, index_bytes).map_err(time_err)?;
        Ok(Self {
            base_offset,
            dir: dir.to_path_buf(),
            log: Arc::new(log),
            size,
            offset_index,
            time_index,
            index_interval_bytes: config.index_interval_bytes,
            bytes_since_last_index_entry: 0,
            max_timestamp: None,
            rolling_based_timestamp: None,
            created_ms: modified_ms,
            index_missing,
        })
    }

    pub fn base_offset(&self) -> i64 {
        self.base_offset
    }

    pub fn size(&self) -> u64 {
        self.size
    }

    pub fn log_path(&self) -> PathBuf {
        file_path(&self.dir, self.base_offset, LOG_SUFFIX)
    }

    pub fn offset_index(&self) -> &OffsetIndex {
        &self.offset_index
    }

    pub fn time_index(&self) -> &TimeIndex {
        &self.time_index
    }

    pub(crate) fn log_file(&self) -> &Arc<File> {
        &self.log
    }

    /// Largest timestamp in the segment, or the file's modification time
    /// when it holds none, as Kafka's `LogSegment.largestTimestamp`.
    pub fn largest_timestamp(&self) -> i64 {
        self.max_timestamp.map_or(self.created_ms, |(ts, _)| ts)
    }

    pub fn max_timestamp(&self) -> Option<(i64, i64)> {
        self.max_timestamp
    }

    /// Whether `offset` can be stored relative to this segment's base offset.
    pub fn can_hold_offset(&self, offset: i64) -> bool {
        let relative = offset - self.base_offset;
        (0..=i32::MAX as i64).contains(&relative)
    }

    pub fn indexes_full(&self) -> bool {
        self.offset_index.is_full() || self.time_index.is_full()
    }

    /// How long the segment's data spans, for `segment.ms`: from its first
    /// batch's timestamp to the incoming one, or from its creation to now.
    pub fn time_waited_for_roll(&self, now_ms: i64, incoming_max_timestamp: i64) -> i64 {
        match self.rolling_based_timestamp {
            Some(first) => incoming_max_timestamp - first,
            None => now_ms - self.created_ms,
        }
    }

    /// Writes the batches after the last one and updates the indexes.
    pub(crate) fn append(&mut self, batches: &[PreparedBatch<'_>]) -> Result<()> {
        let Some(first) = batches.first() else {
            return Ok(());
        };
        if self.size == 0 {
            self.rolling_based_timestamp = Some(first.max_timestamp);
        }
        let mut slices: Vec<IoSlice<'_>> = Vec::with_capacity(batches.len() * 2);
        for batch in batches {
            slices.push(IoSlice::new(&batch.header.0));
            slices.push(IoSlice::new(batch.records));
        }
        if let Err(source) = write_all_vectored(&self.log, &mut slices) {
            // Leave no partial batch behind: cut back to the last whole one.
            let _ = self.log.set_len(self.size);
            let _ = (&*self.log).seek(SeekFrom::Start(self.size));
            return Err(LogError::WriteSegment {
                path: self.log_path(),
                source,
            });
        }
        let mut position = self.size;
        for batch in batches {
            self.index_batch(batch.last_offset, batch.max_timestamp, position);
            position += batch.size_bytes();
            self.bytes_since_last_index_entry += batch.size_bytes();
        }
        self.size = position;
        Ok(())
    }

    fn index_batch(&mut self, last_offset: i64, max_timestamp: i64, position: u64) {
        if self.max_timestamp.is_none_or(|(ts, _)| max_timestamp > ts) {
            self.max_timestamp = Some((max_timestamp, last_offset));
        }
        // A full index takes no more entries: an append of many batches or a
        // recovery under a smaller `segment.index.bytes` may fill it, and
        // lookups stay correct (they scan further). The next append rolls.
        if self.bytes_since_last_index_entry > self.index_interval_bytes
            && !self.offset_index.is_full()
        {
            self.offset_index.append(last_offset, position as u32);
            if let Some((ts, offset)) = self.max_timestamp {
                self.time_index.maybe_append(ts, offset, false);
            }
            self.bytes_since_last_index_entry = 0;
        }
    }

    /// The first batch whose last offset is `>= offset`, from the index's
    /// nearest entry on, reading only batch headers.
    pub fn translate_offset(&self, offset: i64) -> Result<Option<BatchPosition>> {
        let (_, start) = self.offset_index.lookup(offset);
        match self.find_batch_from(offset, start as u64) {
            Err(err) if start > 0 => {
                // Opening checks the first and last entries only; one in
                // between that misses a batch start costs a scan, not a read.
                tracing::warn!(segment = %self.log_path().display(), position = start, %err, "index entry does not point at a batch; scanning the segment");
                self.find_batch_from(offset, 0)
            }
            found => found,
        }
    }

    fn find_batch_from(&self, offset: i64, mut position: u64) -> Result<Option<BatchPosition>> {
        while let Some(header) = self.header_at(position)? {
            if header.last_offset() >= offset {
                return Ok(Some(BatchPosition { header, position }));
            }
            position += header.size_bytes() as u64;
        }
        Ok(None)
    }

    fn header_at(&self, position: u64) -> Result<Option<BatchHeader>> {
        let read = read_header_at(&self.log, position, self.size).map_err(|source| {
            LogError::ReadSegment {
                path: self.log_path(),
                position,
                source,
            }
        })?;
        match read {
            None => Ok(None),
            Some(Ok(header)) => Ok(Some(header)),
            Some(Err(reason)) => Err(LogError::ReadSegment {
                path: self.log_path(),
                position,
                source: io::Error::new(io::ErrorKind::InvalidData, reason),
            }),
        }
    }

    /// A region starting at the batch that holds `offset`: at most
    /// `max_bytes` (or the whole first batch when `min_one_batch`), never past
    /// `max_position`. As in Kafka, the last batch of a region may be partial.
    pub fn read(
        &self,
        offset: i64,
        max_bytes: u64,
        max_position: u64,
        min_one_batch: bool,
    ) -> Result<Option<FileRegion>> {
        let Some(found) = self.translate_offset(offset)? else {
            return Ok(None);
        };
        let end = max_position.min(self.size);
        if found.position >= end {
            return Ok(None);
        }
        let first_batch = found.header.size_bytes() as u64;
        let max_bytes = if min_one_batch {
            max_bytes.max(first_batch)
        } else {
            max_bytes
        };
        Ok(Some(FileRegion {
            file: Arc::clone(&self.log),
            position: found.position,
            length: (end - found.position).min(max_bytes),
        }))
    }

    /// The first record at or after `starting_offset` whose timestamp is
    /// `>= timestamp`, as (offset, timestamp).
    pub fn find_offset_by_timestamp(
        &self,
        timestamp: i64,
        starting_offset: i64,
    ) -> Result<Option<(i64, i64)>> {
        let from_index = self
            .time_index
            .lookup(timestamp)
            .map_or(self.base_offset, |(_, offset)| offset);
        let start_offset = from_index.max(starting_offset);
        let Some(start) = self.translate_offset(start_offset)? else {
            return Ok(None);
        };
        let mut found = None;
        let mut decode_error = None;
        let end = self.scan(start.position, |header, _, bytes| {
            if header.max_timestamp < timestamp || header.last_offset() < starting_offset {
                return true;
            }
            match BatchRecords::decode(bytes) {
                Ok(records) => {
                    found = records
                        .records
                        .iter()
                        .map(|r| (records.offset(r), records.timestamp(r)))
                        .find(|(o, t)| *o >= starting_offset && *t >= timestamp);
                    found.is_none()
                }
                Err(err) => {
                    decode_error = Some(err);
                    false
                }
            }
        })?;
        if let Some(err) = decode_error {
            return Err(err.into());
        }
        if let ScanEnd::Invalid { position, reason } = end {
            tracing::warn!(segment = %self.log_path().display(), position, %reason, "invalid batch during timestamp lookup");
        }
        Ok(found)
    }

    /// Visits the valid batches from `position` to the end of the segment.
    pub(crate) fn scan(
        &self,
        position: u64,
        visit: impl FnMut(&BatchHeader, u64, &[u8]) -> bool,
    ) -> Result<ScanEnd> {
        scan_batches(&self.log, position, self.size, visit).map_err(|source| {
            LogError::ReadSegment {
                path: self.log_path(),
                position,
                source,
            }
        })
    }

    /// Offset after the last batch, or the base offset for an empty segment.
    pub fn read_next_offset(&self) -> Result<i64> {
        let mut position = self.offset_index.last_entry().map_or(0, |(_, p)| p as u64);
        let mut next = self.base_offset;
        while let Some(header) = self.header_at(position)? {
            next = header.next_offset();
            position += header.size_bytes() as u64;
        }
        Ok(next)
    }

    /// Rebuilds both indexes and the max timestamp from the batches, and cuts
    /// the file at the first torn or invalid batch. Returns the bytes cut.
    pub fn recover(&mut self, config: &LogConfig) -> Result<u64> {
        self.index_missing = false;
        self.offset_index.reset();
        self.time_index.reset();
        self.resize_indexes(config.segment_index_bytes)?;
        self.max_timestamp = None;
        self.rolling_based_timestamp = None;
        self.bytes_since_last_index_entry = 0;
        let mut valid_end = 0u64;
        let mut first_max_timestamp = None;
        let mut visited: Vec<(i64, i64, u64, u64)> = Vec::new();
        let mut expected_base = self.base_offset;
        let mut offsets_went_back = None;
        let mut end = self.scan(0, |header, position, _| {
            if header.base_offset < expected_base || !self.can_hold_offset(header.last_offset()) {
                offsets_went_back = Some((position, header.base_offset, expected_base));
                return false;
            }
            expected_base = header.next_offset();
            first_max_timestamp.get_or_insert(header.max_timestamp);
            visited.push((
                header.last_offset(),
                header.max_timestamp,
                position,
                header.size_bytes() as u64,
            ));
            valid_end = position + header.size_bytes() as u64;
            true
        })?;
        if let Some((position, base_offset, expected)) = offsets_went_back {
            end = ScanEnd::Invalid {
                position,
                reason: crate::batch::BatchError::OffsetOutOfOrder {
                    base_offset,
                    expected,
                },
            };
        }
        for (last_offset, max_timestamp, position, size) in visited {
            self.index_batch(last_offset, max_timestamp, position);
            self.bytes_since_last_index_entry += size;
        }
        self.rolling_based_timestamp = first_max_timestamp;
        let cut = self.size - valid_end;
        if let ScanEnd::Invalid { position, reason } = end {
            tracing::warn!(
                segment = %self.log_path().display(),
                position,
                %reason,
                bytes_cut = cut,
                "recovery found a torn or invalid batch; cutting the segment there"
            );
            self.set_log_size(valid_end)?;
        }
        Ok(cut)
    }

    /// Checks the indexes read from disk against the log; any problem is
    /// logged and the indexes are rebuilt with [`Segment::recover`].
    pub fn check_indexes(&mut self, config: &LogConfig) -> Result<bool> {
        if let Some(reason) = self.index_problem() {
            tracing::warn!(segment = %self.log_path().display(), %reason, "rebuilding a corrupt or missing index");
            self.recover(config)?;
            return Ok(false);
        }
        Ok(true)
    }

    /// Why the indexes on disk cannot be trusted, if they cannot. Every
    /// entry is checked for order and bounds; the last offset index entry
    /// must point at a batch start (reads and the end-of-log scan begin
    /// there), and time index offsets must lie inside the segment's data.
    fn index_problem(&self) -> Option<String> {
        if self.index_missing && self.size > 0 {
            return Some("index file missing".into());
        }
        if let Err(e) = self.offset_index.sanity_check(self.size) {
            return Some(e.to_string());
        }
        let entries = self.offset_index.entries();
        for n in [0, entries.saturating_sub(1)]
            .into_iter()
            .filter(|n| *n < entries)
        {
            let (offset, position) = self.offset_index.entry(n);
            match self.header_at(position as u64) {
                Ok(Some(header))
                    if header.base_offset <= offset && header.base_offset >= self.base_offset => {}
                _ => {
                    return Some(format!(
                        "index entry {n} ({offset}, {position}) does not point at a batch start"
                    ));
                }
            }
        }
        let next_offset = match self.read_next_offset() {
            Ok(next) => next,
            Err(e) => return Some(e.to_string()),
        };
        self.time_index
            .sanity_check(next_offset - 1)
            .err()
            .map(|e| e.to_string())
    }

    /// Removes every batch whose last offset is `>= offset`: the batch that
    /// holds `offset` goes whole. Returns the bytes removed.
    pub fn truncate_to(&mut self, offset: i64) -> Result<u64> {
        let Some(found) = self.translate_offset(offset)? else {
            return Ok(0);
        };
        let cut = self.size - found.position;
        self.offset_index.truncate_to(found.header.base_offset);
        self.time_index.truncate_to(found.header.base_offset);
        self.set_log_size(found.position)?;
        self.bytes_since_last_index_entry = 0;
        if self.size == 0 {
            self.rolling_based_timestamp = None;
        }
        // The last time index entry may lag the real max; rescan the tail.
        self.max_timestamp = self.time_index.last_entry();
        let from = self.offset_index.last_entry().map_or(0, |(_, p)| p as u64);
        let mut max = self.max_timestamp;
        self.scan(from, |header, _, _| {
            if max.is_none_or(|(ts, _)| header.max_timestamp > ts) {
                max = Some((header.max_timestamp, header.last_offset()));
            }
            true
        })?;
        self.max_timestamp = max;
        Ok(cut)
    }

    fn set_log_size(&mut self, size: u64) -> Result<()> {
        let err = |source| LogError::WriteSegment {
            path: self.log_path(),
            source,
        };
        self.log.set_len(size).map_err(err)?;
        (&*self.log).seek(SeekFrom::Start(size)).map_err(err)?;
        self.size = size;
        Ok(())
    }

    fn resize_indexes(&mut self, bytes: usize) -> Result<()> {
        let path = self.log_path();
        let err = |source| LogError::WriteSegment { path, source };
        self.offset_index
            .file_mut()
            .resize(bytes)
            .and_then(|()| self.time_index.file_mut().resize(bytes))
            .map_err(err)
    }

    /// Makes the segment the one appends go to: indexes preallocated again.
    pub(crate) fn make_active(&mut self, config: &LogConfig) -> Result<()> {
        self.resize_indexes(config.segment_index_bytes)
    }

    /// The segment stops taking appends (roll or close): the time index gets
    /// the max timestamp as its last entry and both indexes are trimmed.
    pub(crate) fn make_inactive(&mut self) -> Result<()> {
        if let Some((ts, offset)) = self.max_timestamp {
            self.time_index.maybe_append(ts, offset, true);
        }
        let path = self.log_path();
        let err = |source| LogError::WriteSegment { path, source };
        self.offset_index
            .file_mut()
            .trim()
            .and_then(|()| self.time_index.file_mut().trim())
            .map_err(err)
    }

    /// fsyncs the log file and the indexes' maps.
    pub fn flush(&self) -> Result<()> {
        let err = |source| LogError::Flush {
            path: self.log_path(),
            source,
        };
        self.log.sync_data().map_err(err)?;
        self.offset_index.file().flush().map_err(err)?;
        self.time_index.file().flush().map_err(err)
    }

    /// Renames the three files, adding `suffix` (`.deleted`, `.swap`) or, with
    /// an empty suffix, removing one: the segment's files must then be named
    /// `<base><.log|.index|.timeindex><from_suffix>`.
    pub(crate) fn rename_files(&mut self, from_suffix: &str, to_suffix: &str) -> Result<()> {
        let rename = |suffix: &str| -> Result<()> {
            let from = file_path(
                &self.dir,
                self.base_offset,
                &format!("{suffix}{from_suffix}"),
            );
            let to = file_path(&self.dir, self.base_offset, &format!("{suffix}{to_suffix}"));
            std::fs::rename(&from, &to).map_err(|source| LogError::Rename { from, to, source })
        };
        rename(LOG_SUFFIX)?;
        rename(INDEX_SUFFIX)?;
        rename(TIME_INDEX_SUFFIX)
    }

    /// Paths of the three files with `suffix` added to each name.
    pub(crate) fn paths_with_suffix(&self, suffix: &str) -> [PathBuf; 3] {
        [LOG_SUFFIX, INDEX_SUFFIX, TIME_INDEX_SUFFIX]
            .map(|kind| file_path(&self.dir, self.base_offset, &format!("{kind}{suffix}")))
    }
}

fn write_all_vectored(mut file: &File, mut slices: &mut [IoSlice<'_>]) -> io::Result<()> {
    while !slices.is_empty() {
        match file.write_vectored(slices) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => IoSlice::advance_slices(&mut slices, n),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}
