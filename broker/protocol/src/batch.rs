//! RecordBatch v2 headers: a view over the first 61 bytes of a batch, its
//! validation, and the in-place patches an append makes.
//!
//! Byte layout (all integers big-endian), as Kafka's `DefaultRecordBatch`:
//!
//! | offset | size | field                                             |
//! |-------:|-----:|---------------------------------------------------|
//! |      0 |    8 | base offset (i64)                                 |
//! |      8 |    4 | batch length (i32): bytes after this field        |
//! |     12 |    4 | partition leader epoch (i32)                      |
//! |     16 |    1 | magic (i8), always 2                              |
//! |     17 |    4 | CRC-32C (u32) of bytes 21..end                    |
//! |     21 |    2 | attributes (i16)                                  |
//! |     23 |    4 | last offset delta (i32)                           |
//! |     27 |    8 | first timestamp (i64)                             |
//! |     35 |    8 | max timestamp (i64)                               |
//! |     43 |    8 | producer id (i64)                                 |
//! |     51 |    2 | producer epoch (i16)                              |
//! |     53 |    4 | base sequence (i32)                               |
//! |     57 |    4 | records count (i32)                               |
//! |     61 |    … | records                                           |
//!
//! Attributes: bits 0-2 compression (0 none, 1 gzip, 2 snappy, 3 lz4,
//! 4 zstd), bit 3 timestamp type (1 = LogAppendTime), bit 4 transactional,
//! bit 5 control batch, bit 6 delete horizon present.
//!
//! The CRC does not cover the base offset or the partition leader epoch, so
//! assigning offsets never touches the record bytes or the checksum.

use thiserror::Error;

/// Size of the fixed batch header, records start right after it.
pub const HEADER_SIZE: usize = 61;
/// Bytes before the batch length field's coverage starts: base offset + length.
pub const LOG_OVERHEAD: usize = 12;
/// The only magic this log stores.
pub const MAGIC_V2: i8 = 2;

const BASE_OFFSET: usize = 0;
const LENGTH: usize = 8;
const PARTITION_LEADER_EPOCH: usize = 12;
const MAGIC: usize = 16;
const CRC: usize = 17;
const ATTRIBUTES: usize = 21;
const LAST_OFFSET_DELTA: usize = 23;
const FIRST_TIMESTAMP: usize = 27;
const MAX_TIMESTAMP: usize = 35;
const PRODUCER_ID: usize = 43;
const PRODUCER_EPOCH: usize = 51;
const BASE_SEQUENCE: usize = 53;
const RECORDS_COUNT: usize = 57;

const COMPRESSION_MASK: i16 = 0x07;
const TIMESTAMP_TYPE_MASK: i16 = 0x08;
pub(crate) const TRANSACTIONAL_MASK: i16 = 0x10;
pub(crate) const CONTROL_MASK: i16 = 0x20;

/// Why a batch was refused. Each variant names the check and the value.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum BatchError {
    #[error("record batch is {available} bytes, shorter than the {HEADER_SIZE}-byte v2 header")]
    TooShort { available: usize },
    #[error("record batch length field is {length}, below the minimum of {min}", min = HEADER_SIZE - LOG_OVERHEAD)]
    LengthTooSmall { length: i32 },
    #[error("record batch says it is {declared} bytes but only {available} bytes follow")]
    Truncated { declared: usize, available: usize },
    #[error("record batch has magic {magic}; only magic 2 (Kafka 0.11+) is supported")]
    UnsupportedMagic { magic: i8 },
    #[error("record batch CRC-32C is {stored:#010x} but the bytes give {computed:#010x}")]
    CrcMismatch { stored: u32, computed: u32 },
    #[error(
        "record batch has an invalid offset range: last offset delta {last_offset_delta} with {records_count} records"
    )]
    InvalidOffsetRange {
        last_offset_delta: i32,
        records_count: i32,
    },
    #[error(
        "record batch has base offset {base_offset}, below the previous batch's next offset {expected}"
    )]
    OffsetOutOfOrder { base_offset: i64, expected: i64 },
    #[error("record batch has unknown compression codec {codec}")]
    UnknownCompression { codec: i16 },
}

/// Compression codec of a batch, from attribute bits 0-2.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    None,
    Gzip,
    Snappy,
    Lz4,
    Zstd,
}

impl Compression {
    /// The codec's id in attribute bits 0-2.
    pub fn attribute_bits(self) -> i16 {
        match self {
            Self::None => 0,
            Self::Gzip => 1,
            Self::Snappy => 2,
            Self::Lz4 => 3,
            Self::Zstd => 4,
        }
    }

    /// From `compression.type`'s values: none, gzip, snappy, lz4, zstd.
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "none" => Some(Self::None),
            "gzip" => Some(Self::Gzip),
            "snappy" => Some(Self::Snappy),
            "lz4" => Some(Self::Lz4),
            "zstd" => Some(Self::Zstd),
            _ => None,
        }
    }

    fn from_attributes(attributes: i16) -> Result<Self, BatchError> {
        match attributes & COMPRESSION_MASK {
            0 => Ok(Self::None),
            1 => Ok(Self::Gzip),
            2 => Ok(Self::Snappy),
            3 => Ok(Self::Lz4),
            4 => Ok(Self::Zstd),
            codec => Err(BatchError::UnknownCompression { codec }),
        }
    }
}

/// The sequence number `delta` after `sequence`, wrapping past `i32::MAX`
/// to 0, as Kafka's `DefaultRecordBatch.incrementSequence`.
pub fn increment_sequence(sequence: i32, delta: i32) -> i32 {
    if sequence > i32::MAX - delta {
        delta - (i32::MAX - sequence) - 1
    } else {
        sequence + delta
    }
}

/// The parsed fixed header of one RecordBatch v2.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchHeader {
    pub base_offset: i64,
    pub batch_length: i32,
    pub partition_leader_epoch: i32,
    pub magic: i8,
    pub crc: u32,
    pub attributes: i16,
    pub last_offset_delta: i32,
    pub first_timestamp: i64,
    pub max_timestamp: i64,
    pub producer_id: i64,
    pub producer_epoch: i16,
    pub base_sequence: i32,
    pub records_count: i32,
}

impl BatchHeader {
    /// Reads the header fields of the batch that starts at `bytes[0]`. Checks
    /// only what is needed to find the batch's end: the length and the magic.
    pub fn parse(bytes: &[u8]) -> Result<Self, BatchError> {
        if bytes.len() < HEADER_SIZE {
            return Err(BatchError::TooShort {
                available: bytes.len(),
            });
        }
        let header = Self {
            base_offset: i64_at(bytes, BASE_OFFSET),
            batch_length: i32_at(bytes, LENGTH),
            partition_leader_epoch: i32_at(bytes, PARTITION_LEADER_EPOCH),
            magic: bytes[MAGIC] as i8,
            crc: u32_at(bytes, CRC),
            attributes: i16_at(bytes, ATTRIBUTES),
            last_offset_delta: i32_at(bytes, LAST_OFFSET_DELTA),
            first_timestamp: i64_at(bytes, FIRST_TIMESTAMP),
            max_timestamp: i64_at(bytes, MAX_TIMESTAMP),
            producer_id: i64_at(bytes, PRODUCER_ID),
            producer_epoch: i16_at(bytes, PRODUCER_EPOCH),
            base_sequence: i32_at(bytes, BASE_SEQUENCE),
            records_count: i32_at(bytes, RECORDS_COUNT),
        };
        if (header.batch_length as i64) < (HEADER_SIZE - LOG_OVERHEAD) as i64 {
            return Err(BatchError::LengthTooSmall {
                length: header.batch_length,
            });
        }
        if header.magic != MAGIC_V2 {
            return Err(BatchError::UnsupportedMagic {
                magic: header.magic,
            });
        }
        Ok(header)
    }

    /// Total size of the batch on disk and on the wire.
    pub fn size_bytes(&self) -> usize {
        LOG_OVERHEAD + self.batch_length as usize
    }

    pub fn last_offset(&self) -> i64 {
        self.base_offset + self.last_offset_delta as i64
    }

    pub fn next_offset(&self) -> i64 {
        self.last_offset() + 1
    }

    pub fn compression(&self) -> Result<Compression, BatchError> {
        Compression::from_attributes(self.attributes)
    }

    pub fn is_log_append_time(&self) -> bool {
        self.attributes & TIMESTAMP_TYPE_MASK != 0
    }

    pub fn is_transactional(&self) -> bool {
        self.attributes & TRANSACTIONAL_MASK != 0
    }

    pub fn is_control(&self) -> bool {
        self.attributes & CONTROL_MASK != 0
    }
}

/// Parses the batch at the start of `bytes`, checks it is whole and that its
/// CRC-32C matches, and returns the header. `bytes` may hold more batches.
pub fn validate(bytes: &[u8]) -> Result<BatchHeader, BatchError> {
    let header = BatchHeader::parse(bytes)?;
    let size = header.size_bytes();
    if size > bytes.len() {
        return Err(BatchError::Truncated {
            declared: size,
            available: bytes.len(),
        });
    }
    let computed = crc32c::crc32c(&bytes[ATTRIBUTES..size]);
    if computed != header.crc {
        return Err(BatchError::CrcMismatch {
            stored: header.crc,
            computed,
        });
    }
    header.compression()?;
    Ok(header)
}

/// Validation of a batch a producer sends: on top of [`validate`], the offset
/// range must match the record count, as Kafka's `LogValidator` demands.
pub fn validate_for_append(bytes: &[u8]) -> Result<BatchHeader, BatchError> {
    let header = validate(bytes)?;
    if header.records_count <= 0
        || header.last_offset_delta < 0
        || header.last_offset_delta as i64 + 1 != header.records_count as i64
    {
        return Err(BatchError::InvalidOffsetRange {
            last_offset_delta: header.last_offset_delta,
            records_count: header.records_count,
        });
    }
    Ok(header)
}

/// Iterates the whole batches of a buffer. Stops with an error at the first
/// batch that does not validate; a buffer must end on a batch boundary.
#[derive(Debug, Clone)]
pub struct Batches<'a> {
    rest: &'a [u8],
}

impl<'a> Batches<'a> {
    pub fn new(bytes: &'a [u8]) -> Self {
        Self { rest: bytes }
    }
}

impl<'a> Iterator for Batches<'a> {
    type Item = Result<(BatchHeader, &'a [u8]), BatchError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.rest.is_empty() {
            return None;
        }
        match validate(self.rest) {
            Ok(header) => {
                let (batch, rest) = self.rest.split_at(header.size_bytes());
                self.rest = rest;
                Some(Ok((header, batch)))
            }
            Err(err) => {
                self.rest = &[];
                Some(Err(err))
            }
        }
    }
}

/// The first [`HEADER_SIZE`] bytes of a batch, copied so an append can patch
/// the base offset (and, for LogAppendTime, the max timestamp and CRC) while
/// the record bytes are written from the caller's buffer untouched.
#[derive(Debug, Clone, Copy)]
pub struct HeaderBytes(pub [u8; HEADER_SIZE]);

impl HeaderBytes {
    pub fn copy_from(batch: &[u8]) -> Self {
        let mut header = [0u8; HEADER_SIZE];
        header.copy_from_slice(&batch[..HEADER_SIZE]);
        Self(header)
    }

    pub fn set_base_offset(&mut self, base_offset: i64) {
        self.0[BASE_OFFSET..BASE_OFFSET + 8].copy_from_slice(&base_offset.to_be_bytes());
    }

    /// Sets the leader epoch the batch was appended under. Like the base
    /// offset, it is outside the CRC, so the CRC stays valid.
    pub fn set_partition_leader_epoch(&mut self, epoch: i32) {
        self.0[PARTITION_LEADER_EPOCH..PARTITION_LEADER_EPOCH + 4]
            .copy_from_slice(&epoch.to_be_bytes());
    }

    /// Marks the batch LogAppendTime with `timestamp` as its max timestamp and
    /// recomputes the CRC over the patched header and the unchanged records.
    pub fn set_log_append_time(&mut self, timestamp: i64, records: &[u8]) {
        let attributes = i16_at(&self.0, ATTRIBUTES) | TIMESTAMP_TYPE_MASK;
        self.0[ATTRIBUTES..ATTRIBUTES + 2].copy_from_slice(&attributes.to_be_bytes());
        self.0[MAX_TIMESTAMP..MAX_TIMESTAMP + 8].copy_from_slice(&timestamp.to_be_bytes());
        self.update_crc(records);
    }

    /// Sets the length, records count and max timestamp of a rewritten batch
    /// (the cleaner's output) and recomputes the CRC.
    pub fn set_rewritten(&mut self, records: &[u8], records_count: i32, max_timestamp: i64) {
        let length = (HEADER_SIZE - LOG_OVERHEAD + records.len()) as i32;
        self.0[LENGTH..LENGTH + 4].copy_from_slice(&length.to_be_bytes());
        self.0[RECORDS_COUNT..RECORDS_COUNT + 4].copy_from_slice(&records_count.to_be_bytes());
        self.0[MAX_TIMESTAMP..MAX_TIMESTAMP + 8].copy_from_slice(&max_timestamp.to_be_bytes());
        self.update_crc(records);
    }

    fn update_crc(&mut self, records: &[u8]) {
        let crc = crc32c::crc32c_append(crc32c::crc32c(&self.0[ATTRIBUTES..]), records);
        self.0[CRC..CRC + 4].copy_from_slice(&crc.to_be_bytes());
    }
}

fn i16_at(bytes: &[u8], at: usize) -> i16 {
    i16::from_be_bytes([bytes[at], bytes[at + 1]])
}

fn i32_at(bytes: &[u8], at: usize) -> i32 {
    i32::from_be_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]])
}

fn u32_at(bytes: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]])
}

fn i64_at(bytes: &[u8], at: usize) -> i64 {
    let mut b = [0u8; 8];
    b.copy_from_slice(&bytes[at..at + 8]);
    i64::from_be_bytes(b)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::builder::BatchBuilder;

    fn simple_batch(count: usize, first_timestamp: i64, value_bytes: usize) -> Vec<u8> {
        let value = vec![b'x'; value_bytes];
        let mut builder = BatchBuilder::new(first_timestamp);
        for i in 0..count {
            builder.push(None, Some(&value), first_timestamp + i as i64);
        }
        builder.build()
    }

    #[test]
    fn parses_every_header_field() {
        let batch = simple_batch(3, 1_700_000_000_000, 100);
        let header = validate_for_append(&batch).expect("valid batch");
        assert_eq!(header.base_offset, 0);
        assert_eq!(header.size_bytes(), batch.len());
        assert_eq!(header.magic, 2);
        assert_eq!(header.last_offset_delta, 2);
        assert_eq!(header.records_count, 3);
        assert_eq!(header.first_timestamp, 1_700_000_000_000);
        assert_eq!(header.max_timestamp, 1_700_000_000_002);
        assert_eq!(header.producer_id, -1);
        assert_eq!(header.producer_epoch, -1);
        assert_eq!(header.base_sequence, -1);
        assert_eq!(header.compression(), Ok(Compression::None));
        assert!(!header.is_log_append_time());
    }

    #[test]
    fn refuses_a_wrong_crc() {
        let mut batch = simple_batch(1, 0, 10);
        let last = batch.len() - 1;
        batch[last] ^= 0xff;
        assert!(matches!(
            validate(&batch),
            Err(BatchError::CrcMismatch { .. })
        ));
    }

    #[test]
    fn refuses_a_wrong_magic() {
        let mut batch = simple_batch(1, 0, 10);
        batch[MAGIC] = 1;
        assert_eq!(
            validate(&batch),
            Err(BatchError::UnsupportedMagic { magic: 1 })
        );
    }

    #[test]
    fn refuses_a_length_past_the_buffer_and_a_tiny_length() {
        let batch = simple_batch(1, 0, 10);
        assert!(matches!(
            validate(&batch[..batch.len() - 1]),
            Err(BatchError::Truncated { .. })
        ));
        let mut tiny = batch.clone();
        tiny[LENGTH..LENGTH + 4].copy_from_slice(&3i32.to_be_bytes());
        assert_eq!(
            validate(&tiny),
            Err(BatchError::LengthTooSmall { length: 3 })
        );
        assert_eq!(
            validate(&batch[..10]),
            Err(BatchError::TooShort { available: 10 })
        );
    }

    #[test]
    fn refuses_a_producer_batch_whose_offsets_do_not_match_its_count() {
        let batch = simple_batch(1, 0, 1);
        let mut header = HeaderBytes::copy_from(&batch);
        header.0[LAST_OFFSET_DELTA..LAST_OFFSET_DELTA + 4].copy_from_slice(&5i32.to_be_bytes());
        header.update_crc(&batch[HEADER_SIZE..]);
        let mut batch = header.0.to_vec();
        batch.extend_from_slice(&simple_batch(1, 0, 1)[HEADER_SIZE..]);
        assert_eq!(
            validate_for_append(&batch),
            Err(BatchError::InvalidOffsetRange {
                last_offset_delta: 5,
                records_count: 1
            })
        );
    }

    #[test]
    fn base_offset_patch_keeps_the_crc_valid() {
        let batch = simple_batch(2, 5, 10);
        let mut header = HeaderBytes::copy_from(&batch);
        header.set_base_offset(1234);
        let mut patched = header.0.to_vec();
        patched.extend_from_slice(&batch[HEADER_SIZE..]);
        let parsed = validate(&patched).expect("crc still valid");
        assert_eq!(parsed.base_offset, 1234);
        assert_eq!(parsed.last_offset(), 1235);
    }

    #[test]
    fn log_append_time_patch_recomputes_the_crc() {
        let batch = simple_batch(2, 5, 10);
        let mut header = HeaderBytes::copy_from(&batch);
        header.set_log_append_time(99_999, &batch[HEADER_SIZE..]);
        let mut patched = header.0.to_vec();
        patched.extend_from_slice(&batch[HEADER_SIZE..]);
        let parsed = validate(&patched).expect("crc recomputed");
        assert!(parsed.is_log_append_time());
        assert_eq!(parsed.max_timestamp, 99_999);
    }

    #[test]
    fn iterates_concatenated_batches_and_stops_at_garbage() {
        let mut bytes = simple_batch(1, 0, 10);
        bytes.extend_from_slice(&simple_batch(2, 0, 10));
        bytes.extend_from_slice(&[0xde, 0xad]);
        let mut batches = Batches::new(&bytes);
        assert_eq!(
            batches.next().expect("first").expect("ok").0.records_count,
            1
        );
        assert_eq!(
            batches.next().expect("second").expect("ok").0.records_count,
            2
        );
        assert!(batches.next().expect("garbage").is_err());
        assert!(batches.next().is_none());
    }
}
