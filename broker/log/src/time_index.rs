//! The `.timeindex` file: sparse map from timestamp to the offset at which
//! that timestamp was first reached in the segment.
//!
//! | offset | size | field                                               |
//! |-------:|-----:|-----------------------------------------------------|
//! |      0 |    8 | timestamp (i64): max timestamp seen so far          |
//! |      8 |    4 | relative offset (u32): offset - segment base offset |
//!
//! Big-endian. An entry is appended with an offset index entry, and only when
//! the segment's max timestamp grew past the last entry's, so both columns
//! increase. When a segment is rolled its max timestamp gets a final entry;
//! one slot is always kept free for it.

use std::io;
use std::path::Path;

use crate::index_file::IndexFile;

pub const ENTRY_SIZE: usize = 12;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TimeIndexCorruption {
    #[error(
        "entry {entry} goes backwards: ({timestamp}, {offset}) after ({previous_timestamp}, {previous_offset})"
    )]
    NotIncreasing {
        entry: usize,
        timestamp: i64,
        offset: i64,
        previous_timestamp: i64,
        previous_offset: i64,
    },
    #[error("entry {entry} has offset {offset}, past the segment's last offset {last_offset}")]
    OffsetPastSegment {
        entry: usize,
        offset: i64,
        last_offset: i64,
    },
}

#[derive(Debug)]
pub struct TimeIndex {
    file: IndexFile,
    base_offset: i64,
}

impl TimeIndex {
    pub(crate) fn open(path: &Path, base_offset: i64, max_bytes: usize) -> io::Result<Self> {
        Ok(Self {
            file: IndexFile::open(path, ENTRY_SIZE, max_bytes)?,
            base_offset,
        })
    }

    pub fn entries(&self) -> usize {
        self.file.entries()
    }

    /// Full when only the slot reserved for the roll entry is left.
    pub fn is_full(&self) -> bool {
        self.file.entries() + 1 >= self.file.max_entries()
    }

    /// Entry `n` as (timestamp, absolute offset).
    pub fn entry(&self, n: usize) -> (i64, i64) {
        let e = self.file.entry(n);
        let mut ts = [0u8; 8];
        ts.copy_from_slice(&e[..8]);
        let relative = u32::from_be_bytes([e[8], e[9], e[10], e[11]]);
        (i64::from_be_bytes(ts), self.base_offset + relative as i64)
    }

    pub fn last_entry(&self) -> Option<(i64, i64)> {
        self.entries().checked_sub(1).map(|n| self.entry(n))
    }

    /// The last entry whose timestamp is `<= target`: reading from its offset
    /// finds the first record with a timestamp `>= target`.
    pub fn lookup(&self, target: i64) -> Option<(i64, i64)> {
        self.file
            .floor(target, |e| {
                let mut ts = [0u8; 8];
                ts.copy_from_slice(&e[..8]);
                i64::from_be_bytes(ts)
            })
            .map(|n| self.entry(n))
    }

    /// Appends `(timestamp, offset)` when the timestamp grew. `for_roll` may
    /// use the slot kept free for the final entry.
    pub(crate) fn maybe_append(&mut self, timestamp: i64, offset: i64, for_roll: bool) {
        if let Some((last_ts, last_offset)) = self.last_entry()
            && (timestamp <= last_ts || offset < last_offset)
        {
            return;
        }
        if self.file.is_full() || (!for_roll && self.is_full()) {
            return;
        }
        let mut entry = [0u8; ENTRY_SIZE];
        entry[..8].copy_from_slice(&timestamp.to_be_bytes());
        entry[8..].copy_from_slice(&((offset - self.base_offset) as u32).to_be_bytes());
        self.file.push(&entry);
    }

    /// Removes the entries whose offset is `>= offset`.
    pub(crate) fn truncate_to(&mut self, offset: i64) {
        let mut keep = self.entries();
        while keep > 0 && self.entry(keep - 1).1 >= offset {
            keep -= 1;
        }
        self.file.truncate_entries(keep);
    }

    pub(crate) fn reset(&mut self) {
        self.file.truncate_entries(0);
    }

    pub(crate) fn sanity_check(&self, last_offset: i64) -> Result<(), TimeIndexCorruption> {
        let mut previous: Option<(i64, i64)> = None;
        for n in 0..self.entries() {
            let (timestamp, offset) = self.entry(n);
            if let Some((previous_timestamp, previous_offset)) = previous
                && (timestamp <= previous_timestamp || offset < previous_offset)
            {
                return Err(TimeIndexCorruption::NotIncreasing {
                    entry: n,
                    timestamp,
                    offset,
                    previous_timestamp,
                    previous_offset,
                });
            }
            if offset > last_offset {
                return Err(TimeIndexCorruption::OffsetPastSegment {
                    entry: n,
                    offset,
                    last_offset,
                });
            }
            previous = Some((timestamp, offset));
        }
        Ok(())
    }

    pub(crate) fn file_mut(&mut self) -> &mut IndexFile {
        &mut self.file
    }

    pub(crate) fn file(&self) -> &IndexFile {
        &self.file
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn index(dir: &tempfile::TempDir, max_bytes: usize) -> TimeIndex {
        TimeIndex::open(
            &dir.path().join("00000000000000000100.timeindex"),
            100,
            max_bytes,
        )
        .expect("open")
    }

    #[test]
    fn encodes_timestamp_and_relative_offset_big_endian() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut idx = index(&dir, 120);
        idx.maybe_append(0x0102_0304_0506_0708, 107, false);
        idx.file_mut().trim().expect("trim");
        let bytes = std::fs::read(idx.file().path()).expect("read");
        assert_eq!(bytes, [1, 2, 3, 4, 5, 6, 7, 8, 0, 0, 0, 7]);
    }

    #[test]
    fn appends_only_when_the_timestamp_grows() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut idx = index(&dir, 1200);
        idx.maybe_append(1000, 100, false);
        idx.maybe_append(1000, 105, false);
        idx.maybe_append(900, 106, false);
        idx.maybe_append(2000, 110, false);
        assert_eq!(idx.entries(), 2);
        assert_eq!(idx.last_entry(), Some((2000, 110)));
    }

    #[test]
    fn lookup_finds_the_floor_timestamp() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut idx = index(&dir, 1200);
        idx.maybe_append(1000, 100, false);
        idx.maybe_append(2000, 110, false);
        assert_eq!(idx.lookup(999), None);
        assert_eq!(idx.lookup(1500), Some((1000, 100)));
        assert_eq!(idx.lookup(2000), Some((2000, 110)));
    }

    #[test]
    fn keeps_a_slot_for_the_roll_entry() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut idx = index(&dir, 24);
        idx.maybe_append(1, 100, false);
        assert!(idx.is_full());
        idx.maybe_append(2, 101, false);
        assert_eq!(idx.entries(), 1);
        idx.maybe_append(3, 102, true);
        assert_eq!(idx.entries(), 2);
    }

    #[test]
    fn truncate_drops_entries_at_and_above_the_offset() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut idx = index(&dir, 1200);
        idx.maybe_append(1000, 100, false);
        idx.maybe_append(2000, 110, false);
        idx.truncate_to(110);
        assert_eq!(idx.last_entry(), Some((1000, 100)));
    }
}
