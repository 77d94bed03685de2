//! The client-side partition assignors of Kafka's consumer protocol, as
//! Java's `RangeAssignor` and `RoundRobinAssignor`, and the protocol's
//! subscription and assignment encodings (an `i16` version, then the
//! ConsumerProtocol message), so our members can share a group with
//! librdkafka and Java consumers.

use std::collections::{BTreeMap, BTreeSet};

use bytes::{Buf, BufMut, Bytes, BytesMut};
use kafka_protocol::messages::TopicName;
use kafka_protocol::messages::consumer_protocol_assignment::{
    ConsumerProtocolAssignment, TopicPartition,
};
use kafka_protocol::messages::consumer_protocol_subscription::{
    ConsumerProtocolSubscription, TopicPartition as SubscriptionTopicPartition,
};
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};

/// The subscription version we send: v1 carries the partitions a member
/// owns, which the sticky assignor keeps where they are.
const SUBSCRIPTION_VERSION: i16 = 1;
const ASSIGNMENT_VERSION: i16 = 0;
/// The newest versions kafka-protocol decodes.
const MAX_SUBSCRIPTION_VERSION: i16 = 3;
const MAX_ASSIGNMENT_VERSION: i16 = 3;

/// Assignors by the names Kafka's clients use.
pub const RANGE: &str = "range";
pub const ROUNDROBIN: &str = "roundrobin";
pub const STICKY: &str = "sticky";

/// A member's subscription: its topics and the partitions it owns now.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Subscription {
    pub topics: Vec<String>,
    pub owned: Vec<(String, i32)>,
}

/// Our subscription metadata for JoinGroup.
pub fn encode_subscription(topics: &[String], owned: &[(String, i32)]) -> Bytes {
    let mut by_topic: BTreeMap<&str, Vec<i32>> = BTreeMap::new();
    for (topic, partition) in owned {
        by_topic.entry(topic).or_default().push(*partition);
    }
    let subscription = ConsumerProtocolSubscription::default()
        .with_topics(
            topics
                .iter()
                .map(|t| StrBytes::from_string(t.clone()))
                .collect(),
        )
        .with_owned_partitions(
            by_topic
                .into_iter()
                .map(|(topic, partitions)| {
                    SubscriptionTopicPartition::default()
                        .with_topic(TopicName(StrBytes::from_string(topic.to_string())))
                        .with_partitions(partitions)
                })
                .collect(),
        );
    let mut buf = BytesMut::new();
    buf.put_i16(SUBSCRIPTION_VERSION);
    // Names and partition lists cannot fail to encode at version 1.
    let _ = subscription.encode(&mut buf, SUBSCRIPTION_VERSION);
    buf.freeze()
}

/// A member's subscription from its metadata (any version); `None` when
/// unreadable.
pub fn decode_subscription(metadata: &[u8]) -> Option<Subscription> {
    let mut buf = Bytes::copy_from_slice(metadata);
    if buf.remaining() < 2 {
        return None;
    }
    let version = buf.get_i16().clamp(0, MAX_SUBSCRIPTION_VERSION);
    let subscription = ConsumerProtocolSubscription::decode(&mut buf, version).ok()?;
    Some(Subscription {
        topics: subscription.topics.iter().map(|t| t.to_string()).collect(),
        owned: subscription
            .owned_partitions
            .iter()
            .flat_map(|t| t.partitions.iter().map(|&p| (t.topic.0.to_string(), p)))
            .collect(),
    })
}

pub fn encode_assignment(partitions: &[(String, i32)]) -> Bytes {
    let mut by_topic: BTreeMap<&str, Vec<i32>> = BTreeMap::new();
    for (topic, partition) in partitions {
        by_topic.entry(topic).or_default().push(*partition);
    }
    let assignment = ConsumerProtocolAssignment::default().with_assigned_partitions(
        by_topic
            .into_iter()
            .map(|(topic, partitions)| {
                TopicPartition::default()
                    .with_topic(TopicName(StrBytes::from_string(topic.to_string())))
                    .with_partitions(partitions)
            })
            .collect(),
    );
    let mut buf = BytesMut::new();
    buf.put_i16(ASSIGNMENT_VERSION);
    let _ = assignment.encode(&mut buf, ASSIGNMENT_VERSION);
    buf.freeze()
}

/// The partitions an assignment gives (empty when there is none).
pub fn decode_assignment(bytes: &[u8]) -> Option<Vec<(String, i32)>> {
    if bytes.is_empty() {
        return Some(Vec::new());
    }
    let mut buf = Bytes::copy_from_slice(bytes);
    if buf.remaining() < 2 {
        return None;
    }
    let version = buf.get_i16().clamp(0, MAX_ASSIGNMENT_VERSION);
    let assignment = ConsumerProtocolAssignment::decode(&mut buf, version).ok()?;
    Some(
        assignment
            .assigned_partitions
            .iter()
            .flat_map(|t| t.partitions.iter().map(|&p| (t.topic.0.to_string(), p)))
            .collect(),
    )
}

/// Assigns the partitions of each topic (`partitions`: count by topic) to
/// the members subscribing to it (`members`: id -> topics), with the
/// assignor `protocol`. Every member gets an entry.
pub fn assign(
    protocol: &str,
    members: &BTreeMap<String, Subscription>,
    partitions: &BTreeMap<String, i32>,
) -> BTreeMap<String, Vec<(String, i32)>> {
    let mut out: BTreeMap<String, Vec<(String, i32)>> =
        members.keys().map(|m| (m.clone(), Vec::new())).collect();
    let subscribers = |topic: &str| -> Vec<&String> {
        members
            .iter()
            .filter(|(_, s)| s.topics.iter().any(|t| t == topic))
            .map(|(m, _)| m)
            .collect()
    };
    if protocol == STICKY {
        return sticky(members, partitions);
    }
    if protocol == ROUNDROBIN {
        // All partitions of all topics in order, dealt round the members,
        // skipping members not subscribed to the topic.
        let ids: Vec<&String> = members.keys().collect();
        let mut next = 0usize;
        for (topic, &count) in partitions {
            let subscribed: BTreeSet<&String> = subscribers(topic).into_iter().collect();
            if subscribed.is_empty() {
                continue;
            }
            for partition in 0..count {
                while !subscribed.contains(ids[next % ids.len()]) {
                    next += 1;
                }
                if let Some(owned) = out.get_mut(ids[next % ids.len()]) {
                    owned.push((topic.clone(), partition));
                }
                next += 1;
            }
        }
    } else {
        // Range: per topic, consecutive ranges, the first members one more.
        for (topic, &count) in partitions {
            let consumers = subscribers(topic);
            if consumers.is_empty() {
                continue;
            }
            let (each, extra) = (
                count / consumers.len() as i32,
                count % consumers.len() as i32,
            );
            let mut start = 0;
            for (i, member) in consumers.iter().enumerate() {
                let len = each + i32::from((i as i32) < extra);
                if let Some(owned) = out.get_mut(*member) {
                    owned.extend((start..start + len).map(|p| (topic.clone(), p)));
                }
                start += len;
            }
        }
    }
    out
}

/// An eager sticky assignment, as Kafka's StickyAssignor aims: as
/// balanced as the subscriptions allow (member counts differ by at most
/// one when every member subscribes to the same topics), and every
/// partition stays with its owner when that keeps the balance.
fn sticky(
    members: &BTreeMap<String, Subscription>,
    partitions: &BTreeMap<String, i32>,
) -> BTreeMap<String, Vec<(String, i32)>> {
    let mut out: BTreeMap<String, Vec<(String, i32)>> =
        members.keys().map(|m| (m.clone(), Vec::new())).collect();
    let all: Vec<(String, i32)> = partitions
        .iter()
        .flat_map(|(t, &n)| (0..n).map(move |p| (t.clone(), p)))
        .filter(|(t, _)| members.values().any(|s| s.topics.contains(t)))
        .collect();
    if members.is_empty() {
        return out;
    }
    let total = all.len();
    let count = members.len();
    // The first `total % count` members (in id order) may hold one more.
    let quota: BTreeMap<&String, usize> = members
        .keys()
        .enumerate()
        .map(|(i, m)| (m, total / count + usize::from(i < total % count)))
        .collect();
    let mut taken: BTreeSet<(String, i32)> = BTreeSet::new();
    // Keep what each member owns, up to its quota.
    for (member, subscription) in members {
        for tp in &subscription.owned {
            let exists = partitions
                .get(&tp.0)
                .is_some_and(|&n| (0..n).contains(&tp.1));
            let held = out.get(member).map_or(0, Vec::len);
            if exists
                && subscription.topics.contains(&tp.0)
                && held < quota[member]
                && taken.insert(tp.clone())
                && let Some(owned) = out.get_mut(member)
            {
                owned.push(tp.clone());
            }
        }
    }
    // The rest go, in order, to the subscribed member holding fewest.
    for tp in all {
        if taken.contains(&tp) {
            continue;
        }
        let target = members
            .iter()
            .filter(|(_, s)| s.topics.contains(&tp.0))
            .map(|(m, _)| m)
            .min_by_key(|m| {
                let held = out.get(*m).map_or(0, Vec::len);
                (held >= quota[m], held)
            });
        if let Some(member) = target
            && let Some(owned) = out.get_mut(member)
        {
            owned.push(tp.clone());
            taken.insert(tp);
        }
    }
    for owned in out.values_mut() {
        owned.sort();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn members(list: &[(&str, &[&str])]) -> BTreeMap<String, Subscription> {
        list.iter()
            .map(|(m, topics)| {
                let topics = topics.iter().map(|t| t.to_string()).collect();
                (
                    m.to_string(),
                    Subscription {
                        topics,
                        owned: Vec::new(),
                    },
                )
            })
            .collect()
    }

    #[test]
    fn sticky_keeps_owners_and_balances() {
        let partitions = BTreeMap::from([("t".to_string(), 6)]);
        let mut group = members(&[("a", &["t"]), ("b", &["t"])]);
        let first = assign(STICKY, &group, &partitions);
        assert_eq!((first["a"].len(), first["b"].len()), (3, 3));
        // A third member joins: each old member keeps 2 of its 3.
        for (m, owned) in &first {
            if let Some(s) = group.get_mut(m) {
                s.owned = owned.clone();
            }
        }
        group.insert(
            "c".into(),
            Subscription {
                topics: vec!["t".into()],
                owned: vec![],
            },
        );
        let second = assign(STICKY, &group, &partitions);
        for m in ["a", "b", "c"] {
            assert_eq!(second[m].len(), 2, "{second:?}");
        }
        for m in ["a", "b"] {
            assert!(
                second[m].iter().all(|tp| first[m].contains(tp)),
                "{m} moved: {second:?}"
            );
        }
        let mut all: Vec<_> = second.values().flatten().cloned().collect();
        all.sort();
        assert_eq!(
            all,
            (0..6).map(|p| ("t".to_string(), p)).collect::<Vec<_>>()
        );
    }

    #[test]
    fn range_gives_consecutive_partitions_first_members_one_more() {
        let partitions = BTreeMap::from([("t".to_string(), 7)]);
        let out = assign(
            RANGE,
            &members(&[("a", &["t"]), ("b", &["t"]), ("c", &["t"])]),
            &partitions,
        );
        let of = |m: &str| out[m].iter().map(|(_, p)| *p).collect::<Vec<_>>();
        assert_eq!(
            (of("a"), of("b"), of("c")),
            (vec![0, 1, 2], vec![3, 4], vec![5, 6])
        );
    }

    #[test]
    fn roundrobin_deals_partitions_to_subscribed_members() {
        let partitions = BTreeMap::from([("t".to_string(), 3), ("u".to_string(), 2)]);
        let out = assign(
            ROUNDROBIN,
            &members(&[("a", &["t", "u"]), ("b", &["t"])]),
            &partitions,
        );
        assert_eq!(
            out["a"],
            [
                ("t".to_string(), 0),
                ("t".to_string(), 2),
                ("u".to_string(), 0),
                ("u".to_string(), 1)
            ]
        );
        assert_eq!(out["b"], [("t".to_string(), 1)]);
    }

    #[test]
    fn subscriptions_and_assignments_round_trip() {
        let metadata = encode_subscription(&["a".into(), "b".into()], &[("a".into(), 3)]);
        assert_eq!(
            decode_subscription(&metadata),
            Some(Subscription {
                topics: vec!["a".into(), "b".into()],
                owned: vec![("a".into(), 3)],
            })
        );
        let assignment = encode_assignment(&[("t".into(), 2), ("t".into(), 0), ("u".into(), 1)]);
        assert_eq!(
            decode_assignment(&assignment),
            Some(vec![("t".into(), 2), ("t".into(), 0), ("u".into(), 1)])
        );
        assert_eq!(decode_assignment(&[]), Some(vec![]));
        assert_eq!(decode_subscription(&[0]), None);
    }
}
