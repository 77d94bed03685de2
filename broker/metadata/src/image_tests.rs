//! `to_records` and snapshots: replaying an image's records rebuilds it.

use std::collections::BTreeMap;
use std::sync::Arc;

use uuid::Uuid;

use crate::changes::{self, NewTopic};
use crate::delta::MetadataDelta;
use crate::image::{BrokerRegistration, MetadataImage};
use crate::records::{MetadataRecord, PartitionChangeRecord};
use crate::snapshot::{SnapshotId, load_snapshot, read_snapshot, write_snapshot};

fn replay(image: &MetadataImage, records: &[MetadataRecord]) -> MetadataImage {
    let mut delta = MetadataDelta::new(Arc::new(image.clone()));
    let mut offset = image.offset();
    for record in records {
        offset += 1;
        delta.replay(offset, 4, record).expect("replays");
    }
    delta.apply()
}

/// An image built by a random run of changes.
fn generated_image(seed: u64) -> MetadataImage {
    let mut rng = fastrand::Rng::with_seed(seed);
    let mut image = MetadataImage::empty();
    let level = changes::set_feature_level("metadata.version", 27).expect("valid");
    image = replay(&image, &level);
    let brokers: Vec<i32> = (1..=rng.i32(1..5)).collect();
    for id in &brokers {
        let broker = BrokerRegistration {
            id: *id,
            incarnation_id: Uuid::from_u64_pair(rng.u64(..), rng.u64(..)),
            epoch: rng.i64(0..100),
            endpoints: vec![],
            supported_features: vec![],
            rack: rng.bool().then(|| format!("rack-{id}")),
            fenced: rng.bool(),
            in_controlled_shutdown: false,
            is_migrating_zk_broker: false,
            log_dirs: vec![],
        };
        image = replay(&image, &changes::register_broker(&broker));
    }
    for t in 0..rng.usize(0..6) {
        let topic = NewTopic {
            name: format!("topic-{t}"),
            id: Uuid::from_u64_pair(rng.u64(..), rng.u64(..)),
            partitions: rng.i32(1..6),
            replication_factor: rng.i16(1..=brokers.len() as i16),
            configs: BTreeMap::from([("retention.ms".into(), rng.u32(..).to_string())]),
        };
        let records = changes::create_topic(&image, &topic, &brokers).expect("valid");
        image = replay(&image, &records);
        if rng.bool() {
            let change = PartitionChangeRecord {
                partition_id: 0,
                topic_id: topic.id,
                leader: -1,
                isr: Some(vec![]),
                directories: Some(vec![Uuid::nil(); topic.replication_factor as usize]),
                eligible_leader_replicas: Some(vec![brokers[0]]),
                ..PartitionChangeRecord::default()
            };
            image = replay(&image, &[change.into()]);
        }
        if rng.bool() {
            image = replay(
                &image,
                &changes::delete_topic(&image, &topic.name).expect("exists"),
            );
        }
    }
    for _ in 0..rng.usize(0..3) {
        let (records, _) = changes::allocate_producer_ids(&image, 1, 1).expect("ids");
        image = replay(&image, &records);
    }
    image
}

/// Images equal but for their provenance.
fn same_content(a: &MetadataImage, b: &MetadataImage) -> bool {
    let mut b = b.clone();
    b.provenance = a.provenance;
    *a == b
}

#[test]
fn replaying_an_images_records_rebuilds_it() {
    for seed in 0..200 {
        let image = generated_image(seed);
        let rebuilt = replay(&MetadataImage::empty(), &image.to_records());
        assert!(
            same_content(&image, &rebuilt),
            "seed {seed}: {image:#?}\n{rebuilt:#?}"
        );
    }
}

#[test]
fn a_snapshot_round_trips_an_image() {
    for seed in 0..50 {
        let image = generated_image(seed);
        let id = SnapshotId::of(&image);
        let bytes = write_snapshot(&image, 1_700_000_000_000, 1_700_000_000_500).expect("write");
        let snapshot = read_snapshot(&bytes).expect("read");
        assert_eq!(snapshot.last_contained_log_time_ms, 1_700_000_000_000);
        assert_eq!(snapshot.records, image.to_records());
        let loaded = load_snapshot(&bytes, id).expect("load");
        assert_eq!(loaded, image, "seed {seed}");
    }
}

#[test]
fn snapshot_file_names_are_kafkas() {
    let id = SnapshotId {
        end_offset: 1234,
        epoch: 5,
    };
    assert_eq!(id.file_name(), "00000000000000001234-0000000005.checkpoint");
    assert_eq!(SnapshotId::parse_file_name(&id.file_name()), Some(id));
    for other in [
        "00000000000000000000.log",
        "00000000000000001234-0000000005.checkpoint.part",
        "0000000000000000123x-0000000005.checkpoint",
        "1234-5.checkpoint",
    ] {
        assert_eq!(SnapshotId::parse_file_name(other), None, "{other}");
    }
}

#[test]
fn damaged_snapshots_are_errors_not_panics() {
    let bytes = write_snapshot(&generated_image(3), 1, 2).expect("write");
    for len in (0..bytes.len()).step_by(7) {
        assert!(read_snapshot(&bytes[..len]).is_err(), "cut to {len}");
    }
    let mut rng = fastrand::Rng::with_seed(7);
    for _ in 0..2000 {
        let mut damaged = bytes.clone();
        let at = rng.usize(..damaged.len());
        damaged[at] ^= rng.u8(1..);
        let _ = read_snapshot(&damaged);
    }
}
