//! The quorum's log on disk: `runnel-raft`'s [`ReplicatedLog`] over
//! `__cluster_metadata-0`'s partition log (`runnel-log`, Kafka's segment
//! format) and Kafka's snapshot files beside it.
//!
//! - Entries are record batches ([`crate::entry_batch`]); they are appended
//!   with their offsets and epochs kept (`append_as_follower`, also for the
//!   leader: the core gives the offsets), so the log's leader epoch cache
//!   (`leader-epoch-checkpoint`) answers where an epoch ends.
//! - Appends reach the page cache; [`DiskLog::flush`] makes them durable,
//!   as the core's `FlushLog` effect asks.
//! - A snapshot is a file `<20-digit end offset>-<10-digit epoch>.checkpoint`
//!   in the partition dir, as Kafka names them; a fetched one is written to
//!   `.checkpoint.part` and renamed when complete, then the log starts
//!   at its end offset.

use std::fs::File;
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use runnel_log::PartitionLog;
use runnel_protocol::batch::Batches;
use runnel_raft::{Entry, Epoch, LogError, NodeId, OffsetAndEpoch, ReplicatedLog, SnapshotChunk};
use thiserror::Error;

use crate::entry_batch::{EntryBatchError, decode_entries, encode_entries};

/// The most bytes one read of entries takes.
const MAX_READ_BYTES: u64 = 1 << 20;
const SNAPSHOT_SUFFIX: &str = ".checkpoint";
const PART_SUFFIX: &str = ".checkpoint.part";

#[derive(Debug, Error)]
pub enum DiskLogError {
    #[error("the metadata log failed")]
    Log(#[source] runnel_log::LogError),
    #[error("the entries can't be written as batches")]
    Encode(#[source] EntryBatchError),
    #[error("snapshot file {path}")]
    Snapshot {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("snapshot chunk at position {position}, but {written} bytes are written")]
    SnapshotGap { position: u64, written: u64 },
}

/// A snapshot being fetched.
#[derive(Debug)]
struct PendingSnapshot {
    id: OffsetAndEpoch,
    file: File,
    written: u64,
}

/// The quorum's log: see the module doc.
#[derive(Debug)]
pub struct DiskLog {
    log: PartitionLog,
    /// The static voters, written into leader change batches.
    voters: Vec<NodeId>,
    snapshot: Option<OffsetAndEpoch>,
    pending: Option<PendingSnapshot>,
}

impl DiskLog {
    /// The quorum's log over `log`, with the latest snapshot in its dir.
    pub fn new(log: PartitionLog, voters: Vec<NodeId>) -> Result<Self, DiskLogError> {
        let snapshot = latest_snapshot(log.dir())?;
        Ok(Self {
            log,
            voters,
            snapshot,
            pending: None,
        })
    }

    /// Makes every append durable.
    pub fn flush(&mut self) -> Result<(), DiskLogError> {
        self.log.flush().map_err(DiskLogError::Log)
    }

    pub fn partition_log(&self) -> &PartitionLog {
        &self.log
    }

    fn snapshot_path(&self, id: OffsetAndEpoch, suffix: &str) -> PathBuf {
        self.log
            .dir()
            .join(format!("{:020}-{:010}{suffix}", id.offset, id.epoch))
    }

    /// The whole batches one read of the partition log returns from
    /// `from`, as entries; none if the log can't be read there.
    fn read_entries(&self, from: u64) -> Vec<Entry> {
        let Ok(read) = self.log.read(from as i64, MAX_READ_BYTES, None, true) else {
            return Vec::new();
        };
        let Some(bytes) = read.region.and_then(|region| region.to_vec().ok()) else {
            return Vec::new();
        };
        // Whole batches only: a read may end inside one.
        let mut whole = 0;
        for batch in Batches::new(&bytes) {
            let Ok((_, batch)) = batch else { break };
            whole += batch.len();
        }
        decode_entries(&Bytes::from(bytes).slice(..whole)).unwrap_or_default()
    }

    fn write_chunk(
        &mut self,
        snapshot_id: OffsetAndEpoch,
        position: u64,
        bytes: &[u8],
        complete: bool,
    ) -> Result<(), DiskLogError> {
        let part = self.snapshot_path(snapshot_id, PART_SUFFIX);
        let io = |source| DiskLogError::Snapshot {
            path: part.clone(),
            source,
        };
        if position == 0 || self.pending.as_ref().map(|p| p.id) != Some(snapshot_id) {
            let file = File::create(&part).map_err(io)?;
            self.pending = Some(PendingSnapshot {
                id: snapshot_id,
                file,
                written: 0,
            });
        }
        let Some(pending) = self.pending.as_mut() else {
            return Ok(());
        };
        if pending.written != position {
            return Err(DiskLogError::SnapshotGap {
                position,
                written: pending.written,
            });
        }
        pending.file.write_all(bytes).map_err(io)?;
        pending.written += bytes.len() as u64;
        if !complete {
            return Ok(());
        }
        pending.file.sync_all().map_err(io)?;
        self.pending = None;
        let done = self.snapshot_path(snapshot_id, SNAPSHOT_SUFFIX);
        std::fs::rename(&part, &done).map_err(io)?;
        let offset = i64::try_from(snapshot_id.offset).unwrap_or(i64::MAX);
        self.log
            .truncate_fully_and_start_at(offset, now_ms())
            .map_err(DiskLogError::Log)?;
        // Older snapshots describe less: only the latest is kept.
        if let Some(old) = self.snapshot.replace(snapshot_id)
            && old != snapshot_id
        {
            let _ = std::fs::remove_file(self.snapshot_path(old, SNAPSHOT_SUFFIX));
        }
        Ok(())
    }
}

impl ReplicatedLog for DiskLog {
    fn log_start_offset(&self) -> u64 {
        self.log.log_start_offset().max(0) as u64
    }

    fn end_offset(&self) -> u64 {
        self.log.log_end_offset().max(0) as u64
    }

    fn last_fetched_epoch(&self) -> Epoch {
        match self.log.leader_epochs().latest() {
            Some(latest) if self.end_offset() > self.log_start_offset() => {
                latest.epoch.max(0) as Epoch
            }
            _ => self.snapshot.map_or(0, |id| id.epoch),
        }
    }

    fn end_offset_for_epoch(&self, epoch: Epoch) -> Option<OffsetAndEpoch> {
        let epochs = self.log.leader_epochs().entries();
        let has_entries = self.end_offset() > self.log_start_offset();
        if has_entries
            && epochs
                .first()
                .is_some_and(|e| e.epoch.max(0) as Epoch <= epoch)
        {
            let latest = epochs.last()?;
            if latest.epoch.max(0) as Epoch <= epoch {
                return Some(OffsetAndEpoch::new(
                    self.end_offset(),
                    latest.epoch as Epoch,
                ));
            }
            let requested = i32::try_from(epoch).unwrap_or(i32::MAX);
            let (found, end) = self.log.end_offset_for_epoch(requested)?;
            return Some(OffsetAndEpoch::new(
                end.max(0) as u64,
                found.max(0) as Epoch,
            ));
        }
        match self.snapshot {
            Some(id) if id.epoch <= epoch => {
                Some(OffsetAndEpoch::new(self.log_start_offset(), id.epoch))
            }
            Some(_) => None,
            None => Some(OffsetAndEpoch::new(self.log_start_offset(), 0)),
        }
    }

    fn read(&self, from: u64, max_entries: usize) -> Vec<Entry> {
        let mut entries = Vec::new();
        let mut from = from;
        if from < self.log_start_offset() {
            return entries;
        }
        // A read stops at a segment's end: read on until enough entries.
        while entries.len() < max_entries && from < self.end_offset() {
            let read = self.read_entries(from);
            let Some(last) = read.last() else { break };
            from = last.next_offset();
            entries.extend(read);
        }
        entries.truncate(max_entries);
        entries
    }

    fn append(&mut self, entries: &[Entry]) -> Result<(), LogError> {
        if entries.is_empty() {
            return Ok(());
        }
        let batches = encode_entries(entries, &self.voters).map_err(DiskLogError::Encode)?;
        self.log
            .append_as_follower(&batches, now_ms())
            .map_err(DiskLogError::Log)?;
        Ok(())
    }

    fn truncate_to(&mut self, offset: u64) -> Result<(), LogError> {
        let offset = i64::try_from(offset).unwrap_or(i64::MAX);
        self.log
            .truncate_to(offset, now_ms())
            .map_err(DiskLogError::Log)?;
        Ok(())
    }

    fn latest_snapshot_id(&self) -> Option<OffsetAndEpoch> {
        self.snapshot
    }

    fn read_snapshot(
        &self,
        snapshot_id: OffsetAndEpoch,
        position: u64,
        max_bytes: usize,
    ) -> Option<SnapshotChunk> {
        if self.snapshot != Some(snapshot_id) {
            return None;
        }
        let file = File::open(self.snapshot_path(snapshot_id, SNAPSHOT_SUFFIX)).ok()?;
        let size = file.metadata().ok()?.len();
        let start = position.min(size);
        let length = (size - start).min(max_bytes as u64) as usize;
        let mut bytes = vec![0; length];
        file.read_exact_at(&mut bytes, start).ok()?;
        Some(SnapshotChunk {
            size,
            bytes: Bytes::from(bytes),
        })
    }

    fn write_snapshot_chunk(
        &mut self,
        snapshot_id: OffsetAndEpoch,
        position: u64,
        bytes: &[u8],
        complete: bool,
    ) -> Result<(), LogError> {
        Ok(self.write_chunk(snapshot_id, position, bytes, complete)?)
    }
}

/// The newest complete snapshot in `dir`, by end offset then epoch.
fn latest_snapshot(dir: &Path) -> Result<Option<OffsetAndEpoch>, DiskLogError> {
    let listing = std::fs::read_dir(dir).map_err(|source| DiskLogError::Snapshot {
        path: dir.to_path_buf(),
        source,
    })?;
    let mut latest = None;
    for entry in listing.flatten() {
        let name = entry.file_name();
        let Some(stem) = name.to_str().and_then(|n| n.strip_suffix(SNAPSHOT_SUFFIX)) else {
            continue;
        };
        let Some((offset, epoch)) = stem.split_once('-') else {
            continue;
        };
        let (Ok(offset), Ok(epoch)) = (offset.parse::<u64>(), epoch.parse::<Epoch>()) else {
            continue;
        };
        let id = OffsetAndEpoch::new(offset, epoch);
        if latest.is_none_or(|l: OffsetAndEpoch| (id.offset, id.epoch) > (l.offset, l.epoch)) {
            latest = Some(id);
        }
    }
    Ok(latest)
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}
