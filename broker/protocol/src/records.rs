//! Records inside a RecordBatch v2, for the paths that may look at them: the
//! cleaner, timestamp lookups and tests. The append and read paths never call
//! into this module.
//!
//! Record layout (varints are zigzag, as Kafka's `ByteUtils.writeVarint`):
//!
//! | field            | type                                   |
//! |------------------|----------------------------------------|
//! | length           | varint: bytes of the rest of the record|
//! | attributes       | i8 (unused, 0)                         |
//! | timestamp delta  | varlong, from the batch first timestamp|
//! | offset delta     | varint, from the batch base offset     |
//! | key length       | varint, -1 for a null key              |
//! | key              | bytes                                  |
//! | value length     | varint, -1 for a null value (tombstone)|
//! | value            | bytes                                  |
//! | header count     | varint                                 |
//! | headers          | (key len, key, value len, value) each  |

use std::ops::Range;

use bytes::{Bytes, BytesMut};
use kafka_protocol::compression::{Compressor, Decompressor, Gzip, Lz4, Snappy, Zstd};
use thiserror::Error;

use crate::batch::{BatchHeader, Compression, HEADER_SIZE, HeaderBytes};

#[derive(Debug, Error)]
pub enum RecordsError {
    #[error("record {index} of the batch at offset {base_offset} is malformed: {reason}")]
    Malformed {
        base_offset: i64,
        index: usize,
        reason: &'static str,
    },
    #[error("{codec:?} decompression of the batch at offset {base_offset} failed")]
    Decompress {
        base_offset: i64,
        codec: Compression,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    #[error("{codec:?} compression of a rewritten batch at offset {base_offset} failed")]
    Compress {
        base_offset: i64,
        codec: Compression,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    #[error(transparent)]
    Batch(#[from] crate::batch::BatchError),
}

/// Where one record sits in a batch's (decompressed) records section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordView {
    pub offset_delta: i32,
    pub timestamp_delta: i64,
    /// Range of the key bytes, `None` for a null key.
    pub key: Option<Range<usize>>,
    /// `true` for a null value: a tombstone.
    pub is_tombstone: bool,
    /// Range of the value bytes, `None` for a null value.
    pub value: Option<Range<usize>>,
    /// How many headers the record has (the count read, capped at 0 below).
    pub headers_count: i32,
    /// Range of the headers' bytes after their count, as they are encoded
    /// (each: key length, key, value length, value).
    pub headers: Range<usize>,
    /// The whole record, length prefix included.
    pub raw: Range<usize>,
}

/// The records of one batch: the uncompressed records section and a view of
/// each record in it.
#[derive(Debug)]
pub struct BatchRecords {
    pub header: BatchHeader,
    header_bytes: HeaderBytes,
    pub data: Bytes,
    pub records: Vec<RecordView>,
}

impl BatchRecords {
    /// Decompresses (when needed) and splits the records of a whole, valid batch.
    pub fn decode(batch: &[u8]) -> Result<Self, RecordsError> {
        Self::decode_shared(Bytes::copy_from_slice(batch))
    }

    /// As [`decode`](Self::decode), keeping an uncompressed batch's records
    /// in `batch` itself: keys and values are slices of it, not copies.
    pub fn decode_shared(batch: Bytes) -> Result<Self, RecordsError> {
        let header = BatchHeader::parse(&batch)?;
        let body = batch.slice(HEADER_SIZE..header.size_bytes());
        let data = decompress(&header, body)?;
        let records = split_records(&header, &data)?;
        Ok(Self {
            header,
            header_bytes: HeaderBytes::copy_from(&batch),
            data,
            records,
        })
    }

    pub fn key(&self, record: &RecordView) -> Option<&[u8]> {
        record.key.clone().map(|range| &self.data[range])
    }

    pub fn value(&self, record: &RecordView) -> Option<&[u8]> {
        record.value.clone().map(|range| &self.data[range])
    }

    /// The record's headers as encoded, after their count.
    pub fn headers(&self, record: &RecordView) -> &[u8] {
        &self.data[record.headers.clone()]
    }

    /// Each header of the record as (key, value); a malformed header ends
    /// the list.
    pub fn header_pairs<'a>(
        &'a self,
        record: &RecordView,
    ) -> impl Iterator<Item = (&'a [u8], Option<&'a [u8]>)> + 'a {
        header_pairs(&self.data[record.headers.clone()], record.headers_count)
    }

    pub fn offset(&self, record: &RecordView) -> i64 {
        self.header.base_offset + record.offset_delta as i64
    }

    /// A record's timestamp as a consumer sees it.
    pub fn timestamp(&self, record: &RecordView) -> i64 {
        if self.header.is_log_append_time() {
            self.header.max_timestamp
        } else {
            self.header.first_timestamp + record.timestamp_delta
        }
    }

    /// A batch holding only the `kept` records, with this batch's base offset,
    /// first timestamp, last offset delta, producer fields and codec: record
    /// bytes are reused as they are, so their deltas stay valid.
    pub fn rewrite(&self, kept: &[&RecordView]) -> Result<Vec<u8>, RecordsError> {
        let mut records = Vec::with_capacity(kept.iter().map(|r| r.raw.len()).sum());
        let mut max_timestamp = i64::MIN;
        for record in kept {
            records.extend_from_slice(&self.data[record.raw.clone()]);
            max_timestamp = max_timestamp.max(self.timestamp(record));
        }
        if self.header.is_log_append_time() {
            max_timestamp = self.header.max_timestamp;
        }
        let body = compress(&self.header, &records)?;
        let mut header = self.header_bytes;
        header.set_rewritten(&body, kept.len() as i32, max_timestamp);
        let mut out = Vec::with_capacity(HEADER_SIZE + body.len());
        out.extend_from_slice(&header.0);
        out.extend_from_slice(&body);
        Ok(out)
    }
}

fn decompress(header: &BatchHeader, body: Bytes) -> Result<Bytes, RecordsError> {
    let codec = header.compression()?;
    let mut input = body;
    let take_all = |buf: &mut Bytes| Ok(std::mem::take(buf));
    let result = match codec {
        Compression::None => return Ok(input),
        Compression::Gzip => Gzip::decompress(&mut input, take_all),
        Compression::Snappy => Snappy::decompress(&mut input, take_all),
        Compression::Lz4 => Lz4::decompress(&mut input, take_all),
        Compression::Zstd => Zstd::decompress(&mut input, take_all),
    };
    result.map_err(|source| RecordsError::Decompress {
        base_offset: header.base_offset,
        codec,
        source: source.into(),
    })
}

fn compress(header: &BatchHeader, records: &[u8]) -> Result<Vec<u8>, RecordsError> {
    compress_records(header.compression()?, records, header.base_offset)
}

/// `records` (an uncompressed records section) compressed with `codec`;
/// `base_offset` names the batch in an error.
pub fn compress_records(
    codec: Compression,
    records: &[u8],
    base_offset: i64,
) -> Result<Vec<u8>, RecordsError> {
    let mut out = BytesMut::new();
    let put_records = |buf: &mut BytesMut| {
        buf.extend_from_slice(records);
        Ok(())
    };
    let result = match codec {
        Compression::None => return Ok(records.to_vec()),
        Compression::Gzip => Gzip::compress(&mut out, put_records),
        Compression::Snappy => Snappy::compress(&mut out, put_records),
        Compression::Lz4 => Lz4::compress(&mut out, put_records),
        Compression::Zstd => Zstd::compress(&mut out, put_records),
    };
    result.map_err(|source| RecordsError::Compress {
        base_offset,
        codec,
        source: source.into(),
    })?;
    Ok(out.to_vec())
}

/// The `count` headers encoded in `data` (a record's headers after their
/// count) as (key, value); a malformed header ends the list.
pub fn header_pairs(data: &[u8], count: i32) -> impl Iterator<Item = (&[u8], Option<&[u8]>)> {
    let mut reader = VarReader { data, pos: 0 };
    (0..count).map_while(move |_| {
        let key = reader.bytes_field()??;
        let value = reader.bytes_field()?;
        Some((&data[key], value.map(|v| &data[v])))
    })
}

/// Copies the `count` headers encoded in `data` to `out` as encoded,
/// leaving out those `drop` names; returns how many it copied. A malformed
/// header ends the list.
pub fn copy_headers_except(
    data: &[u8],
    count: i32,
    drop: impl Fn(&[u8]) -> bool,
    out: &mut Vec<u8>,
) -> i32 {
    let mut reader = VarReader { data, pos: 0 };
    let mut copied = 0;
    for _ in 0..count {
        let start = reader.pos;
        let Some(Some(name)) = reader.bytes_field() else {
            break;
        };
        if reader.bytes_field().is_none() {
            break;
        }
        if !drop(&data[name]) {
            out.extend_from_slice(&data[start..reader.pos]);
            copied += 1;
        }
    }
    copied
}

fn split_records(header: &BatchHeader, data: &[u8]) -> Result<Vec<RecordView>, RecordsError> {
    let count = header.records_count.max(0) as usize;
    let mut records = Vec::with_capacity(count.min(data.len()));
    let mut reader = VarReader { data, pos: 0 };
    for index in 0..count {
        let malformed = |reason| RecordsError::Malformed {
            base_offset: header.base_offset,
            index,
            reason,
        };
        let start = reader.pos;
        let length = reader.varint().ok_or(malformed("length"))?;
        if length < 0 {
            return Err(malformed("negative length"));
        }
        let end = reader
            .pos
            .checked_add(length as usize)
            .filter(|end| *end <= data.len())
            .ok_or(malformed("length runs past the batch"))?;
        let mut body = VarReader {
            data: &data[..end],
            pos: reader.pos,
        };
        body.skip(1).ok_or(malformed("attributes"))?;
        let timestamp_delta = body.varlong().ok_or(malformed("timestamp delta"))?;
        let offset_delta = body.varint().ok_or(malformed("offset delta"))?;
        let key = body.bytes_field().ok_or(malformed("key"))?;
        let value = body.bytes_field().ok_or(malformed("value"))?;
        let headers_count = body.varint().ok_or(malformed("headers count"))?.max(0);
        records.push(RecordView {
            offset_delta,
            timestamp_delta,
            key,
            is_tombstone: value.is_none(),
            value,
            headers_count,
            headers: body.pos..end,
            raw: start..end,
        });
        reader.pos = end;
    }
    Ok(records)
}

struct VarReader<'a> {
    data: &'a [u8],
    pos: usize,
}

impl VarReader<'_> {
    fn skip(&mut self, n: usize) -> Option<()> {
        (self.pos + n <= self.data.len()).then(|| self.pos += n)
    }

    fn varlong(&mut self) -> Option<i64> {
        let mut value: u64 = 0;
        for shift in (0..64).step_by(7) {
            let byte = *self.data.get(self.pos)?;
            self.pos += 1;
            value |= ((byte & 0x7f) as u64) << shift;
            if byte & 0x80 == 0 {
                return Some(((value >> 1) as i64) ^ -((value & 1) as i64));
            }
        }
        None
    }

    fn varint(&mut self) -> Option<i32> {
        i32::try_from(self.varlong()?).ok()
    }

    /// A length-prefixed byte field; `Some(None)` for length -1.
    fn bytes_field(&mut self) -> Option<Option<Range<usize>>> {
        let length = self.varint()?;
        if length < 0 {
            return Some(None);
        }
        let start = self.pos;
        self.skip(length as usize)?;
        Some(Some(start..self.pos))
    }
}

/// Appends `value` as a zigzag varlong.
/// Bytes [`put_varlong`] writes for `value`.
pub fn varlong_size(value: i64) -> usize {
    let v = ((value << 1) ^ (value >> 63)) as u64;
    // One byte per 7 bits, at least one.
    (64 - v.leading_zeros() as usize).div_ceil(7).max(1)
}

pub fn put_varlong(out: &mut Vec<u8>, value: i64) {
    let mut v = ((value << 1) ^ (value >> 63)) as u64;
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

#[cfg(test)]
mod varlong_tests {
    use super::*;

    #[test]
    fn varlong_size_matches_what_is_written() {
        for value in [
            0,
            1,
            -1,
            63,
            64,
            -64,
            -65,
            8191,
            8192,
            i64::MAX,
            i64::MIN,
            1 << 35,
        ] {
            let mut out = Vec::new();
            put_varlong(&mut out, value);
            assert_eq!(varlong_size(value), out.len(), "{value}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_are_copied_as_encoded_without_the_dropped_ones() {
        let mut builder = crate::BatchBuilder::new(0);
        builder.push_with_headers(
            None,
            Some(b"v"),
            0,
            (0, &[]),
            &[("a", b"1"), ("drop", b"2"), ("b", b"")],
        );
        let batch = BatchRecords::decode(&builder.build()).expect("batch");
        let record = &batch.records[0];
        let mut out = Vec::new();
        let copied = copy_headers_except(
            batch.headers(record),
            record.headers_count,
            |name| name == b"drop",
            &mut out,
        );
        assert_eq!(copied, 2);
        let kept: Vec<_> = header_pairs(&out, copied).collect();
        assert_eq!(
            kept,
            vec![(&b"a"[..], Some(&b"1"[..])), (&b"b"[..], Some(&b""[..]))]
        );
    }
    use crate::batch::validate;
    use crate::builder::BatchBuilder;

    #[test]
    fn varints_round_trip() {
        for value in [
            0i64,
            1,
            -1,
            63,
            -64,
            64,
            300,
            -300,
            i32::MAX as i64,
            i64::MIN,
            i64::MAX,
        ] {
            let mut out = Vec::new();
            put_varlong(&mut out, value);
            let mut reader = VarReader { data: &out, pos: 0 };
            assert_eq!(reader.varlong(), Some(value));
            assert_eq!(reader.pos, out.len());
        }
    }

    #[test]
    fn splits_keys_values_and_tombstones() {
        let batch = BatchBuilder::new(1000)
            .record(Some(b"a"), Some(b"1"), 1000)
            .record(None, Some(b"2"), 1005)
            .record(Some(b"a"), None, 1003)
            .build();
        let records = BatchRecords::decode(&batch).expect("decodes");
        assert_eq!(records.records.len(), 3);
        assert_eq!(records.key(&records.records[0]), Some(&b"a"[..]));
        assert_eq!(records.key(&records.records[1]), None);
        assert!(records.records[2].is_tombstone);
        assert_eq!(records.offset(&records.records[2]), 2);
        assert_eq!(records.timestamp(&records.records[1]), 1005);
    }

    #[test]
    fn rewrite_keeps_offsets_and_gives_a_valid_batch() {
        let batch = BatchBuilder::new(1000)
            .base_offset(40)
            .record(Some(b"a"), Some(b"1"), 1000)
            .record(Some(b"b"), Some(b"2"), 1007)
            .record(Some(b"c"), Some(b"3"), 1003)
            .build();
        let records = BatchRecords::decode(&batch).expect("decodes");
        let kept = [&records.records[0], &records.records[2]];
        let rewritten = records.rewrite(&kept).expect("rewrites");
        let header = validate(&rewritten).expect("valid crc");
        assert_eq!(header.base_offset, 40);
        assert_eq!(header.last_offset(), 42);
        assert_eq!(header.records_count, 2);
        assert_eq!(header.max_timestamp, 1003);
        let again = BatchRecords::decode(&rewritten).expect("decodes");
        let offsets: Vec<i64> = again.records.iter().map(|r| again.offset(r)).collect();
        assert_eq!(offsets, vec![40, 42]);
    }

    #[test]
    fn malformed_records_are_an_error_not_a_panic() {
        let mut batch = BatchBuilder::new(0)
            .record(Some(b"key"), Some(b"value"), 0)
            .build();
        // Claim a huge record length; the CRC is not checked by decode.
        batch[HEADER_SIZE] = 0xfe;
        batch[HEADER_SIZE + 1] = 0xff;
        batch[HEADER_SIZE + 2] = 0x7f;
        assert!(matches!(
            BatchRecords::decode(&batch),
            Err(RecordsError::Malformed { .. })
        ));
    }
}
