//! Log entries as `__cluster_metadata` record batches, the form they take
//! in Fetch responses (and on disk).
//!
//! One [`Entry`] is one RecordBatch v2: its `offset` is the batch's base
//! offset, its `epoch` the batch's partition leader epoch, and its
//! `record_count` the offsets the batch spans (`last_offset_delta + 1`,
//! which must equal the records count: the metadata log is never
//! compacted, so a batch with holes is refused).
//!
//! - [`Payload::Data`] holds a whole batch (data or control) as it came.
//!   Encoding copies it and stamps the entry's base offset and epoch into
//!   the header (both outside the CRC, so the records stay untouched and a
//!   leader may propose batches built at base offset 0); its records count
//!   must be the entry's.
//! - [`Payload::LeaderChange`] is Kafka's LEADER_CHANGE control batch: one
//!   control record, key `(version 0, type 2)`, value a
//!   `LeaderChangeMessage` at version 0. Decoding reads the leader id from
//!   it. Encoding builds it deterministically from the entry, the static
//!   voters and no timestamp (-1), so every Runnel replica holds the same
//!   bytes; what a Kafka leader wrote beyond the leader id (its granting
//!   voters, its clock) is not kept.
//!
//! Control batches of other types (Kafka's snapshot header and footer,
//! `KRaftVersion`, `KRaftVoters`) are data to the quorum: they decode to
//! [`Payload::Data`] and travel unchanged.
//!
//! | control record | key (int16 version, int16 type) | value                |
//! |----------------|---------------------------------|----------------------|
//! | LEADER_CHANGE  | `00 00 00 02`                   | LeaderChangeMessage  |

use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::leader_change_message::{LeaderChangeMessage, Voter};
use kafka_protocol::protocol::{Decodable, Encodable};
use runnel_protocol::batch::{BatchError, Batches};
use runnel_protocol::records::{BatchRecords, RecordsError};
use runnel_protocol::{BatchBuilder, BatchHeader};
use runnel_raft::{Entry, Epoch, NodeId, Payload};

/// The LEADER_CHANGE control record's type.
pub const LEADER_CHANGE_TYPE: i16 = 2;
/// The `LeaderChangeMessage` version Kafka writes
/// (`ControlRecordUtils.LEADER_CHANGE_CURRENT_VERSION`).
pub const LEADER_CHANGE_VERSION: i16 = 0;
/// The timestamp of the LEADER_CHANGE batches we build: none.
pub const NO_TIMESTAMP: i64 = -1;

const BASE_OFFSET_AT: usize = 0;
const PARTITION_LEADER_EPOCH_AT: usize = 12;

#[derive(Debug, thiserror::Error)]
pub enum EntryBatchError {
    #[error("the batch at byte {position} of the records is not a valid RecordBatch")]
    Batch {
        position: usize,
        #[source]
        source: BatchError,
    },
    #[error(
        "the batch at offset {base_offset} spans {span} offsets but holds {records_count} records"
    )]
    OffsetSpan {
        base_offset: i64,
        span: i64,
        records_count: i32,
    },
    #[error("the batch at byte {position} has base offset {base_offset} and epoch {epoch}")]
    NegativePosition {
        position: usize,
        base_offset: i64,
        epoch: i32,
    },
    #[error("the control batch at offset {base_offset} is unreadable")]
    ControlRecords {
        base_offset: i64,
        #[source]
        source: RecordsError,
    },
    #[error("the LEADER_CHANGE record at offset {base_offset} is unreadable")]
    LeaderChange {
        base_offset: i64,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    #[error(
        "entry at offset {offset} epoch {epoch} does not fit Kafka's int64 offsets and int32 epochs"
    )]
    OutOfRange { offset: u64, epoch: Epoch },
    #[error("entry at offset {offset} holds no whole batch")]
    NotOneBatch {
        offset: u64,
        #[source]
        source: BatchError,
    },
    #[error(
        "entry at offset {offset} spans {record_count} offsets but its batch holds {records_count} records"
    )]
    RecordCount {
        offset: u64,
        record_count: u32,
        records_count: i32,
    },
    #[error("encoding the LeaderChangeMessage of the entry at offset {offset}")]
    EncodeLeaderChange {
        offset: u64,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

/// The entries of a Fetch response's records: batches split without
/// copying (each [`Payload::Data`] shares `records`' buffer).
pub fn decode_entries(records: &Bytes) -> Result<Vec<Entry>, EntryBatchError> {
    let mut entries = Vec::new();
    let mut position = 0;
    for batch in Batches::new(records) {
        let (header, bytes) =
            batch.map_err(|source| EntryBatchError::Batch { position, source })?;
        let (Ok(offset), Ok(epoch)) = (
            u64::try_from(header.base_offset),
            u32::try_from(header.partition_leader_epoch),
        ) else {
            return Err(EntryBatchError::NegativePosition {
                position,
                base_offset: header.base_offset,
                epoch: header.partition_leader_epoch,
            });
        };
        let span = i64::from(header.last_offset_delta) + 1;
        let record_count = match u32::try_from(header.records_count) {
            Ok(count) if count >= 1 && i64::from(count) == span => count,
            _ => {
                return Err(EntryBatchError::OffsetSpan {
                    base_offset: header.base_offset,
                    span,
                    records_count: header.records_count,
                });
            }
        };
        let batch = records.slice_ref(bytes);
        let payload = match leader_change(&header, &batch)? {
            Some(leader_id) => Payload::LeaderChange { leader_id },
            None => Payload::Data(batch),
        };
        entries.push(Entry {
            offset,
            epoch,
            record_count,
            payload,
        });
        position += bytes.len();
    }
    Ok(entries)
}

/// The leader id of a LEADER_CHANGE control batch; `None` for any other
/// batch.
fn leader_change(header: &BatchHeader, batch: &Bytes) -> Result<Option<NodeId>, EntryBatchError> {
    if !header.is_control() {
        return Ok(None);
    }
    let base_offset = header.base_offset;
    let records = BatchRecords::decode_shared(batch.clone()).map_err(|source| {
        EntryBatchError::ControlRecords {
            base_offset,
            source,
        }
    })?;
    let Some(record) = records.records.first() else {
        return Ok(None);
    };
    let kind = records
        .key(record)
        .and_then(|key| key.get(2..4))
        .map(|t| i16::from_be_bytes([t[0], t[1]]));
    if kind != Some(LEADER_CHANGE_TYPE) {
        return Ok(None);
    }
    let value = records.value(record).unwrap_or_default();
    let leader_change_error =
        |source: Box<dyn std::error::Error + Send + Sync>| EntryBatchError::LeaderChange {
            base_offset,
            source,
        };
    let version = value
        .get(..2)
        .map(|v| i16::from_be_bytes([v[0], v[1]]))
        .ok_or_else(|| leader_change_error("value shorter than its version".into()))?;
    let mut value = Bytes::copy_from_slice(value);
    let message = LeaderChangeMessage::decode(&mut value, version.clamp(0, 1))
        .map_err(|e| leader_change_error(e.into()))?;
    Ok(Some(message.leader_id.0))
}

/// Appends `entry` as a batch to `out`. `voters` are the quorum's static
/// voters, written into a LEADER_CHANGE.
pub fn encode_entry(
    entry: &Entry,
    voters: &[NodeId],
    out: &mut BytesMut,
) -> Result<(), EntryBatchError> {
    let (Ok(base_offset), Ok(epoch)) = (i64::try_from(entry.offset), i32::try_from(entry.epoch))
    else {
        return Err(EntryBatchError::OutOfRange {
            offset: entry.offset,
            epoch: entry.epoch,
        });
    };
    match &entry.payload {
        Payload::Data(bytes) => {
            let header = runnel_protocol::batch::validate(bytes).map_err(|source| {
                EntryBatchError::NotOneBatch {
                    offset: entry.offset,
                    source,
                }
            })?;
            if header.size_bytes() != bytes.len() {
                return Err(EntryBatchError::NotOneBatch {
                    offset: entry.offset,
                    source: BatchError::Truncated {
                        declared: header.size_bytes(),
                        available: bytes.len(),
                    },
                });
            }
            if i64::from(header.records_count) != i64::from(entry.record_count) {
                return Err(EntryBatchError::RecordCount {
                    offset: entry.offset,
                    record_count: entry.record_count,
                    records_count: header.records_count,
                });
            }
            let start = out.len();
            out.extend_from_slice(bytes);
            let batch = &mut out[start..];
            batch[BASE_OFFSET_AT..BASE_OFFSET_AT + 8].copy_from_slice(&base_offset.to_be_bytes());
            batch[PARTITION_LEADER_EPOCH_AT..PARTITION_LEADER_EPOCH_AT + 4]
                .copy_from_slice(&epoch.to_be_bytes());
        }
        Payload::LeaderChange { leader_id } => {
            let message = LeaderChangeMessage::default()
                .with_version(LEADER_CHANGE_VERSION)
                .with_leader_id((*leader_id).into())
                .with_voters(
                    voters
                        .iter()
                        .map(|id| Voter::default().with_voter_id(*id))
                        .collect(),
                );
            let batch = leader_change_batch(base_offset, epoch, NO_TIMESTAMP, &message).map_err(
                |source| EntryBatchError::EncodeLeaderChange {
                    offset: entry.offset,
                    source,
                },
            )?;
            out.extend_from_slice(&batch);
        }
    }
    Ok(())
}

/// Kafka's LEADER_CHANGE control batch (`MemoryRecords.withLeaderChangeMessage`).
pub fn leader_change_batch(
    base_offset: i64,
    epoch: i32,
    timestamp_ms: i64,
    message: &LeaderChangeMessage,
) -> Result<Vec<u8>, Box<dyn std::error::Error + Send + Sync>> {
    let mut value = BytesMut::new();
    message.encode(&mut value, LEADER_CHANGE_VERSION)?;
    let mut key = [0u8; 4];
    key[2..].copy_from_slice(&LEADER_CHANGE_TYPE.to_be_bytes());
    let builder = BatchBuilder::new(timestamp_ms)
        .base_offset(base_offset)
        .partition_leader_epoch(epoch)
        .control()
        .record(Some(&key), Some(&value), timestamp_ms);
    Ok(builder.into_batch())
}

/// Encodes `entries` one after another: a Fetch response's records.
pub fn encode_entries(entries: &[Entry], voters: &[NodeId]) -> Result<Bytes, EntryBatchError> {
    let mut out = BytesMut::new();
    for entry in entries {
        encode_entry(entry, voters, &mut out)?;
    }
    Ok(out.freeze())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `broker/quorum/golden/LeaderChangeGolden.java`: Kafka's LEADER_CHANGE
    /// batch at offset 42, epoch 7, time 1700000000000, leader 2, voters
    /// 1, 2, 3, granting 2, 3.
    const KAFKA_LEADER_CHANGE: &str = "000000000000002a0000005e0000000702ed12cea10020000000000000018bcfe568000000018bcfe56800ffffffffffffffffffffffffffff00000001580000000800000002440000000000020400000001000000000200000000030003000000020000000003000000";

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    fn unhex(text: &str) -> Vec<u8> {
        (0..text.len())
            .step_by(2)
            .filter_map(|i| u8::from_str_radix(&text[i..i + 2], 16).ok())
            .collect()
    }

    fn voter(id: i32) -> Voter {
        Voter::default().with_voter_id(id)
    }

    pub(crate) fn data_batch(records: usize) -> Bytes {
        let mut builder = BatchBuilder::new(1_700_000_000_000);
        for i in 0..records {
            builder.push(
                None,
                Some(format!("record {i}").as_bytes()),
                1_700_000_000_000,
            );
        }
        Bytes::from(builder.into_batch())
    }

    #[test]
    fn builds_kafkas_leader_change_batch_byte_for_byte()
    -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
        let message = LeaderChangeMessage::default()
            .with_version(0)
            .with_leader_id(2.into())
            .with_voters(vec![voter(1), voter(2), voter(3)])
            .with_granting_voters(vec![voter(2), voter(3)]);
        let batch = leader_change_batch(42, 7, 1_700_000_000_000, &message)?;
        assert_eq!(hex(&batch), KAFKA_LEADER_CHANGE);
        Ok(())
    }

    #[test]
    fn reads_kafkas_leader_change_batch() -> Result<(), EntryBatchError> {
        let entries = decode_entries(&Bytes::from(unhex(KAFKA_LEADER_CHANGE)))?;
        let expected = Entry {
            offset: 42,
            epoch: 7,
            record_count: 1,
            payload: Payload::LeaderChange { leader_id: 2 },
        };
        assert_eq!(entries, vec![expected]);
        Ok(())
    }

    #[test]
    fn entries_round_trip_and_data_keeps_its_records() -> Result<(), EntryBatchError> {
        let entries = vec![
            Entry {
                offset: 10,
                epoch: 3,
                record_count: 1,
                payload: Payload::LeaderChange { leader_id: 1 },
            },
            Entry {
                offset: 11,
                epoch: 3,
                record_count: 3,
                // Built at base offset 0 with no epoch: encoding stamps both.
                payload: Payload::Data(data_batch(3)),
            },
        ];
        let bytes = encode_entries(&entries, &[1, 2, 3])?;
        let decoded = decode_entries(&bytes)?;
        assert_eq!(decoded.len(), 2);
        assert_eq!(decoded[0], entries[0]);
        let Payload::Data(batch) = &decoded[1].payload else {
            panic!("not data: {:?}", decoded[1]);
        };
        let header = runnel_protocol::batch::validate(batch)
            .map_err(|source| EntryBatchError::NotOneBatch { offset: 11, source })?;
        assert_eq!((header.base_offset, header.partition_leader_epoch), (11, 3));
        assert_eq!(
            (decoded[1].offset, decoded[1].epoch, decoded[1].record_count),
            (11, 3, 3)
        );
        // Stamped again, the stamped batch is unchanged.
        assert_eq!(encode_entries(&decoded, &[1, 2, 3])?, bytes);
        Ok(())
    }

    #[test]
    fn other_control_batches_are_data() -> Result<(), EntryBatchError> {
        // A KRaftVersion control record (type 5), as Kafka 4.1 bootstraps.
        let batch = BatchBuilder::new(0)
            .partition_leader_epoch(1)
            .control()
            .record(Some(&[0, 0, 0, 5]), Some(&[0, 0, 0, 1]), 0)
            .into_batch();
        let entries = decode_entries(&Bytes::from(batch.clone()))?;
        assert_eq!(entries[0].payload, Payload::Data(Bytes::from(batch)));
        Ok(())
    }

    #[test]
    fn bad_batches_are_errors() {
        let mut holes = data_batch(2).to_vec();
        // Two records, but last offset delta 2: a batch with a hole.
        holes[23..27].copy_from_slice(&2i32.to_be_bytes());
        holes[12..16].copy_from_slice(&1i32.to_be_bytes());
        let fixed_crc = crc32c_fix(&mut holes);
        let cases: Vec<(Vec<u8>, &str)> = vec![
            (fixed_crc, "spans 3 offsets but holds 2 records"),
            (data_batch(1)[..40].to_vec(), "not a valid RecordBatch"),
            (data_batch(1).to_vec(), "epoch -1"),
        ];
        for (bytes, message) in cases {
            match decode_entries(&Bytes::from(bytes)) {
                Ok(entries) => panic!("decoded {entries:?}"),
                Err(e) => assert!(e.to_string().contains(message), "{e}"),
            }
        }
        let wrong_count = Entry {
            offset: 0,
            epoch: 1,
            record_count: 2,
            payload: Payload::Data(data_batch(3)),
        };
        assert!(matches!(
            encode_entries(&[wrong_count], &[]),
            Err(EntryBatchError::RecordCount { .. })
        ));
        let not_a_batch = Entry {
            offset: 0,
            epoch: 1,
            record_count: 1,
            payload: Payload::Data(Bytes::from_static(b"hello")),
        };
        assert!(matches!(
            encode_entries(&[not_a_batch], &[]),
            Err(EntryBatchError::NotOneBatch { .. })
        ));
    }

    fn crc32c_fix(batch: &mut [u8]) -> Vec<u8> {
        let crc = crc32c_of(&batch[21..]);
        batch[17..21].copy_from_slice(&crc.to_be_bytes());
        batch.to_vec()
    }

    fn crc32c_of(bytes: &[u8]) -> u32 {
        // Castagnoli, bitwise: enough for a test.
        let mut crc = !0u32;
        for byte in bytes {
            crc ^= u32::from(*byte);
            for _ in 0..8 {
                crc = if crc & 1 != 0 {
                    (crc >> 1) ^ 0x82f6_3b78
                } else {
                    crc >> 1
                };
            }
        }
        !crc
    }
}
