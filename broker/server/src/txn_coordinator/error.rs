//! Why the transaction coordinator fails: its storage (`TxnStoreError`),
//! or a request it refuses (`TxnRequestError`): the state machine's
//! refusal, or an id whose `__transaction_state` partition this broker
//! does not lead. Kafka's codes are chosen in error_codes.rs.

use runnel_coordinator::OffsetsRecordError;
use runnel_coordinator::txn::TxnError;
use thiserror::Error;

use super::TRANSACTION_TOPIC;

#[derive(Debug, Error)]
pub enum TxnStoreError {
    #[error("the {TRANSACTION_TOPIC} partition {0} is missing")]
    MissingPartition(i32),
    #[error("cannot encode a {TRANSACTION_TOPIC} record")]
    Encode(#[from] OffsetsRecordError),
    #[error("cannot read or write {TRANSACTION_TOPIC} or a transaction marker")]
    Log(#[from] runnel_log::LogError),
    #[error("cannot decode a {TRANSACTION_TOPIC} batch")]
    Records(#[from] runnel_log::records::RecordsError),
    #[error("cannot hand out a producer id")]
    ProducerId(#[from] crate::cluster_metadata::MetadataError),
    #[error(transparent)]
    Load(#[from] crate::log_reader::ReadError),
    #[error(
        "the write to {TRANSACTION_TOPIC} partition {partition} was not replicated: {outcome:?}"
    )]
    NotReplicated {
        partition: i32,
        outcome: crate::replica_manager::Awaited,
    },
    #[error(
        "{pending} transaction markers were not written in {waited_ms} ms (one: {topic}-{partition}): their leaders could not be reached or refused them"
    )]
    MarkersNotWritten {
        pending: usize,
        topic: String,
        partition: i32,
        waited_ms: u64,
    },
}

/// Why a transactional request fails.
#[derive(Debug, Error)]
pub enum TxnRequestError {
    #[error(transparent)]
    Refused(#[from] TxnError),
    /// The id's partition is not loaded here (Kafka's NOT_COORDINATOR).
    #[error("this broker does not coordinate {TRANSACTION_TOPIC} partition {partition}")]
    NotCoordinator { partition: i32 },
    #[error(transparent)]
    Store(#[from] TxnStoreError),
}
