//! Fencing and unfencing a broker, sans-io, as Kafka's
//! `ReplicationControlManager` does: each function returns the records
//! the controller appends; nothing changes until they are replayed.
//!
//! - A broker is fenced when its heartbeats stop for
//!   `broker.session.timeout.ms`: a BrokerRegistrationChangeRecord marks
//!   it fenced, and each partition it led gets a new leader from the ISR
//!   or none (a PartitionChangeRecord, which bumps the leader epoch).
//!   It leaves every ISR, but never empties one: as Kafka does without
//!   KIP-966's ELR, the last member stays, so the broker that held the
//!   data is the one elected when it returns.
//! - A broker is unfenced when it heartbeats again (or registers anew):
//!   it leads again every leaderless partition whose ISR holds it.
//!
//! A fenced leader's partitions go to the next in-sync replica on a live
//! broker; a single-replica partition (or one whose other ISR members are
//! down too) has no leader until its last in-sync replica returns.

use crate::image::{MetadataImage, PartitionImage};
use crate::records::{
    BrokerRegistrationChangeRecord, MetadataRecord, NO_LEADER_CHANGE, PartitionChangeRecord,
};

/// A partition with no leader (Kafka's `LeaderConstants.NO_LEADER`).
pub const NO_LEADER: i32 = -1;

/// The records that fence broker `id`, or none when it is not registered
/// or is fenced already.
pub fn fence_broker(image: &MetadataImage, id: i32) -> Vec<MetadataRecord> {
    fence(image, id, false)
}

/// The records of a controlled shutdown of broker `id` (it asked with
/// `want_shut_down`): fenced as above, and marked in controlled shutdown.
pub fn shut_down_broker(image: &MetadataImage, id: i32) -> Vec<MetadataRecord> {
    fence(image, id, true)
}

fn fence(image: &MetadataImage, id: i32, controlled: bool) -> Vec<MetadataRecord> {
    let Some(broker) = image.broker(id).filter(|b| !b.fenced) else {
        return Vec::new();
    };
    let mut records = vec![MetadataRecord::from(BrokerRegistrationChangeRecord {
        broker_id: id,
        broker_epoch: broker.epoch,
        fenced: 1,
        in_controlled_shutdown: i8::from(controlled),
        ..BrokerRegistrationChangeRecord::default()
    })];
    records.extend(partition_changes(image, |partition| {
        leave(image, partition, id).map(|(leader, isr)| (leader, Some(isr)))
    }));
    records
}

/// The partition records of broker `id` registering anew (restarted,
/// maybe with an empty log dir): it leaves every ISR and leadership it
/// shares with live in-sync replicas, as when fenced, and must catch up
/// before it is in sync again; where it is the last in-sync replica it
/// leads (again), as [`lead_again`].
pub fn rejoin_partitions(image: &MetadataImage, id: i32) -> Vec<MetadataRecord> {
    partition_changes(image, |partition| match leave(image, partition, id) {
        Some((NO_LEADER, isr)) if isr.contains(&id) => {
            (partition.leader != id).then_some((id, Some(isr)))
        }
        Some((leader, isr)) => Some((leader, Some(isr))),
        None => {
            (partition.leader == NO_LEADER && partition.isr.contains(&id)).then_some((id, None))
        }
    })
}

/// The records that unfence broker `id` and give it back the leaderless
/// partitions whose ISR holds it; none when it is not registered. A
/// broker that is not fenced still takes its leaderless partitions (it
/// registered anew after it was fenced).
pub fn unfence_broker(image: &MetadataImage, id: i32) -> Vec<MetadataRecord> {
    let Some(broker) = image.broker(id) else {
        return Vec::new();
    };
    let mut records = Vec::new();
    if broker.fenced {
        records.push(MetadataRecord::from(BrokerRegistrationChangeRecord {
            broker_id: id,
            broker_epoch: broker.epoch,
            fenced: -1,
            ..BrokerRegistrationChangeRecord::default()
        }));
    }
    records.extend(lead_again(image, id));
    records
}

/// The records that make broker `id` lead each leaderless partition whose
/// ISR holds it: what a broker that registers anew after it was fenced
/// gets back.
pub fn lead_again(image: &MetadataImage, id: i32) -> Vec<MetadataRecord> {
    partition_changes(image, |partition| {
        (partition.leader == NO_LEADER && partition.isr.contains(&id)).then_some((id, None))
    })
}

/// The leader and ISR of `partition` once broker `id` left it, when that
/// changes anything. A partition it led gets the first of its replicas
/// (in assignment order) that is in the ISR and on a live broker, as
/// Kafka's election; with none, no leader, until one returns.
fn leave(image: &MetadataImage, partition: &PartitionImage, id: i32) -> Option<(i32, Vec<i32>)> {
    let leads = partition.leader == id;
    let in_isr = partition.isr.contains(&id);
    if !leads && !in_isr {
        return None;
    }
    let mut isr: Vec<i32> = partition.isr.iter().copied().filter(|r| *r != id).collect();
    if isr.is_empty() {
        isr = partition.isr.clone();
    }
    if !leads && isr == partition.isr {
        return None;
    }
    let leader = if leads {
        elect(image, partition, &isr, id).unwrap_or(NO_LEADER)
    } else {
        NO_LEADER_CHANGE
    };
    Some((leader, isr))
}

/// The first replica of `partition` in `isr`, other than `leaving`, whose
/// broker is registered, unfenced and not shutting down.
fn elect(
    image: &MetadataImage,
    partition: &PartitionImage,
    isr: &[i32],
    leaving: i32,
) -> Option<i32> {
    partition
        .replicas
        .iter()
        .copied()
        .find(|r| *r != leaving && isr.contains(r) && image.is_live_broker(*r))
}

/// A PartitionChangeRecord for each partition `change` names a new
/// leader (or [`NO_LEADER_CHANGE`]) and maybe ISR for.
fn partition_changes(
    image: &MetadataImage,
    change: impl Fn(&PartitionImage) -> Option<(i32, Option<Vec<i32>>)>,
) -> Vec<MetadataRecord> {
    let mut records = Vec::new();
    for topic in image.topics() {
        for (index, partition) in &topic.partitions {
            if let Some((leader, isr)) = change(partition) {
                records.push(MetadataRecord::from(PartitionChangeRecord {
                    partition_id: *index,
                    topic_id: topic.id,
                    leader,
                    isr,
                    ..PartitionChangeRecord::default()
                }));
            }
        }
    }
    records
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use uuid::Uuid;

    use super::*;
    use crate::changes::{self, NewTopic};
    use crate::test_support::{replay, with_brokers};

    /// Brokers 1..=3 and a topic of `partitions` partitions with
    /// `replication_factor` replicas, placed by Kafka's round robin.
    fn cluster(partitions: i32, replication_factor: i16) -> MetadataImage {
        let image = with_brokers(3);
        let topic = NewTopic {
            name: "t".into(),
            id: Uuid::from_u64_pair(1, 1),
            partitions,
            replication_factor,
            configs: BTreeMap::new(),
        };
        let records = changes::create_topic(&image, &topic, &[1, 2, 3]).expect("valid");
        replay(&image, &records)
    }

    fn led_by(image: &MetadataImage, id: i32) -> Vec<i32> {
        let topic = image.topic("t").expect("topic");
        topic
            .partitions
            .iter()
            .filter(|(_, p)| p.leader == id)
            .map(|(i, _)| *i)
            .collect()
    }

    #[test]
    fn a_fenced_single_replica_leader_leaves_its_partitions_leaderless_until_it_returns() {
        let image = cluster(6, 1);
        let led = led_by(&image, 2);
        assert_eq!(led.len(), 2, "round robin gives broker 2 two of six");
        let epochs: Vec<i32> = led
            .iter()
            .map(|i| image.partition("t", *i).expect("p").leader_epoch)
            .collect();

        let fenced = replay(&image, &fence_broker(&image, 2));
        assert!(fenced.broker(2).expect("registered").fenced);
        assert!(led_by(&fenced, 2).is_empty());
        assert_eq!(led_by(&fenced, NO_LEADER), led);
        for (i, epoch) in led.iter().zip(&epochs) {
            let partition = fenced.partition("t", *i).expect("p");
            assert_eq!(partition.isr, vec![2], "the last ISR member stays");
            assert_eq!(partition.leader_epoch, epoch + 1);
        }
        assert_eq!(led_by(&fenced, 1), led_by(&image, 1), "others keep theirs");
        assert!(fence_broker(&fenced, 2).is_empty(), "fenced once");
        assert!(!fenced.broker(2).expect("registered").in_controlled_shutdown);
        let shut = replay(&image, &shut_down_broker(&image, 2));
        assert!(shut.broker(2).expect("registered").in_controlled_shutdown);
        assert_eq!(led_by(&shut, NO_LEADER), led);

        let back = replay(&fenced, &unfence_broker(&fenced, 2));
        assert!(!back.broker(2).expect("registered").fenced);
        assert_eq!(led_by(&back, 2), led);
        assert!(unfence_broker(&back, 2).is_empty(), "nothing left to do");
    }

    #[test]
    fn a_fenced_replica_leaves_the_isr_but_never_empties_it() {
        let image = cluster(3, 3);
        let fenced = replay(&image, &fence_broker(&image, 1));
        for (index, partition) in &fenced.topic("t").expect("topic").partitions {
            assert!(
                !partition.isr.contains(&1),
                "partition {index}: {partition:?}"
            );
            assert_ne!(partition.leader, 1);
        }
        let fenced = replay(&fenced, &fence_broker(&fenced, 2));
        let fenced = replay(&fenced, &fence_broker(&fenced, 3));
        for partition in fenced.topic("t").expect("topic").partitions.values() {
            assert_eq!(partition.leader, NO_LEADER);
            assert_eq!(partition.isr.len(), 1, "{partition:?}");
        }
        let back = replay(&fenced, &unfence_broker(&fenced, 3));
        let led = led_by(&back, 3);
        assert!(!led.is_empty(), "3 leads where it was the last in sync");
        assert_eq!(fence_broker(&back, 9), Vec::<MetadataRecord>::new());
    }

    #[test]
    fn a_fenced_leader_hands_its_partitions_to_the_next_live_in_sync_replica() {
        let image = cluster(3, 3);
        let led = led_by(&image, 1);
        assert_eq!(led.len(), 1);
        let before = image.partition("t", led[0]).expect("p").clone();
        let fenced = replay(&image, &fence_broker(&image, 1));
        let after = fenced.partition("t", led[0]).expect("p");
        let expected = before.replicas.iter().copied().find(|r| *r != 1);
        assert_eq!(Some(after.leader), expected, "the next replica in order");
        assert_eq!(after.leader_epoch, before.leader_epoch + 1);
        // With 2 shutting down too, 3 is the only live one in sync.
        let shut = replay(&fenced, &shut_down_broker(&fenced, 2));
        for partition in shut.topic("t").expect("topic").partitions.values() {
            assert_eq!(partition.leader, 3, "{partition:?}");
        }
    }

    #[test]
    fn a_broker_that_registers_anew_leaves_every_isr_it_shares() {
        let image = cluster(3, 3);
        let left = replay(&image, &rejoin_partitions(&image, 2));
        assert!(
            !left.broker(2).expect("registered").fenced,
            "still registered"
        );
        for partition in left.topic("t").expect("topic").partitions.values() {
            assert!(!partition.isr.contains(&2), "{partition:?}");
            assert_ne!(partition.leader, 2);
            assert!(partition.leader >= 0);
        }
        // Alone in sync, it keeps leading; leaderless, it leads again.
        let single = cluster(3, 1);
        assert!(rejoin_partitions(&single, 2).is_empty());
        let fenced = replay(&single, &fence_broker(&single, 2));
        let back = replay(&fenced, &rejoin_partitions(&fenced, 2));
        assert_eq!(led_by(&back, 2), led_by(&single, 2));
    }
}
