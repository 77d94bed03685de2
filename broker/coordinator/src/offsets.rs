//! Committed offsets in memory: what OffsetCommit writes, OffsetFetch
//! reads, and replaying `__consumer_offsets` rebuilds.
//!
//! The store never writes the log itself: the broker appends the record
//! (built from an [`OffsetKey`] and [`OffsetValue`]) and then calls
//! [`OffsetStore::commit`], and it writes tombstones for the keys that
//! [`OffsetStore::expire`] and [`OffsetStore::delete_group`] return.

use std::collections::BTreeMap;

use crate::offsets_topic::{OffsetKey, OffsetValue, OffsetsRecord};

/// Offsets of one group by topic, then partition.
type GroupOffsets = BTreeMap<String, BTreeMap<i32, OffsetValue>>;

/// What a group's offset retention counts from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RetentionClock {
    /// The group has members: its offsets stay.
    Paused,
    /// A stable consumer group: offsets of the topics its members subscribe
    /// to stay, the others count from their commit time.
    SinceCommitExcept(std::collections::BTreeSet<String>),
    /// Each offset's commit time (groups that only commit, Kafka's
    /// "simple" consumers).
    SinceCommit,
    /// The time the group became empty.
    Since(i64),
}

/// Committed offsets by group, topic and partition. Ordered maps keep
/// listings and expiry deterministic; nesting lets `fetch` look up by `&str`.
#[derive(Debug, Default, Clone)]
pub struct OffsetStore {
    groups: BTreeMap<String, GroupOffsets>,
}

impl OffsetStore {
    pub fn new() -> Self {
        Self::default()
    }

    /// Records `value` as the committed offset, replacing any earlier one.
    pub fn commit(&mut self, group: &str, topic: &str, partition: i32, value: OffsetValue) {
        self.groups
            .entry(group.to_owned())
            .or_default()
            .entry(topic.to_owned())
            .or_default()
            .insert(partition, value);
    }

    pub fn fetch(&self, group: &str, topic: &str, partition: i32) -> Option<&OffsetValue> {
        self.groups.get(group)?.get(topic)?.get(&partition)
    }

    /// Groups with at least one committed offset, in name order.
    pub fn groups(&self) -> impl Iterator<Item = &str> {
        self.groups.keys().map(String::as_str)
    }

    /// `(topic, partition, value)` of every offset `group` committed, in
    /// topic then partition order; empty for an unknown group.
    pub fn offsets_of(&self, group: &str) -> impl Iterator<Item = (&str, i32, &OffsetValue)> {
        self.groups
            .get(group)
            .into_iter()
            .flatten()
            .flat_map(|(topic, partitions)| {
                partitions
                    .iter()
                    .map(move |(partition, value)| (topic.as_str(), *partition, value))
            })
    }

    /// Forgets every offset of `group`; returns their keys so the broker can
    /// write tombstones.
    pub fn delete_group(&mut self, group: &str) -> Vec<OffsetKey> {
        let Some(offsets) = self.groups.remove(group) else {
            return Vec::new();
        };
        offsets
            .into_iter()
            .flat_map(|(topic, partitions)| {
                partitions.into_keys().map(move |partition| OffsetKey {
                    group: group.to_owned(),
                    topic: topic.clone(),
                    partition,
                })
            })
            .collect()
    }

    /// Removes the offsets that retention has expired and returns their keys
    /// (for tombstones), as Kafka's `GroupMetadata.removeExpiredOffsets`:
    /// `clock` says for each group what its retention counts from (nothing
    /// expires while a group has members); an offset with a legacy
    /// `expire_timestamp_ms` expires once `now_ms` reaches it, any other
    /// once `now_ms - base >= retention_ms`.
    pub fn expire(
        &mut self,
        now_ms: i64,
        retention_ms: i64,
        clock: impl Fn(&str) -> RetentionClock,
    ) -> Vec<OffsetKey> {
        let mut expired = Vec::new();
        self.groups.retain(|group, offsets| {
            let clock = clock(group);
            let since = match &clock {
                RetentionClock::Paused => return true,
                RetentionClock::SinceCommit | RetentionClock::SinceCommitExcept(_) => None,
                RetentionClock::Since(ms) => Some(*ms),
            };
            offsets.retain(|topic, partitions| {
                if let RetentionClock::SinceCommitExcept(subscribed) = &clock
                    && subscribed.contains(topic)
                {
                    return true;
                }
                partitions.retain(|partition, value| {
                    let base = since.unwrap_or(value.commit_timestamp_ms);
                    let gone = match value.expire_timestamp_ms {
                        Some(expire_timestamp_ms) => now_ms >= expire_timestamp_ms,
                        None => now_ms.saturating_sub(base) >= retention_ms,
                    };
                    if gone {
                        expired.push(OffsetKey {
                            group: group.clone(),
                            topic: topic.clone(),
                            partition: *partition,
                        });
                    }
                    !gone
                });
                !partitions.is_empty()
            });
            !offsets.is_empty()
        });
        expired
    }

    /// Replays one `__consumer_offsets` record: a value commits, a tombstone
    /// removes. Group metadata records carry no offsets and are ignored here.
    pub fn apply(&mut self, record: OffsetsRecord) {
        match record {
            OffsetsRecord::Offset {
                key,
                value: Some(value),
            } => {
                self.groups
                    .entry(key.group)
                    .or_default()
                    .entry(key.topic)
                    .or_default()
                    .insert(key.partition, value);
            }
            OffsetsRecord::Offset { key, value: None } => {
                // Drop emptied maps so `groups()` lists only groups with offsets.
                let Some(offsets) = self.groups.get_mut(&key.group) else {
                    return;
                };
                if let Some(partitions) = offsets.get_mut(&key.topic) {
                    partitions.remove(&key.partition);
                    if partitions.is_empty() {
                        offsets.remove(&key.topic);
                    }
                }
                if offsets.is_empty() {
                    self.groups.remove(&key.group);
                }
            }
            OffsetsRecord::GroupMetadata { .. } => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::offsets_topic::NO_LEADER_EPOCH;

    fn value(offset: i64, commit_timestamp_ms: i64) -> OffsetValue {
        OffsetValue {
            offset,
            leader_epoch: NO_LEADER_EPOCH,
            metadata: String::new(),
            commit_timestamp_ms,
            expire_timestamp_ms: None,
        }
    }

    fn key(group: &str, topic: &str, partition: i32) -> OffsetKey {
        OffsetKey {
            group: group.into(),
            topic: topic.into(),
            partition,
        }
    }

    #[test]
    fn commit_then_fetch_latest() {
        let mut store = OffsetStore::new();
        assert_eq!(store.fetch("g", "t", 0), None);
        store.commit("g", "t", 0, value(1, 10));
        store.commit("g", "t", 0, value(5, 20));
        store.commit("g", "t", 1, value(7, 20));
        assert_eq!(store.fetch("g", "t", 0), Some(&value(5, 20)));
        assert_eq!(store.fetch("g", "t", 1), Some(&value(7, 20)));
        assert_eq!(store.fetch("g", "t", 2), None);
        assert_eq!(store.fetch("other", "t", 0), None);
    }

    #[test]
    fn groups_and_offsets_are_listed_in_order() {
        let mut store = OffsetStore::new();
        store.commit("b", "t", 1, value(1, 0));
        store.commit("a", "u", 0, value(2, 0));
        store.commit("a", "t", 3, value(3, 0));
        store.commit("a", "t", 1, value(4, 0));
        assert_eq!(store.groups().collect::<Vec<_>>(), ["a", "b"]);
        let offsets: Vec<_> = store
            .offsets_of("a")
            .map(|(topic, partition, v)| (topic, partition, v.offset))
            .collect();
        assert_eq!(offsets, [("t", 1, 4), ("t", 3, 3), ("u", 0, 2)]);
        assert_eq!(store.offsets_of("missing").count(), 0);
    }

    #[test]
    fn delete_group_returns_keys_for_tombstones() {
        let mut store = OffsetStore::new();
        store.commit("g", "t", 0, value(1, 0));
        store.commit("g", "u", 2, value(1, 0));
        store.commit("h", "t", 0, value(1, 0));
        assert_eq!(
            store.delete_group("g"),
            [key("g", "t", 0), key("g", "u", 2)]
        );
        assert_eq!(store.groups().collect::<Vec<_>>(), ["h"]);
        assert_eq!(store.delete_group("g"), []);
    }

    #[test]
    fn expire_only_touches_empty_groups_past_retention() {
        let mut store = OffsetStore::new();
        store.commit("empty", "t", 0, value(1, 1_000));
        store.commit("empty", "t", 1, value(1, 5_000));
        store.commit("active", "t", 0, value(1, 1_000));
        let clock = |group: &str| {
            if group == "empty" {
                RetentionClock::SinceCommit
            } else {
                RetentionClock::Paused
            }
        };
        let expired = store.expire(6_000, 5_000, clock);
        // 6_000 - 1_000 == retention: expired, as Kafka's `>=`.
        assert_eq!(expired, [key("empty", "t", 0)]);
        assert!(store.fetch("empty", "t", 1).is_some());
        assert!(store.fetch("active", "t", 0).is_some());

        let expired = store.expire(10_000, 5_000, clock);
        assert_eq!(expired, [key("empty", "t", 1)]);
        assert_eq!(store.groups().collect::<Vec<_>>(), ["active"]);
    }

    #[test]
    fn expire_honours_legacy_expire_timestamp() {
        let mut store = OffsetStore::new();
        let explicit = OffsetValue {
            expire_timestamp_ms: Some(2_000),
            ..value(1, 1_000)
        };
        store.commit("g", "t", 0, explicit);
        assert_eq!(
            store.expire(1_999, i64::MAX, |_| RetentionClock::SinceCommit),
            []
        );
        assert_eq!(
            store.expire(2_000, i64::MAX, |_| RetentionClock::SinceCommit),
            [key("g", "t", 0)]
        );
    }

    #[test]
    fn a_stable_consumer_group_keeps_the_offsets_of_its_subscribed_topics() {
        let mut store = OffsetStore::new();
        store.commit("g", "subscribed", 0, value(1, 1_000));
        store.commit("g", "dropped", 0, value(1, 1_000));
        let clock = |_: &str| RetentionClock::SinceCommitExcept(["subscribed".to_string()].into());
        assert_eq!(store.expire(10_000, 5_000, clock), [key("g", "dropped", 0)]);
        assert!(store.fetch("g", "subscribed", 0).is_some());
    }

    #[test]
    fn an_emptied_group_counts_from_when_it_emptied() {
        let mut store = OffsetStore::new();
        store.commit("g", "t", 0, value(1, 1_000));
        let clock = |_: &str| RetentionClock::Since(8_000);
        assert_eq!(store.expire(12_999, 5_000, clock), []);
        assert_eq!(store.expire(13_000, 5_000, clock), [key("g", "t", 0)]);
    }

    #[test]
    fn expire_does_not_overflow() {
        let mut store = OffsetStore::new();
        store.commit("g", "t", 0, value(1, i64::MIN));
        assert_eq!(
            store.expire(i64::MAX, i64::MAX, |_| RetentionClock::SinceCommit),
            [key("g", "t", 0)]
        );
    }

    #[test]
    fn apply_replays_the_log_and_tombstones_remove() {
        let mut store = OffsetStore::new();
        let log = [
            OffsetsRecord::GroupMetadata {
                group: "g".into(),
                value: None,
            },
            OffsetsRecord::Offset {
                key: key("g", "t", 0),
                value: Some(value(1, 0)),
            },
            OffsetsRecord::Offset {
                key: key("g", "t", 0),
                value: Some(value(2, 1)),
            },
            OffsetsRecord::Offset {
                key: key("g", "t", 1),
                value: Some(value(3, 1)),
            },
            OffsetsRecord::Offset {
                key: key("g", "t", 1),
                value: None,
            },
            OffsetsRecord::Offset {
                key: key("h", "t", 0),
                value: Some(value(4, 1)),
            },
            OffsetsRecord::Offset {
                key: key("h", "t", 0),
                value: None,
            },
            OffsetsRecord::Offset {
                key: key("never", "t", 0),
                value: None,
            },
        ];
        for record in log {
            store.apply(record);
        }
        assert_eq!(store.fetch("g", "t", 0), Some(&value(2, 1)));
        assert_eq!(store.fetch("g", "t", 1), None);
        assert_eq!(store.groups().collect::<Vec<_>>(), ["g"]);
    }

    #[test]
    fn replay_through_bytes_matches_commits() {
        let mut live = OffsetStore::new();
        let mut replayed = OffsetStore::new();
        live.commit("g", "t", 0, value(9, 3));
        let record = OffsetsRecord::Offset {
            key: key("g", "t", 0),
            value: live.fetch("g", "t", 0).cloned(),
        };
        let k = record.encode_key().expect("key");
        let v = record.encode_value().expect("value");
        replayed.apply(OffsetsRecord::decode(&k, v.as_deref()).expect("decode"));
        assert_eq!(replayed.fetch("g", "t", 0), live.fetch("g", "t", 0));
    }
}
