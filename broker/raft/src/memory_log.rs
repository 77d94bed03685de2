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
//! | 4     | record count (u32, big endian)                  |
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
    #[error("entry at offset {offset} holds no records")]
    EmptyEntry { offset: u64 },
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
        let keep = self.entries_ending_by(self.synced_end_offset);
        self.entries.truncate(keep);
        self.pending_snapshot = None;
    }

    /// How many entries end at or before `offset`.
    fn entries_ending_by(&self, offset: u64) -> usize {
        self.entries.partition_point(|e| e.next_offset() <= offset)
    }

    pub fn synced_end_offset(&self) -> u64 {
        self.synced_end_offset
    }

    /// The entry holding `offset`.
    pub fn entry(&self, offset: u64) -> Option<&Entry> {
        let entry = self.entries.get(self.entries_ending_by(offset))?;
        (entry.offset <= offset).then_some(entry)
    }

    pub fn entries(&self) -> &[Entry] {
        &self.entries
    }

    /// Snapshots the synced log below `offset` (a committed offset, chosen
    /// by the state machine) and drops those entries. Returns the new id, or
    /// `None` if `offset` is not past the log start, not synced, or not an
    /// entry's end.
    pub fn take_snapshot(&mut self, offset: u64) -> Option<OffsetAndEpoch> {
        if offset <= self.log_start_offset || offset > self.synced_end_offset {
            return None;
        }
        let count = self.entries_ending_by(offset);
        let last = self.entries.get(count.checked_sub(1)?)?;
        if last.next_offset() != offset {
            return None;
        }
        let last = last.epoch;
        let mut bytes = self
            .snapshot
            .as_ref()
            .map(|(_, b)| b.to_vec())
            .unwrap_or_default();
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
        let mut offset = 0;
        while rest.len() >= 13 {
            let epoch = u32::from_be_bytes([rest[0], rest[1], rest[2], rest[3]]);
            let record_count = u32::from_be_bytes([rest[4], rest[5], rest[6], rest[7]]);
            let kind = rest[8];
            let word = [rest[9], rest[10], rest[11], rest[12]];
            rest = &rest[13..];
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
            let entry = Entry {
                offset,
                epoch,
                record_count,
                payload,
            };
            offset = entry.next_offset();
            entries.push(entry);
        }
        entries
    }

    pub fn snapshot_bytes(&self) -> Option<&Bytes> {
        self.snapshot.as_ref().map(|(_, b)| b)
    }
}

fn encode_entry(entry: &Entry, out: &mut Vec<u8>) {
    out.extend_from_slice(&entry.epoch.to_be_bytes());
    out.extend_from_slice(&entry.record_count.to_be_bytes());
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
        self.entries
            .last()
            .map_or(self.log_start_offset, Entry::next_offset)
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
            return Some(OffsetAndEpoch::new(found.next_offset(), found.epoch));
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
        if from < self.log_start_offset {
            return Vec::new();
        }
        let index = self.entries_ending_by(from);
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
            if entry.record_count == 0 {
                return Err(Box::new(MemoryLogError::EmptyEntry {
                    offset: entry.offset,
                }));
            }
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
        let keep = self.entries_ending_by(offset);
        self.entries.truncate(keep);
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
        batch(offset, epoch, 1)
    }

    fn batch(offset: u64, epoch: Epoch, record_count: u32) -> Entry {
        Entry {
            offset,
            epoch,
            record_count,
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

    #[test]
    fn entries_spanning_many_offsets_are_found_by_any_of_them() -> Result<(), LogError> {
        let mut log = MemoryLog::new();
        // [0..3) epoch 1, [3..4) epoch 1, [4..9) epoch 2
        log.append(&[batch(0, 1, 3), batch(3, 1, 1), batch(4, 2, 5)])?;
        assert_eq!(log.end_offset(), 9);
        assert_eq!(log.entry(2).map(|e| e.offset), Some(0));
        assert_eq!(log.entry(8).map(|e| e.offset), Some(4));
        assert_eq!(log.entry(9), None);
        assert_eq!(log.end_offset_for_epoch(1), Some(OffsetAndEpoch::new(4, 1)));
        assert_eq!(log.read(5, 10), vec![batch(4, 2, 5)]);
        assert_eq!(log.read(3, 1), vec![batch(3, 1, 1)]);
        assert!(log.append(&[batch(10, 2, 1)]).is_err(), "a gap");
        assert!(log.append(&[batch(9, 2, 0)]).is_err(), "no records");

        log.flush();
        assert_eq!(log.take_snapshot(2), None, "inside an entry");
        let id = log.take_snapshot(3).ok_or("no snapshot")?;
        assert_eq!(id, OffsetAndEpoch::new(3, 1));
        assert_eq!(
            MemoryLog::decode_snapshot(log.snapshot_bytes().ok_or("none")?),
            vec![batch(0, 1, 3)]
        );

        // Truncating inside an entry removes it whole, as Kafka does.
        log.truncate_to(6)?;
        assert_eq!(log.end_offset(), 4);
        Ok(())
    }
}
