//! Partition reassignment on the controller, sans-io, as Kafka's
//! `ReplicationControlManager` (KIP-455): each function returns the
//! records to append; nothing changes until they are replayed.
//!
//! - **Start**: the partition's replicas become the target followed by the
//!   replicas leaving, with `adding_replicas` (target members it lacked)
//!   and `removing_replicas` (members the target drops). The new replicas
//!   host the partition and fetch from its leader; its leader adds them to
//!   the ISR once caught up. A target that only drops or reorders
//!   replicas completes at once, when one of it is in sync.
//! - **Completion**: once every added replica is in the ISR, the replicas
//!   become the target, the ISR loses the removed ones, and a leader the
//!   target drops hands over to the target's first live in-sync replica.
//!   Brokers removed delete their copy.
//! - **Cancel** (a null target): back to the replicas before the
//!   reassignment; those added leave.
//!
//! A new target for a partition being reassigned replaces the old one,
//! from the replicas before either.

use thiserror::Error;

use crate::fencing::NO_LEADER;
use crate::image::{MetadataImage, PartitionImage};
use crate::records::{MetadataRecord, NO_LEADER_CHANGE, PartitionChangeRecord};

#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum ReassignError {
    #[error("partition {0}-{1} does not exist")]
    UnknownPartition(String, i32),
    #[error("invalid replica assignment for {0}-{1}: {2}")]
    InvalidReplicaAssignment(String, i32, String),
    #[error("no reassignment of {0}-{1} is in progress")]
    NoReassignmentInProgress(String, i32),
}

/// A partition (topic, index) and its target replicas: `None` cancels its
/// reassignment.
pub type Reassignment = ((String, i32), Option<Vec<i32>>);

/// A partition being reassigned, as ListPartitionReassignments shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ongoing {
    pub topic: String,
    pub partition: i32,
    pub replicas: Vec<i32>,
    pub adding: Vec<i32>,
    pub removing: Vec<i32>,
}

/// The replicas before the reassignment in progress (the current ones
/// when none is).
fn original(partition: &PartitionImage) -> Vec<i32> {
    partition
        .replicas
        .iter()
        .copied()
        .filter(|r| !partition.adding_replicas.contains(r))
        .collect()
}

/// The members of `partition`'s ISR that are among `replicas`.
fn isr_within(partition: &PartitionImage, replicas: &[i32]) -> Vec<i32> {
    partition
        .isr
        .iter()
        .copied()
        .filter(|r| replicas.contains(r))
        .collect()
}

/// The record that moves `partition` to exactly `replicas` (no
/// reassignment left), or `None` while none of them is in sync.
fn settle(
    image: &MetadataImage,
    partition: &PartitionImage,
    replicas: &[i32],
) -> Option<(i32, Vec<i32>)> {
    let isr = isr_within(partition, replicas);
    if isr.is_empty() {
        return None;
    }
    let leader = if replicas.contains(&partition.leader) {
        NO_LEADER_CHANGE
    } else {
        replicas
            .iter()
            .copied()
            .find(|r| isr.contains(r) && image.is_live_broker(*r))
            .unwrap_or(NO_LEADER)
    };
    Some((leader, isr))
}

fn record(
    topic_id: uuid::Uuid,
    index: i32,
    leader: i32,
    replicas: Vec<i32>,
    (isr, adding, removing): (Option<Vec<i32>>, Vec<i32>, Vec<i32>),
) -> MetadataRecord {
    MetadataRecord::from(PartitionChangeRecord {
        partition_id: index,
        topic_id,
        leader,
        isr,
        replicas: Some(replicas),
        adding_replicas: Some(adding),
        removing_replicas: Some(removing),
        ..PartitionChangeRecord::default()
    })
}

/// The record that starts (`Some`) or cancels (`None`) the reassignment of
/// `topic`-`index` to `target`; `Ok(None)` when nothing changes.
pub fn reassign(
    image: &MetadataImage,
    topic: &str,
    index: i32,
    target: Option<&[i32]>,
) -> Result<Option<MetadataRecord>, ReassignError> {
    let unknown = || ReassignError::UnknownPartition(topic.into(), index);
    let found = image.topic(topic).ok_or_else(unknown)?;
    let partition = found.partitions.get(&index).ok_or_else(unknown)?;
    let before = original(partition);
    let ongoing = !partition.adding_replicas.is_empty() || !partition.removing_replicas.is_empty();
    let Some(target) = target else {
        if !ongoing {
            return Err(ReassignError::NoReassignmentInProgress(topic.into(), index));
        }
        let (leader, isr) =
            settle(image, partition, &before).unwrap_or((NO_LEADER_CHANGE, partition.isr.clone()));
        return Ok(Some(record(
            found.id,
            index,
            leader,
            before,
            (Some(isr), Vec::new(), Vec::new()),
        )));
    };
    let invalid = |why: String| ReassignError::InvalidReplicaAssignment(topic.into(), index, why);
    if target.is_empty() {
        return Err(invalid("the target has no replica".into()));
    }
    for (i, r) in target.iter().enumerate() {
        if target[..i].contains(r) {
            return Err(invalid(format!("broker {r} is named twice")));
        }
    }
    if !ongoing && target == before.as_slice() {
        return Ok(None);
    }
    if let Some(r) = target.iter().find(|r| image.broker(**r).is_none()) {
        return Err(invalid(format!("broker {r} is not registered")));
    }
    let adding: Vec<i32> = target
        .iter()
        .copied()
        .filter(|r| !before.contains(r))
        .collect();
    let removing: Vec<i32> = before
        .iter()
        .copied()
        .filter(|r| !target.contains(r))
        .collect();
    if adding.is_empty()
        && let Some((leader, isr)) = settle(image, partition, target)
    {
        return Ok(Some(record(
            found.id,
            index,
            leader,
            target.to_vec(),
            (Some(isr), Vec::new(), Vec::new()),
        )));
    }
    let mut replicas = target.to_vec();
    replicas.extend(removing.iter().copied());
    let isr = isr_within(partition, &replicas);
    Ok(Some(record(
        found.id,
        index,
        NO_LEADER_CHANGE,
        replicas,
        (Some(isr), adding, removing),
    )))
}

/// The records that complete every reassignment whose added replicas are
/// all in the ISR.
pub fn complete(image: &MetadataImage) -> Vec<MetadataRecord> {
    let mut records = Vec::new();
    for topic in image.topics() {
        for (index, partition) in &topic.partitions {
            let ongoing =
                !partition.adding_replicas.is_empty() || !partition.removing_replicas.is_empty();
            if !ongoing
                || !partition
                    .adding_replicas
                    .iter()
                    .all(|r| partition.isr.contains(r))
            {
                continue;
            }
            let target: Vec<i32> = partition
                .replicas
                .iter()
                .copied()
                .filter(|r| !partition.removing_replicas.contains(r))
                .collect();
            if let Some((leader, isr)) = settle(image, partition, &target) {
                records.push(record(
                    topic.id,
                    *index,
                    leader,
                    target,
                    (Some(isr), Vec::new(), Vec::new()),
                ));
            }
        }
    }
    records
}

/// Every reassignment in progress, by topic name and partition.
pub fn ongoing(image: &MetadataImage) -> Vec<Ongoing> {
    let mut out = Vec::new();
    for topic in image.topics() {
        for (index, partition) in &topic.partitions {
            if partition.adding_replicas.is_empty() && partition.removing_replicas.is_empty() {
                continue;
            }
            out.push(Ongoing {
                topic: topic.name.clone(),
                partition: *index,
                replicas: partition.replicas.clone(),
                adding: partition.adding_replicas.clone(),
                removing: partition.removing_replicas.clone(),
            });
        }
    }
    out.sort_by(|a, b| (&a.topic, a.partition).cmp(&(&b.topic, b.partition)));
    out
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use uuid::Uuid;

    use super::*;
    use crate::changes::{self, NewTopic};
    use crate::test_support::{replay, with_brokers};

    /// Brokers 1..=4 and topic `t` with one partition on broker 1.
    fn one_replica_on_1() -> MetadataImage {
        let image = with_brokers(4);
        let topic = NewTopic {
            name: "t".into(),
            id: Uuid::from_u64_pair(1, 1),
            partitions: 1,
            replication_factor: 1,
            configs: BTreeMap::new(),
        };
        let records = changes::create_topic(&image, &topic, &[1]).expect("valid");
        replay(&image, &records)
    }

    fn isr_change(image: &MetadataImage, isr: Vec<i32>) -> MetadataRecord {
        MetadataRecord::from(PartitionChangeRecord {
            partition_id: 0,
            topic_id: image.topic("t").expect("t").id,
            leader: NO_LEADER_CHANGE,
            isr: Some(isr),
            ..PartitionChangeRecord::default()
        })
    }

    #[test]
    fn a_reassignment_adds_then_completes_once_the_new_replicas_are_in_sync() {
        let image = one_replica_on_1();
        let start = reassign(&image, "t", 0, Some(&[2, 3]))
            .expect("valid")
            .expect("a change");
        let moving = replay(&image, &[start]);
        let p = moving.partition("t", 0).expect("p");
        assert_eq!(p.replicas, vec![2, 3, 1]);
        assert_eq!(
            (p.adding_replicas.clone(), p.removing_replicas.clone()),
            (vec![2, 3], vec![1])
        );
        assert_eq!(p.leader, 1, "the old leader leads until the move completes");
        assert_eq!(ongoing(&moving).len(), 1);
        assert!(complete(&moving).is_empty(), "2 and 3 are not in sync yet");
        let caught_up = replay(&moving, &[isr_change(&moving, vec![1, 2])]);
        assert!(complete(&caught_up).is_empty(), "3 is not in sync yet");
        let caught_up = replay(&caught_up, &[isr_change(&caught_up, vec![1, 2, 3])]);
        let done = replay(&caught_up, &complete(&caught_up));
        let p = done.partition("t", 0).expect("p");
        assert_eq!(p.replicas, vec![2, 3]);
        assert_eq!(p.isr, vec![2, 3]);
        assert_eq!(p.leader, 2, "the target's first in-sync replica");
        assert!(p.adding_replicas.is_empty() && p.removing_replicas.is_empty());
        assert!(ongoing(&done).is_empty());
    }

    #[test]
    fn refusals_cancels_and_no_ops() {
        let image = one_replica_on_1();
        assert_eq!(reassign(&image, "t", 0, Some(&[1])), Ok(None));
        assert!(matches!(
            reassign(&image, "t", 0, Some(&[2, 2])),
            Err(ReassignError::InvalidReplicaAssignment(..))
        ));
        assert!(matches!(
            reassign(&image, "t", 0, Some(&[9])),
            Err(ReassignError::InvalidReplicaAssignment(..))
        ));
        assert!(matches!(
            reassign(&image, "t", 0, Some(&[])),
            Err(ReassignError::InvalidReplicaAssignment(..))
        ));
        assert!(matches!(
            reassign(&image, "u", 0, Some(&[1])),
            Err(ReassignError::UnknownPartition(..))
        ));
        assert!(matches!(
            reassign(&image, "t", 0, None),
            Err(ReassignError::NoReassignmentInProgress(..))
        ));
        let start = reassign(&image, "t", 0, Some(&[2]))
            .expect("valid")
            .expect("change");
        let moving = replay(&image, &[start]);
        let cancel = reassign(&moving, "t", 0, None)
            .expect("valid")
            .expect("change");
        let back = replay(&moving, &[cancel]);
        let p = back.partition("t", 0).expect("p");
        assert_eq!(p.replicas, vec![1]);
        assert!(p.adding_replicas.is_empty() && p.removing_replicas.is_empty());
        // Dropping a replica that is not needed completes at once.
        let two = replay(
            &image,
            &[reassign(&image, "t", 0, Some(&[1, 2]))
                .expect("ok")
                .expect("c")],
        );
        let two = replay(&two, &[isr_change(&two, vec![1, 2])]);
        let two = replay(&two, &complete(&two));
        let shrink = reassign(&two, "t", 0, Some(&[2])).expect("ok").expect("c");
        let one = replay(&two, &[shrink]);
        let p = one.partition("t", 0).expect("p");
        assert_eq!(
            (p.replicas.clone(), p.isr.clone(), p.leader),
            (vec![2], vec![2], 2)
        );
    }
}
