//! `runnel-metadata` (sans-io): the cluster metadata of the broker.
pub mod records;
mod wire;

pub use records::MetadataRecord;
pub use wire::{DecodeError, EncodeError};
