//! Partition replication, as Kafka's ISR model: followers fetch from
//! leaders, leaders keep the ISR with the controller.
//!
//! - `fetcher`: this broker's followers' fetches, one task per source
//!   broker (times `num.replica.fetchers`), each sending Kafka's Fetch with
//!   this broker's replica id and appending what comes back as it came.
//! - `isr_updates`: the leader's side of the ISR: AlterPartition requests
//!   to the controller for followers that caught up or fell behind
//!   (`replica.lag.time.max.ms`), and the check that finds the latter.
//! - `batches`: the whole batches at the front of fetched bytes.
//! - `metrics`: Kafka's replication metrics, and the partitions this
//!   broker still catches up on (`/readyz`).
//! - `throttle`: the reassignment throttles (replication quotas) of
//!   replicas catching up, leader's and follower's.
//!
//! What a leader knows of its followers lives with each partition
//! (`replica_manager::Partition`); the leader's side of a follower's Fetch
//! is in `handlers::fetch`.

pub mod batches;
pub mod fetcher;
pub mod isr_updates;
pub mod metrics;
pub mod throttle;

pub use fetcher::ReplicaFetchers;
pub use isr_updates::IsrUpdates;
