//! `runnel-quorum`: the edges of the KRaft quorum core (`runnel-raft`)
//! that touch Kafka's formats, kept out of the broker so they build and test
//! alone.
//!
//! - [`quorum_state_file`]: Kafka's `quorum-state` file (the persisted
//!   election state), read and written atomically, in Kafka 4.1's JSON.
//! - [`entry_batch`]: log entries as `__cluster_metadata` record batches
//!   (a data batch as it is, a leader change as Kafka's LEADER_CHANGE
//!   control batch); one entry spans its batch's offsets.
//! - [`wire`]: `runnel-raft`'s [`Message`](runnel_raft::Message)s as
//!   Kafka's Vote, BeginQuorumEpoch, EndQuorumEpoch, Fetch and
//!   FetchSnapshot (`kafka-protocol` structs), the versions sent, Kafka's
//!   error codes; its children `wire/requests` and `wire/responses` hold
//!   the conversions of each direction.
//!
//! - [`driver`]: the quorum driver, a tokio task running one node over
//!   its [`disk_log::DiskLog`], its `quorum-state` file and TCP with
//!   Kafka's framing; the broker proposes and watches the status through a
//!   [`driver::QuorumHandle`], replays committed entries from its feed and
//!   answers the controller listener's other APIs
//!   ([`driver::DriverHooks`]).
//! - [`controller_client`]: the broker's client to the active controller
//!   (whichever voter leads), over the driver's framing.
//! - [`disk_log`]: the quorum's log on disk, `runnel-raft`'s
//!   `ReplicatedLog` over `__cluster_metadata-0`'s partition log and
//!   Kafka's snapshot files.
//!
//! Golden data made by Kafka 4.1.1's own classes is produced by the
//! programs in `golden/` (see each file's header).

pub mod controller_client;
pub mod disk_log;
pub mod driver;
pub mod entry_batch;
pub mod quorum_state_file;
pub mod wire;

pub use controller_client::{ControllerClient, ControllerClientError};
pub use driver::{
    CommittedFeed, ControllerRequest, DriverConfig, DriverError, DriverHooks, FrameError,
    ProposeError, QuorumDriver, QuorumHandle, QuorumStatus, VoterState,
};
pub use entry_batch::EntryBatchError;
pub use quorum_state_file::{QuorumStateFile, QuorumStateFileError};
pub use wire::{KafkaRequest, KafkaResponse, WireContext, WireError};
