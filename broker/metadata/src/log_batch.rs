//! Metadata records in RecordBatches, as KRaft writes the
//! `__cluster_metadata` log: each record's key is null and its value the
//! framed metadata record (see [`records`](crate::records)); the batch's
//! partition leader epoch is the quorum epoch it was written in. Control
//! batches (leader changes, snapshot header and footer) hold no metadata
//! records.

use runnel_protocol::BatchBuilder;
use runnel_protocol::batch::{BatchError, validate};
use runnel_protocol::records::{BatchRecords, RecordsError};
use thiserror::Error;

use crate::records::MetadataRecord;
use crate::wire::{DecodeError, EncodeError};

#[derive(Debug, Error)]
pub enum BatchDecodeError {
    #[error("metadata batch is not a valid RecordBatch")]
    Batch(#[source] BatchError),
    #[error("records of the metadata batch at offset {base_offset} are unreadable")]
    Records {
        base_offset: i64,
        #[source]
        source: RecordsError,
    },
    #[error("record at offset {offset} has no value")]
    NullValue { offset: i64 },
    #[error("record at offset {offset} is not a metadata record")]
    Record {
        offset: i64,
        #[source]
        source: DecodeError,
    },
}

/// The records of one metadata log batch, each with its offset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetadataBatch {
    pub base_offset: i64,
    /// The batch's partition leader epoch: the quorum epoch.
    pub epoch: i32,
    /// The offset after the batch's last record.
    pub next_offset: i64,
    pub append_time_ms: i64,
    /// A control batch (no metadata records).
    pub is_control: bool,
    pub records: Vec<(i64, MetadataRecord)>,
}

/// One uncompressed batch of `records` starting at `base_offset`, stamped
/// with `epoch` and the append time `timestamp_ms`.
pub fn encode_batch(
    base_offset: i64,
    epoch: i32,
    timestamp_ms: i64,
    records: &[MetadataRecord],
) -> Result<Vec<u8>, EncodeError> {
    let mut builder = BatchBuilder::new(timestamp_ms)
        .base_offset(base_offset)
        .partition_leader_epoch(epoch);
    let mut value = bytes::BytesMut::new();
    for record in records {
        value.clear();
        record.encode(&mut value)?;
        builder.push(None, Some(&value), timestamp_ms);
    }
    Ok(builder.into_batch())
}

/// The records of the batch that starts `bytes` (which may hold more).
pub fn decode_batch(bytes: &[u8]) -> Result<MetadataBatch, BatchDecodeError> {
    let header = validate(bytes).map_err(BatchDecodeError::Batch)?;
    let mut batch = MetadataBatch {
        base_offset: header.base_offset,
        epoch: header.partition_leader_epoch,
        next_offset: header.next_offset(),
        append_time_ms: header.max_timestamp,
        is_control: header.is_control(),
        records: Vec::new(),
    };
    if batch.is_control {
        return Ok(batch);
    }
    let bytes = &bytes[..header.size_bytes()];
    let records = BatchRecords::decode(bytes).map_err(|source| BatchDecodeError::Records {
        base_offset: header.base_offset,
        source,
    })?;
    batch.records.reserve(records.records.len());
    for view in &records.records {
        let offset = records.offset(view);
        let value = records
            .value(view)
            .ok_or(BatchDecodeError::NullValue { offset })?;
        let record = MetadataRecord::decode(value)
            .map_err(|source| BatchDecodeError::Record { offset, source })?;
        batch.records.push((offset, record));
    }
    Ok(batch)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::records::golden::samples;

    #[test]
    fn a_batch_round_trips_every_record_type() {
        let records: Vec<MetadataRecord> = samples().into_iter().map(|(_, _, r)| r).collect();
        let bytes = encode_batch(100, 7, 1_700_000_000_000, &records).expect("encode");
        let batch = decode_batch(&bytes).expect("decode");
        assert_eq!(batch.base_offset, 100);
        assert_eq!(batch.epoch, 7);
        assert_eq!(batch.next_offset, 100 + records.len() as i64);
        assert!(!batch.is_control);
        let offsets: Vec<i64> = batch.records.iter().map(|(o, _)| *o).collect();
        assert_eq!(
            offsets,
            (100..100 + records.len() as i64).collect::<Vec<_>>()
        );
        let decoded: Vec<MetadataRecord> = batch.records.into_iter().map(|(_, r)| r).collect();
        assert_eq!(decoded, records);
    }

    #[test]
    fn damaged_batches_are_errors() {
        let records: Vec<MetadataRecord> = samples().into_iter().map(|(_, _, r)| r).collect();
        let bytes = encode_batch(0, 1, 0, &records).expect("encode");
        for len in [0, 10, 61, bytes.len() - 1] {
            assert!(decode_batch(&bytes[..len]).is_err(), "cut to {len}");
        }
        let mut flipped = bytes.clone();
        let last = flipped.len() - 3;
        flipped[last] ^= 0xff;
        assert!(
            decode_batch(&flipped).is_err(),
            "CRC catches a flipped byte"
        );
    }
}
