//! The leader epoch cache of one partition log, as Kafka's
//! `LeaderEpochFileCache`: for each leader epoch, the first offset written
//! in it. Replicas use it to find where their log diverges from the
//! leader's (OffsetsForLeaderEpoch, and the quorum's DivergingEpoch): the
//! end of an epoch is the start of the next one.
//!
//! It is kept in the partition dir as `leader-epoch-checkpoint`, in Kafka's
//! text form, rewritten (temp file, fsync, rename) on each change:
//!
//! ```text
//! 0          <- version
//! 2          <- entries
//! 0 0        <- epoch start_offset
//! 3 120
//! ```

use std::path::Path;

use crate::checkpoint::{read_lines, write_lines};
use crate::error::{LogError, Result};

pub const FILE_NAME: &str = "leader-epoch-checkpoint";

/// One epoch and the offset of its first record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EpochEntry {
    pub epoch: i32,
    pub start_offset: i64,
}

/// The epochs of one log, oldest first, each starting after the one before.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LeaderEpochCache {
    entries: Vec<EpochEntry>,
}

impl LeaderEpochCache {
    pub fn entries(&self) -> &[EpochEntry] {
        &self.entries
    }

    pub fn latest(&self) -> Option<EpochEntry> {
        self.entries.last().copied()
    }

    /// Records that `epoch` starts at `start_offset`; returns whether the
    /// cache changed. As Kafka: entries that conflict with it (a later or
    /// equal epoch, or a later or equal start) go first.
    pub fn assign(&mut self, epoch: i32, start_offset: i64) -> bool {
        if epoch < 0 || start_offset < 0 {
            return false;
        }
        if let Some(latest) = self.latest()
            && latest.epoch == epoch
            && latest.start_offset <= start_offset
        {
            return false;
        }
        self.entries
            .retain(|e| e.epoch < epoch && e.start_offset < start_offset);
        self.entries.push(EpochEntry {
            epoch,
            start_offset,
        });
        true
    }

    /// Where `epoch` ends in a log ending at `log_end_offset`: the largest
    /// epoch `<= epoch` known and the start of the epoch after it (the log
    /// end for the latest epoch). `None` when `epoch` is newer than every
    /// known epoch, or none is known. An epoch older than every known one
    /// ends where the first known one starts.
    pub fn end_offset_for(&self, epoch: i32, log_end_offset: i64) -> Option<(i32, i64)> {
        let latest = self.latest()?;
        if epoch < 0 {
            return None;
        }
        if epoch == latest.epoch {
            return Some((epoch, log_end_offset));
        }
        let higher = self.entries.iter().find(|e| e.epoch > epoch)?;
        match self.entries.iter().rev().find(|e| e.epoch <= epoch) {
            Some(floor) => Some((floor.epoch, higher.start_offset)),
            None => Some((epoch, higher.start_offset)),
        }
    }

    /// The log was truncated to `end_offset`: epochs starting at or past it
    /// go. Returns whether the cache changed.
    pub fn truncate_from_end(&mut self, end_offset: i64) -> bool {
        let before = self.entries.len();
        self.entries.retain(|e| e.start_offset < end_offset);
        self.entries.len() != before
    }

    /// The log now starts at `start_offset`: epochs wholly before it go,
    /// and the one it falls in starts there. Returns whether the cache
    /// changed.
    pub fn truncate_from_start(&mut self, start_offset: i64) -> bool {
        let Some(kept_from) = self
            .entries
            .iter()
            .rposition(|e| e.start_offset <= start_offset)
        else {
            return false;
        };
        let changed = kept_from > 0 || self.entries[kept_from].start_offset != start_offset;
        self.entries.drain(..kept_from);
        self.entries[0].start_offset = start_offset;
        changed
    }

    /// Reads `dir`'s checkpoint; an empty cache when there is none.
    pub fn load(dir: &Path) -> Result<Self> {
        let path = dir.join(FILE_NAME);
        let Some(lines) = read_lines(&path)? else {
            return Ok(Self::default());
        };
        let mut cache = Self::default();
        for (index, line) in lines.iter().enumerate() {
            let malformed = |reason: &str| LogError::MalformedCheckpoint {
                path: path.clone(),
                line: index + 3,
                reason: reason.into(),
            };
            let mut fields = line.split_whitespace();
            let (Some(epoch), Some(offset), None) = (fields.next(), fields.next(), fields.next())
            else {
                return Err(malformed("expected an epoch and a start offset"));
            };
            let epoch: i32 = epoch
                .parse()
                .map_err(|_| malformed("epoch is not a number"))?;
            let start_offset: i64 = offset
                .parse()
                .map_err(|_| malformed("start offset is not a number"))?;
            if let Some(last) = cache.latest()
                && (epoch <= last.epoch || start_offset < last.start_offset)
            {
                return Err(malformed("entries must grow in epoch and offset"));
            }
            cache.entries.push(EpochEntry {
                epoch,
                start_offset,
            });
        }
        Ok(cache)
    }

    /// Writes the cache to `dir`'s checkpoint, durably.
    pub fn save(&self, dir: &Path) -> Result<()> {
        let lines: Vec<String> = self
            .entries
            .iter()
            .map(|e| format!("{} {}", e.epoch, e.start_offset))
            .collect();
        write_lines(&dir.join(FILE_NAME), &lines)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cache(pairs: &[(i32, i64)]) -> LeaderEpochCache {
        let mut cache = LeaderEpochCache::default();
        for (epoch, start) in pairs {
            cache.assign(*epoch, *start);
        }
        cache
    }

    fn pairs(cache: &LeaderEpochCache) -> Vec<(i32, i64)> {
        cache
            .entries()
            .iter()
            .map(|e| (e.epoch, e.start_offset))
            .collect()
    }

    #[test]
    fn epochs_are_assigned_as_kafka_does() {
        let mut c = cache(&[(0, 0), (2, 10), (5, 30)]);
        assert!(!c.assign(5, 40), "the latest epoch again changes nothing");
        assert_eq!(pairs(&c), [(0, 0), (2, 10), (5, 30)]);
        // A new epoch starting earlier than known ones replaces them.
        assert!(c.assign(6, 20));
        assert_eq!(pairs(&c), [(0, 0), (2, 10), (6, 20)]);
        assert!(!c.assign(-1, 50));
    }

    #[test]
    fn an_epoch_ends_where_the_next_one_starts() {
        let c = cache(&[(1, 0), (3, 10), (7, 30)]);
        assert_eq!(c.end_offset_for(7, 45), Some((7, 45)));
        assert_eq!(c.end_offset_for(3, 45), Some((3, 30)));
        assert_eq!(c.end_offset_for(5, 45), Some((3, 30)));
        assert_eq!(c.end_offset_for(1, 45), Some((1, 10)));
        assert_eq!(c.end_offset_for(0, 45), Some((0, 0)));
        assert_eq!(c.end_offset_for(8, 45), None);
        assert_eq!(LeaderEpochCache::default().end_offset_for(0, 0), None);
    }

    #[test]
    fn truncation_drops_epochs_from_either_end() {
        let mut c = cache(&[(1, 0), (3, 10), (7, 30)]);
        assert!(c.truncate_from_end(30));
        assert_eq!(pairs(&c), [(1, 0), (3, 10)]);
        assert!(!c.truncate_from_end(30));
        let mut c = cache(&[(1, 0), (3, 10), (7, 30)]);
        assert!(c.truncate_from_start(15));
        assert_eq!(pairs(&c), [(3, 15), (7, 30)]);
        assert!(!c.truncate_from_start(15));
        assert!(c.truncate_from_start(30));
        assert_eq!(pairs(&c), [(7, 30)]);
    }

    #[test]
    fn the_checkpoint_is_kafkas_text() {
        let dir = tempfile::tempdir().expect("tempdir");
        assert_eq!(
            LeaderEpochCache::load(dir.path()).expect("none"),
            LeaderEpochCache::default()
        );
        let c = cache(&[(0, 0), (3, 120)]);
        c.save(dir.path()).expect("save");
        let text = std::fs::read_to_string(dir.path().join(FILE_NAME)).expect("read");
        assert_eq!(text, "0\n2\n0 0\n3 120\n");
        assert_eq!(LeaderEpochCache::load(dir.path()).expect("load"), c);
        std::fs::write(dir.path().join(FILE_NAME), "0\n2\n3 0\n1 5\n").expect("write");
        let err = LeaderEpochCache::load(dir.path()).expect_err("out of order");
        assert!(err.to_string().contains("line 4"), "{err}");
    }
}
