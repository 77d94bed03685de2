//! `runnel-log`: the partition log of the Runnel broker, byte-compatible
//! with Kafka's on-disk format. Synchronous code; the server calls it from
//! its tasks.
//!
//! - [`batch`], [`records`], [`builder`]: re-exported from `runnel-protocol`,
//!   where the RecordBatch format lives: the header view, validation and
//!   patches; the records for the cleaner and time lookups; a batch builder.
//! - `file_name`: `<20-digit base offset><suffix>`, the files' names.
//! - `index_file`: the memory-mapped storage under both indexes.
//! - [`offset_index`], [`time_index`]: the `.index` and `.timeindex` formats.
//! - `scan`: chunked sequential reads of whole batches.
//! - [`segment`]: one `.log` with its indexes: append, read, recover, truncate.
//! - [`log`]: a partition's segments: offsets, roll, flush, truncation,
//!   and retention (removing whole segments by time, size and log start).
//! - `load`: opening a log and recovering it after an unclean stop.
//! - [`producer_state`]: idempotent producers' sequences and `.snapshot`s.
//! - [`txn_index`]: aborted transactions, the `.txnindex` files.
//! - [`leader_epoch`]: the first offset of each leader epoch, Kafka's
//!   `leader-epoch-checkpoint`.
//! - [`cleaner`]: compaction for `cleanup.policy=compact`.
//! - [`manager`]: all logs across `log.dirs`, checkpoints, clean shutdown.
//! - [`checkpoint`], [`topic_partition`], [`region`], [`config`], [`error`].

pub mod checkpoint;
pub mod cleaner;
pub mod config;
pub mod error;
mod file_name;
mod index_file;
pub mod leader_epoch;
mod load;
pub mod log;
pub mod manager;
pub mod offset_index;
pub mod producer_state;
pub mod region;
mod scan;
pub mod segment;
pub mod time_index;
pub mod topic_partition;
pub mod txn_index;

pub use runnel_protocol::{batch, builder, control, records};

pub use batch::{BatchError, BatchHeader};
pub use builder::BatchBuilder;
pub use config::{CleanupPolicy, LogConfig, ThrottledReplicas, TimestampType};
pub use error::LogError;
pub use load::LoadState;
pub use log::{AppendInfo, PartitionLog, ReadInfo};
pub use manager::{LogManager, ManagerConfig, SharedLog};
pub use region::FileRegion;
pub use topic_partition::TopicPartition;
