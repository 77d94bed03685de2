//! The controller's side of the CONTROLLER listener, and the broker's
//! side of its registration with the active controller.
//!
//! - `listener`: the requests that reach this node's CONTROLLER listener
//!   and are not the quorum's own (the quorum driver hands them over):
//!   BrokerRegistration and BrokerHeartbeat, ApiVersions, and the admin
//!   requests brokers forward (CreateTopics ...), which the active
//!   controller answers with the broker's own handlers.
//! - `registration`: this broker registers with the active controller at
//!   start (BrokerRegistration, through runnel-quorum's ControllerClient)
//!   and heartbeats it every `broker.heartbeat.interval.ms`; a heartbeat
//!   the controller refuses (a new controller that does not know this
//!   broker's epoch) makes it register again.
//!
//! - `sessions`: the active controller notes when it last heard from each
//!   broker and fences those silent for `broker.session.timeout.ms`
//!   (their partitions lose their leader); a fenced broker's next
//!   heartbeat, or its next registration, unfences it and gives its
//!   partitions back (runnel-metadata's `fencing` builds the records).
//!
//! - `alter_partition`: AlterPartition, a partition leader's ISR changes.
//! - `elections`: unclean and preferred leader elections the controller
//!   runs on its own.
//!
//! Registrations are RegisterBrokerRecords in the metadata log, so every
//! node's image lists the same brokers.

mod alter_partition;
mod elections;
mod listener;
mod registration;
mod sessions;

pub use elections::elect_leaders_periodically;
pub use listener::serve_controller_requests;
pub use registration::keep_registered;
pub use sessions::{BrokerSessions, fence_expired_sessions};
