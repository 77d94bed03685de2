//! `runnel-metadata` (sans-io): the cluster's metadata as Kafka keeps it in
//! the `__cluster_metadata` log. No files, sockets, clock or environment:
//! bytes and values in, bytes and values out.
//!
//! A change goes: validate and build records ([`changes`]) -> append them to
//! the metadata log as a batch ([`log_batch::encode_batch`]) -> replay them
//! into a [`MetadataDelta`] -> [`MetadataDelta::apply`] gives the new
//! [`MetadataImage`] (share it as `Arc`, swap it whole) and
//! [`MetadataDelta::local_changes`] tells this broker which partitions it
//! now leads, follows or must delete. At startup: load the latest snapshot
//! ([`snapshot::load_snapshot`]), then replay the log batches after it
//! ([`log_batch::decode_batch`]).
//!
//! Modules:
//! - [`records`]: Kafka 4.1's metadata records, byte-exact, every version:
//!   one file per type, the [`MetadataRecord`] enum over them, and the
//!   `MetadataRecordSerde` framing ([`MetadataRecord::encode`] /
//!   [`MetadataRecord::decode`]). Golden bytes made by Kafka's classes
//!   (`golden/Golden.java`).
//! - `wire`: the flexible-encoding primitives; [`DecodeError`] (bad or
//!   truncated bytes, unknown type or version) and [`EncodeError`].
//! - [`image`]: [`MetadataImage`] and its parts ([`TopicImage`],
//!   [`PartitionImage`], [`BrokerRegistration`], [`ConfigResource`],
//!   [`Provenance`]) with the broker's lookups: `topic(name)`,
//!   `topic_by_id`, `partition(topic, p)`, `topic_config(name)`,
//!   `broker(id)`, `feature_level`, `next_producer_id`, `offset`.
//! - [`delta`]: [`MetadataDelta`] (`new(Arc<image>)`, `replay(offset,
//!   epoch, &record)` -> [`ReplayError`] on a record the image
//!   contradicts, `apply()`, `local_changes(broker_id)` ->
//!   [`LocalReplicaChanges`]: leaders, followers, deletes, topics created
//!   and deleted, topic config keys changed).
//! - `image_records`: [`MetadataImage::to_records`], the records that
//!   rebuild an image (what a snapshot holds).
//! - [`changes`]: the controller's side: `create_topic`,
//!   `create_partitions`, `delete_topic`, `alter_topic_configs`,
//!   `allocate_producer_ids` (blocks of 1000), `register_broker`,
//!   `set_feature_level`, `validate_topic_name`; errors are [`ChangeError`].
//! - [`log_batch`]: records <-> one RecordBatch of the metadata log (null
//!   keys, framed records as values, the quorum epoch as partition leader
//!   epoch).
//! - [`snapshot`]: `.checkpoint` files in Kafka's layout: [`SnapshotId`]
//!   and its file name, `write_snapshot`, `read_snapshot`, `load_snapshot`.

pub mod alter_partition;
pub mod changes;
pub mod delta;
pub mod elections;
pub mod fencing;
pub mod image;
mod image_records;
pub mod log_batch;
pub mod reassignment;
pub mod records;
pub mod snapshot;
mod wire;

pub use changes::ChangeError;
pub use delta::{LocalPartition, LocalReplicaChanges, MetadataDelta, ReplayError, TopicPartition};
pub use image::{
    BrokerRegistration, Config, ConfigResource, MetadataImage, PartitionImage, Provenance,
    TopicImage,
};
pub use log_batch::{BatchDecodeError, MetadataBatch};
pub use records::MetadataRecord;
pub use snapshot::{SnapshotError, SnapshotId};
pub use wire::{DecodeError, EncodeError};

#[cfg(test)]
mod delta_tests;
#[cfg(test)]
mod image_tests;
#[cfg(test)]
mod test_support;
