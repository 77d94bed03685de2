//! `runnel-client`: a pure-Rust Kafka client with Kafka's settings, on
//! tokio and the `kafka-protocol` crate.
//!
//! - [`producer`]: batching per partition (`batch.size`, `linger.ms`),
//!   `acks`, Kafka's default partitioner; each send is a future of where the
//!   record landed.
//! - [`partitioner`]: murmur2 as Java's `Utils.murmur2`, so a key lands
//!   where the Java client puts it, and the sticky partitioner.
//! - [`cluster`] and [`connection`]: metadata and pipelined broker
//!   connections.
//!
//! - [`consumer`]: assigned partitions, committed offsets or
//!   `auto.offset.reset` to start, fetches that do not copy record bytes.
//!
//! - [`admin`]: topics (create, delete, grow, list) and their configs;
//!   groups (list, describe, committed offsets) and log end offsets.
//!
//! - [`delivery`]: the names of Runnel's delayed delivery (level configs,
//!   level topic names, the headers of moved records).
//!
//! Consumer groups (`subscribe`) and group administration are still to come.

pub mod admin;
pub mod cluster;
pub mod connection;
pub mod consumer;
pub mod datetime;
pub mod delivery;
pub mod error;
pub mod partitioner;
pub mod producer;

pub use admin::{
    Admin, ConfigEntry, GroupDescription, GroupListing, GroupMember, TopicDescription,
};
pub use consumer::{
    Consumer, ConsumerConfig, ConsumerGroupMetadata, ConsumerRecord, IsolationLevel, OffsetReset,
    RebalanceListener,
};
pub use error::{ClientError, Result};
pub use producer::{Delivery, Producer, ProducerConfig, ProducerRecord, RecordMetadata};
