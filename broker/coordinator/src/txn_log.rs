//! The records of `__transaction_state`, byte-compatible with Apache Kafka
//! (`TransactionLogKey.json`, `TransactionLogValue.json`): keyed by
//! transactional id, each value is a transaction's whole state after a
//! change; a tombstone removes an expired transactional id.
//!
//! Key, version 0: `transactional_id` (string).
//!
//! | value field (version 0)            | type                          |
//! |------------------------------------|-------------------------------|
//! | producer_id                        | i64                           |
//! | producer_epoch                     | i16                           |
//! | transaction_timeout_ms             | i32                           |
//! | transaction_status                 | i8 (see [`TxnState`])         |
//! | transaction_partitions             | i32 count (-1: null), then    |
//! | . topic                            | string                        |
//! | . partition_ids                    | i32 count, then i32 each      |
//! | transaction_last_update_timestamp  | i64                           |
//! | transaction_start_timestamp        | i64                           |
//!
//! Version 1 is the flexible form Kafka 4 writes with tagged fields; we
//! write and read version 0.

use bytes::{BufMut, Bytes, BytesMut};

use crate::record_codec::{OffsetsRecordError, Reader, put_string, read_version};

pub const TXN_LOG_KEY_VERSION: i16 = 0;
pub const TXN_LOG_VALUE_VERSION: i16 = 0;
const KEY: &str = "TransactionLogKey";
const VALUE: &str = "TransactionLogValue";

/// A transaction's state, with the codes Kafka stores.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TxnState {
    Empty,
    Ongoing,
    PrepareCommit,
    PrepareAbort,
    CompleteCommit,
    CompleteAbort,
    Dead,
    PrepareEpochFence,
}

impl TxnState {
    pub fn code(self) -> i8 {
        match self {
            Self::Empty => 0,
            Self::Ongoing => 1,
            Self::PrepareCommit => 2,
            Self::PrepareAbort => 3,
            Self::CompleteCommit => 4,
            Self::CompleteAbort => 5,
            Self::Dead => 6,
            Self::PrepareEpochFence => 7,
        }
    }

    pub fn from_code(code: i8) -> Option<Self> {
        Some(match code {
            0 => Self::Empty,
            1 => Self::Ongoing,
            2 => Self::PrepareCommit,
            3 => Self::PrepareAbort,
            4 => Self::CompleteCommit,
            5 => Self::CompleteAbort,
            6 => Self::Dead,
            7 => Self::PrepareEpochFence,
            _ => return None,
        })
    }

    /// The name Kafka's tools print (DescribeTransactions, ListTransactions).
    pub fn name(self) -> &'static str {
        match self {
            Self::Empty => "Empty",
            Self::Ongoing => "Ongoing",
            Self::PrepareCommit => "PrepareCommit",
            Self::PrepareAbort => "PrepareAbort",
            Self::CompleteCommit => "CompleteCommit",
            Self::CompleteAbort => "CompleteAbort",
            Self::Dead => "Dead",
            Self::PrepareEpochFence => "PrepareEpochFence",
        }
    }
}

/// One TransactionLogValue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TxnLogValue {
    pub producer_id: i64,
    pub producer_epoch: i16,
    pub timeout_ms: i32,
    pub state: TxnState,
    /// The partitions in the transaction, by topic, sorted.
    pub partitions: Vec<(String, Vec<i32>)>,
    pub last_update_ms: i64,
    pub start_ms: i64,
}

pub fn encode_key(transactional_id: &str) -> Result<Bytes, OffsetsRecordError> {
    let mut buf = BytesMut::with_capacity(4 + transactional_id.len());
    buf.put_i16(TXN_LOG_KEY_VERSION);
    put_string(&mut buf, "transactional_id", transactional_id)?;
    Ok(buf.freeze())
}

pub fn decode_key(bytes: &[u8]) -> Result<String, OffsetsRecordError> {
    let version = read_version(bytes, KEY)?;
    if version != TXN_LOG_KEY_VERSION {
        return Err(OffsetsRecordError::UnknownTransactionLogVersion {
            record: KEY,
            version,
        });
    }
    let mut reader = Reader::new(&bytes[2..], KEY, version);
    let id = reader.string("transactional_id")?;
    reader.finish()?;
    Ok(id)
}

impl TxnLogValue {
    pub fn encode(&self) -> Result<Bytes, OffsetsRecordError> {
        let mut buf = BytesMut::with_capacity(64);
        buf.put_i16(TXN_LOG_VALUE_VERSION);
        buf.put_i64(self.producer_id);
        buf.put_i16(self.producer_epoch);
        buf.put_i32(self.timeout_ms);
        buf.put_i8(self.state.code());
        buf.put_i32(self.partitions.len() as i32);
        for (topic, partitions) in &self.partitions {
            put_string(&mut buf, "topic", topic)?;
            buf.put_i32(partitions.len() as i32);
            for partition in partitions {
                buf.put_i32(*partition);
            }
        }
        buf.put_i64(self.last_update_ms);
        buf.put_i64(self.start_ms);
        Ok(buf.freeze())
    }

    pub fn decode(bytes: &[u8]) -> Result<Self, OffsetsRecordError> {
        let version = read_version(bytes, VALUE)?;
        if version != TXN_LOG_VALUE_VERSION {
            return Err(OffsetsRecordError::UnknownTransactionLogVersion {
                record: VALUE,
                version,
            });
        }
        let mut r = Reader::new(&bytes[2..], VALUE, version);
        let producer_id = r.i64("producer_id")?;
        let producer_epoch = r.i16("producer_epoch")?;
        let timeout_ms = r.i32("transaction_timeout_ms")?;
        let status = r.i8("transaction_status")?;
        let state = TxnState::from_code(status)
            .ok_or(OffsetsRecordError::UnknownTransactionStatus { status })?;
        let count = r.i32("transaction_partitions")?;
        let mut partitions = Vec::new();
        // -1 is a null array: no partitions.
        if count > 0 {
            for _ in 0..count {
                let topic = r.string("topic")?;
                let n = r.i32("partition_ids")?;
                let n =
                    usize::try_from(n).map_err(|_| r.invalid_length("partition_ids", n.into()))?;
                let mut ids = Vec::with_capacity(n.min(1024));
                for _ in 0..n {
                    ids.push(r.i32("partition_ids")?);
                }
                partitions.push((topic, ids));
            }
        } else if count < -1 {
            return Err(r.invalid_length("transaction_partitions", count.into()));
        }
        let last_update_ms = r.i64("transaction_last_update_timestamp_ms")?;
        let start_ms = r.i64("transaction_start_timestamp_ms")?;
        r.finish()?;
        Ok(Self {
            producer_id,
            producer_epoch,
            timeout_ms,
            state,
            partitions,
            last_update_ms,
            start_ms,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> TxnLogValue {
        TxnLogValue {
            producer_id: 1000,
            producer_epoch: 3,
            timeout_ms: 60_000,
            state: TxnState::Ongoing,
            partitions: vec![("t".into(), vec![0, 2])],
            last_update_ms: 1_700_000_000_500,
            start_ms: 1_700_000_000_000,
        }
    }

    #[test]
    fn key_and_value_bytes_are_kafkas() {
        assert_eq!(
            &encode_key("tx").expect("key")[..],
            &[0, 0, 0, 2, b't', b'x']
        );
        let bytes = sample().encode().expect("value");
        #[rustfmt::skip]
        let want: &[u8] = &[
            0, 0,                           // version 0
            0, 0, 0, 0, 0, 0, 0x03, 0xe8,   // producer id 1000
            0, 3,                           // epoch
            0, 0, 0xea, 0x60,               // timeout 60000
            1,                              // Ongoing
            0, 0, 0, 1,                     // one topic
            0, 1, b't', 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 2,
            0, 0, 0x01, 0x8b, 0xcf, 0xe5, 0x69, 0xf4, // last update
            0, 0, 0x01, 0x8b, 0xcf, 0xe5, 0x68, 0x00, // start
        ];
        assert_eq!(&bytes[..], want);
        assert_eq!(TxnLogValue::decode(&bytes), Ok(sample()));
        assert_eq!(decode_key(&encode_key("tx").expect("key")), Ok("tx".into()));
    }

    #[test]
    fn bad_values_are_errors_not_panics() {
        let bytes = sample().encode().expect("value");
        for len in 0..bytes.len() {
            assert!(TxnLogValue::decode(&bytes[..len]).is_err(), "{len} bytes");
        }
        let mut bad_status = bytes.to_vec();
        bad_status[16] = 9;
        assert_eq!(
            TxnLogValue::decode(&bad_status),
            Err(OffsetsRecordError::UnknownTransactionStatus { status: 9 })
        );
        let mut v1 = bytes.to_vec();
        v1[1] = 1;
        assert!(TxnLogValue::decode(&v1).is_err());
        for code in 0..8 {
            let state = TxnState::from_code(code).expect("a state");
            assert_eq!(state.code(), code);
        }
    }
}
