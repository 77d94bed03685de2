//! The `__cluster_metadata` log of this broker: partition 0 of that topic
//! in the first log dir, kept by the log manager like any log (recovery,
//! checkpoints, the clean-shutdown marker) but with its own settings:
//! nothing expires by time or size, and every append is fsynced before the
//! change it holds is published. Snapshots sit beside its segments in
//! Kafka's layout (`<end offset, 20 digits>-<epoch, 10 digits>.checkpoint`);
//! after one is written the log starts at its end offset, so retention
//! removes the segments it covers.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use runnel_log::manager::lock;
use runnel_log::{LogConfig, LogManager, SharedLog, TopicPartition};
use runnel_metadata::snapshot::{load_snapshot, write_snapshot};
use runnel_metadata::{MetadataDelta, MetadataImage, MetadataRecord, SnapshotId, log_batch};

use super::{MetadataError, replay};
use crate::log_reader::for_each_batch;

/// Kafka's name for the metadata topic.
pub const METADATA_TOPIC: &str = "__cluster_metadata";
/// The leader epoch of every batch while this broker is a quorum of one.
const EPOCH: i32 = 0;
/// Records appended after the last snapshot before the next is written.
const RECORDS_BETWEEN_SNAPSHOTS: i64 = 20_000;

#[derive(Debug)]
pub struct MetadataStore {
    log: SharedLog,
    dir: PathBuf,
    /// The end offset of the newest snapshot, 0 with none.
    snapshot_end: i64,
}

/// The metadata log's settings over the broker's: kept whole (Kafka's
/// metadata log has no time or size retention but its snapshots), and
/// fsynced on every append.
fn log_config(broker: &LogConfig) -> LogConfig {
    let mut config = broker.clone();
    for (key, value) in [
        ("retention.ms", "-1"),
        ("retention.bytes", "-1"),
        ("cleanup.policy", "delete"),
        ("flush.messages", "1"),
    ] {
        // Every key and value above is valid: a failure here is a bug in
        // this list, and the broker's setting is kept.
        if let Err(err) = config.set(key, value) {
            tracing::error!(key, value, error = %err, "cannot set a metadata log setting");
        }
    }
    config
}

impl MetadataStore {
    /// Opens (or creates) the log and replays it from its newest snapshot.
    pub fn open(logs: &LogManager, now_ms: i64) -> Result<(Self, MetadataImage), MetadataError> {
        let config = log_config(logs.default_config());
        let log = logs
            .get_or_create(
                &TopicPartition::new(METADATA_TOPIC, 0),
                config.clone(),
                now_ms,
            )
            .map_err(MetadataError::Log)?;
        lock(&log).set_config(config);
        let dir = lock(&log).dir().to_path_buf();
        let (log_start, log_end) = {
            let log = lock(&log);
            (log.log_start_offset(), log.log_end_offset())
        };
        let snapshot = newest_snapshot(&dir, log_end)?;
        let (image, snapshot_end) = match &snapshot {
            Some((id, path)) => {
                let bytes = std::fs::read(path).map_err(|source| MetadataError::SnapshotFile {
                    path: path.clone(),
                    source,
                })?;
                let image =
                    load_snapshot(&bytes, *id).map_err(|source| MetadataError::Snapshot {
                        path: path.clone(),
                        source,
                    })?;
                (image, id.end_offset)
            }
            None => (MetadataImage::empty(), 0),
        };
        if snapshot_end < log_start {
            // The records between would be lost: refuse to start on a
            // partial image.
            return Err(MetadataError::SnapshotFile {
                path: dir.clone(),
                source: std::io::Error::other(format!(
                    "the log starts at offset {log_start} but no snapshot reaches it (newest ends at {snapshot_end})"
                )),
            });
        }
        let mut delta = MetadataDelta::new(Arc::new(image));
        {
            let log = lock(&log);
            for_each_batch::<MetadataError>(
                &log,
                snapshot_end,
                METADATA_TOPIC,
                |header, bytes| {
                    let batch =
                        log_batch::decode_batch(bytes).map_err(|source| MetadataError::Decode {
                            offset: header.base_offset,
                            source,
                        })?;
                    if batch.is_control {
                        return Ok(());
                    }
                    for (offset, record) in &batch.records {
                        if *offset < snapshot_end {
                            continue;
                        }
                        delta
                            .replay(*offset, batch.epoch.max(0), record)
                            .map_err(|source| MetadataError::Replay {
                                offset: *offset,
                                source,
                            })?;
                    }
                    Ok(())
                },
            )?;
        }
        let image = delta.apply();
        tracing::info!(
            topics = image.topics().count(),
            offset = image.offset(),
            snapshot_end,
            "metadata loaded from {METADATA_TOPIC}"
        );
        Ok((
            Self {
                log,
                dir,
                snapshot_end,
            },
            image,
        ))
    }

    /// Checks `records` replay onto `image` at the log's end, appends them
    /// (fsynced) and returns the new image and the delta. Nothing is
    /// written when a record contradicts the image.
    pub fn append_and_replay(
        &mut self,
        image: &Arc<MetadataImage>,
        records: &[MetadataRecord],
        now_ms: i64,
    ) -> Result<(Arc<MetadataImage>, MetadataDelta), MetadataError> {
        let mut log = lock(&self.log);
        let base_offset = log.log_end_offset();
        let delta = replay(image, base_offset, EPOCH, records)?;
        let batch = log_batch::encode_batch(base_offset, EPOCH, now_ms, records)
            .map_err(MetadataError::Encode)?;
        let appended = log.append(&batch, now_ms).map_err(MetadataError::Log)?;
        debug_assert_eq!(appended.first_offset, base_offset);
        let due = log.log_end_offset() - self.snapshot_end >= RECORDS_BETWEEN_SNAPSHOTS;
        drop(log);
        let image = Arc::new(delta.apply());
        if due {
            self.snapshot(&image, now_ms)?;
        }
        Ok((image, delta))
    }

    /// Writes a snapshot of `image`, removes older ones, and moves the
    /// log's start to the snapshot's end.
    pub fn snapshot(&mut self, image: &MetadataImage, now_ms: i64) -> Result<(), MetadataError> {
        let id = SnapshotId::of(image);
        if image.offset() < 0 || id.end_offset <= self.snapshot_end {
            return Ok(());
        }
        let bytes =
            write_snapshot(image, now_ms, now_ms).map_err(|source| MetadataError::Snapshot {
                path: self.dir.join(id.file_name()),
                source,
            })?;
        let path = self.dir.join(id.file_name());
        write_durably(&path, &bytes)?;
        for (old, old_path) in snapshots(&self.dir)? {
            if old.end_offset < id.end_offset
                && let Err(err) = std::fs::remove_file(&old_path)
            {
                tracing::warn!(path = %old_path.display(), error = %err, "cannot remove an older metadata snapshot");
            }
        }
        lock(&self.log)
            .advance_log_start_offset(id.end_offset)
            .map_err(MetadataError::Log)?;
        self.snapshot_end = id.end_offset;
        tracing::info!(path = %path.display(), "wrote a metadata snapshot");
        Ok(())
    }
}

/// The snapshot files in `dir`, by id.
fn snapshots(dir: &Path) -> Result<Vec<(SnapshotId, PathBuf)>, MetadataError> {
    let list_error = |source| MetadataError::SnapshotFile {
        path: dir.to_path_buf(),
        source,
    };
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(list_error)? {
        let path = entry.map_err(list_error)?.path();
        let id = path
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(SnapshotId::parse_file_name);
        if let Some(id) = id {
            found.push((id, path));
        }
    }
    found.sort_by_key(|(id, _)| (id.end_offset, id.epoch));
    Ok(found)
}

/// The newest snapshot that ends within the log.
fn newest_snapshot(
    dir: &Path,
    log_end: i64,
) -> Result<Option<(SnapshotId, PathBuf)>, MetadataError> {
    Ok(snapshots(dir)?
        .into_iter()
        .rfind(|(id, _)| id.end_offset <= log_end))
}

/// Writes `bytes` to a temporary file, fsyncs it and renames it to `path`.
fn write_durably(path: &Path, bytes: &[u8]) -> Result<(), MetadataError> {
    use std::io::Write;
    let tmp = path.with_extension("checkpoint.tmp");
    let io_error = |source| MetadataError::SnapshotFile {
        path: path.to_path_buf(),
        source,
    };
    let mut file = std::fs::File::create(&tmp).map_err(io_error)?;
    file.write_all(bytes).map_err(io_error)?;
    file.sync_all().map_err(io_error)?;
    std::fs::rename(&tmp, path).map_err(io_error)?;
    if let Some(parent) = path.parent() {
        std::fs::File::open(parent)
            .and_then(|d| d.sync_all())
            .map_err(io_error)?;
    }
    Ok(())
}
