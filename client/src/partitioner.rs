//! Kafka's default partitioning, so records land where the Java producer
//! puts them.
//!
//! - A keyed record goes to `to_positive(murmur2(key)) % partitions`, the
//!   Java client's `BuiltInPartitioner.partitionForKey`. An empty key is a
//!   key (it hashes); only a missing key is keyless.
//! - A keyless record goes to the topic's sticky partition, which holds
//!   until a batch for it is complete and then moves, at random, to another
//!   partition: the rule of KIP-480's `StickyPartitionCache`. Unlike Java
//!   since KIP-794, the switch follows the producer's sealed batch rather
//!   than `batch.size` bytes counted here, and there is no adaptive
//!   weighting by queue length.
//!
//! The vectors in `tests/partitioner_vectors.rs` pin the placement of keys
//! against two other implementations of Java's algorithm.

use std::collections::HashMap;

/// `Utils.murmur2`'s seed and mixing constants.
const SEED: u32 = 0x9747_b28c;
const M: u32 = 0x5bd1_e995;
const R: u32 = 24;

/// Java's `org.apache.kafka.common.utils.Utils.murmur2`: 32-bit MurmurHash2
/// over little-endian 4-byte blocks, as Java's `int`.
///
/// Java hashes its `int` array length; a slice longer than `u32::MAX`
/// bytes (which no Java array can be) hashes its length modulo 2^32.
pub fn murmur2(data: &[u8]) -> i32 {
    let mut h = SEED ^ data.len() as u32;
    let (blocks, tail) = data.as_chunks::<4>();
    for block in blocks {
        let mut k = u32::from_le_bytes(*block);
        k = k.wrapping_mul(M);
        k ^= k >> R;
        k = k.wrapping_mul(M);
        h = h.wrapping_mul(M);
        h ^= k;
    }
    // Java's `switch (length % 4)` falls through from case 3 to case 1.
    if let Some(&b) = tail.get(2) {
        h ^= u32::from(b) << 16;
    }
    if let Some(&b) = tail.get(1) {
        h ^= u32::from(b) << 8;
    }
    if let Some(&b) = tail.first() {
        h ^= u32::from(b);
        h = h.wrapping_mul(M);
    }
    h ^= h >> 13;
    h = h.wrapping_mul(M);
    h ^= h >> 15;
    h as i32
}

/// Java's `Utils.toPositive`: the sign bit cleared. Not `abs`, which would
/// send `i32::MIN` elsewhere (or overflow).
pub fn to_positive(n: i32) -> i32 {
    n & 0x7fff_ffff
}

/// The partition the Java client picks for `key` among `partitions`.
///
/// `partitions` must be at least 1 (a topic has a partition); checked in
/// debug builds, and treated as 1 otherwise rather than dividing by zero.
pub fn partition_for_key(key: &[u8], partitions: i32) -> i32 {
    debug_assert!(partitions >= 1, "a topic has at least one partition");
    to_positive(murmur2(key)) % partitions.max(1)
}

/// Each topic's sticky partition for keyless records.
///
/// The producer asks [`partition`](Self::partition) for every keyless
/// record and calls [`batch_completed`](Self::batch_completed) when the
/// batch of the sticky partition is complete. Nothing is allocated per
/// record: a topic's name is copied once, when it is first seen.
#[derive(Debug, Default)]
pub struct StickyPartitioner {
    current: HashMap<String, i32>,
}

impl StickyPartitioner {
    pub fn new() -> Self {
        Self::default()
    }

    /// The topic's sticky partition among `partitions` (>= 1): chosen at
    /// random the first time, and chosen again if the topic no longer has
    /// that partition.
    pub fn partition(&mut self, topic: &str, partitions: i32) -> i32 {
        match self.current.get(topic) {
            Some(&p) if (0..partitions).contains(&p) => p,
            previous => {
                let next = pick_partition(previous.copied(), partitions);
                self.set(topic, next);
                next
            }
        }
    }

    /// A batch of `sealed` is complete: when `sealed` is the sticky
    /// partition, the next keyless record goes to another of the
    /// `partitions`, chosen at random, never the previous one when there is
    /// more than one. Another partition's batch changes nothing (as Java's
    /// `onNewBatch`: a sender racing one that already moved on does not
    /// move the sticky partition twice).
    pub fn batch_completed(&mut self, topic: &str, sealed: i32, partitions: i32) {
        let previous = self.current.get(topic).copied();
        if previous.is_some_and(|p| p != sealed) {
            return;
        }
        let next = pick_partition(previous, partitions);
        self.set(topic, next);
    }

    /// As [`batch_completed`](Self::batch_completed), choosing among the
    /// `available` partitions only (those with a leader, as Java's
    /// `Cluster.availablePartitionsForTopic`); among all `partitions` when
    /// none is available.
    pub fn batch_completed_among(&mut self, topic: &str, partitions: i32, available: &[i32]) {
        let previous = self.current.get(topic).copied();
        let next = if available.is_empty() {
            pick_partition(previous, partitions)
        } else {
            let skip = previous.and_then(|p| available.iter().position(|&a| a == p));
            available
                .get(pick_index(available.len(), skip))
                .copied()
                .unwrap_or_default()
        };
        self.set(topic, next);
    }

    fn set(&mut self, topic: &str, partition: i32) {
        match self.current.get_mut(topic) {
            Some(slot) => *slot = partition,
            None => {
                self.current.insert(topic.to_owned(), partition);
            }
        }
    }
}

/// A random partition of `partitions` (treated as at least 1), other than
/// `previous` when there is a choice.
fn pick_partition(previous: Option<i32>, partitions: i32) -> i32 {
    let count = usize::try_from(partitions).unwrap_or(0).max(1);
    let skip = previous.and_then(|p| usize::try_from(p).ok());
    i32::try_from(pick_index(count, skip)).unwrap_or_default()
}

/// A uniformly random index below `len` (>= 1) other than `skip` when
/// `len > 1`: Java's rejection loop in one draw.
fn pick_index(len: usize, skip: Option<usize>) -> usize {
    match skip {
        Some(skip) if len > 1 && skip < len => {
            let i = fastrand::usize(..len - 1);
            if i >= skip { i + 1 } else { i }
        }
        _ => fastrand::usize(..len.max(1)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Apache Kafka's `UtilsTest.testMurmur2`.
    #[test]
    fn murmur2_matches_kafkas_own_vectors() {
        for (key, expected) in [
            (&b"21"[..], -973_932_308),
            (b"foobar", -790_332_482),
            (b"a-little-bit-long-string", -985_981_536),
            (b"a-little-bit-longer-string", -1_486_304_829),
            (
                b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8",
                -58_897_971,
            ),
            (b"abc", 479_470_107),
        ] {
            assert_eq!(murmur2(key), expected, "{}", String::from_utf8_lossy(key));
        }
    }

    /// The empty key hashes the seed alone; the value is kafka-python's and
    /// librdkafka's (see `tests/vectors/java_partitions.py`).
    #[test]
    fn an_empty_key_is_hashed() {
        assert_eq!(murmur2(b""), 275_646_681);
        assert_eq!(partition_for_key(b"", 1), 0);
        assert_eq!(partition_for_key(b"", 12), 9);
    }

    #[test]
    fn to_positive_clears_the_sign_bit() {
        assert_eq!(to_positive(i32::MIN), 0);
        assert_eq!(to_positive(i32::MIN + 1), 1);
        assert_eq!(to_positive(-1), i32::MAX);
        assert_eq!(to_positive(0), 0);
        assert_eq!(to_positive(5), 5);
        assert_eq!(to_positive(i32::MAX), i32::MAX);
    }

    #[test]
    fn the_sticky_partition_holds_until_its_batch_completes() {
        let mut sticky = StickyPartitioner::new();
        let first = sticky.partition("t", 6);
        assert!((0..6).contains(&first));
        for _ in 0..100 {
            assert_eq!(sticky.partition("t", 6), first);
        }
    }

    #[test]
    fn a_completed_batch_moves_to_another_partition_and_visits_all() {
        let mut sticky = StickyPartitioner::new();
        let mut seen = [false; 3];
        let mut before = sticky.partition("t", 3);
        for _ in 0..1000 {
            sticky.batch_completed("t", before, 3);
            let after = sticky.partition("t", 3);
            assert_ne!(after, before);
            assert!((0..3).contains(&after));
            seen[after as usize] = true;
            before = after;
        }
        assert_eq!(seen, [true; 3]);
    }

    #[test]
    fn one_partition_is_always_partition_zero() {
        let mut sticky = StickyPartitioner::new();
        assert_eq!(sticky.partition("one", 1), 0);
        sticky.batch_completed("one", 0, 1);
        assert_eq!(sticky.partition("one", 1), 0);
        sticky.batch_completed_among("one", 1, &[0]);
        assert_eq!(sticky.partition("one", 1), 0);
    }

    #[test]
    fn topics_stick_independently() {
        let mut sticky = StickyPartitioner::new();
        let a = sticky.partition("a", 50);
        let b = sticky.partition("b", 50);
        let mut b_now = b;
        for _ in 0..20 {
            sticky.batch_completed("b", b_now, 50);
            assert_eq!(sticky.partition("a", 50), a);
            b_now = sticky.partition("b", 50);
        }
        assert!((0..50).contains(&b));
    }

    #[test]
    fn another_partitions_batch_leaves_the_sticky_partition() {
        let mut sticky = StickyPartitioner::new();
        let now = sticky.partition("t", 8);
        sticky.batch_completed("t", (now + 1) % 8, 8);
        assert_eq!(sticky.partition("t", 8), now);
        sticky.batch_completed("t", now, 8);
        assert_ne!(sticky.partition("t", 8), now);
    }

    #[test]
    fn a_topic_without_its_sticky_partition_chooses_again() {
        let mut sticky = StickyPartitioner::new();
        sticky.batch_completed_among("t", 6, &[5]);
        assert_eq!(sticky.partition("t", 6), 5);
        assert_eq!(sticky.partition("t", 2), sticky.partition("t", 2));
        assert!((0..2).contains(&sticky.partition("t", 2)));
    }

    #[test]
    fn only_available_partitions_are_chosen() {
        let mut sticky = StickyPartitioner::new();
        sticky.batch_completed_among("t", 12, &[2, 7, 9]);
        let mut before = sticky.partition("t", 12);
        let mut seen = Vec::new();
        for _ in 0..300 {
            sticky.batch_completed_among("t", 12, &[2, 7, 9]);
            let after = sticky.partition("t", 12);
            assert!([2, 7, 9].contains(&after), "{after}");
            assert_ne!(after, before);
            if !seen.contains(&after) {
                seen.push(after);
            }
            before = after;
        }
        seen.sort_unstable();
        assert_eq!(seen, [2, 7, 9]);

        // One available partition is taken even if it was the previous.
        sticky.batch_completed_among("t", 12, &[4]);
        sticky.batch_completed_among("t", 12, &[4]);
        assert_eq!(sticky.partition("t", 12), 4);

        // None available: any partition but the previous.
        sticky.batch_completed_among("t", 12, &[]);
        let p = sticky.partition("t", 12);
        assert!((0..12).contains(&p) && p != 4, "{p}");
    }

    #[test]
    fn nonsense_partition_counts_do_not_panic_in_the_sticky_partitioner() {
        let mut sticky = StickyPartitioner::new();
        assert_eq!(sticky.partition("t", 0), 0);
        sticky.batch_completed("t", 0, -3);
        assert_eq!(sticky.partition("t", -3), 0);
    }
}
