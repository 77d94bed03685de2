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
use kafka_protocol::messages::consumer_protocol_subscription::ConsumerProtocolSubscription;
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};

/// The subscription version we send (the oldest, read by every client).
const SUBSCRIPTION_VERSION: i16 = 0;
const ASSIGNMENT_VERSION: i16 = 0;
/// The newest versions kafka-protocol decodes.
const MAX_SUBSCRIPTION_VERSION: i16 = 3;
const MAX_ASSIGNMENT_VERSION: i16 = 3;

/// Assignors by the names Kafka's clients use.
pub const RANGE: &str = "range";
pub const ROUNDROBIN: &str = "roundrobin";

/// Our subscription metadata for JoinGroup.
pub fn encode_subscription(topics: &[String]) -> Bytes {
    let subscription = ConsumerProtocolSubscription::default().with_topics(
        topics
            .iter()
            .map(|t| StrBytes::from_string(t.clone()))
            .collect(),
    );
    let mut buf = BytesMut::new();
    buf.put_i16(SUBSCRIPTION_VERSION);
    // Encoding a plain list of names cannot fail at version 0.
    let _ = subscription.encode(&mut buf, SUBSCRIPTION_VERSION);
    buf.freeze()
}

/// A member's subscribed topics from its metadata (any version); `None`
/// when unreadable.
pub fn decode_subscription(metadata: &[u8]) -> Option<Vec<String>> {
    let mut buf = Bytes::copy_from_slice(metadata);
    if buf.remaining() < 2 {
        return None;
    }
    let version = buf.get_i16().clamp(0, MAX_SUBSCRIPTION_VERSION);
    let subscription = ConsumerProtocolSubscription::decode(&mut buf, version).ok()?;
    Some(subscription.topics.iter().map(|t| t.to_string()).collect())
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
    members: &BTreeMap<String, Vec<String>>,
    partitions: &BTreeMap<String, i32>,
) -> BTreeMap<String, Vec<(String, i32)>> {
    let mut out: BTreeMap<String, Vec<(String, i32)>> =
        members.keys().map(|m| (m.clone(), Vec::new())).collect();
    let subscribers = |topic: &str| -> Vec<&String> {
        members
            .iter()
            .filter(|(_, topics)| topics.iter().any(|t| t == topic))
            .map(|(m, _)| m)
            .collect()
    };
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

#[cfg(test)]
mod tests {
    use super::*;

    fn members(list: &[(&str, &[&str])]) -> BTreeMap<String, Vec<String>> {
        list.iter()
            .map(|(m, topics)| {
                (
                    m.to_string(),
                    topics.iter().map(|t| t.to_string()).collect(),
                )
            })
            .collect()
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
        let metadata = encode_subscription(&["a".into(), "b".into()]);
        assert_eq!(
            decode_subscription(&metadata),
            Some(vec!["a".into(), "b".into()])
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
