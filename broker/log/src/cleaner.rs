//! Compaction for `cleanup.policy=compact`, after Kafka's `LogCleaner`,
//! simplified: one pass over one log, run by the caller.
//!
//! The pass stays off the append path: [`Snapshot::take`] copies, under the
//! log's lock, the handles and sizes of its segments (cheap); [`prepare`]
//! reads them and writes the cleaned output with no lock held (closed
//! segments never change, and the active one is read only up to its size at
//! the snapshot); [`install`] takes the lock again for the renames, and
//! skips any group whose inputs left the log meanwhile (retention,
//! truncation). [`clean`] chains the three for callers that own the log.
//!
//! Algorithm:
//!
//! 1. Build a map from each key (its full bytes, so no hash collision can
//!    drop a record) to its latest offset, over every segment of the log,
//!    the active one included. Control batches are not in the map.
//! 2. Split the closed segments (all but the active one) into runs of
//!    consecutive segments whose summed sizes fit `segment.bytes` and whose
//!    offsets fit an `i32` relative to the run's first base offset.
//! 3. For each run, write one output segment with the first input's base
//!    offset. A record is kept when its offset is the latest for its key, or
//!    it has no key. A latest tombstone is kept until its segment's largest
//!    timestamp is more than `delete.retention.ms` old. Control batches are
//!    kept as they are. A batch keeping all its records is copied byte for
//!    byte, one keeping some is rewritten with the same base offset, last
//!    offset delta, producer fields and codec, one keeping none is dropped.
//!    Offsets are never reassigned. A lone segment that would lose nothing
//!    is left alone.
//!
//! Only the output `.log` is written; its indexes are rebuilt when it is
//! opened. The renames go in an order that lets `load.rs` finish or undo a
//! cleaning cut short by a crash at any point:
//!
//! 1. Write and fsync `<base>.log.cleaned`. A crash leaves a `.cleaned`
//!    file, deleted at load; the originals are intact.
//! 2. Rename it `<base>.log.swap`, fsync the dir: the commit point. From
//!    here a load deletes the originals whose base offset is in the swap's
//!    offset range and renames the swap `<base>.log`.
//! 3. Take the inputs out of the log, rename their files `.deleted`, fsync
//!    the dir, so no input can outlive this step once the next one is done.
//! 4. Rename the swap `<base>.log`, fsync the dir, open it with rebuilt
//!    indexes (a crash before that leaves a `.log` whose indexes the load
//!    rebuilds) and put it in the log.
//!
//! After a crash in step 2 or 3, an input whose records were all dropped
//! and that comes after every kept record is past the swap's range and
//! survives: it holds only older copies of keys, which the next pass drops.
//! An error after step 2 leaves the log in memory without the inputs already
//! renamed: the caller should take the log offline; loading it again
//! completes the swap.

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::batch::BatchHeader;
use crate::config::LogConfig;
use crate::error::{LogError, Result};
use crate::log::{PartitionLog, sync_dir};
use crate::records::BatchRecords;
use crate::scan::{ScanEnd, scan_batches};
use crate::segment::{CLEANED_SUFFIX, LOG_SUFFIX, SWAP_SUFFIX, Segment, file_path};

/// What one [`clean`] did. The counts cover the segments that were replaced.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CleanStats {
    /// Closed segments replaced by cleaned ones.
    pub segments_cleaned: usize,
    /// Cleaned segments written in their place.
    pub segments_written: usize,
    pub records_kept: u64,
    pub records_removed: u64,
    /// Size of the replaced segments.
    pub bytes_before: u64,
    /// Size of the cleaned segments.
    pub bytes_after: u64,
}

impl CleanStats {
    pub fn add(&mut self, other: &Self) {
        self.segments_cleaned += other.segments_cleaned;
        self.segments_written += other.segments_written;
        self.records_kept += other.records_kept;
        self.records_removed += other.records_removed;
        self.bytes_before += other.bytes_before;
        self.bytes_after += other.bytes_after;
    }
}

/// Compacts the closed segments of `log`, keeping the latest record of each
/// key. Does nothing unless the log's `cleanup.policy` includes `compact`.
pub fn clean(log: &mut PartitionLog, now_ms: i64) -> Result<CleanStats> {
    let prepared = prepare(&Snapshot::take(log), now_ms)?;
    install(log, prepared, now_ms)
}

/// One segment as the cleaner reads it: its open file and its size when the
/// snapshot was taken.
#[derive(Debug, Clone)]
struct SegmentView {
    base_offset: i64,
    file: Arc<File>,
    size: u64,
    largest_timestamp: i64,
    path: PathBuf,
}

/// What the cleaner needs of a log, taken under its lock and used without.
#[derive(Debug, Clone)]
pub struct Snapshot {
    dir: PathBuf,
    config: LogConfig,
    /// Every segment, the active one last.
    segments: Vec<SegmentView>,
}

impl Snapshot {
    pub fn take(log: &PartitionLog) -> Self {
        Self {
            dir: log.dir.clone(),
            config: log.config.clone(),
            segments: log
                .segments
                .values()
                .map(|s| SegmentView {
                    base_offset: s.base_offset(),
                    file: Arc::clone(s.log_file()),
                    size: s.size(),
                    largest_timestamp: s.largest_timestamp(),
                    path: s.log_path(),
                })
                .collect(),
        }
    }
}

/// Cleaned segments written as `.cleaned` files, waiting for [`install`].
#[derive(Debug)]
pub struct Prepared {
    dir: PathBuf,
    groups: Vec<(Group, CleanStats)>,
}

/// Builds the key map and writes the cleaned output of every group that is
/// worth it. Holds no lock: runs on the cleaner's own thread.
pub fn prepare(snapshot: &Snapshot, now_ms: i64) -> Result<Prepared> {
    let mut prepared = Prepared {
        dir: snapshot.dir.clone(),
        groups: Vec::new(),
    };
    if !snapshot.config.cleanup_policy.compact {
        return Ok(prepared);
    }
    let groups = plan(snapshot, now_ms);
    if groups.is_empty() {
        return Ok(prepared);
    }
    let map = OffsetMap::build(snapshot)?;
    for group in groups {
        if let Some(cleaned) = write_cleaned(snapshot, &group, &map)? {
            prepared.groups.push((group, cleaned));
        }
    }
    Ok(prepared)
}

/// Swaps the prepared segments into `log`. A group whose inputs are no
/// longer the log's segments (retention or truncation ran meanwhile) is
/// dropped with its output.
pub fn install(log: &mut PartitionLog, prepared: Prepared, now_ms: i64) -> Result<CleanStats> {
    let mut stats = CleanStats::default();
    for (group, cleaned) in prepared.groups {
        let unchanged = group.segments.iter().all(|input| {
            log.segments
                .get(&input.base_offset)
                .is_some_and(|s| Arc::ptr_eq(s.log_file(), &input.file))
        });
        if !unchanged || log.dir != prepared.dir {
            let path = suffixed_log_path(&prepared.dir, group.base_offset(), CLEANED_SUFFIX);
            tracing::info!(path = %path.display(), "dropping a cleaned segment whose inputs changed");
            remove_quietly(&path);
            continue;
        }
        commit(&log.dir, &group)?;
        swap_in(log, &group, now_ms)?;
        stats.add(&cleaned);
    }
    if stats.segments_cleaned > 0 {
        tracing::info!(dir = %log.dir.display(), ?stats, "compacted log");
    }
    Ok(stats)
}

/// Each key's latest offset in the log.
#[derive(Debug, Default)]
struct OffsetMap {
    latest: HashMap<Vec<u8>, i64>,
}

impl OffsetMap {
    fn build(snapshot: &Snapshot) -> Result<Self> {
        let mut map = Self::default();
        for segment in &snapshot.segments {
            visit_batches(segment, |header, bytes| {
                if header.is_control() {
                    return Ok(());
                }
                let batch = BatchRecords::decode(bytes)?;
                for record in &batch.records {
                    if let Some(key) = batch.key(record) {
                        map.record(key, batch.offset(record));
                    }
                }
                Ok(())
            })?;
        }
        Ok(map)
    }

    fn record(&mut self, key: &[u8], offset: i64) {
        match self.latest.get_mut(key) {
            Some(latest) => *latest = (*latest).max(offset),
            None => {
                self.latest.insert(key.to_vec(), offset);
            }
        }
    }

    /// A key missing from the map cannot have a later record: keep it.
    fn is_latest(&self, key: &[u8], offset: i64) -> bool {
        self.latest.get(key).is_none_or(|latest| offset >= *latest)
    }
}

/// One input of a group and whether its latest tombstones stay.
#[derive(Debug, Clone)]
struct GroupInput {
    base_offset: i64,
    file: Arc<File>,
    keep_tombstones: bool,
}

/// Consecutive closed segments cleaned into one output segment.
#[derive(Debug, Clone)]
struct Group {
    segments: Vec<GroupInput>,
    input_bytes: u64,
}

impl Group {
    fn base_offset(&self) -> i64 {
        self.segments.first().map_or(0, |s| s.base_offset)
    }
}

fn plan(snapshot: &Snapshot, now_ms: i64) -> Vec<Group> {
    let Some((active, closed)) = snapshot.segments.split_last() else {
        return Vec::new();
    };
    let horizon_ms = now_ms.saturating_sub(snapshot.config.delete_retention_ms);
    let sizes: Vec<(i64, u64)> = closed.iter().map(|s| (s.base_offset, s.size)).collect();
    group_segments(&sizes, active.base_offset, snapshot.config.segment_bytes)
        .into_iter()
        .map(|range| Group {
            segments: closed[range.clone()]
                .iter()
                .map(|s| GroupInput {
                    base_offset: s.base_offset,
                    file: Arc::clone(&s.file),
                    keep_tombstones: s.largest_timestamp >= horizon_ms,
                })
                .collect(),
            input_bytes: sizes[range].iter().map(|(_, size)| size).sum(),
        })
        .collect()
}

/// Splits segments given as (base offset, size) into runs that fit one
/// output segment: at most `max_bytes` in all (a larger segment goes alone)
/// and every offset within `i32::MAX` of the run's base. `end_offset` is the
/// base offset of the segment after the last one.
fn group_segments(segments: &[(i64, u64)], end_offset: i64, max_bytes: u64) -> Vec<Range<usize>> {
    let next_base = |i: usize| segments.get(i + 1).map_or(end_offset, |(base, _)| *base);
    let mut groups = Vec::new();
    let mut start = 0;
    while start < segments.len() {
        let (group_base, mut bytes) = segments[start];
        let mut end = start + 1;
        while let Some((_, size)) = segments.get(end) {
            let fits_bytes = bytes.saturating_add(*size) <= max_bytes;
            let fits_offsets = next_base(end) - 1 - group_base <= i32::MAX as i64;
            if !(fits_bytes && fits_offsets) {
                break;
            }
            bytes += size;
            end += 1;
        }
        groups.push(start..end);
        start = end;
    }
    groups
}

fn suffixed_log_path(dir: &Path, base_offset: i64, suffix: &str) -> PathBuf {
    file_path(dir, base_offset, &format!("{LOG_SUFFIX}{suffix}"))
}

fn remove_quietly(path: &Path) {
    if let Err(err) = std::fs::remove_file(path) {
        // The loader deletes `.cleaned` files too; this is only tidying.
        tracing::warn!(path = %path.display(), %err, "cannot remove an unused cleaner output");
    }
}

/// Step 1: writes and fsyncs the cleaned output of `group`, returning its
/// stats. `None` when the group is one segment that would lose nothing.
fn write_cleaned(
    snapshot: &Snapshot,
    group: &Group,
    map: &OffsetMap,
) -> Result<Option<CleanStats>> {
    let path = suffixed_log_path(&snapshot.dir, group.base_offset(), CLEANED_SUFFIX);
    let result = write_group(snapshot, group, map, &path);
    let worth_it = matches!(&result, Ok(c) if c.records_removed > 0 || group.segments.len() > 1);
    if !worth_it {
        remove_quietly(&path);
    }
    result.map(|cleaned| worth_it.then_some(cleaned))
}

fn write_group(
    snapshot: &Snapshot,
    group: &Group,
    map: &OffsetMap,
    path: &Path,
) -> Result<CleanStats> {
    let write_err = |source| LogError::WriteSegment {
        path: path.to_path_buf(),
        source,
    };
    let file = File::create(path).map_err(|source| LogError::OpenSegment {
        path: path.to_path_buf(),
        source,
    })?;
    let mut out = BufWriter::new(file);
    let mut cleaned = CleanStats {
        segments_cleaned: group.segments.len(),
        segments_written: 1,
        bytes_before: group.input_bytes,
        ..CleanStats::default()
    };
    for input in &group.segments {
        let Some(segment) = snapshot
            .segments
            .iter()
            .find(|s| s.base_offset == input.base_offset)
        else {
            continue;
        };
        visit_batches(segment, |header, bytes| {
            let (output, kept, removed) = filter_batch(header, bytes, map, input.keep_tombstones)?;
            cleaned.records_kept += kept;
            cleaned.records_removed += removed;
            let output = match &output {
                Output::Whole => bytes,
                Output::Rewritten(rewritten) => rewritten.as_slice(),
                Output::Dropped => return Ok(()),
            };
            out.write_all(output).map_err(write_err)?;
            cleaned.bytes_after += output.len() as u64;
            Ok(())
        })?;
    }
    let file: File = out
        .into_inner()
        .map_err(|err| write_err(err.into_error()))?;
    file.sync_all().map_err(|source| LogError::Flush {
        path: path.to_path_buf(),
        source,
    })?;
    Ok(cleaned)
}

/// What becomes of one batch.
#[derive(Debug)]
enum Output {
    Whole,
    Rewritten(Vec<u8>),
    Dropped,
}

/// The batch's output and its records kept and removed.
fn filter_batch(
    header: &BatchHeader,
    bytes: &[u8],
    map: &OffsetMap,
    keep_tombstones: bool,
) -> Result<(Output, u64, u64)> {
    if header.is_control() {
        return Ok((Output::Whole, header.records_count.max(0) as u64, 0));
    }
    let batch = BatchRecords::decode(bytes)?;
    let kept: Vec<_> = batch
        .records
        .iter()
        .filter(|record| match batch.key(record) {
            None => true,
            Some(key) => {
                map.is_latest(key, batch.offset(record))
                    && (keep_tombstones || !record.is_tombstone)
            }
        })
        .collect();
    let (total, kept_count) = (batch.records.len() as u64, kept.len() as u64);
    let output = if kept_count == total {
        // Also an empty batch: it may carry producer state, as in Kafka.
        Output::Whole
    } else if kept.is_empty() {
        Output::Dropped
    } else {
        Output::Rewritten(batch.rewrite(&kept)?)
    };
    Ok((output, kept_count, total - kept_count))
}

/// Step 2: the output becomes `<base>.log.swap`, the commit point.
fn commit(dir: &Path, group: &Group) -> Result<()> {
    let from = suffixed_log_path(dir, group.base_offset(), CLEANED_SUFFIX);
    let to = suffixed_log_path(dir, group.base_offset(), SWAP_SUFFIX);
    std::fs::rename(&from, &to).map_err(|source| LogError::Rename { from, to, source })?;
    sync_dir(dir)
}

/// Steps 3 and 4: the inputs leave the log and their files are renamed
/// `.deleted`, the swap takes the first input's name, and the cleaned
/// segment joins the log with rebuilt indexes.
fn swap_in(log: &mut PartitionLog, group: &Group, now_ms: i64) -> Result<()> {
    for input in &group.segments {
        log.delete_segment(input.base_offset, now_ms)?;
    }
    sync_dir(&log.dir)?;
    let base_offset = group.base_offset();
    let from = suffixed_log_path(&log.dir, base_offset, SWAP_SUFFIX);
    let to = file_path(&log.dir, base_offset, LOG_SUFFIX);
    std::fs::rename(&from, &to).map_err(|source| LogError::Rename { from, to, source })?;
    sync_dir(&log.dir)?;
    let mut segment = Segment::open(&log.dir, base_offset, &log.config)?;
    segment.recover(&log.config)?;
    segment.make_inactive()?;
    log.segments.insert(base_offset, segment);
    Ok(())
}

/// Hands every batch of `segment` (up to its size at the snapshot) to
/// `visit`, stopping at its first error. A torn or invalid batch is an error
/// too: a closed segment holds none after loading, and cleaning past one
/// would drop what follows it.
fn visit_batches(
    segment: &SegmentView,
    mut visit: impl FnMut(&BatchHeader, &[u8]) -> Result<()>,
) -> Result<()> {
    let mut failure = None;
    let end = scan_batches(
        &segment.file,
        0,
        segment.size,
        |header, _, bytes| match visit(header, bytes) {
            Ok(()) => true,
            Err(err) => {
                failure = Some(err);
                false
            }
        },
    )
    .map_err(|source| LogError::ReadSegment {
        path: segment.path.clone(),
        position: 0,
        source,
    })?;
    if let Some(err) = failure {
        return Err(err);
    }
    match end {
        ScanEnd::Complete => Ok(()),
        ScanEnd::Invalid { position, reason } => Err(LogError::ReadSegment {
            path: segment.path.clone(),
            position,
            source: io::Error::new(io::ErrorKind::InvalidData, reason),
        }),
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use bytes::{Bytes, BytesMut};
    use kafka_protocol::records::{
        Compression as Codec, Record, RecordBatchEncoder, RecordEncodeOptions,
        TimestampType as WireTimestampType,
    };

    use super::*;
    use crate::batch::{Batches, Compression};
    use crate::builder::BatchBuilder;
    use crate::config::LogConfig;
    use crate::load::LoadState;

    const NOW: i64 = 1_700_000_000_000;

    /// Records as `offset:key`, `-` for no key, `!` after a tombstone.
    type Contents = Vec<String>;

    fn config(pairs: &[(&str, &str)]) -> LogConfig {
        let mut config = LogConfig::default();
        config.set("cleanup.policy", "compact").expect("valid");
        for (key, value) in pairs {
            config.set(key, value).expect("valid config");
        }
        config
    }

    fn open(dir: &Path, config: LogConfig, clean_shutdown: bool) -> PartitionLog {
        let state = LoadState {
            clean_shutdown,
            ..LoadState::default()
        };
        PartitionLog::open(dir, config, state, NOW).expect("open")
    }

    /// Appends one batch stamped `timestamp`, records written as in
    /// [`Contents`] without the offset: `key`, `-` (no key), `key!`.
    fn put(log: &mut PartitionLog, records: &[&str], timestamp: i64) {
        let mut builder = BatchBuilder::new(timestamp);
        for record in records {
            let (key, value) = match record.strip_suffix('!') {
                Some(key) => (key, None),
                None => (*record, Some(&b"v"[..])),
            };
            let key = (key != "-").then_some(key.as_bytes());
            builder.push(key, value, timestamp);
        }
        log.append(&builder.build(), NOW).expect("append");
    }

    /// Every batch the log serves, checked valid, with its records as
    /// (offset, key, is tombstone).
    fn read_log(log: &PartitionLog) -> (Vec<BatchHeader>, Contents) {
        let (mut headers, mut records) = (Vec::new(), Vec::new());
        let mut offset = log.log_start_offset();
        while offset < log.log_end_offset() {
            let info = log.read(offset, 1 << 20, None, true).expect("read");
            let Some(region) = info.region else { break };
            let bytes = region.to_vec().expect("region bytes");
            let before = offset;
            for batch in Batches::new(&bytes) {
                let (header, bytes) = batch.expect("valid batch");
                let batch = BatchRecords::decode(bytes).expect("decodes");
                for record in &batch.records {
                    let key = batch
                        .key(record)
                        .map_or("-".into(), String::from_utf8_lossy);
                    let tombstone = if record.is_tombstone { "!" } else { "" };
                    records.push(format!("{}:{key}{tombstone}", batch.offset(record)));
                }
                headers.push(header);
                offset = header.next_offset();
            }
            assert!(offset > before, "the read made no progress");
        }
        (headers, records)
    }

    fn contents(log: &PartitionLog) -> Contents {
        read_log(log).1
    }

    fn strings(records: &[&str]) -> Contents {
        records.iter().map(|r| r.to_string()).collect()
    }

    fn bases(log: &PartitionLog) -> Vec<i64> {
        log.segments().map(Segment::base_offset).collect()
    }

    /// Two closed segments, [0..=3] and [4..=5], and an active one at 6.
    fn sample(dir: &Path) -> PartitionLog {
        let mut log = open(dir, config(&[]), true);
        put(&mut log, &["a", "b", "a", "c"], NOW);
        log.roll(NOW).expect("roll");
        put(&mut log, &["b"], NOW);
        put(&mut log, &["d"], NOW);
        log.roll(NOW).expect("roll");
        put(&mut log, &["c"], NOW);
        log
    }

    fn sample_compacted() -> Contents {
        strings(&["2:a", "4:b", "5:d", "6:c"])
    }

    #[test]
    fn appends_go_on_while_prepared_and_changed_inputs_are_not_installed() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut log = sample(dir.path());
        let prepared = prepare(&Snapshot::take(&log), NOW).expect("prepare");
        put(&mut log, &["a"], NOW);
        let stats = install(&mut log, prepared, NOW).expect("install");
        assert_eq!(stats.segments_cleaned, 2);
        assert_eq!(
            contents(&log),
            strings(&["2:a", "4:b", "5:d", "6:c", "7:a"])
        );

        let dir = tempfile::tempdir().expect("tempdir");
        let mut log = sample(dir.path());
        let original = contents(&log);
        let prepared = prepare(&Snapshot::take(&log), NOW).expect("prepare");
        log.delete_segment(4, NOW).expect("retention took an input");
        let stats = install(&mut log, prepared, NOW).expect("install");
        assert_eq!(stats, CleanStats::default());
        assert!(!dir.path().join(format!("{:020}.log.cleaned", 0)).exists());
        assert_eq!(bases(&log), vec![0, 6]);
        assert_eq!(contents(&log)[..4], original[..4]);
    }

    #[test]
    fn the_latest_record_per_key_survives_at_its_offset() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut log = sample(dir.path());
        let size_before = log.segments().take(2).map(Segment::size).sum::<u64>();
        let stats = clean(&mut log, NOW).expect("clean");
        assert_eq!(stats.segments_cleaned, 2);
        assert_eq!(stats.segments_written, 1);
        assert_eq!((stats.records_kept, stats.records_removed), (3, 3));
        assert_eq!(stats.bytes_before, size_before);
        assert_eq!(
            stats.bytes_after,
            log.segments().next().expect("seg").size()
        );
        assert!(stats.bytes_after < stats.bytes_before);
        assert_eq!(bases(&log), vec![0, 6]);
        let (headers, records) = read_log(&log);
        assert_eq!(records, sample_compacted());
        // The rewritten batch keeps its base offset and last offset delta.
        let first = headers[0];
        assert_eq!((first.base_offset, first.last_offset()), (0, 3));
        assert_eq!(first.records_count, 1);
        assert!(!dir.path().join("00000000000000000004.log").exists());
        // A second pass finds nothing to remove and rewrites nothing.
        assert_eq!(clean(&mut log, NOW).expect("clean"), CleanStats::default());
        drop(log);
        let log = open(dir.path(), config(&[]), false);
        assert_eq!((bases(&log), log.log_end_offset()), (vec![0, 6], 7));
        assert_eq!(contents(&log), sample_compacted());
    }

    #[test]
    fn latest_tombstones_go_only_after_delete_retention_ms() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut log = open(dir.path(), config(&[("delete.retention.ms", "1000")]), true);
        put(&mut log, &["a", "a!", "b"], NOW);
        put(&mut log, &["c!", "c"], NOW);
        log.roll(NOW).expect("roll");
        clean(&mut log, NOW + 500).expect("clean");
        let fresh = strings(&["1:a!", "2:b", "4:c"]);
        assert_eq!(contents(&log), fresh);
        clean(&mut log, NOW + 1000).expect("clean");
        assert_eq!(contents(&log), fresh);
        clean(&mut log, NOW + 1001).expect("clean");
        assert_eq!(contents(&log), strings(&["2:b", "4:c"]));
    }

    #[test]
    fn the_active_segment_is_untouched() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut log = open(dir.path(), config(&[]), true);
        put(&mut log, &["a"], NOW);
        log.roll(NOW).expect("roll");
        put(&mut log, &["a"], NOW);
        put(&mut log, &["a"], NOW);
        let active_path = log.active_segment().log_path();
        let active_bytes = std::fs::read(&active_path).expect("read active");
        let stats = clean(&mut log, NOW).expect("clean");
        assert_eq!((stats.records_kept, stats.records_removed), (0, 1));
        assert_eq!(std::fs::read(&active_path).expect("read"), active_bytes);
        assert_eq!(bases(&log), vec![0, 1]);
        assert_eq!(log.segments().next().expect("seg").size(), 0);
        assert_eq!(contents(&log), strings(&["1:a", "2:a"]));
        assert_eq!(log.log_end_offset(), 3);
    }

    #[test]
    fn keyless_records_are_kept_and_delete_only_logs_are_not_cleaned() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut log = open(dir.path(), config(&[]), true);
        put(&mut log, &["-", "a", "-"], NOW);
        log.roll(NOW).expect("roll");
        put(&mut log, &["a"], NOW);
        log.roll(NOW).expect("roll");
        let mut delete_only = log.config().clone();
        delete_only.set("cleanup.policy", "delete").expect("valid");
        let compact = std::mem::replace(&mut log.config, delete_only);
        assert_eq!(clean(&mut log, NOW).expect("clean"), CleanStats::default());
        log.set_config(compact);
        clean(&mut log, NOW).expect("clean");
        assert_eq!(contents(&log), strings(&["0:-", "2:-", "3:a"]));
        assert_eq!(bases(&log), vec![0, 4]);
    }

    #[test]
    fn a_crash_at_any_step_loses_nothing_at_load() {
        // (commit the swap, rename the first input `.deleted` as step 3 does)
        for (committed, first_renamed) in [(false, false), (true, false), (true, true)] {
            let dir = tempfile::tempdir().expect("tempdir");
            let log = sample(dir.path());
            let original = contents(&log);
            let snapshot = Snapshot::take(&log);
            let group = &plan(&snapshot, NOW)[0];
            let map = OffsetMap::build(&snapshot).expect("map");
            let cleaned = write_cleaned(&snapshot, group, &map).expect("write");
            assert!(cleaned.is_some(), "worth cleaning");
            if committed {
                commit(dir.path(), group).expect("commit");
            }
            drop(log);
            let path = |name: &str| dir.path().join(format!("{:020}.log{name}", 0));
            if first_renamed {
                std::fs::rename(path(""), path(".deleted")).expect("rename");
            }
            assert!(path(if committed { ".swap" } else { ".cleaned" }).exists());
            let log = open(dir.path(), config(&[]), false);
            for leftover in [".swap", ".cleaned", ".deleted"] {
                assert!(!path(leftover).exists(), "{leftover} left");
            }
            if committed {
                assert_eq!(bases(&log), vec![0, 6]);
                assert_eq!(contents(&log), sample_compacted());
            } else {
                assert_eq!(bases(&log), vec![0, 4, 6]);
                assert_eq!(contents(&log), original);
            }
        }
    }

    #[test]
    fn compressed_batches_are_rewritten_with_their_codec() {
        for (codec, expected) in [
            (Codec::Gzip, Compression::Gzip),
            (Codec::Zstd, Compression::Zstd),
        ] {
            let dir = tempfile::tempdir().expect("tempdir");
            let mut log = open(dir.path(), config(&[]), true);
            let records: Vec<Record> = [("a", "1"), ("b", "1"), ("a", "2")]
                .iter()
                .enumerate()
                .map(|(offset, (key, value))| Record {
                    transactional: false,
                    control: false,
                    partition_leader_epoch: -1,
                    producer_id: -1,
                    producer_epoch: -1,
                    timestamp_type: WireTimestampType::Creation,
                    offset: offset as i64,
                    // One batch needs offset - sequence constant.
                    sequence: offset as i32,
                    timestamp: NOW,
                    key: Some(Bytes::from_static(key.as_bytes())),
                    value: Some(Bytes::from_static(value.as_bytes())),
                    headers: Default::default(),
                })
                .collect();
            let mut batch = BytesMut::new();
            let options = RecordEncodeOptions {
                version: 2,
                compression: codec,
            };
            RecordBatchEncoder::encode(&mut batch, records.iter(), &options).expect("encode");
            log.append(&batch, NOW).expect("append");
            log.roll(NOW).expect("roll");
            let stats = clean(&mut log, NOW).expect("clean");
            assert_eq!((stats.records_kept, stats.records_removed), (2, 1));
            let (headers, records) = read_log(&log);
            assert_eq!(records, strings(&["1:b", "2:a"]));
            assert_eq!(headers.len(), 1);
            assert_eq!(headers[0].compression(), Ok(expected));
            assert_eq!((headers[0].base_offset, headers[0].last_offset()), (0, 2));
        }
    }

    #[test]
    fn control_batches_are_kept_and_do_not_shadow_keys() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut log = open(dir.path(), config(&[]), true);
        let marker = [0u8, 0, 0, 1]; // a commit marker's key: version 0, type 1
        let shadowed = BatchBuilder::new(NOW)
            .record(Some(&marker), Some(b"user data"), NOW)
            .build();
        log.append(&shadowed, NOW).expect("append");
        let mut control = BatchBuilder::new(NOW)
            .record(Some(&marker), Some(&[0, 0, 0, 0, 0, 0]), NOW)
            .build();
        control[22] |= 0x30; // transactional, control
        let crc = crc32c::crc32c(&control[21..]);
        control[17..21].copy_from_slice(&crc.to_be_bytes());
        log.append_control(&control, NOW).expect("append");
        log.roll(NOW).expect("roll");
        let stats = clean(&mut log, NOW).expect("clean");
        assert_eq!(stats, CleanStats::default());
        let (headers, records) = read_log(&log);
        assert_eq!(records.len(), 2);
        assert!(headers[1].is_control());
    }

    #[test]
    fn groups_fit_segment_bytes_and_relative_offsets() {
        let sizes = [(0, 400), (10, 400), (20, 400), (30, 100), (40, 2000)];
        assert_eq!(group_segments(&sizes, 50, 1000), vec![0..2, 2..4, 4..5]);
        let max = i32::MAX as i64;
        let far = [(0, 1), (1, 1), (max, 1)];
        assert_eq!(group_segments(&far, max + 10, 1000), vec![0..2, 2..3]);
        assert_eq!(group_segments(&[], 0, 1000), Vec::<Range<usize>>::new());
    }

    #[test]
    fn cleaned_segments_stay_under_segment_bytes() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut log = open(dir.path(), config(&[("segment.bytes", "1024")]), true);
        for i in 0..30 {
            put(&mut log, &[&format!("k{i}{}", "x".repeat(150))], NOW);
            if i % 2 == 1 {
                log.roll(NOW).expect("roll");
            }
        }
        let segments_before = log.segments().count();
        let stats = clean(&mut log, NOW).expect("clean");
        assert_eq!(stats.records_removed, 0);
        assert!(stats.segments_written < stats.segments_cleaned);
        assert!(log.segments().count() < segments_before);
        assert!(log.segments().all(|s| s.size() <= 1024));
        let all: Contents = (0..30)
            .map(|i| format!("{i}:k{i}{}", "x".repeat(150)))
            .collect();
        assert_eq!(contents(&log), all);
    }
}
