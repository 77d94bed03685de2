//! The timing wheel made of topics: a record due in `remaining` ms hops to
//! the longest level of its target that does not pass its due time, again
//! and again, until it is due. A remainder shorter than every level takes
//! the shortest one: never early, late by less than the shortest level.

/// Where a record goes next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hop {
    /// Due: to the target topic.
    Deliver,
    /// To the level at this index of the delays given.
    Level(usize),
}

/// The next hop of a record due in `remaining_ms`, through levels whose
/// delays are `delays_ms`, shortest first.
pub fn next_hop(delays_ms: &[i64], remaining_ms: i64) -> Hop {
    if remaining_ms <= 0 || delays_ms.is_empty() {
        return Hop::Deliver;
    }
    let fitting = delays_ms.partition_point(|delay| *delay <= remaining_ms);
    Hop::Level(fitting.saturating_sub(1))
}

#[cfg(test)]
mod tests {
    use super::*;

    const LEVELS: [i64; 4] = [1_000, 5_000, 30_000, 60_000];

    #[test]
    fn a_record_hops_to_the_longest_level_that_fits() {
        assert_eq!(next_hop(&LEVELS, 0), Hop::Deliver);
        assert_eq!(next_hop(&LEVELS, -5), Hop::Deliver);
        assert_eq!(next_hop(&LEVELS, 1_000), Hop::Level(0));
        assert_eq!(next_hop(&LEVELS, 4_999), Hop::Level(0));
        assert_eq!(next_hop(&LEVELS, 5_000), Hop::Level(1));
        assert_eq!(next_hop(&LEVELS, 59_999), Hop::Level(2));
        assert_eq!(next_hop(&LEVELS, 3_600_000), Hop::Level(3));
        // Shorter than every level: the shortest, never early.
        assert_eq!(next_hop(&LEVELS, 1), Hop::Level(0));
        assert_eq!(next_hop(&[], 1_000), Hop::Deliver);
    }

    #[test]
    fn hops_reach_the_due_time_never_early() {
        // Each hop takes exactly its delay here (a mover with no lag).
        for remaining in [1, 999, 1_000, 1_001, 7_500, 61_234, 3_600_001] {
            let mut left = remaining;
            let mut hops = 0;
            while let Hop::Level(level) = next_hop(&LEVELS, left) {
                left -= LEVELS[level];
                hops += 1;
                assert!(hops < 100, "{remaining} never arrives");
            }
            assert!(left <= 0, "{remaining}: delivered {left} ms early");
            assert!(-left < LEVELS[0], "{remaining}: {left} ms late");
        }
    }
}
