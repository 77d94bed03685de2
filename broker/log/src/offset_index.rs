//! The `.index` file: sparse map from offset to file position in the
//! segment's `.log`.
//!
//! | offset | size | field                                                  |
//! |-------:|-----:|--------------------------------------------------------|
//! |      0 |    4 | relative offset (u32): offset - segment base offset    |
//! |      4 |    4 | position (u32): byte position of a batch in the `.log` |
//!
//! Big-endian, sorted by offset. Since Kafka 3.7 an entry maps the last
//! offset of a batch to the position where that batch starts, and one is
//! written when more than `index.interval.bytes` were appended since the
//! previous one.

use std::io;
use std::path::Path;

use crate::index_file::IndexFile;

pub const ENTRY_SIZE: usize = 8;

/// Why an offset index was found unusable; it is then rebuilt from the log.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OffsetIndexCorruption {
    #[error("entry {entry} has offset {offset} not above the previous {previous}")]
    NotIncreasing {
        entry: usize,
        offset: i64,
        previous: i64,
    },
    #[error("entry {entry} points at position {position}, past the log's {log_size} bytes")]
    PositionPastLog {
        entry: usize,
        position: u32,
        log_size: u64,
    },
}

#[derive(Debug)]
pub struct OffsetIndex {
    file: IndexFile,
    base_offset: i64,
}

impl OffsetIndex {
    pub(crate) fn open(path: &Path, base_offset: i64, max_bytes: usize) -> io::Result<Self> {
        Ok(Self {
            file: IndexFile::open(path, ENTRY_SIZE, max_bytes)?,
            base_offset,
        })
    }

    pub fn entries(&self) -> usize {
        self.file.entries()
    }

    pub fn is_full(&self) -> bool {
        self.file.is_full()
    }

    /// Entry `n` as (absolute offset, position).
    pub fn entry(&self, n: usize) -> (i64, u32) {
        let e = self.file.entry(n);
        let relative = u32::from_be_bytes([e[0], e[1], e[2], e[3]]);
        let position = u32::from_be_bytes([e[4], e[5], e[6], e[7]]);
        (self.base_offset + relative as i64, position)
    }

    pub fn last_entry(&self) -> Option<(i64, u32)> {
        self.entries().checked_sub(1).map(|n| self.entry(n))
    }

    /// The greatest indexed offset `<= target` and its position, or the
    /// segment start when there is none.
    pub fn lookup(&self, target: i64) -> (i64, u32) {
        let relative_target = target - self.base_offset;
        self.file
            .floor(relative_target, |e| {
                u32::from_be_bytes([e[0], e[1], e[2], e[3]]) as i64
            })
            .map(|n| self.entry(n))
            .unwrap_or((self.base_offset, 0))
    }

    /// Appends an entry; offsets must grow. The caller checks `is_full`.
    pub(crate) fn append(&mut self, offset: i64, position: u32) {
        if self.last_entry().is_some_and(|(last, _)| offset <= last) {
            return;
        }
        let mut entry = [0u8; ENTRY_SIZE];
        entry[..4].copy_from_slice(&((offset - self.base_offset) as u32).to_be_bytes());
        entry[4..].copy_from_slice(&position.to_be_bytes());
        self.file.push(&entry);
    }

    /// Removes the entries whose offset is `>= offset`.
    pub(crate) fn truncate_to(&mut self, offset: i64) {
        let keep = self
            .file
            .floor(offset - self.base_offset - 1, |e| {
                u32::from_be_bytes([e[0], e[1], e[2], e[3]]) as i64
            })
            .map_or(0, |n| n + 1);
        self.file.truncate_entries(keep);
    }

    pub(crate) fn reset(&mut self) {
        self.file.truncate_entries(0);
    }

    /// Checks every entry against the ordering and the log's size, so a torn
    /// or stale index is never used.
    pub(crate) fn sanity_check(&self, log_size: u64) -> Result<(), OffsetIndexCorruption> {
        let mut previous: Option<i64> = None;
        for n in 0..self.entries() {
            let (offset, position) = self.entry(n);
            if let Some(previous) = previous.filter(|p| offset <= *p) {
                return Err(OffsetIndexCorruption::NotIncreasing {
                    entry: n,
                    offset,
                    previous,
                });
            }
            if position as u64 >= log_size {
                return Err(OffsetIndexCorruption::PositionPastLog {
                    entry: n,
                    position,
                    log_size,
                });
            }
            previous = Some(offset);
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

    fn index(dir: &tempfile::TempDir) -> OffsetIndex {
        OffsetIndex::open(&dir.path().join("00000000000000000100.index"), 100, 1024).expect("open")
    }

    #[test]
    fn encodes_relative_offsets_and_positions_big_endian() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut idx = index(&dir);
        idx.append(105, 4242);
        idx.file_mut().trim().expect("trim");
        let bytes = std::fs::read(idx.file().path()).expect("read");
        assert_eq!(bytes, [0, 0, 0, 5, 0, 0, 0x10, 0x92]);
    }

    #[test]
    fn lookup_returns_the_floor_entry_or_the_segment_start() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut idx = index(&dir);
        idx.append(110, 5000);
        idx.append(120, 9000);
        assert_eq!(idx.lookup(100), (100, 0));
        assert_eq!(idx.lookup(109), (100, 0));
        assert_eq!(idx.lookup(110), (110, 5000));
        assert_eq!(idx.lookup(119), (110, 5000));
        assert_eq!(idx.lookup(1_000), (120, 9000));
    }

    #[test]
    fn truncate_removes_entries_at_and_above_the_offset() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut idx = index(&dir);
        for (o, p) in [(110, 1), (120, 2), (130, 3)] {
            idx.append(o, p);
        }
        idx.truncate_to(120);
        assert_eq!(idx.entries(), 1);
        assert_eq!(idx.last_entry(), Some((110, 1)));
        idx.truncate_to(50);
        assert_eq!(idx.entries(), 0);
    }

    #[test]
    fn sanity_check_catches_positions_past_the_log() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut idx = index(&dir);
        idx.append(110, 5000);
        assert!(idx.sanity_check(6000).is_ok());
        assert!(matches!(
            idx.sanity_check(4000),
            Err(OffsetIndexCorruption::PositionPastLog { .. })
        ));
    }

    #[test]
    fn is_full_when_preallocated_entries_are_used() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut idx = OffsetIndex::open(&dir.path().join("0.index"), 0, 16).expect("open");
        idx.append(1, 0);
        assert!(!idx.is_full());
        idx.append(2, 10);
        assert!(idx.is_full());
    }
}
