//! [`MemoryLog`]: an in-memory [`ReplicatedLog`] that knows which of its
//! entries are synced, for the simulation, the model check and tests.
//!
//! [`MemoryLog::crash`] drops the unsynced tail, as a power loss drops what
//! the page cache had not written. A snapshot here holds every entry below
//! its end offset, encoded as below, so a test can check a snapshot's
//! contents against the committed history.
//!
//! | bytes | field                                           |
//! |-------|-------------------------------------------------|
//! | 4     | epoch (u32, big endian)                         |
//! | 1     | kind: 0 LeaderChange, 1 Data                    |
//! | 4     | LeaderChange: leader id (i32); Data: length (u32)|
//! | n     | Data: the payload                               |

use bytes::Bytes;

use crate::error::LogError;
use crate::log::{ReplicatedLog, SnapshotChunk};
use crate::types::{Entry, Epoch, OffsetAndEpoch, Payload};

#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct MemoryLog {
    log_start_offset: u64,
    /// Entries from `log_start_offset` on.
    entries: Vec<Entry>,
    /// Entries below this offset survive a crash.
    synced_end_offset: u64,
    snapshot: Option<(OffsetAndEpoch, Bytes)>,
    /// A snapshot being fetched: its id and the bytes so far.
    pending_snapshot: Option<(OffsetAndEpoch, Vec<u8>)>,
}

/// A [`MemoryLog`] refused a write the core should never have asked for.
#[derive(Debug, thiserror::Error)]
pub enum MemoryLogError {
    #[error("append at offset {offset} does not continue the log ending at {end_offset}")]
    NotContiguous { offset: u64, end_offset: u64 },
    #[error("snapshot chunk at position {position} does not continue {written} bytes")]
    SnapshotGap { position: u64, written: u64 },
}

impl MemoryLog {
    pub fn new() -> Self {
        MemoryLog::default()
    }

    /// Makes every entry durable (the driver's [`crate::Effect::FlushLog`]).
    pub fn flush(&mut self) {
        self.synced_end_offset = self.end_offset();
    }

    /// Loses the unsynced tail.
    pub fn crash(&mut self) {
        let keep = self.synced_end_offset.saturating_sub(self.log_start_offset);
        self.entries
            .truncate(usize::try_from(keep).unwrap_or(usize::MAX));
        self.pending_snapshot = None;
    }

    pub fn synced_end_offset(&self) -> u64 {
        self.synced_end_offset
    }

    pub fn entry(&self, offset: u64) -> Option<&Entry> {
        let index = offset.checked_sub(self.log_start_offset)?;
        self.entries.get(usize::try_from(index).ok()?)
    }

    pub fn entries(&self) -> &[Entry] {
        &self.entries
    }

    /// Snapshots the synced log below `offset` (a committed offset, chosen
    /// by the state machine) and drops those entries. Returns the new id, or
    /// `None` if `offset` is not past the log start or not synced.
    pub fn take_snapshot(&mut self, offset: u64) -> Option<OffsetAndEpoch> {
        if offset <= self.log_start_offset || offset > self.synced_end_offset {
            return None;
        }
        let last = self.entry(offset - 1)?.epoch;
        let mut bytes = self
            .snapshot
            .as_ref()
            .map(|(_, b)| b.to_vec())
            .unwrap_or_default();
        let count = usize::try_from(offset - self.log_start_offset).ok()?;
        for entry in self.entries.drain(..count) {
            encode_entry(&entry, &mut bytes);
        }
        let id = OffsetAndEpoch::new(offset, last);
        self.snapshot = Some((id, Bytes::from(bytes)));
        self.log_start_offset = offset;
        Some(id)
    }

    /// The entries a snapshot's bytes hold, from offset 0.
    pub fn decode_snapshot(bytes: &[u8]) -> Vec<Entry> {
        let mut entries = Vec::new();
        let mut rest = bytes;
        while rest.len() >= 9 {
            let epoch = u32::from_be_bytes([rest[0], rest[1], rest[2], rest[3]]);
            let kind = rest[4];
            let word = [rest[5], rest[6], rest[7], rest[8]];
            rest = &rest[9..];
            let payload = if kind == 0 {
                Payload::LeaderChange {
                    leader_id: i32::from_be_bytes(word),
                }
            } else {
                let len = usize::try_from(u32::from_be_bytes(word))
                    .unwrap_or(usize::MAX)
                    .min(rest.len());
                let data = Bytes::copy_from_slice(&rest[..len]);
                rest = &rest[len..];
                Payload::Data(data)
            };
            let offset = entries.len() as u64;
            entries.push(Entry {
                offset,
                epoch,
                payload,
            });
        }
        entries
    }

    pub fn snapshot_bytes(&self) -> Option<&Bytes> {
        self.snapshot.as_ref().map(|(_, b)| b)
    }
}

fn encode_entry(entry: &Entry, out: &mut Vec<u8>) {
    out.extend_from_slice(&entry.epoch.to_be_bytes());
    match &entry.payload {
        Payload::LeaderChange { leader_id } => {
            out.push(0);
            out.extend_from_slice(&leader_id.to_be_bytes());
        }
        Payload::Data(data) => {
            out.push(1);
            out.extend_from_slice(&u32::try_from(data.len()).unwrap_or(u32::MAX).to_be_bytes());
            out.extend_from_slice(data);
        }
    }
}

impl ReplicatedLog for MemoryLog {
    fn log_start_offset(&self) -> u64 {
        self.log_start_offset
    }

    fn end_offset(&self) -> u64 {
        self.log_start_offset + self.entries.len() as u64
    }

    fn last_fetched_epoch(&self) -> Epoch {
        match self.entries.last() {
            Some(entry) => entry.epoch,
            None => self.snapshot.as_ref().map_or(0, |(id, _)| id.epoch),
        }
    }

    fn end_offset_for_epoch(&self, epoch: Epoch) -> Option<OffsetAndEpoch> {
        if let Some(index) = self.entries.iter().rposition(|e| e.epoch <= epoch) {
            let found = &self.entries[index];
            return Some(OffsetAndEpoch::new(found.offset + 1, found.epoch));
        }
        match &self.snapshot {
            Some((id, _)) if id.epoch <= epoch => {
                Some(OffsetAndEpoch::new(self.log_start_offset, id.epoch))
            }
            Some(_) => None,
            None => Some(OffsetAndEpoch::new(self.log_start_offset, 0)),
        }
    }

    fn read(&self, from: u64, max_entries: usize) -> Vec<Entry> {
        let Some(index) = from.checked_sub(self.log_start_offset) else {
            return Vec::new();
        };
        let index = usize::try_from(index).unwrap_or(usize::MAX);
        self.entries
            .iter()
            .skip(index)
            .take(max_entries)
            .cloned()
            .collect()
    }

    fn append(&mut self, entries: &[Entry]) -> Result<(), LogError> {
        for entry in entries {
            let end_offset = self.end_offset();
            if entry.offset != end_offset {
                return Err(Box::new(MemoryLogError::NotContiguous {
                    offset: entry.offset,
                    end_offset,
                }));
            }
            self.entries.push(entry.clone());
        }
        Ok(())
    }

    fn truncate_to(&mut self, offset: u64) -> Result<(), LogError> {
        let keep = offset.saturating_sub(self.log_start_offset);
        self.entries
            .truncate(usize::try_from(keep).unwrap_or(usize::MAX));
        self.synced_end_offset = self.synced_end_offset.min(self.end_offset());
        Ok(())
    }

    fn latest_snapshot_id(&self) -> Option<OffsetAndEpoch> {
        self.snapshot.as_ref().map(|(id, _)| *id)
    }

    fn read_snapshot(
        &self,
        snapshot_id: OffsetAndEpoch,
        position: u64,
        max_bytes: usize,
    ) -> Option<SnapshotChunk> {
        let (id, bytes) = self.snapshot.as_ref()?;
        if *id != snapshot_id {
            return None;
        }
        let start = usize::try_from(position)
            .unwrap_or(usize::MAX)
            .min(bytes.len());
        let end = start.saturating_add(max_bytes).min(bytes.len());
        Some(SnapshotChunk {
            size: bytes.len() as u64,
            bytes: bytes.slice(start..end),
        })
    }

    fn write_snapshot_chunk(
        &mut self,
        snapshot_id: OffsetAndEpoch,
        position: u64,
        bytes: &[u8],
        complete: bool,
    ) -> Result<(), LogError> {
        if position == 0 || self.pending_snapshot.as_ref().map(|(id, _)| *id) != Some(snapshot_id) {
            self.pending_snapshot = Some((snapshot_id, Vec::new()));
        }
        let Some((_, written)) = self.pending_snapshot.as_mut() else {
            return Ok(());
        };
        if written.len() as u64 != position {
            return Err(Box::new(MemoryLogError::SnapshotGap {
                position,
                written: written.len() as u64,
            }));
        }
        written.extend_from_slice(bytes);
        if complete && let Some((id, written)) = self.pending_snapshot.take() {
            self.snapshot = Some((id, Bytes::from(written)));
            self.entries.clear();
            self.log_start_offset = id.offset;
            self.synced_end_offset = id.offset;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data(offset: u64, epoch: Epoch) -> Entry {
        Entry {
            offset,
            epoch,
            payload: Payload::Data(Bytes::from(vec![offset as u8])),
        }
    }

    #[test]
    fn crash_drops_only_the_unsynced_tail() -> Result<(), LogError> {
        let mut log = MemoryLog::new();
        log.append(&[data(0, 1), data(1, 1)])?;
        log.flush();
        log.append(&[data(2, 1)])?;
        log.crash();
        assert_eq!(log.end_offset(), 2);
        Ok(())
    }

    #[test]
    fn end_offset_for_epoch_finds_the_next_epochs_start() -> Result<(), LogError> {
        let mut log = MemoryLog::new();
        log.append(&[data(0, 1), data(1, 1), data(2, 3), data(3, 3)])?;
        assert_eq!(log.end_offset_for_epoch(1), Some(OffsetAndEpoch::new(2, 1)));
        assert_eq!(log.end_offset_for_epoch(2), Some(OffsetAndEpoch::new(2, 1)));
        assert_eq!(log.end_offset_for_epoch(3), Some(OffsetAndEpoch::new(4, 3)));
        assert_eq!(log.end_offset_for_epoch(0), Some(OffsetAndEpoch::new(0, 0)));
        Ok(())
    }

    #[test]
    fn a_snapshot_round_trips_through_chunks() -> Result<(), LogError> {
        let mut leader = MemoryLog::new();
        leader.append(&[data(0, 1), data(1, 2), data(2, 2)])?;
        leader.flush();
        let id = leader.take_snapshot(2).ok_or("no snapshot")?;
        assert_eq!(id, OffsetAndEpoch::new(2, 2));
        assert_eq!(leader.log_start_offset(), 2);
        assert_eq!(leader.end_offset_for_epoch(1), None);

        let mut follower = MemoryLog::new();
        let first = leader.read_snapshot(id, 0, 5).ok_or("no chunk")?;
        follower.write_snapshot_chunk(id, 0, &first.bytes, false)?;
        let second = leader.read_snapshot(id, 5, 100).ok_or("no chunk")?;
        follower.write_snapshot_chunk(id, 5, &second.bytes, true)?;
        assert_eq!(follower.latest_snapshot_id(), Some(id));
        assert_eq!(follower.end_offset(), 2);
        let decoded = MemoryLog::decode_snapshot(follower.snapshot_bytes().ok_or("none")?);
        assert_eq!(decoded, vec![data(0, 1), data(1, 2)]);
        Ok(())
    }
}
