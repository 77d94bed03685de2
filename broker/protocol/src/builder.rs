//! Builds uncompressed RecordBatch v2 bytes, records encoded in place as
//! they come. Used by the client's producer, tests, benchmarks and tools;
//! it is not on the broker's append path, which stores the bytes producers
//! send.

use crate::batch::{
    CONTROL_MASK, Compression, HEADER_SIZE, HeaderBytes, MAGIC_V2, TRANSACTIONAL_MASK,
};
use crate::control::ControlType;
use crate::records::{RecordsError, compress_records, put_varlong, varlong_size};

/// Collects records and encodes them as one batch with base offset 0 unless
/// told otherwise. Producer id, epoch and base sequence are -1 (no
/// idempotence), as a plain producer sends, unless set with
/// [`producer`](Self::producer).
#[derive(Debug, Clone)]
pub struct BatchBuilder {
    base_offset: i64,
    partition_leader_epoch: i32,
    producer_id: i64,
    producer_epoch: i16,
    base_sequence: i32,
    /// Transactional and control bits of the attributes.
    flags: i16,
    first_timestamp: i64,
    max_timestamp: i64,
    /// The batch as it will be sent: `HEADER_SIZE` bytes kept for the
    /// header, then the records section.
    buf: Vec<u8>,
    count: i32,
}

impl BatchBuilder {
    /// `first_timestamp` is the batch's base timestamp; record timestamps are
    /// stored as deltas from it.
    pub fn new(first_timestamp: i64) -> Self {
        Self {
            base_offset: 0,
            partition_leader_epoch: -1,
            producer_id: -1,
            producer_epoch: -1,
            base_sequence: -1,
            flags: 0,
            first_timestamp,
            max_timestamp: first_timestamp,
            buf: vec![0; HEADER_SIZE],
            count: 0,
        }
    }

    pub fn base_offset(mut self, base_offset: i64) -> Self {
        self.base_offset = base_offset;
        self
    }

    /// The leader epoch stamped on the batch (-1 unless set): KRaft's
    /// metadata log and snapshots carry the quorum epoch there.
    pub fn partition_leader_epoch(mut self, epoch: i32) -> Self {
        self.partition_leader_epoch = epoch;
        self
    }

    /// Marks the batch as a control batch outside any transaction, as
    /// KRaft writes its snapshot header and footer; its records are control
    /// records (key: version and type, value: the control message).
    pub fn control(mut self) -> Self {
        self.flags |= CONTROL_MASK;
        self
    }

    /// An idempotent producer's batch: its producer id and epoch, and the
    /// sequence number of the first record.
    pub fn producer(mut self, producer_id: i64, producer_epoch: i16, base_sequence: i32) -> Self {
        self.producer_id = producer_id;
        self.producer_epoch = producer_epoch;
        self.base_sequence = base_sequence;
        self
    }

    /// Marks the batch as part of a transaction.
    pub fn transactional(mut self) -> Self {
        self.flags |= TRANSACTIONAL_MASK;
        self
    }

    /// A transaction marker: a transactional control batch of one record
    /// saying whether the producer's transaction committed or aborted, as
    /// the transaction coordinator has the partition leaders write it.
    pub fn marker(
        producer_id: i64,
        producer_epoch: i16,
        kind: ControlType,
        coordinator_epoch: i32,
        timestamp: i64,
    ) -> Self {
        let mut builder = Self::new(timestamp)
            .producer(producer_id, producer_epoch, -1)
            .transactional();
        builder.flags |= CONTROL_MASK;
        builder.push(
            Some(&kind.key()),
            Some(&ControlType::value(coordinator_epoch)),
            timestamp,
        );
        builder
    }

    pub fn record(mut self, key: Option<&[u8]>, value: Option<&[u8]>, timestamp: i64) -> Self {
        self.push(key, value, timestamp);
        self
    }

    /// Appends one record, encoded in place (no allocation beyond the
    /// batch buffer's growth).
    pub fn push(&mut self, key: Option<&[u8]>, value: Option<&[u8]>, timestamp: i64) {
        self.push_with_headers(key, value, timestamp, (0, &[]), &[]);
    }

    /// Appends one record with headers: `kept` is a count and headers as
    /// encoded (a record's [`crate::records::RecordView::headers`]), copied
    /// as they are; `extra` headers follow them.
    pub fn push_with_headers(
        &mut self,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
        timestamp: i64,
        kept: (i32, &[u8]),
        extra: &[(&str, &[u8])],
    ) {
        let timestamp_delta = timestamp - self.first_timestamp;
        let offset_delta = i64::from(self.count);
        let (kept_count, kept_bytes) = kept;
        let headers_count = i64::from(kept_count) + extra.len() as i64;
        let extra_len: usize = extra
            .iter()
            .map(|(k, v)| bytes_size(Some(k.as_bytes())) + bytes_size(Some(v)))
            .sum();
        let body_len = 1 // attributes
            + varlong_size(timestamp_delta)
            + varlong_size(offset_delta)
            + bytes_size(key)
            + bytes_size(value)
            + varlong_size(headers_count)
            + kept_bytes.len()
            + extra_len;
        let out = &mut self.buf;
        out.reserve(varlong_size(body_len as i64) + body_len);
        put_varlong(out, body_len as i64);
        out.push(0); // attributes
        put_varlong(out, timestamp_delta);
        put_varlong(out, offset_delta);
        put_bytes(out, key);
        put_bytes(out, value);
        put_varlong(out, headers_count);
        out.extend_from_slice(kept_bytes);
        for (k, v) in extra {
            put_bytes(out, Some(k.as_bytes()));
            put_bytes(out, Some(v));
        }
        self.count += 1;
        self.max_timestamp = self.max_timestamp.max(timestamp);
    }

    pub fn len(&self) -> usize {
        self.count as usize
    }

    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Size the batch will have once built.
    pub fn size_bytes(&self) -> usize {
        self.buf.len()
    }

    fn records(&self) -> &[u8] {
        &self.buf[HEADER_SIZE..]
    }

    /// The uncompressed batch, built in place: no copy of the records.
    pub fn into_batch(mut self) -> Vec<u8> {
        let mut header = self.header(Compression::None);
        header.set_rewritten(self.records(), self.count, self.max_timestamp);
        self.buf[..HEADER_SIZE].copy_from_slice(&header.0);
        self.buf
    }

    pub fn build(&self) -> Vec<u8> {
        self.clone().into_batch()
    }

    /// The batch with its records section compressed by `codec`
    /// (`compression.type`), as a producer sends it.
    pub fn build_compressed(&self, codec: Compression) -> Result<Vec<u8>, RecordsError> {
        if codec == Compression::None {
            return Ok(self.build());
        }
        self.compressed(codec)
    }

    /// As [`build_compressed`](Self::build_compressed), consuming the
    /// builder: uncompressed, the batch is built in place.
    pub fn into_compressed(self, codec: Compression) -> Result<Vec<u8>, RecordsError> {
        if codec == Compression::None {
            return Ok(self.into_batch());
        }
        self.compressed(codec)
    }

    fn compressed(&self, codec: Compression) -> Result<Vec<u8>, RecordsError> {
        let body = compress_records(codec, self.records(), self.base_offset)?;
        let mut header = self.header(codec);
        header.set_rewritten(&body, self.count, self.max_timestamp);
        let mut out = Vec::with_capacity(HEADER_SIZE + body.len());
        out.extend_from_slice(&header.0);
        out.extend_from_slice(&body);
        Ok(out)
    }

    /// The fixed header with every field but length, count, max timestamp
    /// and CRC (set by `set_rewritten`).
    fn header(&self, codec: Compression) -> HeaderBytes {
        let mut header = [0u8; HEADER_SIZE];
        header[0..8].copy_from_slice(&self.base_offset.to_be_bytes());
        header[12..16].copy_from_slice(&self.partition_leader_epoch.to_be_bytes());
        header[16] = MAGIC_V2 as u8;
        // attributes: the codec, CreateTime
        header[21..23].copy_from_slice(&(codec.attribute_bits() | self.flags).to_be_bytes());
        header[23..27].copy_from_slice(&(self.count - 1).max(0).to_be_bytes());
        header[27..35].copy_from_slice(&self.first_timestamp.to_be_bytes());
        header[43..51].copy_from_slice(&self.producer_id.to_be_bytes());
        header[51..53].copy_from_slice(&self.producer_epoch.to_be_bytes());
        header[53..57].copy_from_slice(&self.base_sequence.to_be_bytes());
        HeaderBytes(header)
    }
}

/// Bytes [`put_bytes`] writes.
fn bytes_size(bytes: Option<&[u8]>) -> usize {
    match bytes {
        None => 1,
        Some(bytes) => varlong_size(bytes.len() as i64) + bytes.len(),
    }
}

fn put_bytes(out: &mut Vec<u8>, bytes: Option<&[u8]>) {
    match bytes {
        None => put_varlong(out, -1),
        Some(bytes) => {
            put_varlong(out, bytes.len() as i64);
            out.extend_from_slice(bytes);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::batch::validate;
    use crate::records::BatchRecords;

    #[test]
    fn headers_are_kept_as_encoded_and_extra_ones_follow() {
        let first = BatchBuilder::new(5)
            .record(Some(b"k"), Some(b"v"), 5)
            .build();
        let first = BatchRecords::decode(&first).expect("decode");
        let record = &first.records[0];
        assert_eq!(record.headers_count, 0);
        let mut builder = BatchBuilder::new(9);
        builder.push_with_headers(
            Some(b"k"),
            Some(b"v"),
            9,
            (record.headers_count, first.headers(record)),
            &[("a", b"1"), ("b", b"")],
        );
        let second = BatchRecords::decode(&builder.build()).expect("decode");
        let record = &second.records[0];
        assert_eq!(record.headers_count, 2);
        let mut again = BatchBuilder::new(9);
        again.push_with_headers(
            None,
            None,
            12,
            (record.headers_count, second.headers(record)),
            &[("c", b"3")],
        );
        let third = BatchRecords::decode(&again.build()).expect("decode");
        let record = &third.records[0];
        let pairs: Vec<_> = third.header_pairs(record).collect();
        assert_eq!(
            pairs,
            [
                (&b"a"[..], Some(&b"1"[..])),
                (&b"b"[..], Some(&b""[..])),
                (&b"c"[..], Some(&b"3"[..]))
            ]
        );
        assert_eq!((third.key(record), third.value(record)), (None, None));
        assert_eq!(third.timestamp(record), 12);
    }

    #[test]
    fn control_batches_carry_the_control_bit_and_epoch_only() {
        let batch = BatchBuilder::new(7)
            .control()
            .partition_leader_epoch(5)
            .record(Some(&[0, 0, 0, 3]), Some(&[1]), 7)
            .build();
        let header = validate(&batch).expect("a valid batch");
        assert!(header.is_control());
        assert!(!header.is_transactional());
        assert_eq!(&batch[12..16], &5i32.to_be_bytes());
        let plain = BatchBuilder::new(7).build();
        assert_eq!(&plain[12..16], &(-1i32).to_be_bytes());
    }

    #[test]
    fn compressed_batches_hold_the_same_records_with_every_codec() {
        let mut builder = BatchBuilder::new(1_000);
        for i in 0..50u8 {
            builder.push(Some(&[i]), Some(&[i; 100]), 1_000 + i64::from(i));
        }
        for codec in [
            Compression::None,
            Compression::Gzip,
            Compression::Snappy,
            Compression::Lz4,
            Compression::Zstd,
        ] {
            let batch = builder.build_compressed(codec).expect("compress");
            let header = validate(&batch).expect("a valid batch");
            assert_eq!(header.compression().expect("codec"), codec);
            if codec != Compression::None {
                assert!(
                    batch.len() < builder.size_bytes(),
                    "{codec:?} made it smaller"
                );
            }
            let records = BatchRecords::decode(&batch).expect("decode");
            assert_eq!(records.records.len(), 50);
            for (i, record) in records.records.iter().enumerate() {
                assert_eq!(records.key(record), Some(&[i as u8][..]));
                assert_eq!(records.value(record), Some(&[i as u8; 100][..]));
                assert_eq!(records.offset(record), i as i64);
            }
        }
    }
}
