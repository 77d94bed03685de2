//! Decodes the RecordBatches of a Fetch response down to each record's
//! headers (kept in order, a key may repeat), and filters them as a
//! `read_committed` consumer does. Written for the tests from the format
//! (Kafka's `DefaultRecordBatch` / `DefaultRecord`), not with the broker's
//! code, so a change there cannot hide in both. Uncompressed batches only.
//!
//! | batch field            | bytes | | record field     | type     |
//! |------------------------|-------| |------------------|----------|
//! | base offset            | 8     | | length           | varint   |
//! | batch length           | 4     | | attributes       | i8       |
//! | partition leader epoch | 4     | | timestamp delta  | varlong  |
//! | magic (2)              | 1     | | offset delta     | varint   |
//! | crc                    | 4     | | key              | varbytes |
//! | attributes             | 2     | | value            | varbytes |
//! | last offset delta      | 4     | | header count     | varint   |
//! | first, max timestamp   | 8 + 8 | | headers          | key, value varbytes |
//! | producer id, epoch     | 8 + 2 | |                  |          |
//! | base sequence, count   | 4 + 4 | |                  |          |

use std::collections::HashSet;

/// The batch header's size: records start here.
const HEADER_SIZE: usize = 61;

/// One record as a consumer sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub offset: i64,
    pub timestamp: i64,
    pub key: Option<Vec<u8>>,
    pub value: Option<Vec<u8>>,
    pub headers: Vec<(String, Option<Vec<u8>>)>,
}

#[derive(Debug, Clone)]
pub struct Batch {
    pub base_offset: i64,
    pub last_offset: i64,
    pub producer_id: i64,
    pub producer_epoch: i16,
    pub base_sequence: i32,
    pub transactional: bool,
    pub control: bool,
    pub records: Vec<Record>,
}

impl Batch {
    /// For a control batch: whether it is an abort marker (control type 0).
    pub fn is_abort_marker(&self) -> bool {
        let kind = self
            .records
            .first()
            .and_then(|r| r.key.as_deref()?.get(2..4));
        self.control && kind == Some(&[0, 0][..])
    }
}

struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> &'a [u8] {
        let out = &self.bytes[self.pos..self.pos + n];
        self.pos += n;
        out
    }

    fn i8(&mut self) -> i8 {
        self.take(1)[0] as i8
    }

    fn varlong(&mut self) -> i64 {
        let mut raw: u64 = 0;
        let mut shift = 0;
        loop {
            let byte = self.take(1)[0];
            raw |= u64::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                break;
            }
            shift += 7;
        }
        ((raw >> 1) as i64) ^ -((raw & 1) as i64)
    }

    fn varbytes(&mut self) -> Option<Vec<u8>> {
        let len = self.varlong();
        (len >= 0).then(|| self.take(len as usize).to_vec())
    }
}

fn be<const N: usize>(bytes: &[u8], at: usize) -> [u8; N] {
    bytes[at..at + N].try_into().expect("in range")
}

/// The whole batches in `bytes` (a trailing partial batch, which a Fetch
/// response may end with, is left out).
pub fn decode(bytes: &[u8]) -> Vec<Batch> {
    let mut batches = Vec::new();
    let mut pos = 0;
    while pos + 12 <= bytes.len() {
        let size = 12 + i32::from_be_bytes(be(bytes, pos + 8)) as usize;
        if pos + size > bytes.len() {
            break;
        }
        batches.push(decode_batch(&bytes[pos..pos + size]));
        pos += size;
    }
    batches
}

fn decode_batch(b: &[u8]) -> Batch {
    assert_eq!(b[16], 2, "a RecordBatch v2");
    let attributes = i16::from_be_bytes(be(b, 21));
    assert_eq!(attributes & 7, 0, "an uncompressed batch");
    let base_offset = i64::from_be_bytes(be(b, 0));
    let first_timestamp = i64::from_be_bytes(be(b, 27));
    let max_timestamp = i64::from_be_bytes(be(b, 35));
    let log_append_time = attributes & 8 != 0;
    let count = i32::from_be_bytes(be(b, 57));
    let mut r = Reader {
        bytes: b,
        pos: HEADER_SIZE,
    };
    let records = (0..count)
        .map(|_| {
            r.varlong(); // length
            r.i8(); // attributes
            let timestamp_delta = r.varlong();
            let offset_delta = r.varlong();
            let key = r.varbytes();
            let value = r.varbytes();
            let headers = (0..r.varlong())
                .map(|_| {
                    let key = r.varbytes().expect("a header key");
                    let key = String::from_utf8(key).expect("a UTF-8 header key");
                    (key, r.varbytes())
                })
                .collect();
            Record {
                offset: base_offset + offset_delta,
                timestamp: if log_append_time {
                    max_timestamp
                } else {
                    first_timestamp + timestamp_delta
                },
                key,
                value,
                headers,
            }
        })
        .collect();
    Batch {
        base_offset,
        last_offset: base_offset + i64::from(i32::from_be_bytes(be(b, 23))),
        producer_id: i64::from_be_bytes(be(b, 43)),
        producer_epoch: i16::from_be_bytes(be(b, 51)),
        base_sequence: i32::from_be_bytes(be(b, 53)),
        transactional: attributes & 16 != 0,
        control: attributes & 32 != 0,
        records,
    }
}

/// What a `read_committed` consumer keeps, as Kafka's `CompletedFetch`
/// decides it: from the first offset of each aborted transaction the
/// response lists, that producer's transactional batches are skipped until
/// its abort marker; control batches are never records.
#[derive(Debug, Default)]
pub struct ReadCommitted {
    /// (first offset, producer id) of the aborted transactions not reached yet.
    pending: Vec<(i64, i64)>,
    seen: HashSet<(i64, i64)>,
    aborting: HashSet<i64>,
}

impl ReadCommitted {
    /// Adds the aborted transactions a response listed.
    pub fn aborted(&mut self, list: impl IntoIterator<Item = (i64, i64)>) {
        for (producer_id, first_offset) in list {
            if self.seen.insert((first_offset, producer_id)) {
                self.pending.push((first_offset, producer_id));
            }
        }
        self.pending.sort_unstable();
    }

    /// The records of `batch` a read_committed consumer returns.
    pub fn keep(&mut self, batch: &Batch) -> Vec<Record> {
        while let Some(&(first, producer_id)) = self.pending.first() {
            if first > batch.last_offset {
                break;
            }
            self.aborting.insert(producer_id);
            self.pending.remove(0);
        }
        if batch.control {
            if batch.is_abort_marker() {
                self.aborting.remove(&batch.producer_id);
            }
            return Vec::new();
        }
        if batch.transactional && self.aborting.contains(&batch.producer_id) {
            return Vec::new();
        }
        batch.records.clone()
    }
}
