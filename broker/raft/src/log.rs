//! [`ReplicatedLog`]: the narrow view of the local log the core needs, as
//! Kafka's `ReplicatedLog` interface. The broker implements it over
//! `__cluster_metadata-0`'s segments and snapshots; the simulation over
//! [`crate::MemoryLog`].
//!
//! Appends and truncations change the log as the page cache would: an
//! appended entry is readable at once but durable only after the driver
//! carries out [`crate::Effect::FlushLog`]. A truncation is durable when it
//! returns. Snapshots are "log start offset + snapshot id": the core never
//! reads a snapshot's contents, it only moves chunks of bytes between the
//! leader's log and a follower's.

use bytes::Bytes;

use crate::error::LogError;
use crate::types::{Entry, Epoch, OffsetAndEpoch};

/// One chunk of a snapshot read for FetchSnapshot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotChunk {
    /// The snapshot's total size in bytes.
    pub size: u64,
    pub bytes: Bytes,
}

pub trait ReplicatedLog {
    /// The first offset held as entries; offsets below are in the snapshot.
    fn log_start_offset(&self) -> u64;
    /// The offset the next append gets (synced or not).
    fn end_offset(&self) -> u64;
    /// The epoch of the last entry, else of the latest snapshot, else 0.
    fn last_fetched_epoch(&self) -> Epoch;
    /// Where `epoch` ends in this log: the largest epoch `<= epoch` this log
    /// knows, and the offset just past its last entry (the log end if it is
    /// the last epoch). `None` if every entry and the snapshot are newer.
    fn end_offset_for_epoch(&self, epoch: Epoch) -> Option<OffsetAndEpoch>;
    /// Up to `max_entries` entries from the one holding offset `from` (empty
    /// if out of range).
    fn read(&self, from: u64, max_entries: usize) -> Vec<Entry>;
    /// Appends entries that continue the log at `end_offset()`.
    fn append(&mut self, entries: &[Entry]) -> Result<(), LogError>;
    /// Removes every entry holding `offset` or an offset beyond: an entry is
    /// removed whole, as Kafka truncates whole batches, so the log may end
    /// below `offset`.
    fn truncate_to(&mut self, offset: u64) -> Result<(), LogError>;
    /// The latest complete snapshot's id.
    fn latest_snapshot_id(&self) -> Option<OffsetAndEpoch>;
    /// Up to `max_bytes` of a snapshot from `position`; `None` if there is no
    /// such snapshot.
    fn read_snapshot(
        &self,
        snapshot_id: OffsetAndEpoch,
        position: u64,
        max_bytes: usize,
    ) -> Option<SnapshotChunk>;
    /// Writes a fetched chunk of a snapshot; when `complete`, the snapshot is
    /// installed: every entry goes and the log starts at its end offset.
    fn write_snapshot_chunk(
        &mut self,
        snapshot_id: OffsetAndEpoch,
        position: u64,
        bytes: &[u8],
        complete: bool,
    ) -> Result<(), LogError>;
}
