//! `runnel-operator`: the kube-rs operator for the `Cluster`, `Topic` and
//! `ConsumerGroup` resources.
//!
//! - [`crd`]: the resources' types, whose schemas are the CRDs in `crds/`.
//! - [`objects`]: the StatefulSet, Services, ConfigMap and
//!   PodDisruptionBudget a `Cluster` becomes.
//!
//! The reconcilers, chart and images come with the rest of the operator
//! issue.

pub mod crd;
pub mod objects;
