//! AlterPartition on the controller, sans-io: a partition leader asks to
//! change its ISR (it shrinks when a follower falls behind, grows when one
//! catches up). The checks are Kafka's `ReplicationControlManager`'s, in
//! its order; a change that passes is one PartitionChangeRecord (the ISR,
//! and the recovery state when an unclean leader finished recovering),
//! which bumps the partition epoch when replayed.

use thiserror::Error;
use uuid::Uuid;

use crate::image::{MetadataImage, PartitionImage};
use crate::records::{NO_LEADER_CHANGE, PartitionChangeRecord};

/// Kafka's `LeaderRecoveryState`.
const RECOVERED: i8 = 0;
const RECOVERING: i8 = 1;

/// One partition's part of an AlterPartition request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IsrChange {
    pub topic_id: Uuid,
    pub partition: i32,
    pub leader_epoch: i32,
    pub partition_epoch: i32,
    /// The ISR asked for, with each member's broker epoch when the
    /// request carries one (v3), else -1.
    pub new_isr: Vec<(i32, i64)>,
    pub leader_recovery_state: i8,
}

/// Why a partition's change is refused; each is one of Kafka's codes.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum AlterPartitionError {
    #[error("topic id {0} does not exist")]
    UnknownTopicId(Uuid),
    #[error("partition {partition} of topic id {topic_id} does not exist")]
    UnknownPartition { topic_id: Uuid, partition: i32 },
    #[error(
        "the request is newer than this controller's image (it may no longer be the controller)"
    )]
    NotController,
    #[error("leader epoch {asked} is older than the partition's {current}")]
    FencedLeaderEpoch { asked: i32, current: i32 },
    #[error("partition epoch {asked} is older than the partition's {current}")]
    InvalidUpdateVersion { asked: i32, current: i32 },
    #[error("broker {broker} does not lead the partition (its leader is {leader})")]
    NotLeader { broker: i32, leader: i32 },
    #[error("{0}")]
    InvalidRequest(String),
    #[error(
        "broker {0} cannot join the ISR: it is not registered, fenced, shutting down or of another epoch"
    )]
    IneligibleReplica(i32),
}

/// The record for `change` asked by `broker`, and the partition as it will
/// be once replayed.
pub fn alter_isr(
    image: &MetadataImage,
    broker: i32,
    change: &IsrChange,
) -> Result<(PartitionChangeRecord, PartitionImage), AlterPartitionError> {
    let topic = image
        .topic_by_id(&change.topic_id)
        .ok_or(AlterPartitionError::UnknownTopicId(change.topic_id))?;
    let current =
        topic
            .partitions
            .get(&change.partition)
            .ok_or(AlterPartitionError::UnknownPartition {
                topic_id: change.topic_id,
                partition: change.partition,
            })?;
    if change.leader_epoch > current.leader_epoch
        || change.partition_epoch > current.partition_epoch
    {
        return Err(AlterPartitionError::NotController);
    }
    if change.leader_epoch < current.leader_epoch {
        return Err(AlterPartitionError::FencedLeaderEpoch {
            asked: change.leader_epoch,
            current: current.leader_epoch,
        });
    }
    if change.partition_epoch < current.partition_epoch {
        return Err(AlterPartitionError::InvalidUpdateVersion {
            asked: change.partition_epoch,
            current: current.partition_epoch,
        });
    }
    if current.leader != broker {
        return Err(AlterPartitionError::NotLeader {
            broker,
            leader: current.leader,
        });
    }
    let recovery = change.leader_recovery_state;
    if recovery != RECOVERED && recovery != RECOVERING {
        return Err(AlterPartitionError::InvalidRequest(format!(
            "leader recovery state {recovery} is not one Kafka knows"
        )));
    }
    if recovery == RECOVERING && current.leader_recovery_state == RECOVERED {
        return Err(AlterPartitionError::InvalidRequest(
            "a recovered partition cannot go back to recovering".into(),
        ));
    }
    let isr: Vec<i32> = change.new_isr.iter().map(|(id, _)| *id).collect();
    if recovery == RECOVERING && isr != [broker] {
        return Err(AlterPartitionError::InvalidRequest(
            "a recovering partition's ISR is its leader alone".into(),
        ));
    }
    if !isr.contains(&broker) {
        return Err(AlterPartitionError::InvalidRequest(format!(
            "the ISR {isr:?} leaves out its leader {broker}"
        )));
    }
    if let Some(outsider) = isr.iter().find(|r| !current.replicas.contains(r)) {
        return Err(AlterPartitionError::InvalidRequest(format!(
            "broker {outsider} of the ISR {isr:?} is not a replica (replicas {:?})",
            current.replicas
        )));
    }
    let mut distinct = isr.clone();
    distinct.sort_unstable();
    distinct.dedup();
    if distinct.len() != isr.len() {
        return Err(AlterPartitionError::InvalidRequest(format!(
            "the ISR {isr:?} names a broker twice"
        )));
    }
    for (id, epoch) in &change.new_isr {
        if *id == broker || current.isr.contains(id) {
            continue;
        }
        let eligible = image.broker(*id).is_some_and(|b| {
            !b.fenced && !b.in_controlled_shutdown && (*epoch < 0 || b.epoch == *epoch)
        });
        if !eligible {
            return Err(AlterPartitionError::IneligibleReplica(*id));
        }
    }
    let record = PartitionChangeRecord {
        partition_id: change.partition,
        topic_id: change.topic_id,
        isr: Some(isr.clone()),
        leader: NO_LEADER_CHANGE,
        leader_recovery_state: if recovery == current.leader_recovery_state {
            crate::records::NO_LEADER_RECOVERY_CHANGE
        } else {
            recovery
        },
        ..PartitionChangeRecord::default()
    };
    let after = PartitionImage {
        isr,
        leader_recovery_state: recovery,
        partition_epoch: current.partition_epoch + 1,
        ..current.clone()
    };
    Ok((record, after))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::changes::{self, NewTopic};
    use crate::fencing;
    use crate::test_support::{replay, with_brokers};
    use std::collections::BTreeMap;

    const TOPIC: Uuid = Uuid::from_u64_pair(7, 7);

    /// Brokers 1..=4 (epochs 11..=14) and a one-partition topic on 1, 2, 3.
    fn cluster() -> MetadataImage {
        let image = with_brokers(4);
        let topic = NewTopic {
            name: "t".into(),
            id: TOPIC,
            partitions: 1,
            replication_factor: 3,
            configs: BTreeMap::new(),
        };
        let records = changes::create_topic(&image, &topic, &[1, 2, 3]).expect("valid");
        replay(&image, &records)
    }

    fn ask(image: &MetadataImage, isr: &[i32]) -> IsrChange {
        let p = image.partition("t", 0).expect("partition");
        IsrChange {
            topic_id: TOPIC,
            partition: 0,
            leader_epoch: p.leader_epoch,
            partition_epoch: p.partition_epoch,
            new_isr: isr.iter().map(|id| (*id, -1)).collect(),
            leader_recovery_state: 0,
        }
    }

    #[test]
    fn the_leader_shrinks_then_grows_its_isr() {
        let image = cluster();
        let (record, after) = alter_isr(&image, 1, &ask(&image, &[1, 2])).expect("shrink");
        let shrunk = replay(&image, &[record.into()]);
        assert_eq!(shrunk.partition("t", 0), Some(&after));
        assert_eq!(after.isr, vec![1, 2]);
        assert_eq!(after.partition_epoch, 1);
        // The same request again is a stale version.
        assert_eq!(
            alter_isr(&shrunk, 1, &ask(&image, &[1])).map(|_| ()),
            Err(AlterPartitionError::InvalidUpdateVersion {
                asked: 0,
                current: 1
            })
        );
        let (record, after) = alter_isr(&shrunk, 1, &ask(&shrunk, &[1, 2, 3])).expect("grow");
        let grown = replay(&shrunk, &[record.into()]);
        assert_eq!(grown.partition("t", 0), Some(&after));
        assert_eq!(after.isr, vec![1, 2, 3]);
    }

    #[test]
    fn refusals_are_kafkas() {
        let image = cluster();
        let not_leader = alter_isr(&image, 2, &ask(&image, &[2]));
        assert_eq!(
            not_leader.map(|_| ()),
            Err(AlterPartitionError::NotLeader {
                broker: 2,
                leader: 1
            })
        );
        let mut newer = ask(&image, &[1]);
        newer.leader_epoch += 1;
        assert_eq!(
            alter_isr(&image, 1, &newer).map(|_| ()),
            Err(AlterPartitionError::NotController)
        );
        let without_leader = alter_isr(&image, 1, &ask(&image, &[2, 3]));
        assert!(matches!(
            without_leader,
            Err(AlterPartitionError::InvalidRequest(_))
        ));
        let outsider = alter_isr(&image, 1, &ask(&image, &[1, 4]));
        assert!(matches!(
            outsider,
            Err(AlterPartitionError::InvalidRequest(_))
        ));
        let mut unknown = ask(&image, &[1]);
        unknown.topic_id = Uuid::from_u64_pair(9, 9);
        assert!(matches!(
            alter_isr(&image, 1, &unknown),
            Err(AlterPartitionError::UnknownTopicId(_))
        ));

        // A fenced broker cannot rejoin the ISR; one of another epoch
        // neither.
        let (record, _) = alter_isr(&image, 1, &ask(&image, &[1, 2])).expect("shrink");
        let shrunk = replay(&image, &[record.into()]);
        let fenced = replay(&shrunk, &fencing::fence_broker(&shrunk, 3));
        assert_eq!(
            alter_isr(&fenced, 1, &ask(&fenced, &[1, 2, 3])).map(|_| ()),
            Err(AlterPartitionError::IneligibleReplica(3))
        );
        let mut stale = ask(&shrunk, &[1, 2, 3]);
        stale.new_isr[2].1 = 99;
        assert_eq!(
            alter_isr(&shrunk, 1, &stale).map(|_| ()),
            Err(AlterPartitionError::IneligibleReplica(3))
        );
        stale.new_isr[2].1 = 13;
        assert!(alter_isr(&shrunk, 1, &stale).is_ok());
    }
}
