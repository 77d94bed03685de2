//! The Fetch response writer: encodes FetchResponse v4–v13 as a list of
//! chunks, so record data can go from segment files to the socket with
//! `sendfile` while everything around it is small in-memory bytes.
//!
//! The `kafka-protocol` crate encodes a response into one buffer, which
//! would copy every fetched byte through this process. This writer emits
//! the same bytes, field for field, but a records field's contents are the
//! caller's chunks: file regions (any `R:` [`RegionLen`], so this crate stays
//! sans-io) or `Bytes`. The size prefix counts the regions' lengths.
//!
//! Frame layout (integers big-endian; "array" is an i32 count, -1 = null,
//! before v12 and an unsigned varint count + 1, 0 = null, from v12; strings
//! and bytes likewise with an i16/i32 or varint length; "tags" is an empty
//! tagged-fields section, a single 0 byte, v12+ only):
//!
//! | field                        | type           | versions |
//! |------------------------------|----------------|----------|
//! | size                         | i32            | all      |
//! | correlation_id               | i32            | all      |
//! | header tags                  | tags           | 12+      |
//! | throttle_time_ms             | i32            | all      |
//! | error_code                   | i16            | 7+       |
//! | session_id                   | i32            | 7+       |
//! | responses                    | array of topic | all      |
//! | · topic                      | string         | 4–12     |
//! | · topic_id                   | uuid, 16 bytes | 13+      |
//! | · partitions                 | array          | all      |
//! | · · partition_index          | i32            | all      |
//! | · · error_code               | i16            | all      |
//! | · · high_watermark           | i64            | all      |
//! | · · last_stable_offset       | i64            | all      |
//! | · · log_start_offset         | i64            | 5+       |
//! | · · aborted_transactions     | nullable array | all      |
//! | · · · producer_id            | i64            | all      |
//! | · · · first_offset           | i64            | all      |
//! | · · · tags                   | tags           | 12+      |
//! | · · preferred_read_replica   | i32            | 11+      |
//! | · · records                  | nullable bytes | all      |
//! | · · tags                     | tags           | 12+      |
//! | · tags                       | tags           | 12+      |
//! | tags                         | tags           | 12+      |
//!
//! Of the partition's tagged fields only diverging_epoch (tag 0) is sent,
//! to a follower whose log diverged; current_leader and snapshot_id are
//! left out at their defaults. Fields a version
//! lacks are left out, as the version defines the format.
//!
//! Chunks: the first carries the size prefix, header and everything up to
//! the first records field; each records field contributes its chunks as
//! given (zero-length ones dropped); the bytes between two records fields
//! are one `Bytes` chunk. All non-record bytes share one buffer.

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::ApiKey;
use kafka_protocol::protocol::StrBytes;
use thiserror::Error;

use crate::frame::SIZE_PREFIX_BYTES;
use crate::response;

/// Fetch versions this writer encodes.
pub const MIN_VERSION: i16 = 4;
pub const MAX_VERSION: i16 = 13;
/// First version with compact arrays, strings, bytes and tagged fields.
pub const FIRST_FLEXIBLE_VERSION: i16 = 12;
/// First version that names topics by id instead of by name.
pub const FIRST_TOPIC_ID_VERSION: i16 = 13;

/// Length of a piece of record data that is not in memory.
pub trait RegionLen {
    fn len_bytes(&self) -> u64;
}

/// A piece of an encoded response, sent in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Chunk<R> {
    Bytes(Bytes),
    Region(R),
}

impl<R: RegionLen> Chunk<R> {
    pub fn len_bytes(&self) -> u64 {
        match self {
            Chunk::Bytes(bytes) => bytes.len() as u64,
            Chunk::Region(region) => region.len_bytes(),
        }
    }
}

/// Why a Fetch response could not be written. All are broker bugs: the
/// handler picks a supported version and caps the bytes it fetches.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum FetchWriteError {
    #[error("Fetch v{version} is outside the writer's v{MIN_VERSION}..=v{MAX_VERSION}")]
    UnsupportedVersion { version: i16 },
    #[error("Fetch response of {size_bytes} bytes does not fit a frame")]
    TooLarge { size_bytes: u64 },
    #[error("array of {len} entries is too long to encode")]
    ArrayTooLong { len: usize },
    #[error("topic name of {len_bytes} bytes is too long to encode")]
    TopicNameTooLong { len_bytes: usize },
}

/// A Fetch response, with each partition's records as chunks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchResponseData<R> {
    pub throttle_time_ms: i32,
    /// Top-level error (v7+), e.g. for a fetch session problem.
    pub error_code: i16,
    /// Fetch session id (v7+); 0 when sessions are not used.
    pub session_id: i32,
    pub topics: Vec<FetchTopicData<R>>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchTopicData<R> {
    /// Sent before v13.
    pub name: StrBytes,
    /// Sent from v13.
    pub topic_id: [u8; 16],
    pub partitions: Vec<FetchPartitionData<R>>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchPartitionData<R> {
    pub partition_index: i32,
    pub error_code: i16,
    pub high_watermark: i64,
    pub last_stable_offset: i64,
    /// Sent from v5.
    pub log_start_offset: i64,
    /// `None` is a null array.
    pub aborted_transactions: Option<Vec<AbortedTransaction>>,
    /// Sent from v11; -1 means "fetch from the leader".
    pub preferred_read_replica: i32,
    /// `None` is null records; the chunks' total length is the field's.
    pub records: Option<Vec<Chunk<R>>>,
    /// A follower's log diverged from the leader's: the epoch and its end
    /// offset on the leader, tagged field 0 (v12+; left out when `None`).
    pub diverging_epoch: Option<DivergingEpoch>,
}

/// Where a follower's last fetched epoch ends on the leader (KIP-595 and
/// KIP-320's truncation through Fetch).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DivergingEpoch {
    pub epoch: i32,
    pub end_offset: i64,
}

impl<R> FetchPartitionData<R> {
    /// A partition with no error, empty records and the -1 offsets Kafka
    /// sends when it has none. Records are empty, not null, as Kafka sends
    /// them even with an error code.
    pub fn new(partition_index: i32) -> Self {
        Self {
            partition_index,
            error_code: 0,
            high_watermark: -1,
            last_stable_offset: -1,
            log_start_offset: -1,
            aborted_transactions: None,
            preferred_read_replica: -1,
            records: Some(Vec::new()),
            diverging_epoch: None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AbortedTransaction {
    pub producer_id: i64,
    pub first_offset: i64,
}

/// Bytes of one aborted transaction entry before tags.
const ABORTED_TRANSACTION_BYTES: usize = 16;
/// Upper bound of a partition's bytes outside its aborted transactions and
/// records, used to size the buffer once.
const PARTITION_ESTIMATE_BYTES: usize = 64;

/// Encodes `response` as a whole Fetch response frame of `version`.
pub fn write<R: RegionLen>(
    version: i16,
    correlation_id: i32,
    response: FetchResponseData<R>,
) -> Result<Vec<Chunk<R>>, FetchWriteError> {
    if !(MIN_VERSION..=MAX_VERSION).contains(&version) {
        return Err(FetchWriteError::UnsupportedVersion { version });
    }
    let mut w = Writer::new(version, estimate_bytes(&response));
    w.buf.put_i32(0); // size, patched in `finish`
    response::put_header(
        &mut w.buf,
        ApiKey::Fetch.response_header_version(version),
        correlation_id,
    );
    w.buf.put_i32(response.throttle_time_ms);
    if version >= 7 {
        w.buf.put_i16(response.error_code);
        w.buf.put_i32(response.session_id);
    }
    w.array_len(Some(response.topics.len()))?;
    for topic in response.topics {
        w.topic(topic)?;
    }
    w.tags();
    w.finish()
}

fn estimate_bytes<R>(response: &FetchResponseData<R>) -> usize {
    let partitions = |t: &FetchTopicData<R>| -> usize {
        t.partitions
            .iter()
            .map(|p| {
                let aborted = p.aborted_transactions.as_ref().map_or(0, Vec::len);
                PARTITION_ESTIMATE_BYTES + aborted * (ABORTED_TRANSACTION_BYTES + 1)
            })
            .sum()
    };
    let topics: usize = response
        .topics
        .iter()
        .map(|t| 32 + t.name.len() + partitions(t))
        .sum();
    32 + topics
}

struct Writer<R> {
    version: i16,
    /// Every byte that is not record data, in frame order.
    buf: BytesMut,
    /// Record chunks and the `buf` offset they go before.
    records: Vec<(usize, Chunk<R>)>,
    records_bytes: u64,
}

impl<R: RegionLen> Writer<R> {
    fn new(version: i16, capacity: usize) -> Self {
        Self {
            version,
            buf: BytesMut::with_capacity(capacity),
            records: Vec::new(),
            records_bytes: 0,
        }
    }

    fn flexible(&self) -> bool {
        self.version >= FIRST_FLEXIBLE_VERSION
    }

    fn topic(&mut self, topic: FetchTopicData<R>) -> Result<(), FetchWriteError> {
        if self.version >= FIRST_TOPIC_ID_VERSION {
            self.buf.put_slice(&topic.topic_id);
        } else {
            let name = topic.name.as_bytes();
            let len_bytes = name.len();
            if self.flexible() {
                let len = u32::try_from(len_bytes + 1)
                    .map_err(|_| FetchWriteError::TopicNameTooLong { len_bytes })?;
                put_uvarint(&mut self.buf, len);
            } else {
                let len = i16::try_from(len_bytes)
                    .map_err(|_| FetchWriteError::TopicNameTooLong { len_bytes })?;
                self.buf.put_i16(len);
            }
            self.buf.put_slice(name);
        }
        self.array_len(Some(topic.partitions.len()))?;
        for partition in topic.partitions {
            self.partition(partition)?;
        }
        self.tags();
        Ok(())
    }

    fn partition(&mut self, p: FetchPartitionData<R>) -> Result<(), FetchWriteError> {
        self.buf.put_i32(p.partition_index);
        self.buf.put_i16(p.error_code);
        self.buf.put_i64(p.high_watermark);
        self.buf.put_i64(p.last_stable_offset);
        if self.version >= 5 {
            self.buf.put_i64(p.log_start_offset);
        }
        let aborted = p.aborted_transactions.as_deref();
        self.array_len(aborted.map(<[_]>::len))?;
        for txn in aborted.unwrap_or_default() {
            self.buf.put_i64(txn.producer_id);
            self.buf.put_i64(txn.first_offset);
            self.tags();
        }
        if self.version >= 11 {
            self.buf.put_i32(p.preferred_read_replica);
        }
        self.records(p.records)?;
        match p.diverging_epoch.filter(|_| self.flexible()) {
            Some(diverging) => {
                // One tagged field: tag 0, 13 bytes (epoch, end offset and
                // the struct's own empty tags).
                self.buf.put_u8(1);
                put_uvarint(&mut self.buf, 0);
                put_uvarint(&mut self.buf, 13);
                self.buf.put_i32(diverging.epoch);
                self.buf.put_i64(diverging.end_offset);
                self.buf.put_u8(0);
            }
            None => self.tags(),
        }
        Ok(())
    }

    fn records(&mut self, records: Option<Vec<Chunk<R>>>) -> Result<(), FetchWriteError> {
        let Some(chunks) = records else {
            if self.flexible() {
                put_uvarint(&mut self.buf, 0);
            } else {
                self.buf.put_i32(-1);
            }
            return Ok(());
        };
        let len_bytes: u64 = chunks.iter().map(Chunk::len_bytes).sum();
        let too_large = || FetchWriteError::TooLarge {
            size_bytes: len_bytes,
        };
        let len = i32::try_from(len_bytes).map_err(|_| too_large())?;
        if self.flexible() {
            // len < 2^31, so len + 1 fits.
            put_uvarint(&mut self.buf, len as u32 + 1);
        } else {
            self.buf.put_i32(len);
        }
        let at = self.buf.len();
        for chunk in chunks {
            if chunk.len_bytes() > 0 {
                self.records.push((at, chunk));
            }
        }
        self.records_bytes += len_bytes;
        Ok(())
    }

    /// An array or nullable array length, classic or compact.
    fn array_len(&mut self, entries: Option<usize>) -> Result<(), FetchWriteError> {
        let len = match entries.map(i32::try_from) {
            None => None,
            Some(Ok(len)) => Some(len),
            Some(Err(_)) => {
                let len = entries.unwrap_or_default();
                return Err(FetchWriteError::ArrayTooLong { len });
            }
        };
        if self.flexible() {
            put_uvarint(&mut self.buf, len.map_or(0, |n| n as u32 + 1));
        } else {
            self.buf.put_i32(len.unwrap_or(-1));
        }
        Ok(())
    }

    fn tags(&mut self) {
        if self.flexible() {
            self.buf.put_u8(0);
        }
    }

    /// Patches the size prefix and cuts the buffer around the record chunks.
    fn finish(mut self) -> Result<Vec<Chunk<R>>, FetchWriteError> {
        let size_bytes = (self.buf.len() - SIZE_PREFIX_BYTES) as u64 + self.records_bytes;
        let size =
            i32::try_from(size_bytes).map_err(|_| FetchWriteError::TooLarge { size_bytes })?;
        self.buf[..SIZE_PREFIX_BYTES].copy_from_slice(&size.to_be_bytes());
        let mut rest = self.buf.freeze();
        let mut cut = 0;
        let mut chunks = Vec::with_capacity(2 * self.records.len() + 1);
        for (at, chunk) in self.records {
            if at > cut {
                chunks.push(Chunk::Bytes(rest.split_to(at - cut)));
                cut = at;
            }
            chunks.push(chunk);
        }
        if !rest.is_empty() {
            chunks.push(Chunk::Bytes(rest));
        }
        Ok(chunks)
    }
}

/// Kafka's unsigned varint: 7 bits a byte, low bits first.
fn put_uvarint(buf: &mut BytesMut, mut value: u32) {
    while value >= 0x80 {
        buf.put_u8((value as u8 & 0x7f) | 0x80);
        value >>= 7;
    }
    buf.put_u8(value as u8);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A region standing in for a file region: its bytes are what the
    /// server would send from the file.
    #[derive(Debug, Clone, PartialEq, Eq)]
    struct TestRegion(Bytes);

    impl RegionLen for TestRegion {
        fn len_bytes(&self) -> u64 {
            self.0.len() as u64
        }
    }

    /// A region that is only a length, for frames too large to build.
    #[derive(Debug)]
    struct Len(u64);

    impl RegionLen for Len {
        fn len_bytes(&self) -> u64 {
            self.0
        }
    }

    fn flatten(chunks: &[Chunk<TestRegion>]) -> Vec<u8> {
        let mut out = Vec::new();
        for chunk in chunks {
            match chunk {
                Chunk::Bytes(bytes) => out.extend_from_slice(bytes),
                Chunk::Region(TestRegion(bytes)) => out.extend_from_slice(bytes),
            }
        }
        out
    }

    fn one_partition<R>(
        version_name: &'static str,
        p: FetchPartitionData<R>,
    ) -> FetchResponseData<R> {
        FetchResponseData {
            throttle_time_ms: 0,
            error_code: 0,
            session_id: 0,
            topics: vec![FetchTopicData {
                name: StrBytes::from_static_str(version_name),
                topic_id: [0xAB; 16],
                partitions: vec![p],
            }],
        }
    }

    #[test]
    fn v4_golden_bytes() {
        let mut p = FetchPartitionData::new(2);
        p.high_watermark = 5;
        p.last_stable_offset = 5;
        p.records = Some(vec![Chunk::Region(TestRegion(Bytes::from_static(b"RECS")))]);
        let chunks = write(4, 7, one_partition("t", p)).expect("write");
        #[rustfmt::skip]
        let expected: &[u8] = &[
            0, 0, 0, 53,             // size
            0, 0, 0, 7,              // correlation id
            0, 0, 0, 0,              // throttle_time_ms
            0, 0, 0, 1,              // topics
            0, 1, b't',              // name
            0, 0, 0, 1,              // partitions
            0, 0, 0, 2,              // partition_index
            0, 0,                    // error_code
            0, 0, 0, 0, 0, 0, 0, 5,  // high_watermark
            0, 0, 0, 0, 0, 0, 0, 5,  // last_stable_offset
            0xFF, 0xFF, 0xFF, 0xFF,  // aborted_transactions: null
            0, 0, 0, 4,              // records length
            b'R', b'E', b'C', b'S',
        ];
        assert_eq!(flatten(&chunks), expected);
        assert_eq!(
            chunks.len(),
            2,
            "header chunk then the region, nothing after"
        );
        assert!(matches!(chunks[1], Chunk::Region(_)));
    }

    #[test]
    fn size_counts_region_lengths_without_reading_them() {
        let mut p = FetchPartitionData::new(0);
        p.records = Some(vec![Chunk::Region(Len(1 << 20))]);
        let chunks = write(4, 1, one_partition("t", p)).expect("write");
        let Chunk::Bytes(head) = &chunks[0] else {
            panic!("first chunk is bytes");
        };
        let size = i32::from_be_bytes(head[..4].try_into().expect("4 bytes"));
        assert_eq!(size as usize, head.len() - SIZE_PREFIX_BYTES + (1 << 20));
    }

    #[test]
    fn frames_over_two_gibibytes_are_refused() {
        let mut p = FetchPartitionData::new(0);
        p.records = Some(vec![
            Chunk::Region(Len(1 << 30)),
            Chunk::Region(Len(1 << 30)),
        ]);
        assert!(matches!(
            write(12, 1, one_partition("t", p)),
            Err(FetchWriteError::TooLarge { size_bytes }) if size_bytes == 1 << 31
        ));
        let mut response = one_partition("t", FetchPartitionData::new(0));
        for i in 1..3 {
            let mut p = FetchPartitionData::new(i);
            p.records = Some(vec![Chunk::Region(Len((1 << 30) + 1))]);
            response.topics[0].partitions.push(p);
        }
        assert!(matches!(
            write(4, 1, response),
            Err(FetchWriteError::TooLarge { .. })
        ));
    }

    #[test]
    fn versions_outside_the_writer_are_refused() {
        for version in [3, 14, -1] {
            let response = one_partition::<Len>("t", FetchPartitionData::new(0));
            assert_eq!(
                write(version, 1, response).expect_err("unsupported"),
                FetchWriteError::UnsupportedVersion { version }
            );
        }
    }

    #[test]
    fn uvarint_matches_kafka() {
        for (value, bytes) in [
            (0u32, &[0u8][..]),
            (1, &[1]),
            (127, &[0x7f]),
            (128, &[0x80, 0x01]),
            (300, &[0xac, 0x02]),
            (u32::MAX, &[0xff, 0xff, 0xff, 0xff, 0x0f]),
        ] {
            let mut buf = BytesMut::new();
            put_uvarint(&mut buf, value);
            assert_eq!(&buf[..], bytes, "{value}");
        }
    }
}
