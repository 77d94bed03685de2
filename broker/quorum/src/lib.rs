//! `runnel-quorum`: the edges of the KRaft quorum core (`runnel-raft`)
//! that touch Kafka's formats, kept out of the broker so they build and test
//! alone.
//!
//! - [`quorum_state_file`]: Kafka's `quorum-state` file (the persisted
//!   election state), read and written atomically, in Kafka 4.1's JSON.

pub mod entry_batch;
pub mod quorum_state_file;

pub use quorum_state_file::{QuorumStateFile, QuorumStateFileError};
