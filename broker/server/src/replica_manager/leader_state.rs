//! What a partition's leader knows of its followers, sans-io, as Kafka's
//! `Partition` keeps it: each follower's log end offset (the offset it
//! last fetched from) and when it was last caught up; the ISR the metadata
//! holds; and the ISR change sent to the controller and not yet answered.
//!
//! - The high watermark is the smallest log end offset over the *maximal*
//!   ISR: the committed ISR plus a follower being added. While a shrink is
//!   in flight the follower leaving still counts, so the high watermark
//!   never passes what a member of the committed ISR lacks.
//! - A follower is caught up at a fetch from the leader's log end, or from
//!   the log end the leader had at its previous fetch (Kafka's
//!   `lastCaughtUpTimeMs`). One not caught up for `replica.lag.time.max.ms`
//!   leaves the ISR; one whose log end reaches the high watermark (and the
//!   start of the leader's epoch) joins it.
//! - One ISR change is in flight at a time; a new one is proposed only
//!   once the metadata (or the controller's answer) settled the last.

use std::collections::BTreeMap;

/// A follower's log end offset before its first fetch from this leader.
const UNKNOWN: i64 = -1;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Follower {
    log_end_offset: i64,
    last_caught_up_ms: i64,
    last_fetch_ms: i64,
    /// The leader's log end offset at the follower's last fetch.
    leader_end_at_last_fetch: i64,
}

/// An ISR change asked of the controller, with the partition epoch it
/// was asked from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IsrChange {
    pub isr: Vec<i32>,
    pub partition_epoch: i32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaderState {
    leader: i32,
    isr: Vec<i32>,
    partition_epoch: i32,
    pending: Option<IsrChange>,
    followers: BTreeMap<i32, Follower>,
}

impl LeaderState {
    /// `leader`'s state as it takes the partition over: every follower's
    /// log end unknown, those in the ISR counted caught up now (so none is
    /// dropped before it had a chance to fetch).
    pub fn new(
        leader: i32,
        replicas: &[i32],
        isr: &[i32],
        partition_epoch: i32,
        now_ms: i64,
    ) -> Self {
        let mut state = Self {
            leader,
            isr: Vec::new(),
            partition_epoch,
            pending: None,
            followers: BTreeMap::new(),
        };
        state.update(replicas, isr, partition_epoch, now_ms);
        state
    }

    /// Takes the replicas and ISR of a newer partition epoch (an ISR
    /// change committed, a reassignment); followers keep what they
    /// reported. Settles the change in flight when this epoch answers it.
    pub fn update(&mut self, replicas: &[i32], isr: &[i32], partition_epoch: i32, now_ms: i64) {
        if partition_epoch < self.partition_epoch {
            return;
        }
        self.partition_epoch = partition_epoch;
        self.isr = isr.to_vec();
        if self
            .pending
            .as_ref()
            .is_some_and(|p| p.partition_epoch < partition_epoch || p.isr == isr)
        {
            self.pending = None;
        }
        self.followers.retain(|id, _| replicas.contains(id));
        for &id in replicas.iter().filter(|id| **id != self.leader) {
            self.followers.entry(id).or_insert(Follower {
                log_end_offset: UNKNOWN,
                last_caught_up_ms: now_ms,
                last_fetch_ms: now_ms,
                leader_end_at_last_fetch: UNKNOWN,
            });
        }
    }

    pub fn isr(&self) -> &[i32] {
        &self.isr
    }

    pub fn partition_epoch(&self) -> i32 {
        self.partition_epoch
    }

    #[cfg(test)]
    pub fn pending(&self) -> Option<&IsrChange> {
        self.pending.as_ref()
    }

    /// Forgets `change` when it is the change in flight (the controller
    /// refused it, or it was never sent): the next check may propose
    /// again. A change that is no longer in flight is left alone: the
    /// answer to an older proposal must not clear a newer one, which the
    /// controller may commit (the high watermark would then ignore the
    /// follower it adds).
    pub fn clear_pending(&mut self, change: &IsrChange) {
        if self.pending.as_ref() == Some(change) {
            self.pending = None;
        }
    }

    /// Whether `change` is the change in flight.
    pub fn is_pending(&self, change: &IsrChange) -> bool {
        self.pending.as_ref() == Some(change)
    }

    /// The ISR the high watermark waits on: the committed one and a
    /// follower being added.
    fn maximal_isr(&self) -> impl Iterator<Item = i32> + '_ {
        let added = self
            .pending
            .iter()
            .flat_map(|p| p.isr.iter().copied())
            .filter(|id| !self.isr.contains(id));
        self.isr.iter().copied().chain(added)
    }

    /// The high watermark the ISR allows with the leader's log end at
    /// `leader_end`. A member whose log end is not known yet holds it at
    /// [`UNKNOWN`]; callers never move a leader's high watermark back.
    pub fn high_watermark(&self, leader_end: i64) -> i64 {
        self.maximal_isr()
            .map(|id| {
                if id == self.leader {
                    leader_end
                } else {
                    self.followers
                        .get(&id)
                        .map_or(UNKNOWN, |f| f.log_end_offset)
                }
            })
            .fold(leader_end, i64::min)
    }

    /// Takes follower `id`'s fetch from `fetch_offset` while the leader's
    /// log ends at `leader_end`. `false` when `id` is not a replica.
    pub fn follower_fetched(
        &mut self,
        id: i32,
        fetch_offset: i64,
        leader_end: i64,
        now_ms: i64,
    ) -> bool {
        let Some(follower) = self.followers.get_mut(&id) else {
            return false;
        };
        if fetch_offset >= leader_end {
            follower.last_caught_up_ms = now_ms;
        } else if fetch_offset >= follower.leader_end_at_last_fetch {
            follower.last_caught_up_ms = follower.last_caught_up_ms.max(follower.last_fetch_ms);
        }
        follower.log_end_offset = fetch_offset;
        follower.last_fetch_ms = now_ms;
        follower.leader_end_at_last_fetch = leader_end;
        true
    }

    /// The ISR with follower `id` added, when it is out of the ISR, has
    /// reached `high_watermark` and `epoch_start` (the first offset of the
    /// leader's epoch), and no change is in flight. Marks it in flight.
    pub fn propose_expand(
        &mut self,
        id: i32,
        high_watermark: i64,
        epoch_start: i64,
    ) -> Option<IsrChange> {
        if self.pending.is_some() || self.isr.contains(&id) {
            return None;
        }
        let follower = self.followers.get(&id)?;
        if follower.log_end_offset < high_watermark || follower.log_end_offset < epoch_start {
            return None;
        }
        let mut isr = self.isr.clone();
        isr.push(id);
        self.propose(isr)
    }

    /// The ISR without its followers that have not caught up with a log
    /// end of `leader_end` for more than `max_lag_ms`, when there are any
    /// and no change is in flight. Marks it in flight.
    pub fn propose_shrink(
        &mut self,
        leader_end: i64,
        now_ms: i64,
        max_lag_ms: i64,
    ) -> Option<IsrChange> {
        if self.pending.is_some() {
            return None;
        }
        let out_of_sync = |id: &i32| {
            *id != self.leader
                && self.followers.get(id).is_some_and(|f| {
                    f.log_end_offset != leader_end && now_ms - f.last_caught_up_ms > max_lag_ms
                })
        };
        if !self.isr.iter().any(out_of_sync) {
            return None;
        }
        let isr: Vec<i32> = self
            .isr
            .iter()
            .copied()
            .filter(|id| !out_of_sync(id))
            .collect();
        self.propose(isr)
    }

    fn propose(&mut self, isr: Vec<i32>) -> Option<IsrChange> {
        let change = IsrChange {
            isr,
            partition_epoch: self.partition_epoch,
        };
        self.pending = Some(change.clone());
        Some(change)
    }

    /// The largest lag, in offsets, of a follower behind `leader_end`
    /// (Kafka's `MaxLag`); 0 with no follower.
    pub fn max_lag(&self, leader_end: i64) -> i64 {
        self.followers
            .values()
            .map(|f| leader_end - f.log_end_offset.max(0))
            .max()
            .unwrap_or(0)
            .max(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_000_000;

    fn three() -> LeaderState {
        LeaderState::new(1, &[1, 2, 3], &[1, 2, 3], 0, NOW)
    }

    #[test]
    fn the_high_watermark_is_the_smallest_log_end_in_the_isr() {
        let mut state = three();
        assert_eq!(state.high_watermark(10), UNKNOWN, "no follower fetched yet");
        state.follower_fetched(2, 10, 10, NOW);
        assert_eq!(state.high_watermark(10), UNKNOWN, "3 has not fetched");
        state.follower_fetched(3, 7, 10, NOW);
        assert_eq!(state.high_watermark(10), 7);
        state.follower_fetched(3, 10, 10, NOW);
        assert_eq!(state.high_watermark(12), 10, "the leader wrote more since");
        // A follower out of the ISR does not hold it back.
        state.update(&[1, 2, 3], &[1, 2], 1, NOW);
        state.follower_fetched(3, 0, 12, NOW);
        state.follower_fetched(2, 12, 12, NOW);
        assert_eq!(state.high_watermark(12), 12);
    }

    #[test]
    fn a_lagging_follower_is_dropped_and_holds_the_high_watermark_until_the_shrink_commits() {
        let mut state = three();
        state.follower_fetched(2, 5, 5, NOW);
        state.follower_fetched(3, 5, 5, NOW);
        // 2 keeps up; 3 stops fetching at 5 while the leader moves on.
        state.follower_fetched(2, 20, 20, NOW + 20_000);
        assert_eq!(state.propose_shrink(20, NOW + 20_000, 30_000), None);
        let shrink = state
            .propose_shrink(20, NOW + 30_001, 30_000)
            .expect("3 lagged past the limit");
        assert_eq!(shrink.isr, vec![1, 2]);
        assert_eq!(
            state.propose_shrink(20, NOW + 40_000, 30_000),
            None,
            "one in flight"
        );
        assert_eq!(
            state.high_watermark(20),
            5,
            "3 still counts until committed"
        );
        state.update(&[1, 2, 3], &[1, 2], 1, NOW + 30_100);
        assert!(state.pending().is_none());
        assert_eq!(state.high_watermark(20), 20);
    }

    #[test]
    fn a_follower_that_fetched_the_previous_end_is_still_caught_up() {
        let mut state = three();
        state.follower_fetched(3, 10, 10, NOW);
        // The leader keeps writing; each fetch reaches the end the leader
        // had at the one before.
        for i in 1..100 {
            let t = NOW + i * 1_000;
            state.follower_fetched(3, 10 * i, 10 * (i + 1), t);
            state.follower_fetched(2, 10 * (i + 1), 10 * (i + 1), t);
        }
        assert_eq!(state.propose_shrink(1000, NOW + 100_000, 30_000), None);
    }

    #[test]
    fn a_follower_joins_once_it_reaches_the_high_watermark_and_the_epoch_start() {
        let mut state = LeaderState::new(1, &[1, 2, 3], &[1, 2], 4, NOW);
        state.follower_fetched(2, 50, 50, NOW);
        state.follower_fetched(3, 30, 50, NOW);
        assert_eq!(
            state.propose_expand(3, 50, 40),
            None,
            "behind the high watermark"
        );
        state.follower_fetched(3, 50, 50, NOW);
        let expand = state.propose_expand(3, 50, 40).expect("caught up");
        assert_eq!(
            expand,
            IsrChange {
                isr: vec![1, 2, 3],
                partition_epoch: 4
            }
        );
        assert_eq!(state.high_watermark(60), 50, "3 counts while it is added");
        // The answer to an older proposal leaves this one in flight.
        state.clear_pending(&IsrChange {
            isr: vec![1],
            partition_epoch: 3,
        });
        assert!(state.is_pending(&expand));
        assert_eq!(state.high_watermark(60), 50, "3 still counts");
        // Refused: the next check may ask again.
        state.clear_pending(&expand);
        assert!(state.propose_expand(3, 50, 40).is_some());
        assert_eq!(state.propose_expand(2, 50, 40), None, "already in");
        assert!(!state.follower_fetched(9, 1, 50, NOW), "not a replica");
    }

    #[test]
    fn an_older_partition_epoch_changes_nothing() {
        let mut state = LeaderState::new(1, &[1, 2, 3], &[1, 2, 3], 5, NOW);
        state.update(&[1, 2, 3], &[1], 4, NOW);
        assert_eq!(state.isr(), &[1, 2, 3]);
        assert_eq!(state.max_lag(10), 10);
    }
}
