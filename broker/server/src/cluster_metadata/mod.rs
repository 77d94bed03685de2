//! The cluster's metadata on this broker: the `__cluster_metadata` log
//! (Kafka's metadata records, in the first log dir as Kafka's
//! `metadata.log.dir` defaults to) and the [`MetadataImage`] replayed from
//! it, shared as an `Arc` that is swapped whole.
//!
//! A change is: build and validate records against the image
//! (`runnel_metadata::changes`), append them as one batch, fsynced,
//! replay them into a delta, publish the new image, and hand this broker's
//! local changes (partitions it now leads, follows or must delete) back to
//! the caller, which applies them to the replica manager. On one broker
//! the log is local and this broker is the quorum of one; the quorum issue
//! replicates the same log.
//!
//! - `store`: the log itself: open, replay at start, append, snapshots
//!   (`<end offset>-<epoch>.checkpoint`, Kafka's layout) that let the log
//!   start past what they hold.
//! - `upgrade`: a data dir written before the metadata log (the
//!   `runnel-topics` registry and the `producer-id-block` file) turned
//!   into records once.

mod quorum;
mod store;
mod upgrade;

use std::sync::{Arc, Mutex, OnceLock, PoisonError, RwLock, Weak};

use runnel_log::LogManager;
use runnel_metadata::{
    ChangeError, LocalReplicaChanges, MetadataDelta, MetadataImage, MetadataRecord, ReplayError,
};
use thiserror::Error;

pub use quorum::{QuorumBackend, replay_committed};
pub use store::METADATA_TOPIC;
use store::MetadataStore;

#[derive(Debug, Error)]
pub enum MetadataError {
    #[error("the change was refused")]
    Refused(#[source] ChangeError),
    #[error("cannot encode metadata records")]
    Encode(#[source] runnel_metadata::EncodeError),
    #[error("cannot open, read or write the {METADATA_TOPIC} log")]
    Log(#[source] runnel_log::LogError),
    #[error("cannot read the {METADATA_TOPIC} log")]
    Read(#[from] crate::log_reader::ReadError),
    #[error("cannot decode a batch of the {METADATA_TOPIC} log at offset {offset}")]
    Decode {
        offset: i64,
        #[source]
        source: runnel_metadata::BatchDecodeError,
    },
    #[error("a record of the {METADATA_TOPIC} log at offset {offset} contradicts the image")]
    Replay {
        offset: i64,
        #[source]
        source: ReplayError,
    },
    #[error("cannot read or write the metadata snapshot {path}")]
    SnapshotFile {
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("the metadata snapshot {path} is damaged")]
    Snapshot {
        path: std::path::PathBuf,
        #[source]
        source: runnel_metadata::SnapshotError,
    },
    #[error("the change is in the metadata log, but this broker could not apply its share")]
    ApplyLocal(#[source] runnel_log::LogError),
    #[error("this node is not the active controller (the leader it knows: {leader:?})")]
    NotController { leader: Option<i32> },
    #[error("the quorum refused the proposal")]
    Propose(#[source] runnel_quorum::ProposeError),
    #[error("the records up to offset {end} were not committed and replayed within {waited_ms} ms")]
    CommitTimeout { end: u64, waited_ms: u64 },
    #[error("the quorum driver has stopped")]
    QuorumStopped,
    #[error("cannot forward the request to the active controller")]
    Forward(#[source] runnel_quorum::ControllerClientError),
    #[error("the active controller refused {request}: {error:?}")]
    ControllerRefused {
        request: &'static str,
        error: kafka_protocol::error::ResponseError,
    },
    #[error("a change on the quorum needs a multi-thread tokio runtime")]
    NeedsMultiThreadRuntime,
    #[error("cannot read the data dir's files from before the metadata log")]
    Upgrade(#[source] crate::topics::TopicError),
    #[error("{path} does not hold a producer id block end: {content:?}")]
    UpgradeProducerIds {
        path: std::path::PathBuf,
        content: String,
    },
}

/// What one applied change left.
#[derive(Debug)]
pub struct Applied {
    pub image: Arc<MetadataImage>,
    /// This broker's share of the change.
    pub local: LocalReplicaChanges,
}

/// Puts this broker's share of each change in place (partition logs made
/// or deleted, coordinators loaded), before the image that holds the
/// change is published. Registered once ([`ClusterMetadata::set_applier`]);
/// every change goes through it, in log order.
pub trait ApplyLocal: Send + Sync + std::fmt::Debug {
    fn apply(&self, applied: &Applied, now_ms: i64) -> Result<(), runnel_log::LogError>;
}

#[derive(Debug)]
pub struct ClusterMetadata {
    node_id: i32,
    image: RwLock<Arc<MetadataImage>>,
    backend: Backend,
    /// Weak: the applier's parts (the coordinators) hold this metadata.
    applier: OnceLock<Weak<dyn ApplyLocal>>,
}

/// Where the metadata log is.
#[derive(Debug)]
enum Backend {
    /// A quorum of one: the log in the first log dir, appended here. Held
    /// for a whole change, so changes apply one at a time in log order.
    /// Produce and fetch never take it.
    Local(Mutex<MetadataStore>),
    /// The KRaft quorum's log (quorum.rs).
    Quorum(QuorumBackend),
}

impl ClusterMetadata {
    /// Opens the metadata log in the first log dir and replays it (from
    /// its newest snapshot). A data dir from before the metadata log has
    /// its topics and producer ids written as records first.
    pub fn open(logs: &LogManager, node_id: i32, now_ms: i64) -> Result<Self, MetadataError> {
        let (mut store, image) = MetadataStore::open(logs, now_ms)?;
        let mut image = Arc::new(image);
        let dir = logs
            .log_dirs()
            .next()
            .unwrap_or(std::path::Path::new("."))
            .to_path_buf();
        // Nothing ever written: a new data dir, or one from before the
        // metadata log.
        if image.offset() < 0
            && let Some(records) = upgrade::records_from_old_files(&dir, node_id)?
        {
            image = store.append_and_replay(&image, &records, now_ms)?.0;
            store.snapshot(&image, now_ms)?;
            tracing::info!(
                records = records.len(),
                topics = image.topics().count(),
                "wrote the topic registry and producer id block of an older data dir to {METADATA_TOPIC}"
            );
            upgrade::retire_old_files(&dir);
        }
        Ok(Self {
            node_id,
            image: RwLock::new(image),
            backend: Backend::Local(Mutex::new(store)),
            applier: OnceLock::new(),
        })
    }

    /// Metadata that follows the quorum behind `handle`, starting from an
    /// empty image: the driver's committed feed is replayed into it from
    /// offset 0 ([`replay_committed`]).
    pub fn on_quorum(
        node_id: i32,
        handle: runnel_quorum::QuorumHandle,
        client: Arc<runnel_quorum::ControllerClient>,
    ) -> Self {
        Self {
            node_id,
            image: RwLock::new(Arc::new(MetadataImage::empty())),
            backend: Backend::Quorum(QuorumBackend::new(handle, client, 0)),
            applier: OnceLock::new(),
        }
    }

    /// The quorum this metadata follows; `None` for a quorum of one.
    pub fn quorum(&self) -> Option<&QuorumBackend> {
        match &self.backend {
            Backend::Local(_) => None,
            Backend::Quorum(quorum) => Some(quorum),
        }
    }

    /// Sets what applies this broker's share of every later change, held
    /// weakly (its owner keeps it alive). Set once, before the first
    /// change; a second call is ignored (logged).
    pub fn set_applier(&self, applier: Weak<dyn ApplyLocal>) {
        if self.applier.set(applier).is_err() {
            tracing::error!("the metadata applier was set twice; the first is kept");
        }
    }

    pub fn node_id(&self) -> i32 {
        self.node_id
    }

    /// The current image. Cheap: an `Arc` clone under a read lock held for
    /// no longer than that.
    pub fn image(&self) -> Arc<MetadataImage> {
        Arc::clone(&self.image.read().unwrap_or_else(PoisonError::into_inner))
    }

    /// Builds records from the current image with `build`, appends and
    /// replays them, has the applier put this broker's share in place,
    /// and publishes the new image: no request sees a topic whose
    /// partitions are not there yet. Changes apply one at a time. No
    /// records: nothing is written.
    pub fn change<T>(
        &self,
        now_ms: i64,
        build: impl FnOnce(&MetadataImage) -> Result<(Vec<MetadataRecord>, T), ChangeError>,
    ) -> Result<(Applied, T), MetadataError> {
        let store = match &self.backend {
            Backend::Local(store) => store,
            Backend::Quorum(quorum) => return quorum.change(self, now_ms, build),
        };
        let mut store = store.lock().unwrap_or_else(PoisonError::into_inner);
        let image = self.image();
        let (records, extra) = build(&image).map_err(MetadataError::Refused)?;
        if records.is_empty() {
            return Ok((
                Applied {
                    image,
                    local: LocalReplicaChanges::default(),
                },
                extra,
            ));
        }
        let (image, delta) = store.append_and_replay(&image, &records, now_ms)?;
        let applied = Applied {
            local: delta.local_changes(self.node_id),
            image,
        };
        self.publish_checked(&applied, now_ms)
            .map_err(MetadataError::ApplyLocal)?;
        Ok((applied, extra))
    }

    /// Has the applier put this broker's share of `applied` in place, then
    /// publishes its image.
    fn publish_checked(&self, applied: &Applied, now_ms: i64) -> Result<(), runnel_log::LogError> {
        let local = self.apply_local(applied, now_ms);
        *self.image.write().unwrap_or_else(PoisonError::into_inner) = Arc::clone(&applied.image);
        local
    }

    /// As `publish_checked` for a change that came from the quorum: a
    /// partition whose log could not be made is logged and not served.
    fn publish(&self, applied: &Applied, now_ms: i64) {
        if let Err(err) = self.publish_checked(applied, now_ms) {
            tracing::error!(
                offset = applied.image.offset(),
                error = %runnel_http::error_chain(&err),
                "cannot apply this broker's share of a metadata change; the partitions it needs are not served"
            );
        }
    }

    fn apply_local(&self, applied: &Applied, now_ms: i64) -> Result<(), runnel_log::LogError> {
        match self.applier.get().and_then(Weak::upgrade) {
            Some(applier) => applier.apply(applied, now_ms),
            None => Ok(()),
        }
    }

    /// Writes a snapshot of the current image and lets the log start after
    /// it, so the next start replays only what came later.
    /// On the quorum, snapshots are not written yet: the log is replayed
    /// whole at start.
    pub fn snapshot(&self, now_ms: i64) -> Result<(), MetadataError> {
        let Backend::Local(store) = &self.backend else {
            return Ok(());
        };
        let mut store = store.lock().unwrap_or_else(PoisonError::into_inner);
        store.snapshot(&self.image(), now_ms)
    }
}

/// Replays `records`, appended at `base_offset`, onto `image`.
fn replay(
    image: &Arc<MetadataImage>,
    base_offset: i64,
    epoch: i32,
    records: &[MetadataRecord],
) -> Result<MetadataDelta, MetadataError> {
    let mut delta = MetadataDelta::new(Arc::clone(image));
    for (i, record) in records.iter().enumerate() {
        let offset = base_offset + i as i64;
        delta
            .replay(offset, epoch, record)
            .map_err(|source| MetadataError::Replay { offset, source })?;
    }
    Ok(delta)
}

#[cfg(test)]
mod tests {
    use runnel_log::ManagerConfig;
    use runnel_metadata::changes::{NewTopic, create_topic};

    use super::*;

    const NOW: i64 = 1_700_000_000_000;

    fn open(dir: &std::path::Path) -> (LogManager, ClusterMetadata) {
        let logs =
            LogManager::open(ManagerConfig::new(vec![dir.to_path_buf()]), NOW).expect("logs");
        let metadata = ClusterMetadata::open(&logs, 1, NOW).expect("metadata");
        (logs, metadata)
    }

    fn create(metadata: &ClusterMetadata, name: &str) -> Applied {
        let topic = NewTopic {
            name: name.into(),
            id: uuid::Uuid::new_v4(),
            partitions: 2,
            replication_factor: 1,
            configs: Default::default(),
        };
        metadata
            .change(NOW, |image| Ok((create_topic(image, &topic, &[1])?, ())))
            .expect("create")
            .0
    }

    #[test]
    fn changes_survive_a_crash_and_a_snapshot_and_tell_the_local_leaders() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (logs, metadata) = open(dir.path());
        assert!(metadata.image().offset() < 0, "a new data dir");
        let applied = create(&metadata, "a");
        assert_eq!(applied.local.leaders.len(), 2, "this broker leads both");
        let id = applied.image.topic("a").expect("a").id;
        // Dropped without a snapshot or a clean shutdown: replayed from the
        // log.
        drop((metadata, logs));
        let (logs, metadata) = open(dir.path());
        assert_eq!(metadata.image().topic("a").map(|t| t.id), Some(id));
        let refused = metadata.change(NOW, |image| {
            let again = NewTopic {
                name: "a".into(),
                id: uuid::Uuid::new_v4(),
                partitions: 1,
                replication_factor: 1,
                configs: Default::default(),
            };
            Ok((create_topic(image, &again, &[1])?, ()))
        });
        assert!(
            matches!(refused, Err(MetadataError::Refused(_))),
            "{refused:?}"
        );

        create(&metadata, "b");
        metadata.snapshot(NOW).expect("snapshot");
        drop((metadata, logs));
        let (_logs, metadata) = open(dir.path());
        let image = metadata.image();
        assert_eq!(image.topic("a").map(|t| t.id), Some(id));
        assert_eq!(image.topic("b").map(|t| t.partitions.len()), Some(2));
        let snapshots = std::fs::read_dir(dir.path().join("__cluster_metadata-0"))
            .expect("list")
            .filter_map(Result::ok)
            .filter(|e| e.file_name().to_string_lossy().ends_with(".checkpoint"))
            .count();
        assert_eq!(snapshots, 1);
    }
}
