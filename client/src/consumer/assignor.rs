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

/// The subscription version we send, as Java's consumer 3.5+ and
/// librdkafka 2.3+: v1 added the partitions a member owns (which the sticky
/// assignors keep where they are), v2 the generation they were owned in
/// (the newest claim wins when two members claim one partition), v3 the
/// rack (we send none).
const SUBSCRIPTION_VERSION: i16 = 3;
const ASSIGNMENT_VERSION: i16 = 0;
/// The newest versions kafka-protocol decodes.
const MAX_SUBSCRIPTION_VERSION: i16 = 3;
const MAX_ASSIGNMENT_VERSION: i16 = 3;

/// Assignors by the names Kafka's clients use.
pub const RANGE: &str = "range";
pub const ROUNDROBIN: &str = "roundrobin";
pub const STICKY: &str = "sticky";
pub const COOPERATIVE_STICKY: &str = "cooperative-sticky";

/// A member's subscription: its topics, the partitions it owns now and the
/// generation it got them in (-1 when it does not say).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subscription {
    pub topics: Vec<String>,
    pub owned: Vec<(String, i32)>,
    pub generation: i32,
}

impl Default for Subscription {
    fn default() -> Self {
        Self {
            topics: Vec::new(),
            owned: Vec::new(),
            generation: -1,
        }
    }
}

/// Our subscription metadata for JoinGroup.
pub fn encode_subscription(topics: &[String], owned: &[(String, i32)], generation: i32) -> Bytes {
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
        )
        .with_generation_id(generation)
        .with_rack_id(None);
    let mut buf = BytesMut::new();
    buf.put_i16(SUBSCRIPTION_VERSION);
    // Names and partition lists cannot fail to encode.
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
        generation: if version >= 2 {
            subscription.generation_id
        } else {
            -1
        },
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
    if protocol == COOPERATIVE_STICKY {
        return cooperative(members, partitions);
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
    let owners = current_owners(members, partitions);
    let total = all.len();
    let count = members.len();
    // `total % count` members may hold one more: those owning most now, so
    // fewer partitions move.
    let mut by_owned: Vec<&String> = members.keys().collect();
    by_owned.sort_by_key(|m| {
        std::cmp::Reverse(owners.values().filter(|o| o.as_str() == m.as_str()).count())
    });
    let quota: BTreeMap<&String, usize> = by_owned
        .into_iter()
        .enumerate()
        .map(|(i, m)| (m, total / count + usize::from(i < total % count)))
        .collect();
    let mut taken: BTreeSet<(String, i32)> = BTreeSet::new();
    // Keep what each member owns, up to its quota.
    for (tp, member) in &owners {
        let held = out.get(*member).map_or(0, Vec::len);
        if held < quota[*member]
            && taken.insert((*tp).clone())
            && let Some(owned) = out.get_mut(*member)
        {
            owned.push((*tp).clone());
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

/// KIP-429's cooperative-sticky: the sticky assignment, except that a
/// partition moving from a member that still owns it is given to nobody
/// this round; its owner revokes it and rejoins, and the next round hands
/// it over.
fn cooperative(
    members: &BTreeMap<String, Subscription>,
    partitions: &BTreeMap<String, i32>,
) -> BTreeMap<String, Vec<(String, i32)>> {
    let mut target = sticky(members, partitions);
    let owners = current_owners(members, partitions);
    for (member, assigned) in &mut target {
        assigned.retain(|tp| owners.get(tp).is_none_or(|o| *o == member));
    }
    target
}

/// Who owns each partition now, by the members' claims: claims on
/// partitions that do not exist or topics the member no longer subscribes
/// to do not count, nor do claims from a generation older than the newest
/// any member reports (that member missed a rebalance); of two claims in
/// one generation the first member (in id order) keeps the partition.
fn current_owners<'a>(
    members: &'a BTreeMap<String, Subscription>,
    partitions: &BTreeMap<String, i32>,
) -> BTreeMap<&'a (String, i32), &'a String> {
    let newest = members.values().map(|s| s.generation).max().unwrap_or(-1);
    let mut owners: BTreeMap<&(String, i32), (&String, i32)> = BTreeMap::new();
    for (member, subscription) in members {
        if subscription.generation >= 0 && subscription.generation < newest {
            continue;
        }
        for tp in &subscription.owned {
            let exists = partitions
                .get(&tp.0)
                .is_some_and(|&n| (0..n).contains(&tp.1));
            if !exists || !subscription.topics.contains(&tp.0) {
                continue;
            }
            match owners.get(tp) {
                Some((_, generation)) if *generation >= subscription.generation => {}
                _ => {
                    owners.insert(tp, (member, subscription.generation));
                }
            }
        }
    }
    owners.into_iter().map(|(tp, (m, _))| (tp, m)).collect()
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
                        ..Default::default()
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
                ..Default::default()
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
    fn cooperative_withholds_partitions_still_owned_elsewhere() {
        let partitions = BTreeMap::from([("t".to_string(), 4)]);
        let mut group = members(&[("a", &["t"]), ("b", &["t"])]);
        if let Some(a) = group.get_mut("a") {
            a.owned = (0..4).map(|p| ("t".to_string(), p)).collect();
        }
        let first = assign(COOPERATIVE_STICKY, &group, &partitions);
        assert_eq!(first["a"].len(), 2, "a keeps its share: {first:?}");
        assert!(
            first["b"].is_empty(),
            "nothing moves while a owns it: {first:?}"
        );
        // a revoked the other two: the next round gives them to b.
        if let Some(a) = group.get_mut("a") {
            a.owned = first["a"].clone();
        }
        let second = assign(COOPERATIVE_STICKY, &group, &partitions);
        assert_eq!(second["a"], first["a"]);
        assert_eq!(second["b"].len(), 2);
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
        let metadata = encode_subscription(&["a".into(), "b".into()], &[("a".into(), 3)], 7);
        assert_eq!(
            decode_subscription(&metadata),
            Some(Subscription {
                topics: vec!["a".into(), "b".into()],
                owned: vec![("a".into(), 3)],
                generation: 7,
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

    #[test]
    fn subscription_v3_bytes_as_java_writes_them() {
        let metadata = encode_subscription(&["a".into()], &[("a".into(), 3)], 7);
        let want: &[u8] = &[
            0, 3, // version
            0, 0, 0, 1, 0, 1, b'a', // topics
            0xff, 0xff, 0xff, 0xff, // user data: null
            0, 0, 0, 1, 0, 1, b'a', 0, 0, 0, 1, 0, 0, 0, 3, // owned partitions
            0, 0, 0, 7, // generation
            0xff, 0xff, // rack: null
        ];
        assert_eq!(&metadata[..], want);
        // A v1 subscription (no generation) reads as generation -1.
        let mut v1 = vec![0, 1];
        v1.extend_from_slice(&want[2..want.len() - 6]);
        assert_eq!(
            decode_subscription(&v1).map(|s| (s.owned, s.generation)),
            Some((vec![("a".to_string(), 3)], -1))
        );
    }

    #[test]
    fn claims_from_an_older_generation_do_not_count() {
        let partitions = BTreeMap::from([("t".to_string(), 2)]);
        let mut group = members(&[("a", &["t"]), ("b", &["t"])]);
        // a missed a rebalance and still claims both; b got 0 and 1 since.
        if let Some(a) = group.get_mut("a") {
            a.owned = vec![("t".into(), 0), ("t".into(), 1)];
            a.generation = 4;
        }
        if let Some(b) = group.get_mut("b") {
            b.owned = vec![("t".into(), 0), ("t".into(), 1)];
            b.generation = 5;
        }
        let out = assign(COOPERATIVE_STICKY, &group, &partitions);
        // b, the newest owner, keeps one and gives up the other; a gets
        // nothing until b has revoked it.
        assert_eq!(out["b"].len(), 1, "{out:?}");
        assert!(out["a"].is_empty(), "{out:?}");
    }
}
