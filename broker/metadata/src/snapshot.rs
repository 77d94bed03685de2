//! Snapshots of the image in Kafka's layout (KIP-630, Kafka's
//! `RecordsSnapshotWriter`), sans-io: the bytes of a `.checkpoint` file and
//! its name; the caller writes and reads the file.
//!
//! File: `__cluster_metadata-0/<end offset, 20 digits>-<epoch, 10 digits>.checkpoint`,
//! where the end offset is one past the last record the snapshot holds.
//! Content, RecordBatches with offsets from 0, each stamped with the
//! snapshot's epoch:
//!
//! | batch   | kind    | records                                               |
//! |---------|---------|-------------------------------------------------------|
//! | first   | control | one: key (0, 3 SNAPSHOT_HEADER), value SnapshotHeaderRecord v0 |
//! | middle  | data    | the image's records (null key, framed metadata record)|
//! | last    | control | one: key (0, 4 SNAPSHOT_FOOTER), value SnapshotFooterRecord v0 |
//!
//! SnapshotHeaderRecord v0: Version int16 (0), LastContainedLogTimestamp
//! int64, tagged fields. SnapshotFooterRecord v0: Version int16 (0), tagged
//! fields.

use std::sync::Arc;

use runnel_protocol::BatchBuilder;
use runnel_protocol::batch::Batches;
use runnel_protocol::records::BatchRecords;
use thiserror::Error;

use crate::delta::{MetadataDelta, ReplayError};
use crate::image::{MetadataImage, Provenance};
use crate::log_batch::{BatchDecodeError, decode_batch};
use crate::records::MetadataRecord;
use crate::wire::EncodeError;

/// The directory of the metadata log (and its snapshots) in the metadata
/// log dir.
pub const METADATA_LOG_DIR: &str = "__cluster_metadata-0";
pub const SNAPSHOT_SUFFIX: &str = ".checkpoint";
/// Records per data batch; Kafka caps a batch at 8 MiB, far above this.
const RECORDS_PER_BATCH: usize = 1000;

const SNAPSHOT_HEADER: i16 = 3;
const SNAPSHOT_FOOTER: i16 = 4;

#[derive(Debug, Error)]
pub enum SnapshotError {
    #[error("snapshot record {name} cannot be written")]
    Encode {
        name: &'static str,
        #[source]
        source: EncodeError,
    },
    #[error("snapshot batch {index} is unreadable")]
    Batch {
        index: usize,
        #[source]
        source: BatchDecodeError,
    },
    #[error("snapshot does not begin with a SnapshotHeaderRecord")]
    MissingHeader,
    #[error("snapshot does not end with a SnapshotFooterRecord")]
    MissingFooter,
    #[error("snapshot record at offset {offset} does not replay")]
    Replay {
        offset: i64,
        #[source]
        source: ReplayError,
    },
}

/// A snapshot's identity: the log offset it ends before and the epoch of
/// the last record it holds (Kafka's `OffsetAndEpoch`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct SnapshotId {
    pub end_offset: i64,
    pub epoch: i32,
}

impl SnapshotId {
    /// The id of a snapshot of `image`.
    pub fn of(image: &MetadataImage) -> Self {
        let Provenance { offset, epoch } = image.provenance();
        Self {
            end_offset: offset + 1,
            epoch: epoch.max(0),
        }
    }

    pub fn file_name(&self) -> String {
        format!(
            "{:020}-{:010}{SNAPSHOT_SUFFIX}",
            self.end_offset, self.epoch
        )
    }

    /// The id a snapshot file name carries; `None` for other files.
    pub fn parse_file_name(name: &str) -> Option<Self> {
        let stem = name.strip_suffix(SNAPSHOT_SUFFIX)?;
        let (offset, epoch) = stem.split_once('-')?;
        if offset.len() != 20 || epoch.len() != 10 {
            return None;
        }
        let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
        if !digits(offset) || !digits(epoch) {
            return None;
        }
        Some(Self {
            end_offset: offset.parse().ok()?,
            epoch: epoch.parse().ok()?,
        })
    }
}

/// The bytes of a snapshot file of `image`. `last_contained_log_time_ms`
/// is the append time of the image's last record; `now_ms` stamps the
/// batches.
pub fn write_snapshot(
    image: &MetadataImage,
    last_contained_log_time_ms: i64,
    now_ms: i64,
) -> Result<Vec<u8>, SnapshotError> {
    let epoch = SnapshotId::of(image).epoch;
    let mut header = [0u8; 11];
    header[2..10].copy_from_slice(&last_contained_log_time_ms.to_be_bytes());
    let mut out = control_batch(0, epoch, now_ms, SNAPSHOT_HEADER, &header);
    let mut offset = 1;
    let records = image.to_records();
    let mut value = bytes::BytesMut::new();
    for chunk in records.chunks(RECORDS_PER_BATCH) {
        let mut builder = BatchBuilder::new(now_ms)
            .base_offset(offset)
            .partition_leader_epoch(epoch);
        for record in chunk {
            value.clear();
            record
                .encode(&mut value)
                .map_err(|source| SnapshotError::Encode {
                    name: record.name(),
                    source,
                })?;
            builder.push(None, Some(&value), now_ms);
        }
        offset += chunk.len() as i64;
        out.extend_from_slice(&builder.into_batch());
    }
    // SnapshotFooterRecord v0: version 0, no tagged fields.
    out.extend_from_slice(&control_batch(
        offset,
        epoch,
        now_ms,
        SNAPSHOT_FOOTER,
        &[0, 0, 0],
    ));
    Ok(out)
}

fn control_batch(offset: i64, epoch: i32, now_ms: i64, kind: i16, value: &[u8]) -> Vec<u8> {
    let mut key = [0u8; 4];
    key[2..].copy_from_slice(&kind.to_be_bytes());
    BatchBuilder::new(now_ms)
        .base_offset(offset)
        .partition_leader_epoch(epoch)
        .control()
        .record(Some(&key), Some(value), now_ms)
        .into_batch()
}

/// A snapshot file's content, read back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    pub last_contained_log_time_ms: i64,
    pub records: Vec<MetadataRecord>,
}

/// The control record type of a single-record control batch, and its value.
fn control_record(batch: &[u8]) -> Option<(i16, Vec<u8>)> {
    let records = BatchRecords::decode(batch).ok()?;
    let [view] = records.records.as_slice() else {
        return None;
    };
    let key = records.key(view)?;
    let kind = i16::from_be_bytes(key.get(2..4)?.try_into().ok()?);
    Some((kind, records.value(view)?.to_vec()))
}

/// Reads a snapshot file's bytes: header, records, footer.
pub fn read_snapshot(bytes: &[u8]) -> Result<Snapshot, SnapshotError> {
    let mut batches = Vec::new();
    for (index, batch) in Batches::new(bytes).enumerate() {
        let (header, batch) = batch.map_err(|source| SnapshotError::Batch {
            index,
            source: BatchDecodeError::Batch(source),
        })?;
        batches.push((index, header.is_control(), batch));
    }
    let Some(((_, true, first), rest)) = batches.split_first() else {
        return Err(SnapshotError::MissingHeader);
    };
    let last_contained_log_time_ms = match control_record(first) {
        Some((SNAPSHOT_HEADER, value)) if value.len() >= 10 => i64::from_be_bytes(
            value[2..10]
                .try_into()
                .map_err(|_| SnapshotError::MissingHeader)?,
        ),
        _ => return Err(SnapshotError::MissingHeader),
    };
    let Some(((_, true, last), data)) = rest.split_last() else {
        return Err(SnapshotError::MissingFooter);
    };
    if !matches!(control_record(last), Some((SNAPSHOT_FOOTER, _))) {
        return Err(SnapshotError::MissingFooter);
    }
    let mut records = Vec::new();
    for (index, _, batch) in data {
        let batch = decode_batch(batch).map_err(|source| SnapshotError::Batch {
            index: *index,
            source,
        })?;
        records.extend(batch.records.into_iter().map(|(_, record)| record));
    }
    Ok(Snapshot {
        last_contained_log_time_ms,
        records,
    })
}

/// The image a snapshot file holds, at provenance `id`.
pub fn load_snapshot(bytes: &[u8], id: SnapshotId) -> Result<MetadataImage, SnapshotError> {
    let snapshot = read_snapshot(bytes)?;
    let mut delta = MetadataDelta::new(Arc::new(MetadataImage::empty()));
    for (offset, record) in snapshot.records.iter().enumerate() {
        let offset = offset as i64;
        delta
            .replay(offset, id.epoch, record)
            .map_err(|source| SnapshotError::Replay { offset, source })?;
    }
    let mut image = delta.apply();
    image.provenance = Provenance {
        offset: id.end_offset - 1,
        epoch: id.epoch,
    };
    Ok(image)
}
