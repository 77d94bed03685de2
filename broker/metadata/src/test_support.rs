//! What the change builders' tests share: replaying records onto an image,
//! and an image with brokers registered.

use std::sync::Arc;

use uuid::Uuid;

use crate::changes;
use crate::delta::MetadataDelta;
use crate::image::{BrokerRegistration, MetadataImage};
use crate::records::MetadataRecord;

/// `image` after `records`, appended after its last offset in epoch 1.
pub fn replay(image: &MetadataImage, records: &[MetadataRecord]) -> MetadataImage {
    let mut delta = MetadataDelta::new(Arc::new(image.clone()));
    let mut offset = image.offset();
    for record in records {
        offset += 1;
        delta.replay(offset, 1, record).expect("replays");
    }
    delta.apply()
}

/// An image at metadata.version 25 with brokers `1..=count` registered,
/// unfenced, broker `id` at epoch `10 + id`.
pub fn with_brokers(count: i32) -> MetadataImage {
    let mut image = replay(
        &MetadataImage::empty(),
        &changes::set_feature_level("metadata.version", 25).expect("valid"),
    );
    for id in 1..=count {
        let broker = BrokerRegistration {
            id,
            incarnation_id: Uuid::from_u64_pair(0, id as u64),
            epoch: 10 + i64::from(id),
            endpoints: vec![],
            supported_features: vec![],
            rack: None,
            fenced: false,
            in_controlled_shutdown: false,
            is_migrating_zk_broker: false,
            log_dirs: vec![],
        };
        image = replay(&image, &changes::register_broker(&broker));
    }
    image
}
