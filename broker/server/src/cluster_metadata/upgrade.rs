//! Upgrade in place: a data dir written before the metadata log keeps its
//! topics in `runnel-topics` (name, id, partition count, config
//! overrides) and the end of its last producer-id block in
//! `producer-id-block`. On the first start with the metadata log they
//! become records (a TopicRecord, PartitionRecords and ConfigRecords per
//! topic, with the topic's id kept; a ProducerIdsRecord past every id
//! handed out), and the old files are renamed `*.migrated`, kept for a
//! look by hand, never read again.

use std::path::Path;

use runnel_metadata::changes::{NewTopic, create_topic};
use runnel_metadata::records::ProducerIdsRecord;
use runnel_metadata::{MetadataImage, MetadataRecord};

use super::MetadataError;
use crate::topics::{FILE_NAME as TOPICS_FILE, TopicRegistry};

const MIGRATED_SUFFIX: &str = ".migrated";
/// The file of the last producer-id block before the metadata log.
const PRODUCER_ID_BLOCK_FILE: &str = "producer-id-block";

/// The records that hold what the old files in `dir` held; `None` when
/// there are none (a new data dir).
pub fn records_from_old_files(
    dir: &Path,
    node_id: i32,
) -> Result<Option<Vec<MetadataRecord>>, MetadataError> {
    let has_topics = dir.join(TOPICS_FILE).exists();
    let producer_ids_end = read_producer_id_block_end(dir)?;
    if !has_topics && producer_ids_end.is_none() {
        return Ok(None);
    }
    let registry = TopicRegistry::load(dir).map_err(MetadataError::Upgrade)?;
    // Each topic is built against the empty image: names the old registry
    // let in (it only warned about '.'/'_' look-alikes) are kept as they
    // are.
    let empty = MetadataImage::empty();
    let mut records = Vec::new();
    for topic in registry.iter() {
        let new = NewTopic {
            name: topic.name.clone(),
            id: topic.id,
            partitions: topic.partitions,
            replication_factor: 1,
            configs: topic.configs.clone(),
        };
        records.extend(create_topic(&empty, &new, &[node_id]).map_err(MetadataError::Refused)?);
    }
    if let Some(end) = producer_ids_end.filter(|end| *end > 0) {
        records.push(
            ProducerIdsRecord {
                version: 0,
                broker_id: node_id,
                broker_epoch: -1,
                next_producer_id: end,
            }
            .into(),
        );
    }
    Ok(Some(records))
}

/// Renames the old files so they are never imported again.
pub fn retire_old_files(dir: &Path) {
    for name in [TOPICS_FILE, PRODUCER_ID_BLOCK_FILE] {
        let from = dir.join(name);
        if !from.exists() {
            continue;
        }
        let to = dir.join(format!("{name}{MIGRATED_SUFFIX}"));
        if let Err(err) = std::fs::rename(&from, &to) {
            tracing::warn!(from = %from.display(), error = %err, "cannot rename a file the metadata log replaced; it is ignored from now on");
        }
    }
}

/// The end of the last producer-id block handed out: every id below it
/// may be in use.
fn read_producer_id_block_end(dir: &Path) -> Result<Option<i64>, MetadataError> {
    let path = dir.join(PRODUCER_ID_BLOCK_FILE);
    match std::fs::read_to_string(&path) {
        Ok(content) => match content.trim().parse::<i64>() {
            Ok(end) if end >= 0 => Ok(Some(end)),
            _ => Err(MetadataError::UpgradeProducerIds { path, content }),
        },
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(MetadataError::SnapshotFile { path, source }),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    #[test]
    fn old_files_become_records_with_the_same_ids() {
        let dir = tempfile::tempdir().expect("tempdir");
        assert!(
            records_from_old_files(dir.path(), 0)
                .expect("read")
                .is_none()
        );
        std::fs::write(
            dir.path().join(TOPICS_FILE),
            "runnel-topics 1\n\
             topic orders 1b4f0e98-5197-4b6a-9a3e-6a8d52c0e8a1 3\n\
             config orders cleanup.policy compact\n\
             topic my.topic 2b4f0e98-5197-4b6a-9a3e-6a8d52c0e8a1 1\n\
             topic my_topic 3b4f0e98-5197-4b6a-9a3e-6a8d52c0e8a1 1\n",
        )
        .expect("write");
        std::fs::write(dir.path().join(PRODUCER_ID_BLOCK_FILE), "2000\n").expect("write");
        let records = records_from_old_files(dir.path(), 7)
            .expect("read")
            .expect("records");
        let mut delta =
            runnel_metadata::MetadataDelta::new(std::sync::Arc::new(MetadataImage::empty()));
        for (offset, record) in records.iter().enumerate() {
            delta.replay(offset as i64, 0, record).expect("replay");
        }
        let image = delta.apply();
        let orders = image.topic("orders").expect("orders");
        assert_eq!(
            orders.id.to_string(),
            "1b4f0e98-5197-4b6a-9a3e-6a8d52c0e8a1"
        );
        assert_eq!(orders.partitions.len(), 3);
        assert_eq!(orders.partitions[&0].leader, 7);
        let configs: BTreeMap<_, _> = image
            .topic_config("orders")
            .map(|c| (**c).clone())
            .unwrap_or_default();
        assert_eq!(configs["cleanup.policy"], "compact");
        assert!(image.topic("my.topic").is_some() && image.topic("my_topic").is_some());
        assert_eq!(image.next_producer_id(), 2000);

        retire_old_files(dir.path());
        assert!(!dir.path().join(TOPICS_FILE).exists());
        assert!(dir.path().join("runnel-topics.migrated").exists());
        assert!(
            records_from_old_files(dir.path(), 7)
                .expect("read")
                .is_none()
        );

        std::fs::write(dir.path().join(PRODUCER_ID_BLOCK_FILE), "nonsense").expect("write");
        let err = records_from_old_files(dir.path(), 7).expect_err("malformed");
        assert!(err.to_string().contains("nonsense"), "{err}");
    }
}
