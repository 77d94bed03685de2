//! Which `__consumer_offsets` partition coordinates a group.
//!
//! Kafka places group G on partition
//! `Utils.abs(G.hashCode()) % offsets.topic.num.partitions`, where
//! `hashCode` is Java's `String.hashCode` over UTF-16 code units and
//! `Utils.abs(n)` is `n & 0x7fffffff` (not `Math.abs`, which would leave
//! `Integer.MIN_VALUE` negative). Clients compute nothing here, but every
//! broker of a mixed or migrated cluster must agree, so this is bit-exact.

/// Java's `String.hashCode`: `h = 31 * h + c` over the UTF-16 code units of
/// `s`, wrapping in `i32`. Characters outside the BMP count as two units
/// (a surrogate pair), as in Java.
pub fn java_string_hash(s: &str) -> i32 {
    s.encode_utf16().fold(0i32, |h, unit| {
        h.wrapping_mul(31).wrapping_add(i32::from(unit))
    })
}

/// The `__consumer_offsets` partition whose leader coordinates `group`:
/// `(java_string_hash(group) & 0x7fffffff) % partitions`.
///
/// # Panics
///
/// If `partitions` is not positive; the partition count comes from the
/// validated `offsets.topic.num.partitions` config, never from a request.
pub fn coordinator_partition(group: &str, partitions: i32) -> i32 {
    assert!(
        partitions > 0,
        "offsets.topic.num.partitions must be positive, got {partitions}"
    );
    (java_string_hash(group) & 0x7fff_ffff) % partitions
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_matches_java_string_hash_code() {
        // Values from `jshell> "...".hashCode()`.
        assert_eq!(java_string_hash(""), 0);
        assert_eq!(java_string_hash("a"), 97);
        assert_eq!(java_string_hash("hello"), 99_162_322);
        assert_eq!(java_string_hash("runnel-tests"), -957_630_018);
        assert_eq!(java_string_hash("my-group"), -1_906_497_762);
    }

    #[test]
    fn hash_wraps_to_i32_min() {
        // The classic Java string whose hashCode is Integer.MIN_VALUE.
        assert_eq!(java_string_hash("polygenelubricants"), i32::MIN);
    }

    #[test]
    fn hash_uses_utf16_code_units() {
        assert_eq!(java_string_hash("é"), 233);
        // U+1F600 is the surrogate pair D83D DE00: 0xD83D * 31 + 0xDE00.
        assert_eq!(java_string_hash("😀"), 0xD83D * 31 + 0xDE00);
        assert_eq!(java_string_hash("😀"), 1_772_899);
    }

    #[test]
    fn partition_uses_utils_abs_not_math_abs() {
        assert_eq!(coordinator_partition("", 50), 0);
        assert_eq!(coordinator_partition("a", 50), 47);
        assert_eq!(coordinator_partition("hello", 50), 22);
        assert_eq!(coordinator_partition("runnel-tests", 50), 30);
        assert_eq!(coordinator_partition("my-group", 50), 36);
        assert_eq!(coordinator_partition("console-consumer-12345", 50), 6);
        // Math.abs(i32::MIN) stays negative; `& 0x7fffffff` gives 0.
        assert_eq!(coordinator_partition("polygenelubricants", 50), 0);
        assert_eq!(coordinator_partition("😀", 50), 49);
        assert_eq!(coordinator_partition("anything", 1), 0);
    }

    #[test]
    #[should_panic(expected = "must be positive")]
    fn partition_rejects_zero_partitions() {
        coordinator_partition("g", 0);
    }
}
