//! `runnel-operator`: the kube-rs operator for the `Cluster`, `Topic` and
//! `ConsumerGroup` resources.
//!
//! Empty until the operator issue lands.
