//! Kafka's default partitioning: a keyed record goes to
//! `toPositive(murmur2(key)) % partitions`, exactly as the Java client's
//! `BuiltInPartitioner.partitionForKey`, so keyed records land where Java
//! producers put them; a keyless record sticks to one partition until its
//! batch is complete (KIP-480's sticky partitioner), then moves to another.

use std::collections::HashMap;

const SEED: u32 = 0x9747_b28c;
const M: u32 = 0x5bd1_e995;
const R: u32 = 24;

/// Java's `org.apache.kafka.common.utils.Utils.murmur2`: MurmurHash2,
/// 32-bit, seed 0x9747b28c, little-endian 4-byte blocks.
pub fn murmur2(data: &[u8]) -> i32 {
    let mut h = SEED ^ data.len() as u32;
    let mut blocks = data.chunks_exact(4);
    for block in &mut blocks {
        let mut k = u32::from_le_bytes([block[0], block[1], block[2], block[3]]);
        k = k.wrapping_mul(M);
        k ^= k >> R;
        k = k.wrapping_mul(M);
        h = h.wrapping_mul(M);
        h ^= k;
    }
    let tail = blocks.remainder();
    if tail.len() >= 3 {
        h ^= u32::from(tail[2]) << 16;
    }
    if tail.len() >= 2 {
        h ^= u32::from(tail[1]) << 8;
    }
    if let Some(&first) = tail.first() {
        h ^= u32::from(first);
        h = h.wrapping_mul(M);
    }
    h ^= h >> 13;
    h = h.wrapping_mul(M);
    h ^= h >> 15;
    h as i32
}

/// Java's `Utils.toPositive`: the sign bit cleared (not `abs`).
pub fn to_positive(n: i32) -> i32 {
    n & 0x7fff_ffff
}

/// The partition the Java client picks for `key` among `partitions` (>= 1).
pub fn partition_for_key(key: &[u8], partitions: i32) -> i32 {
    debug_assert!(partitions >= 1, "a topic has at least one partition");
    to_positive(murmur2(key)) % partitions.max(1)
}

/// The sticky partition of each topic for keyless records.
#[derive(Debug, Default)]
pub struct StickyPartitioner {
    current: HashMap<String, i32>,
}

impl StickyPartitioner {
    /// The topic's sticky partition, chosen at random the first time.
    pub fn partition(&mut self, topic: &str, partitions: i32) -> i32 {
        match self.current.get(topic) {
            Some(&p) if p < partitions => p,
            _ => {
                let p = fastrand::i32(0..partitions.max(1));
                self.current.insert(topic.to_string(), p);
                p
            }
        }
    }

    /// The topic's batch was completed: the next keyless record goes to
    /// another partition (a different one when there is more than one).
    pub fn batch_completed(&mut self, topic: &str, partitions: i32) {
        let partitions = partitions.max(1);
        let previous = self.current.get(topic).copied();
        let next = match previous {
            Some(p) if partitions > 1 => {
                // Any partition but the previous, uniformly.
                let pick = fastrand::i32(0..partitions - 1);
                if pick >= p { pick + 1 } else { pick }
            }
            _ => fastrand::i32(0..partitions),
        };
        match self.current.get_mut(topic) {
            Some(slot) => *slot = next,
            None => {
                self.current.insert(topic.to_string(), next);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Apache Kafka's `UtilsTest.testMurmur2` vectors.
    #[test]
    fn murmur2_matches_kafkas_own_test_vectors() {
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

    /// Partitions for 1, 3, 6, 12 and 50 partitions, computed with
    /// kafka-python 3.0's `kafka.partitioner.default.murmur2` (a port of
    /// Java's `Utils.murmur2`) as `(murmur2(key) & 0x7fffffff) % n`; the
    /// broker tests also check keys against librdkafka's Java-compatible
    /// `murmur2_random` partitioner on a live topic.
    #[test]
    fn partitions_match_the_java_algorithm() {
        let table: [(&[u8], [i32; 5]); 11] = [
            (b"key-0", [0, 1, 1, 1, 41]),
            (b"key-1", [0, 0, 0, 0, 40]),
            (b"key-2", [0, 2, 2, 2, 2]),
            (b"order-42", [0, 0, 0, 0, 24]),
            (b"user-1002", [0, 2, 5, 5, 47]),
            ("ключ".as_bytes(), [0, 2, 2, 8, 24]),
            (b"a", [0, 1, 4, 4, 24]),
            (b"ab", [0, 2, 2, 2, 34]),
            (b"abc", [0, 0, 3, 3, 7]),
            (b"abcd", [0, 2, 2, 8, 0]),
            (b"abcde", [0, 1, 1, 1, 41]),
        ];
        for (key, expected) in table {
            let got = [1, 3, 6, 12, 50].map(|n| partition_for_key(key, n));
            assert_eq!(got, expected, "{}", String::from_utf8_lossy(key));
        }
    }

    #[test]
    fn to_positive_clears_the_sign_bit() {
        assert_eq!(to_positive(i32::MIN), 0);
        assert_eq!(to_positive(-1), i32::MAX);
        assert_eq!(to_positive(5), 5);
        assert_eq!(partition_for_key(b"", 1), 0);
    }

    #[test]
    fn sticky_partition_holds_until_its_batch_completes_then_moves() {
        let mut sticky = StickyPartitioner::default();
        let first = sticky.partition("t", 6);
        assert!((0..6).contains(&first));
        assert_eq!(sticky.partition("t", 6), first);
        for _ in 0..50 {
            let before = sticky.partition("t", 6);
            sticky.batch_completed("t", 6);
            let after = sticky.partition("t", 6);
            assert_ne!(after, before);
            assert!((0..6).contains(&after));
        }
        sticky.batch_completed("one", 1);
        assert_eq!(sticky.partition("one", 1), 0);
        // A topic that shrank below the sticky choice picks again.
        let p = sticky.partition("t", 1);
        assert_eq!(p, 0);
    }
}
