//! Replay scenarios through the change builders: what the image and this
//! broker's local changes become.

use std::collections::BTreeMap;
use std::sync::Arc;

use uuid::Uuid;

use crate::changes::{self, NewTopic};
use crate::delta::{MetadataDelta, ReplayError, TopicPartition};
use crate::image::MetadataImage;
use crate::records::{MetadataRecord, NO_LEADER_CHANGE, PartitionChangeRecord};

const T1: Uuid = Uuid::from_u64_pair(1, 1);
const T2: Uuid = Uuid::from_u64_pair(2, 2);

/// Replays `records` onto `image` from its next offset.
fn replay(image: &MetadataImage, records: &[MetadataRecord]) -> MetadataDelta {
    let mut delta = MetadataDelta::new(Arc::new(image.clone()));
    let mut offset = image.offset();
    for record in records {
        offset += 1;
        delta.replay(offset, 3, record).expect("replays");
    }
    delta
}

fn new_topic(name: &str, id: Uuid, partitions: i32, factor: i16) -> NewTopic {
    NewTopic {
        name: name.into(),
        id,
        partitions,
        replication_factor: factor,
        configs: BTreeMap::from([("retention.ms".into(), "1000".into())]),
    }
}

fn tp(topic: &str, partition: i32) -> TopicPartition {
    TopicPartition {
        topic: topic.into(),
        partition,
    }
}

fn with_topic() -> MetadataImage {
    let empty = MetadataImage::empty();
    let records =
        changes::create_topic(&empty, &new_topic("orders", T1, 3, 2), &[1, 2, 3]).expect("valid");
    replay(&empty, &records).apply()
}

#[test]
fn creating_a_topic_makes_this_broker_leader_and_follower() {
    let empty = MetadataImage::empty();
    let records =
        changes::create_topic(&empty, &new_topic("orders", T1, 3, 2), &[1, 2, 3]).expect("valid");
    let delta = replay(&empty, &records);
    let changes = delta.local_changes(1);
    // Round-robin: p0 [1,2], p1 [2,3], p2 [3,1].
    assert_eq!(
        changes.leaders.keys().collect::<Vec<_>>(),
        [&tp("orders", 0)]
    );
    assert_eq!(
        changes.followers.keys().collect::<Vec<_>>(),
        [&tp("orders", 2)]
    );
    assert!(changes.deletes.is_empty());
    assert_eq!(
        changes.topics_created,
        BTreeMap::from([("orders".into(), T1)])
    );
    let leader = &changes.leaders[&tp("orders", 0)];
    assert_eq!(leader.topic_id, T1);
    assert_eq!(leader.state.replicas, [1, 2]);
    assert_eq!(leader.state.isr, [1, 2]);
    assert_eq!(leader.state.leader_epoch, 0);
    assert_eq!(
        changes.topic_configs["orders"],
        BTreeMap::from([("retention.ms".into(), Some("1000".into()))])
    );

    let image = delta.apply();
    assert_eq!(image.offset(), records.len() as i64 - 1);
    let topic = image.topic("orders").expect("created");
    assert_eq!(topic.id, T1);
    assert_eq!(topic.partitions.len(), 3);
    assert!(Arc::ptr_eq(topic, image.topic_by_id(&T1).expect("by id")));
    assert_eq!(image.partition("orders", 2).expect("p2").replicas, [3, 1]);
    assert_eq!(
        image.topic_config("orders").expect("config")["retention.ms"],
        "1000"
    );
}

#[test]
fn deleting_a_topic_deletes_its_local_partitions_and_configs() {
    let image = with_topic();
    let records = changes::delete_topic(&image, "orders").expect("exists");
    let delta = replay(&image, &records);
    let changes = delta.local_changes(2);
    assert_eq!(
        changes.deletes,
        BTreeMap::from([(tp("orders", 0), T1), (tp("orders", 1), T1)])
    );
    assert_eq!(
        changes.topics_deleted,
        BTreeMap::from([("orders".into(), T1)])
    );
    assert!(
        changes.topic_configs.is_empty(),
        "a deleted topic's configs are not news"
    );
    let after = delta.apply();
    assert!(after.topic("orders").is_none());
    assert!(after.topic_by_id(&T1).is_none());
    assert!(after.topic_config("orders").is_none());
}

#[test]
fn moving_leadership_away_makes_a_follower_and_leaving_replicas_deletes() {
    let image = with_topic();
    let leader_moves = PartitionChangeRecord {
        partition_id: 0,
        topic_id: T1,
        leader: 2,
        ..PartitionChangeRecord::default()
    };
    let replicas_move = PartitionChangeRecord {
        partition_id: 2,
        topic_id: T1,
        replicas: Some(vec![3, 2]),
        isr: Some(vec![3, 2]),
        ..PartitionChangeRecord::default()
    };
    let delta = replay(&image, &[leader_moves.into(), replicas_move.into()]);
    let changes = delta.local_changes(1);
    assert!(changes.leaders.is_empty());
    let follower = &changes.followers[&tp("orders", 0)];
    assert_eq!(follower.state.leader, 2);
    assert_eq!(follower.state.leader_epoch, 1);
    assert_eq!(follower.state.partition_epoch, 1);
    assert_eq!(changes.deletes, BTreeMap::from([(tp("orders", 2), T1)]));
    let for_2 = delta.local_changes(2);
    assert!(for_2.leaders.contains_key(&tp("orders", 0)));
    assert!(for_2.followers.contains_key(&tp("orders", 2)));

    // Unchanged topics share their Arc with the old image.
    let other = changes::create_topic(&image, &new_topic("other", T2, 1, 1), &[1]).expect("ok");
    let next = replay(&image, &other).apply();
    assert!(Arc::ptr_eq(
        image.topic("orders").expect("old"),
        next.topic("orders").expect("new")
    ));
}

#[test]
fn an_isr_change_keeps_the_leader_epoch_and_is_news_to_the_leader() {
    let image = with_topic();
    let shrink = PartitionChangeRecord {
        partition_id: 0,
        topic_id: T1,
        isr: Some(vec![1]),
        leader: NO_LEADER_CHANGE,
        ..PartitionChangeRecord::default()
    };
    let delta = replay(&image, &[shrink.into()]);
    let leader = &delta.local_changes(1).leaders[&tp("orders", 0)];
    assert_eq!(leader.state.isr, [1]);
    assert_eq!(leader.state.leader_epoch, 0);
    assert_eq!(leader.state.partition_epoch, 1);
}

#[test]
fn configs_are_set_and_unset() {
    let image = with_topic();
    let set = BTreeMap::from([
        ("cleanup.policy".to_owned(), Some("compact".to_owned())),
        ("retention.ms".to_owned(), None),
    ]);
    let records = changes::alter_topic_configs(&image, "orders", &set).expect("exists");
    assert_eq!(records.len(), 2);
    let delta = replay(&image, &records);
    assert_eq!(delta.local_changes(9).topic_configs["orders"], set);
    let after = delta.apply();
    let config = after.topic_config("orders").expect("set");
    assert_eq!(config.len(), 1);
    assert_eq!(config["cleanup.policy"], "compact");
    // Already so: no records.
    assert_eq!(
        changes::alter_topic_configs(&after, "orders", &set),
        Ok(vec![])
    );
    let unset = BTreeMap::from([("cleanup.policy".to_owned(), None)]);
    let records = changes::alter_topic_configs(&after, "orders", &unset).expect("exists");
    assert!(
        replay(&after, &records)
            .apply()
            .topic_config("orders")
            .is_none()
    );
}

#[test]
fn inconsistent_records_are_typed_errors_that_change_nothing() {
    let image = with_topic();
    let mut delta = MetadataDelta::new(Arc::new(image.clone()));
    let next = image.offset() + 1;
    let unknown_partition = PartitionChangeRecord {
        partition_id: 9,
        topic_id: T1,
        ..PartitionChangeRecord::default()
    };
    assert_eq!(
        delta.replay(next, 3, &unknown_partition.into()),
        Err(ReplayError::UnknownPartition {
            id: T1,
            partition: 9
        })
    );
    let unknown_topic = crate::records::PartitionRecord {
        topic_id: T2,
        partition_id: 0,
        ..Default::default()
    };
    assert!(matches!(
        delta.replay(next, 3, &unknown_topic.into()),
        Err(ReplayError::UnknownTopicId { id: T2, .. })
    ));
    let again = crate::records::TopicRecord {
        version: 0,
        name: "orders".into(),
        topic_id: T2,
    };
    assert!(matches!(
        delta.replay(next, 3, &again.into()),
        Err(ReplayError::TopicNameExists { .. })
    ));
    let remove = crate::records::RemoveTopicRecord {
        version: 0,
        topic_id: T2,
    };
    assert!(delta.replay(next, 3, &remove.into()).is_err());
    let fence = crate::records::FenceBrokerRecord {
        version: 0,
        id: 5,
        epoch: 1,
    };
    assert!(matches!(
        delta.replay(next, 3, &fence.into()),
        Err(ReplayError::UnknownBroker { id: 5, .. })
    ));
    let noop = crate::records::NoOpRecord::default().into();
    assert!(matches!(
        delta.replay(image.offset(), 3, &noop),
        Err(ReplayError::OffsetOrder { .. })
    ));
    assert_eq!(delta.apply(), image);
}

#[test]
fn validation_refuses_bad_requests() {
    use crate::ChangeError;
    let image = with_topic();
    let create = |topic: NewTopic| changes::create_topic(&image, &topic, &[1, 2, 3]);
    assert!(matches!(
        create(new_topic("orders", T2, 1, 1)),
        Err(ChangeError::TopicExists { .. })
    ));
    assert!(matches!(
        create(new_topic("x", T1, 1, 1)),
        Err(ChangeError::TopicIdExists { .. })
    ));
    assert!(matches!(
        create(new_topic("a/b", T2, 1, 1)),
        Err(ChangeError::InvalidTopicName { .. })
    ));
    assert!(matches!(
        create(new_topic("..", T2, 1, 1)),
        Err(ChangeError::InvalidTopicName { .. })
    ));
    assert!(matches!(
        create(new_topic("x", T2, 0, 1)),
        Err(ChangeError::InvalidPartitionCount { .. })
    ));
    assert!(matches!(
        create(new_topic("x", T2, 1, 0)),
        Err(ChangeError::InvalidReplicationFactor { .. })
    ));
    assert!(matches!(
        create(new_topic("x", T2, 1, 4)),
        Err(ChangeError::ReplicationFactorTooLarge {
            factor: 4,
            brokers: 3
        })
    ));
    let long = "a".repeat(250);
    assert!(matches!(
        create(new_topic(&long, T2, 1, 1)),
        Err(ChangeError::InvalidTopicName { .. })
    ));
    assert!(matches!(
        changes::delete_topic(&image, "nope"),
        Err(ChangeError::UnknownTopic { .. })
    ));
    assert!(matches!(
        changes::create_partitions(&image, "orders", 3, &[1, 2, 3]),
        Err(ChangeError::InvalidPartitionCount {
            count: 3,
            current: 3,
            ..
        })
    ));
    assert!(matches!(
        changes::set_feature_level("metadata.version", -1),
        Err(ChangeError::InvalidFeatureLevel { .. })
    ));
}

#[test]
fn added_partitions_keep_the_replication_factor_and_are_local_news() {
    let image = with_topic();
    let records = changes::create_partitions(&image, "orders", 5, &[1, 2, 3]).expect("grows");
    assert_eq!(records.len(), 2);
    let delta = replay(&image, &records);
    let changes = delta.local_changes(1);
    // p3 [1,2] leader 1; p4 [2,3] not local.
    assert_eq!(
        changes.leaders.keys().collect::<Vec<_>>(),
        [&tp("orders", 3)]
    );
    assert!(changes.followers.is_empty());
    let after = delta.apply();
    assert_eq!(after.topic("orders").expect("topic").partitions.len(), 5);
    assert_eq!(after.partition("orders", 4).expect("p4").replicas, [2, 3]);
}

#[test]
fn producer_id_blocks_follow_each_other() {
    let empty = MetadataImage::empty();
    let (records, block) = changes::allocate_producer_ids(&empty, 1, 5).expect("first");
    assert_eq!(
        (block.first_producer_id, block.last_producer_id()),
        (0, 999)
    );
    let image = replay(&empty, &records).apply();
    assert_eq!(image.next_producer_id(), 1000);
    let (records, block) = changes::allocate_producer_ids(&image, 2, 6).expect("second");
    assert_eq!(block.first_producer_id, 1000);
    let image = replay(&image, &records).apply();
    assert_eq!(image.next_producer_id(), 2000);
    // Replaying a stale block is refused.
    let mut delta = MetadataDelta::new(Arc::new(image.clone()));
    let stale = crate::records::ProducerIdsRecord {
        next_producer_id: 1000,
        ..Default::default()
    };
    assert!(matches!(
        delta.replay(image.offset() + 1, 3, &stale.into()),
        Err(ReplayError::ProducerIdNotIncreasing { .. })
    ));
}

#[test]
fn brokers_register_fence_and_unregister() {
    use crate::image::BrokerRegistration;
    use crate::records::{FenceBrokerRecord, UnfenceBrokerRecord, UnregisterBrokerRecord};
    let broker = BrokerRegistration {
        id: 1,
        incarnation_id: T1,
        epoch: 10,
        endpoints: vec![],
        supported_features: vec![],
        rack: Some("a".into()),
        fenced: true,
        in_controlled_shutdown: false,
        is_migrating_zk_broker: false,
        log_dirs: vec![],
    };
    let mut records = changes::register_broker(&broker);
    records.extend(changes::set_feature_level("metadata.version", 27).expect("valid"));
    records.push(
        UnfenceBrokerRecord {
            version: 0,
            id: 1,
            epoch: 10,
        }
        .into(),
    );
    let image = replay(&MetadataImage::empty(), &records).apply();
    assert!(!image.broker(1).expect("registered").fenced);
    assert_eq!(image.feature_level("metadata.version"), Some(27));
    let wrong_epoch = FenceBrokerRecord {
        version: 0,
        id: 1,
        epoch: 9,
    };
    let mut delta = MetadataDelta::new(Arc::new(image.clone()));
    assert!(matches!(
        delta.replay(image.offset() + 1, 3, &wrong_epoch.into()),
        Err(ReplayError::BrokerEpochMismatch { .. })
    ));
    let gone = UnregisterBrokerRecord {
        version: 0,
        broker_id: 1,
        broker_epoch: 10,
    };
    let image = replay(&image, &[gone.into()]).apply();
    assert!(image.broker(1).is_none());
}
