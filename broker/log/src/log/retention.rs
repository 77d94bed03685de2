//! Retention: whole segments leave a log by `retention.ms`,
//! `retention.bytes` or a moved log start offset, oldest first, as in
//! Kafka's `UnifiedLog.deleteOldSegments`. Their files are renamed
//! `.deleted` at once and unlinked after `file.delete.delay.ms`, so reads
//! already holding a region of them finish.

use std::path::PathBuf;

use super::PartitionLog;
use crate::error::{LogError, Result};
use crate::segment::DELETED_SUFFIX;

#[derive(Debug)]
pub(crate) struct PendingDelete {
    pub(crate) paths: [PathBuf; 3],
    pub(crate) due_ms: i64,
}

impl PartitionLog {
    /// Applies `retention.ms`, `retention.bytes` and the log start offset:
    /// removes whole segments from the oldest, renaming their files
    /// `.deleted`; unlinks files whose `file.delete.delay.ms` has passed.
    /// Returns how many segments were removed.
    pub fn apply_retention(&mut self, now_ms: i64) -> Result<usize> {
        let mut deletable = Vec::new();
        let mut bytes_over = (self.config.retention_bytes >= 0)
            .then(|| self.size_bytes() as i64 - self.config.retention_bytes);
        let bases: Vec<i64> = self.segments.keys().copied().collect();
        for (i, base) in bases.iter().enumerate() {
            let segment = &self.segments[base];
            let next_base = bases.get(i + 1).copied();
            let is_last_and_empty = next_base.is_none() && segment.size() == 0;
            let below_start = next_base.is_some_and(|next| next <= self.log_start_offset);
            let delete_policy = self.config.cleanup_policy.delete;
            let expired = delete_policy
                && self.config.retention_ms >= 0
                && now_ms.saturating_sub(segment.largest_timestamp()) > self.config.retention_ms;
            let over_size =
                delete_policy && bytes_over.is_some_and(|over| over - segment.size() as i64 >= 0);
            if is_last_and_empty || !(below_start || expired || over_size) {
                break;
            }
            if let Some(over) = bytes_over.as_mut() {
                *over -= segment.size() as i64;
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
        let changed = self
            .leader_epochs
            .truncate_from_start(self.log_start_offset);
        self.epochs_changed(changed)?;
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
        // The segment's aborted transactions go with it.
        let next_base = self
            .segments
            .range(base_offset..)
            .next()
            .map_or(i64::MAX, |(b, _)| *b);
        self.aborted
            .retain(|t| t.last_offset < base_offset || t.last_offset >= next_base);
        let txn_index =
            crate::segment::file_path(&self.dir, base_offset, crate::txn_index::TXN_INDEX_SUFFIX);
        if let Err(source) = std::fs::remove_file(&txn_index)
            && source.kind() != std::io::ErrorKind::NotFound
        {
            return Err(LogError::Delete {
                path: txn_index,
                source,
            });
        }
        segment.rename_files("", DELETED_SUFFIX)?;
        self.pending_deletes.push(PendingDelete {
            paths: segment.paths_with_suffix(DELETED_SUFFIX),
            due_ms: now_ms.saturating_add(self.config.file_delete_delay_ms),
        });
        self.unlink_due_files(now_ms)
    }

    pub(crate) fn unlink_due_files(&mut self, now_ms: i64) -> Result<()> {
        let mut result = Ok(());
        self.pending_deletes.retain(|pending| {
            if pending.due_ms > now_ms {
                return true;
            }
            for path in &pending.paths {
                if let Err(source) = std::fs::remove_file(path)
                    && source.kind() != std::io::ErrorKind::NotFound
                    && result.is_ok()
                {
                    result = Err(LogError::Delete {
                        path: path.clone(),
                        source,
                    });
                }
            }
            false
        });
        result
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{NOW, batch, config, open, read_all};
    use crate::error::LogError;

    #[test]
    fn retention_ms_removes_old_segments_and_moves_the_log_start() {
        let dir = tempfile::tempdir().expect("tempdir");
        let one = batch(5, NOW);
        let mut log = open(
            dir.path(),
            config(&[
                ("segment.bytes", &one.len().to_string()),
                ("retention.ms", "1000"),
                ("file.delete.delay.ms", "0"),
            ]),
        );
        for i in 0..4 {
            log.append(&batch(5, NOW + i * 1000), NOW).expect("append");
        }
        assert_eq!(log.segments().count(), 4);
        // At NOW+2500 the segments stamped NOW and NOW+1000 are older than 1000 ms.
        assert_eq!(log.apply_retention(NOW + 2500).expect("retention"), 2);
        assert_eq!(log.log_start_offset(), 10);
        assert!(!dir.path().join("00000000000000000000.log").exists());
        assert!(matches!(
            log.read(0, 100, None, true),
            Err(LogError::OffsetOutOfRange { .. })
        ));
        assert_eq!(read_all(&log, 10), vec![(10, 14), (15, 19)]);
        // Everything expired: the active segment goes too, a fresh one starts.
        log.apply_retention(NOW + 100_000).expect("retention");
        assert_eq!(log.log_start_offset(), 20);
        assert_eq!(log.log_end_offset(), 20);
        assert_eq!(log.segments().count(), 1);
    }

    #[test]
    fn retention_bytes_keeps_the_newest_segments_under_the_limit() {
        let dir = tempfile::tempdir().expect("tempdir");
        let one = batch(5, NOW);
        let size = one.len();
        let mut log = open(
            dir.path(),
            config(&[
                ("segment.bytes", &size.to_string()),
                ("retention.bytes", &(size * 2).to_string()),
            ]),
        );
        for _ in 0..5 {
            log.append(&one, NOW).expect("append");
        }
        assert_eq!(log.apply_retention(NOW).expect("retention"), 3);
        assert_eq!(log.log_start_offset(), 15);
        // Renamed, not yet unlinked: file.delete.delay.ms is 60 s.
        assert!(dir.path().join("00000000000000000000.log.deleted").exists());
        log.apply_retention(NOW + 60_000).expect("retention");
        assert!(!dir.path().join("00000000000000000000.log.deleted").exists());
    }

    #[test]
    fn region_of_a_deleted_segment_still_reads() {
        let dir = tempfile::tempdir().expect("tempdir");
        let one = batch(5, NOW);
        let mut log = open(
            dir.path(),
            config(&[
                ("segment.bytes", &one.len().to_string()),
                ("retention.bytes", "0"),
                ("file.delete.delay.ms", "0"),
            ]),
        );
        log.append(&one, NOW).expect("append");
        log.append(&one, NOW).expect("append");
        let region = log
            .read(0, 1 << 20, None, true)
            .expect("read")
            .region
            .expect("region");
        log.apply_retention(NOW).expect("retention");
        assert!(!dir.path().join("00000000000000000000.log.deleted").exists());
        assert_eq!(region.to_vec().expect("still readable").len(), one.len());
    }

    #[test]
    fn a_moved_log_start_offset_removes_the_segments_below_it() {
        let dir = tempfile::tempdir().expect("tempdir");
        let one = batch(5, NOW);
        let mut log = open(
            dir.path(),
            config(&[
                ("segment.bytes", &one.len().to_string()),
                ("retention.ms", "-1"),
            ]),
        );
        for _ in 0..4 {
            log.append(&one, NOW).expect("append");
        }
        log.advance_log_start_offset(12).expect("advance");
        assert_eq!(log.apply_retention(NOW).expect("retention"), 2);
        assert_eq!(log.log_start_offset(), 12);
        assert_eq!(log.segments().next().map(|s| s.base_offset()), Some(10));
        assert!(matches!(
            log.advance_log_start_offset(100),
            Err(LogError::OffsetOutOfRange { offset: 100, .. })
        ));
    }
}
