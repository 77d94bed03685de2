//! Leader elections the controller runs besides fencing, sans-io, as
//! Kafka's `ReplicationControlManager`: each returns the records to append
//! and each partition's outcome; nothing changes until they are replayed.
//!
//! - **Preferred** (ElectLeaders type 0, and `auto.leader.rebalance.enable`):
//!   a partition goes back to its first replica when that one is in the
//!   ISR on a live broker.
//! - **Unclean** (ElectLeaders type 1, and `unclean.leader.election.enable`):
//!   a partition with no leader gets a live in-sync replica, or, with none,
//!   the first live replica, whose log becomes the partition's (what the
//!   others had past it is lost: the ISR is that replica alone).
//! - **Imbalance**: the partitions whose preferred leader leads elsewhere,
//!   counted per broker as Kafka's `leader.imbalance.per.broker.percentage`
//!   check counts them.

use std::collections::BTreeMap;

use thiserror::Error;

use crate::fencing::NO_LEADER;
use crate::image::{MetadataImage, PartitionImage};
use crate::records::{MetadataRecord, PartitionChangeRecord};

/// Why a partition's election did not happen; each is one of Kafka's codes.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum ElectionError {
    #[error("partition {0}-{1} does not exist")]
    UnknownPartition(String, i32),
    #[error("the leader of {0}-{1} is already the one this election would pick")]
    NotNeeded(String, i32),
    #[error("the preferred leader {2} of {0}-{1} is not in the ISR or not live")]
    PreferredNotAvailable(String, i32, i32),
    #[error("no replica of {0}-{1} is live")]
    EligibleNotAvailable(String, i32),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ElectionType {
    Preferred,
    Unclean,
}

/// One partition's outcome.
pub type Outcome = ((String, i32), Result<(), ElectionError>);

/// The records of `kind` elections of `partitions` (every partition when
/// `None`, where only those that need one are reported), with each
/// partition's outcome.
pub fn elect(
    image: &MetadataImage,
    kind: ElectionType,
    partitions: Option<&[(String, i32)]>,
) -> (Vec<MetadataRecord>, Vec<Outcome>) {
    let all: Vec<(String, i32)>;
    let asked = match partitions {
        Some(asked) => asked,
        None => {
            all = image
                .topics()
                .flat_map(|t| t.partitions.keys().map(|p| (t.name.clone(), *p)))
                .collect();
            &all
        }
    };
    let mut records = Vec::new();
    let mut outcomes = Vec::new();
    for (topic, index) in asked {
        let key = (topic.clone(), *index);
        let Some(found) = image.topic(topic) else {
            outcomes.push((
                key,
                Err(ElectionError::UnknownPartition(topic.clone(), *index)),
            ));
            continue;
        };
        let Some(partition) = found.partitions.get(index) else {
            outcomes.push((
                key,
                Err(ElectionError::UnknownPartition(topic.clone(), *index)),
            ));
            continue;
        };
        let change = match kind {
            ElectionType::Preferred => preferred(image, topic, *index, partition),
            ElectionType::Unclean => unclean(image, topic, *index, partition),
        };
        match change {
            Ok((leader, isr)) => {
                records.push(MetadataRecord::from(PartitionChangeRecord {
                    partition_id: *index,
                    topic_id: found.id,
                    leader,
                    isr,
                    ..PartitionChangeRecord::default()
                }));
                outcomes.push((key, Ok(())));
            }
            // Every partition was asked: only those that needed it count.
            Err(ElectionError::NotNeeded(..)) if partitions.is_none() => {}
            Err(err) => outcomes.push((key, Err(err))),
        }
    }
    (records, outcomes)
}

fn preferred(
    image: &MetadataImage,
    topic: &str,
    index: i32,
    partition: &PartitionImage,
) -> Result<(i32, Option<Vec<i32>>), ElectionError> {
    let Some(&first) = partition.replicas.first() else {
        return Err(ElectionError::UnknownPartition(topic.into(), index));
    };
    if partition.leader == first {
        return Err(ElectionError::NotNeeded(topic.into(), index));
    }
    if !partition.isr.contains(&first) || !image.is_live_broker(first) {
        return Err(ElectionError::PreferredNotAvailable(
            topic.into(),
            index,
            first,
        ));
    }
    Ok((first, None))
}

fn unclean(
    image: &MetadataImage,
    topic: &str,
    index: i32,
    partition: &PartitionImage,
) -> Result<(i32, Option<Vec<i32>>), ElectionError> {
    if partition.leader != NO_LEADER {
        return Err(ElectionError::NotNeeded(topic.into(), index));
    }
    let in_sync = partition
        .replicas
        .iter()
        .copied()
        .find(|r| partition.isr.contains(r) && image.is_live_broker(*r));
    if let Some(leader) = in_sync {
        return Ok((leader, None));
    }
    match partition
        .replicas
        .iter()
        .copied()
        .find(|r| image.is_live_broker(*r))
    {
        Some(leader) => Ok((leader, Some(vec![leader]))),
        None => Err(ElectionError::EligibleNotAvailable(topic.into(), index)),
    }
}

/// The partitions whose preferred leader is live, in sync and not leading,
/// of every broker whose share of such partitions (of those it is
/// preferred for) is above `percentage`: what Kafka's automatic leader
/// rebalance elects.
pub fn imbalanced(image: &MetadataImage, percentage: u32) -> Vec<(String, i32)> {
    let mut preferred_for: BTreeMap<i32, (usize, Vec<(String, i32)>)> = BTreeMap::new();
    for topic in image.topics() {
        for (index, partition) in &topic.partitions {
            let Some(&first) = partition.replicas.first() else {
                continue;
            };
            let entry = preferred_for.entry(first).or_default();
            entry.0 += 1;
            if partition.leader != first
                && partition.isr.contains(&first)
                && image.is_live_broker(first)
            {
                entry.1.push((topic.name.clone(), *index));
            }
        }
    }
    preferred_for
        .into_values()
        .filter(|(total, off)| off.len() * 100 > *total * percentage as usize)
        .flat_map(|(_, off)| off)
        .collect()
}

/// The leaderless partitions an unclean election may give a leader:
/// those of topics where `unclean(topic)` says it is enabled.
pub fn leaderless(image: &MetadataImage, unclean: impl Fn(&str) -> bool) -> Vec<(String, i32)> {
    image
        .topics()
        .filter(|t| unclean(&t.name))
        .flat_map(|t| {
            t.partitions
                .iter()
                .filter(|(_, p)| p.leader == NO_LEADER)
                .map(|(i, _)| (t.name.clone(), *i))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap as Map;

    use uuid::Uuid;

    use super::*;
    use crate::changes::{self, NewTopic};
    use crate::fencing::{fence_broker, unfence_broker};
    use crate::records::NO_LEADER_CHANGE;
    use crate::test_support::{replay, with_brokers};

    fn cluster(partitions: i32) -> MetadataImage {
        let image = with_brokers(3);
        let topic = NewTopic {
            name: "t".into(),
            id: Uuid::from_u64_pair(1, 1),
            partitions,
            replication_factor: 3,
            configs: Map::new(),
        };
        let records = changes::create_topic(&image, &topic, &[1, 2, 3]).expect("valid");
        replay(&image, &records)
    }

    fn leader(image: &MetadataImage, index: i32) -> i32 {
        image.partition("t", index).expect("p").leader
    }

    #[test]
    fn a_preferred_election_gives_partitions_back_to_their_first_replica() {
        let image = cluster(3);
        let (records, outcomes) = elect(&image, ElectionType::Preferred, None);
        assert!(
            records.is_empty() && outcomes.is_empty(),
            "all preferred already"
        );
        let fenced = replay(&image, &fence_broker(&image, 1));
        let moved: Vec<i32> = (0..3).filter(|i| leader(&image, *i) == 1).collect();
        assert_eq!(moved.len(), 1);
        assert_ne!(leader(&fenced, moved[0]), 1);
        let asked = [("t".to_string(), moved[0])];
        let (_, outcomes) = elect(&fenced, ElectionType::Preferred, Some(&asked));
        assert!(matches!(
            outcomes[0].1,
            Err(ElectionError::PreferredNotAvailable(..))
        ));
        // Back and in sync again (its follower caught up).
        let back = replay(&fenced, &unfence_broker(&fenced, 1));
        let topic = back.topic("t").expect("t");
        let rejoin = MetadataRecord::from(PartitionChangeRecord {
            partition_id: moved[0],
            topic_id: topic.id,
            leader: NO_LEADER_CHANGE,
            isr: Some(vec![1, 2, 3]),
            ..PartitionChangeRecord::default()
        });
        let back = replay(&back, &[rejoin]);
        assert_eq!(
            imbalanced(&back, 10),
            asked.to_vec(),
            "broker 1 leads 0 of its 1"
        );
        let (records, outcomes) = elect(&back, ElectionType::Preferred, Some(&asked));
        assert_eq!(outcomes, vec![(asked[0].clone(), Ok(()))]);
        let balanced = replay(&back, &records);
        assert_eq!(leader(&balanced, moved[0]), 1);
        assert!(imbalanced(&balanced, 10).is_empty());
        let (_, again) = elect(&balanced, ElectionType::Preferred, Some(&asked));
        assert!(matches!(again[0].1, Err(ElectionError::NotNeeded(..))));
    }

    #[test]
    fn an_unclean_election_takes_a_live_replica_out_of_sync_when_none_in_sync_is_left() {
        let image = cluster(1);
        let mut fenced = image.clone();
        for id in [1, 2, 3] {
            fenced = replay(&fenced, &fence_broker(&fenced, id));
        }
        let last = fenced.partition("t", 0).expect("p").isr.clone();
        assert_eq!(leader(&fenced, 0), NO_LEADER);
        assert_eq!(leaderless(&fenced, |_| true), vec![("t".to_string(), 0)]);
        assert!(leaderless(&fenced, |_| false).is_empty());
        let asked = [("t".to_string(), 0)];
        let (_, none) = elect(&fenced, ElectionType::Unclean, Some(&asked));
        assert!(matches!(
            none[0].1,
            Err(ElectionError::EligibleNotAvailable(..))
        ));
        // A replica out of the ISR comes back first.
        let out_of_sync = [1, 2, 3]
            .into_iter()
            .find(|id| !last.contains(id))
            .expect("one");
        let mut back = fenced.clone();
        let mut registration = back
            .broker(out_of_sync)
            .expect("registered")
            .as_ref()
            .clone();
        registration.fenced = false;
        back = replay(&back, &crate::changes::register_broker(&registration));
        let (records, outcomes) = elect(&back, ElectionType::Unclean, Some(&asked));
        assert_eq!(outcomes, vec![(asked[0].clone(), Ok(()))]);
        let elected = replay(&back, &records);
        let partition = elected.partition("t", 0).expect("p");
        assert_eq!(partition.leader, out_of_sync);
        assert_eq!(partition.isr, vec![out_of_sync]);
    }
}
