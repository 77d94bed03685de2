//! Idempotent producers' state in one partition, as Kafka's
//! `ProducerStateManager`: for each producer id its epoch and the sequence
//! numbers and offsets of its last 5 batches. A batch is checked against it
//! before it is appended: a retry of a batch already written is answered
//! with the offsets it got (and not written again), a gap in the sequence
//! is refused, and so is an older epoch.
//!
//! The state is kept in `<offset, 20 digits>.snapshot` files in Kafka's
//! format (version 1: a CRC-32C, then per producer its id, epoch, last
//! sequence and offset, offset delta, timestamp, coordinator epoch and the
//! first offset of its open transaction), written at segment roll and
//! clean shutdown; after an unclean stop the batches after the last
//! snapshot are read again.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::path::{Path, PathBuf};

use thiserror::Error;

use crate::batch::{BatchHeader, increment_sequence};

/// Batches remembered per producer for duplicate detection (Kafka's
/// `max.in.flight.requests.per.connection` limit for idempotence).
pub const CACHED_BATCHES: usize = 5;
pub const SNAPSHOT_SUFFIX: &str = ".snapshot";
const SNAPSHOT_VERSION: i16 = 1;
/// version, crc, entry count.
const SNAPSHOT_HEADER: usize = 2 + 4 + 4;
const SNAPSHOT_ENTRY: usize = 8 + 2 + 4 + 8 + 4 + 8 + 4 + 8;
/// Snapshots kept in a partition directory.
const SNAPSHOTS_KEPT: usize = 2;

/// Why a producer's batch is refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum SequenceError {
    #[error(
        "producer {producer_id} sent sequence {got} at epoch {epoch}; the next sequence is {expected}"
    )]
    OutOfOrder {
        producer_id: i64,
        epoch: i16,
        expected: i32,
        got: i32,
    },
    #[error("producer {producer_id} sent epoch {epoch}, older than its current epoch {current}")]
    StaleEpoch {
        producer_id: i64,
        epoch: i16,
        current: i16,
    },
}

/// Where one of a producer's batches went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchMetadata {
    pub first_seq: i32,
    pub last_seq: i32,
    pub first_offset: i64,
    pub last_offset: i64,
    pub max_timestamp: i64,
}

/// What is known of one producer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProducerEntry {
    pub epoch: i16,
    /// Its last batches, oldest first.
    pub batches: VecDeque<BatchMetadata>,
    /// Wall-clock time of its last append, for `producer.id.expiration.ms`.
    pub last_append_ms: i64,
    pub coordinator_epoch: i32,
    /// First offset of its open transaction, if one is open.
    pub current_txn_first_offset: Option<i64>,
}

/// What to do with an incoming batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SequenceCheck {
    Append,
    /// A retry of a batch already in the log: answer with its offsets.
    Duplicate(BatchMetadata),
}

fn in_sequence(last: i32, next: i32) -> bool {
    next == last.wrapping_add(1) || (last == i32::MAX && next == 0)
}

/// Every producer's state in one partition.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProducerStates {
    producers: HashMap<i64, ProducerEntry>,
    /// The open transactions as `(first offset, producer id)`, oldest
    /// first: the last stable offset is a lookup on every fetch, not a walk
    /// over every producer. Kept with `current_txn_first_offset`.
    open_transactions: std::collections::BTreeSet<(i64, i64)>,
}

impl ProducerStates {
    pub fn get(&self, producer_id: i64) -> Option<&ProducerEntry> {
        self.producers.get(&producer_id)
    }

    pub fn len(&self) -> usize {
        self.producers.len()
    }

    pub fn is_empty(&self) -> bool {
        self.producers.is_empty()
    }

    /// The first offset of the oldest open transaction: the log's last
    /// stable offset, when there is one.
    pub fn first_unstable_offset(&self) -> Option<i64> {
        self.open_transactions.first().map(|(offset, _)| *offset)
    }

    /// Checks a batch against its producer's state, as Kafka's
    /// `ProducerAppendInfo`: batches without a producer id, control
    /// batches, and batches of a producer not known here (its state may
    /// have expired or been removed with old segments) are appended.
    pub fn check(&self, header: &BatchHeader) -> Result<SequenceCheck, SequenceError> {
        if header.producer_id < 0 || header.is_control() || header.base_sequence < 0 {
            return Ok(SequenceCheck::Append);
        }
        let Some(entry) = self.producers.get(&header.producer_id) else {
            return Ok(SequenceCheck::Append);
        };
        let first_seq = header.base_sequence;
        if header.producer_epoch < entry.epoch {
            return Err(SequenceError::StaleEpoch {
                producer_id: header.producer_id,
                epoch: header.producer_epoch,
                current: entry.epoch,
            });
        }
        if header.producer_epoch > entry.epoch {
            // A new epoch starts again at sequence 0.
            if first_seq != 0 {
                return Err(SequenceError::OutOfOrder {
                    producer_id: header.producer_id,
                    epoch: header.producer_epoch,
                    expected: 0,
                    got: first_seq,
                });
            }
            return Ok(SequenceCheck::Append);
        }
        let last_seq = increment_sequence(first_seq, header.last_offset_delta);
        if let Some(batch) = entry
            .batches
            .iter()
            .find(|b| b.first_seq == first_seq && b.last_seq == last_seq)
        {
            return Ok(SequenceCheck::Duplicate(*batch));
        }
        let current = entry.batches.back().map_or(-1, |b| b.last_seq);
        if !in_sequence(current, first_seq) {
            return Err(SequenceError::OutOfOrder {
                producer_id: header.producer_id,
                epoch: header.producer_epoch,
                expected: current.wrapping_add(1).max(0),
                got: first_seq,
            });
        }
        Ok(SequenceCheck::Append)
    }

    /// Records a batch written at `first_offset` (after `check`, or when
    /// reading the log again). `now_ms` is the wall clock.
    pub fn update(&mut self, header: &BatchHeader, first_offset: i64, now_ms: i64) {
        if header.producer_id < 0 {
            return;
        }
        let entry = self
            .producers
            .entry(header.producer_id)
            .or_insert_with(|| ProducerEntry {
                epoch: header.producer_epoch,
                batches: VecDeque::with_capacity(CACHED_BATCHES),
                last_append_ms: now_ms,
                coordinator_epoch: -1,
                current_txn_first_offset: None,
            });
        if header.producer_epoch > entry.epoch {
            entry.epoch = header.producer_epoch;
            entry.batches.clear();
        }
        entry.last_append_ms = now_ms;
        let last_offset = first_offset + i64::from(header.last_offset_delta);
        if header.is_control() {
            // A transaction marker ends the producer's transaction.
            if let Some(first) = entry.current_txn_first_offset.take() {
                self.open_transactions.remove(&(first, header.producer_id));
            }
            return;
        }
        if header.is_transactional() && entry.current_txn_first_offset.is_none() {
            entry.current_txn_first_offset = Some(first_offset);
            self.open_transactions
                .insert((first_offset, header.producer_id));
        }
        if header.base_sequence < 0 {
            return;
        }
        if entry.batches.len() == CACHED_BATCHES {
            entry.batches.pop_front();
        }
        entry.batches.push_back(BatchMetadata {
            first_seq: header.base_sequence,
            last_seq: increment_sequence(header.base_sequence, header.last_offset_delta),
            first_offset,
            last_offset,
            max_timestamp: header.max_timestamp,
        });
    }

    /// Forgets producers whose last append is older than `max_idle_ms`
    /// (`producer.id.expiration.ms`) and that have no open transaction.
    /// Returns how many went.
    pub fn expire(&mut self, now_ms: i64, max_idle_ms: i64) -> usize {
        let before = self.producers.len();
        self.producers.retain(|_, e| {
            e.current_txn_first_offset.is_some()
                || now_ms.saturating_sub(e.last_append_ms) < max_idle_ms
        });
        before - self.producers.len()
    }

    /// The snapshot bytes, in Kafka's version 1 format. Only each
    /// producer's last batch is kept, as Kafka does.
    pub fn encode_snapshot(&self) -> Vec<u8> {
        let mut ids: Vec<&i64> = self.producers.keys().collect();
        ids.sort_unstable();
        let mut out = Vec::with_capacity(SNAPSHOT_HEADER + ids.len() * SNAPSHOT_ENTRY);
        out.extend_from_slice(&SNAPSHOT_VERSION.to_be_bytes());
        out.extend_from_slice(&[0; 4]); // crc, set below
        out.extend_from_slice(&(ids.len() as i32).to_be_bytes());
        for id in ids {
            let entry = &self.producers[id];
            let last = entry.batches.back();
            out.extend_from_slice(&id.to_be_bytes());
            out.extend_from_slice(&entry.epoch.to_be_bytes());
            out.extend_from_slice(&last.map_or(-1, |b| b.last_seq).to_be_bytes());
            out.extend_from_slice(&last.map_or(-1, |b| b.last_offset).to_be_bytes());
            let delta = last.map_or(0, |b| (b.last_offset - b.first_offset) as i32);
            out.extend_from_slice(&delta.to_be_bytes());
            out.extend_from_slice(
                &last
                    .map_or(entry.last_append_ms, |b| b.max_timestamp)
                    .to_be_bytes(),
            );
            out.extend_from_slice(&entry.coordinator_epoch.to_be_bytes());
            out.extend_from_slice(&entry.current_txn_first_offset.unwrap_or(-1).to_be_bytes());
        }
        let crc = crc32c::crc32c(&out[6..]);
        out[2..6].copy_from_slice(&crc.to_be_bytes());
        out
    }

    /// The state a snapshot holds; `now_ms` restarts the producers'
    /// expiration clocks. An error says what is wrong with the bytes.
    pub fn decode_snapshot(bytes: &[u8], now_ms: i64) -> Result<Self, String> {
        if bytes.len() < SNAPSHOT_HEADER {
            return Err(format!("{} bytes is shorter than the header", bytes.len()));
        }
        let version = i16::from_be_bytes([bytes[0], bytes[1]]);
        if version != SNAPSHOT_VERSION {
            return Err(format!("version {version} is not {SNAPSHOT_VERSION}"));
        }
        let crc = u32::from_be_bytes([bytes[2], bytes[3], bytes[4], bytes[5]]);
        if crc32c::crc32c(&bytes[6..]) != crc {
            return Err("the CRC does not match".into());
        }
        let count = i32::from_be_bytes([bytes[6], bytes[7], bytes[8], bytes[9]]);
        let count = usize::try_from(count).map_err(|_| format!("entry count {count}"))?;
        let entries = &bytes[SNAPSHOT_HEADER..];
        if entries.len() != count.saturating_mul(SNAPSHOT_ENTRY) {
            return Err(format!(
                "{count} entries need {} bytes, not {}",
                count.saturating_mul(SNAPSHOT_ENTRY),
                entries.len()
            ));
        }
        let mut producers = HashMap::with_capacity(count);
        for entry in entries.chunks_exact(SNAPSHOT_ENTRY) {
            let mut at = 0;
            let mut take = |n: usize| {
                let field = &entry[at..at + n];
                at += n;
                field
            };
            let i64_of = |b: &[u8]| i64::from_be_bytes(b.try_into().unwrap_or([0; 8]));
            let i32_of = |b: &[u8]| i32::from_be_bytes(b.try_into().unwrap_or([0; 4]));
            let producer_id = i64_of(take(8));
            let epoch = i16::from_be_bytes(take(2).try_into().unwrap_or([0; 2]));
            let last_seq = i32_of(take(4));
            let last_offset = i64_of(take(8));
            let offset_delta = i32_of(take(4));
            let timestamp = i64_of(take(8));
            let coordinator_epoch = i32_of(take(4));
            let txn_first = i64_of(take(8));
            let mut batches = VecDeque::with_capacity(CACHED_BATCHES);
            if last_seq >= 0 && last_offset >= 0 {
                batches.push_back(BatchMetadata {
                    first_seq: last_seq.wrapping_sub(offset_delta).max(0),
                    last_seq,
                    first_offset: last_offset - i64::from(offset_delta),
                    last_offset,
                    max_timestamp: timestamp,
                });
            }
            producers.insert(
                producer_id,
                ProducerEntry {
                    epoch,
                    batches,
                    last_append_ms: now_ms,
                    coordinator_epoch,
                    current_txn_first_offset: (txn_first >= 0).then_some(txn_first),
                },
            );
        }
        let open_transactions = producers
            .iter()
            .filter_map(|(id, e)| e.current_txn_first_offset.map(|o| (o, *id)))
            .collect();
        Ok(Self {
            producers,
            open_transactions,
        })
    }
}

/// The snapshot files of a partition directory by offset.
pub(crate) fn list_snapshots(dir: &Path) -> std::io::Result<BTreeMap<i64, PathBuf>> {
    let mut found = BTreeMap::new();
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
            continue;
        };
        let Some(stem) = name.strip_suffix(SNAPSHOT_SUFFIX) else {
            continue;
        };
        if stem.len() == 20
            && stem.bytes().all(|b| b.is_ascii_digit())
            && let Ok(offset) = stem.parse::<i64>()
        {
            found.insert(offset, path);
        }
    }
    Ok(found)
}

/// Writes the snapshot for `offset` (through a temporary file and a
/// rename, so a crash leaves the old or the new file whole) and removes
/// all but the newest snapshots.
pub(crate) fn write_snapshot(
    dir: &Path,
    offset: i64,
    states: &ProducerStates,
) -> std::io::Result<()> {
    let path = crate::file_name::file_path(dir, offset, SNAPSHOT_SUFFIX);
    let tmp = path.with_extension("snapshot.tmp");
    {
        use std::io::Write;
        let mut file = std::fs::File::create(&tmp)?;
        file.write_all(&states.encode_snapshot())?;
        file.sync_all()?;
    }
    std::fs::rename(&tmp, &path)?;
    let snapshots = list_snapshots(dir)?;
    let excess = snapshots.len().saturating_sub(SNAPSHOTS_KEPT);
    for (_, old) in snapshots.into_iter().take(excess) {
        std::fs::remove_file(old)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::builder::BatchBuilder;

    fn batch(producer_id: i64, epoch: i16, first_seq: i32, records: usize) -> BatchHeader {
        let mut builder = BatchBuilder::new(1_000).producer(producer_id, epoch, first_seq);
        for _ in 0..records {
            builder.push(None, Some(b"v"), 1_000);
        }
        BatchHeader::parse(&builder.build()).expect("header")
    }

    #[test]
    fn sequences_must_follow_on_and_retries_are_found() {
        let mut states = ProducerStates::default();
        let first = batch(7, 0, 0, 3);
        assert_eq!(states.check(&first), Ok(SequenceCheck::Append));
        states.update(&first, 100, 0);
        // The same batch again: a retry, answered with its offsets.
        match states.check(&first) {
            Ok(SequenceCheck::Duplicate(meta)) => {
                assert_eq!((meta.first_offset, meta.last_offset), (100, 102));
            }
            other => panic!("{other:?}"),
        }
        // A gap: 3 is next, 5 comes.
        assert_eq!(
            states.check(&batch(7, 0, 5, 1)),
            Err(SequenceError::OutOfOrder {
                producer_id: 7,
                epoch: 0,
                expected: 3,
                got: 5
            })
        );
        let next = batch(7, 0, 3, 1);
        assert_eq!(states.check(&next), Ok(SequenceCheck::Append));
        states.update(&next, 103, 0);
        // An older epoch is refused; a newer one starts at 0.
        assert!(matches!(
            states.check(&batch(7, -1, 4, 1)),
            Err(SequenceError::StaleEpoch { .. })
        ));
        assert!(matches!(
            states.check(&batch(7, 1, 4, 1)),
            Err(SequenceError::OutOfOrder { expected: 0, .. })
        ));
        assert_eq!(states.check(&batch(7, 1, 0, 1)), Ok(SequenceCheck::Append));
        // Unknown producers and plain batches are not checked.
        assert_eq!(states.check(&batch(8, 0, 42, 1)), Ok(SequenceCheck::Append));
        assert_eq!(
            states.check(&batch(-1, -1, -1, 1)),
            Ok(SequenceCheck::Append)
        );
    }

    #[test]
    fn only_the_last_five_batches_are_remembered() {
        let mut states = ProducerStates::default();
        for i in 0..7 {
            let header = batch(1, 0, i, 1);
            states.update(&header, i64::from(i), 0);
        }
        assert_eq!(states.get(1).map(|e| e.batches.len()), Some(CACHED_BATCHES));
        // Batch 1 fell out of the cache: its retry is out of order now.
        assert!(states.check(&batch(1, 0, 1, 1)).is_err());
        assert!(matches!(
            states.check(&batch(1, 0, 2, 1)),
            Ok(SequenceCheck::Duplicate(_))
        ));
    }

    #[test]
    fn sequences_wrap_past_i32_max() {
        assert_eq!(increment_sequence(i32::MAX, 1), 0);
        assert_eq!(increment_sequence(i32::MAX - 1, 3), 1);
        assert_eq!(increment_sequence(5, 2), 7);
        assert!(in_sequence(i32::MAX, 0));
    }

    #[test]
    fn snapshots_round_trip_in_kafkas_layout() {
        let mut states = ProducerStates::default();
        states.update(&batch(9, 2, 10, 4), 500, 0);
        states.update(&batch(3, 0, 0, 1), 504, 0);
        let bytes = states.encode_snapshot();
        assert_eq!(bytes.len(), SNAPSHOT_HEADER + 2 * SNAPSHOT_ENTRY);
        assert_eq!(&bytes[..2], &[0, 1]);
        // Producer 3 comes first: id, epoch, last sequence, last offset.
        assert_eq!(&bytes[10..18], &3i64.to_be_bytes());
        assert_eq!(&bytes[18..20], &0i16.to_be_bytes());
        assert_eq!(&bytes[20..24], &0i32.to_be_bytes());
        assert_eq!(&bytes[24..32], &504i64.to_be_bytes());
        let loaded = ProducerStates::decode_snapshot(&bytes, 0).expect("decodes");
        assert_eq!(loaded.get(9).map(|e| e.epoch), Some(2));
        let last = loaded.get(9).and_then(|e| e.batches.back().copied());
        assert_eq!(
            last.map(|b| (b.first_seq, b.last_seq, b.first_offset, b.last_offset)),
            Some((10, 13, 500, 503))
        );
        // A retry of that batch is still found after a restart.
        assert!(matches!(
            loaded.check(&batch(9, 2, 10, 4)),
            Ok(SequenceCheck::Duplicate(_))
        ));
        let mut corrupt = bytes.clone();
        corrupt[30] ^= 1;
        assert!(ProducerStates::decode_snapshot(&corrupt, 0).is_err());
        assert!(ProducerStates::decode_snapshot(&bytes[..5], 0).is_err());
    }

    #[test]
    fn idle_producers_expire() {
        let mut states = ProducerStates::default();
        states.update(&batch(1, 0, 0, 1), 0, 1_000);
        states.update(&batch(2, 0, 0, 1), 1, 5_000);
        assert_eq!(states.expire(6_000, 2_000), 1);
        assert!(states.get(1).is_none() && states.get(2).is_some());
    }
}
