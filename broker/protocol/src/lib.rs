//! `runnel-protocol`: the sans-io Kafka wire protocol layer of the broker.
//!
//! - [`batch`]: the RecordBatch v2 header view (the 61 bytes the broker
//!   reads), its validation, and the in-place patches an append makes.
//! - [`records`]: the records inside a batch, decompressed, for the paths
//!   that may look at them (compaction, timestamp lookups); never the
//!   produce or fetch path.
//! - [`builder`]: builds uncompressed batches for tests, tools and benchmarks.
//!
//! Framing, the API version table and the Fetch response writer come with
//! the protocol server issue.

pub mod batch;
pub mod builder;
pub mod records;

pub use batch::{BatchError, BatchHeader};
pub use builder::BatchBuilder;
