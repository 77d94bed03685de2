//! `runnel-operator`: the kube-rs operator for the `Cluster`, `Topic` and
//! `ConsumerGroup` resources.
//!
//! - [`crd`]: the resources' types, whose schemas are the CRDs in `crds/`.
//! - [`objects`]: the StatefulSet, Services, ConfigMap and
//!   PodDisruptionBudget a `Cluster` becomes.
//! - [`forwarders`]: the forwarders' Deployment and overflow Topic of a
//!   `ConsumerGroup`'s surge.
//! - [`topic_sync`]: a `Topic` applied to the brokers (create, grow, configs).
//! - [`lag`]: a group's lag and the `ConsumerGroup` policy's decision.
//! - [`offset_reset`]: a `ConsumerGroup`'s one-time offset reset.
//! - [`surge`]: the backlog-forwarding surge's phases, as a pure state
//!   machine.
//! - [`status`]: resource statuses and conditions from what a sync saw.
//! - [`reconcile`]: the Cluster, Topic and ConsumerGroup reconcilers.
//! - [`leader`]: leader election on a Lease.
//! - [`metrics`]: what the operator's `/metrics` serves.
//! - [`run`]: `runnel-operator run`, the controllers put together.

pub mod crd;
pub mod forwarders;
pub mod lag;
pub mod leader;
pub mod metrics;
pub mod objects;
pub mod offset_reset;
pub mod reconcile;
pub mod run;
pub mod status;
pub mod surge;
pub mod topic_sync;
