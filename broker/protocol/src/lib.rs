//! `runnel-protocol`: the sans-io Kafka wire protocol layer of the broker.
//!
//! Framing, the API version table, the RecordBatch header view and the Fetch
//! response writer land here with the protocol server issue; until then the
//! crate is an empty member of the workspace so the layout of DESIGN.md holds.
