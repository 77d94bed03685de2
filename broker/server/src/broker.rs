//! The broker's assembly: it builds the parts (the replica manager, the
//! metadata, topic changes, the coordinators) and wires them together.
//! Handlers get a context of the parts they use (handlers/mod.rs), never
//! the whole; nothing here is held across an await.

use std::sync::Arc;

use runnel_log::LogManager;

use crate::cluster_metadata::ClusterMetadata;
use crate::group_coordinator::GroupCoordinator;
use crate::internal_topics::InternalTopics;
use crate::topic_admin::{LocalChangesListener, TopicAdmin};
use crate::txn_coordinator::TxnCoordinator;
use crate::txns::TxnPartitions;

use runnel_http::error_chain;

use crate::config::BrokerConfig;
use crate::metrics::BrokerMetrics;
use crate::replica_manager::{Partition, ReplicaManager};
use crate::storage_health::StorageHealth;
use crate::topics::Topic;

#[derive(Debug)]
pub struct Broker {
    pub config: BrokerConfig,
    /// The partitions this broker hosts (replica_manager/).
    pub replicas: Arc<ReplicaManager>,
    pub metrics: Arc<BrokerMetrics>,
    /// Log dirs that cannot take writes (storage_health.rs).
    pub storage: Arc<StorageHealth>,
    /// The metadata log and its image: topics, partitions, configs,
    /// producer-id blocks (cluster_metadata/).
    pub metadata: Arc<ClusterMetadata>,
    /// Creating, deleting, growing and configuring topics (topic_admin.rs).
    pub topics: Arc<TopicAdmin>,
    /// `__consumer_offsets` and `__transaction_state`, made when first
    /// needed (internal_topics.rs).
    pub internal: Arc<InternalTopics>,
    /// Committed offsets and stored groups, sharded by the
    /// `__consumer_offsets` partitions this broker leads
    /// (group_coordinator/).
    pub group_coordinator: Arc<GroupCoordinator>,
    /// Consumer groups and their held requests (groups.rs).
    pub groups: Arc<crate::groups::Groups>,
    /// InitProducerId's ids.
    pub producer_ids: Arc<crate::producer_ids::ProducerIds>,
    /// The transaction coordinator (txn_coordinator/).
    pub txn_coordinator: Arc<TxnCoordinator>,
    /// Loads and unloads the transaction coordinator's partitions (txns.rs).
    pub txn_partitions: Arc<TxnPartitions>,
    /// Asks the coordinator before a transaction's first batch is taken
    /// (txn_verification.rs).
    pub txn_verifier: Arc<crate::txn_verification::TxnVerifier>,
    /// The bytes this leader sends to throttled replicas catching up
    /// (replication/throttle.rs).
    pub leader_quota: crate::replication::throttle::ReplicationQuota,
    /// This broker's followers' fetches.
    pub fetchers: Arc<crate::replication::ReplicaFetchers>,
    /// ISR changes its leaders ask of the controller.
    pub isr_updates: Arc<crate::replication::IsrUpdates>,
    #[cfg(feature = "fault-injection")]
    pub faults: crate::fault::Faults,
}

impl Broker {
    /// A broker over `logs` and the metadata replayed from them: every
    /// partition the image places on this broker is hosted.
    pub fn new(
        config: BrokerConfig,
        logs: Arc<LogManager>,
        metadata: ClusterMetadata,
        metrics: Arc<BrokerMetrics>,
    ) -> Self {
        let storage = Arc::new(StorageHealth::new(
            logs.log_dirs(),
            Arc::clone(&metrics) as _,
        ));
        let replicas = Arc::new(ReplicaManager::new(
            Arc::clone(&logs),
            Arc::clone(&storage),
            config.quorum.is_some(),
        ));
        host_partitions(&replicas, &metadata, &config);
        let group_config = runnel_coordinator::GroupConfig {
            initial_rebalance_delay_ms: config.group_initial_rebalance_delay_ms,
            group_min_session_timeout_ms: config.group_min_session_timeout_ms,
            group_max_session_timeout_ms: config.group_max_session_timeout_ms,
        };
        let groups = Arc::new(crate::groups::Groups::new(group_config));
        let group_coordinator = Arc::new(
            GroupCoordinator::new(
                Arc::clone(&replicas),
                Arc::clone(&groups),
                config.offsets_retention_ms,
                config.offsets_topic_num_partitions,
            )
            .keeping(&[crate::delivery::DELIVERY_GROUP]),
        );
        let metadata = Arc::new(metadata);
        let producer_ids = Arc::<crate::producer_ids::ProducerIds>::default();
        let txn_coordinator = Arc::new(TxnCoordinator::open(
            &config,
            &replicas,
            &metadata,
            &producer_ids,
        ));
        let txn_partitions = Arc::new(TxnPartitions::new(
            Arc::clone(&txn_coordinator),
            Arc::clone(&group_coordinator),
        ));
        let inter_broker_listener = config
            .quorum
            .as_ref()
            .and_then(|q| q.inter_broker_listener_name.clone())
            .unwrap_or_else(|| config.client_listener_name().to_owned());
        let txn_verifier = Arc::new(crate::txn_verification::TxnVerifier::new(
            (
                config.transaction_partition_verification_enable,
                config.node_id,
                inter_broker_listener.clone(),
            ),
            Arc::clone(&metadata),
            Arc::clone(&txn_coordinator),
        ));
        let fetchers = Arc::new(crate::replication::ReplicaFetchers::new(
            config.node_id,
            config.replication.clone(),
            inter_broker_listener,
            Arc::clone(&metadata),
            Arc::clone(&replicas),
        ));
        let listeners: Vec<Arc<dyn LocalChangesListener>> = vec![
            Arc::clone(&fetchers) as _,
            Arc::clone(&group_coordinator) as _,
            Arc::clone(&txn_partitions) as _,
        ];
        let topics = Arc::new(TopicAdmin::new(
            config.log.clone(),
            (config.num_partitions, config.default_replication_factor),
            Arc::clone(&metadata),
            Arc::clone(&replicas),
            listeners,
        ));
        // A quorum of one has one broker to place replicas on.
        let alone = |rf: i16| if config.quorum.is_some() { rf } else { 1 };
        let internal = Arc::new(InternalTopics::new(
            Arc::clone(&topics),
            (
                config.offsets_topic_num_partitions,
                alone(config.offsets_topic_replication_factor),
            ),
            (
                config.transaction_state_log_num_partitions,
                alone(config.transaction_state_log_replication_factor),
            ),
        ));
        Self {
            storage,
            config,
            replicas,
            metrics,
            metadata,
            topics,
            internal,
            group_coordinator,
            groups,
            producer_ids,
            txn_coordinator,
            txn_partitions,
            txn_verifier,
            leader_quota: crate::replication::throttle::ReplicationQuota::default(),
            fetchers,
            isr_updates: Arc::default(),
            #[cfg(feature = "fault-injection")]
            faults: crate::fault::Faults::from_env(),
        }
    }

    /// The delay levels' mover (delivery/), to run as a task.
    pub fn delivery_mover(&self) -> crate::delivery::Mover {
        crate::delivery::Mover::new(
            Arc::clone(&self.replicas),
            Arc::clone(&self.metadata),
            Arc::clone(&self.txn_coordinator),
            Arc::clone(&self.group_coordinator),
            Arc::clone(&self.internal),
            Arc::clone(&self.metrics),
            self.config.log.clone(),
        )
    }

    /// A partition of an existing topic that this broker hosts.
    pub fn partition(&self, topic: &str, partition: i32) -> Option<Arc<Partition>> {
        self.replicas.get(topic, partition)
    }
}

/// Hosts every partition the metadata image places on this broker, with
/// its topic's log settings.
fn host_partitions(replicas: &ReplicaManager, metadata: &ClusterMetadata, config: &BrokerConfig) {
    let image = metadata.image();
    for topic in image.topics() {
        let view = Topic::from_image(&image, topic);
        let log_config = view.log_config(&config.log).unwrap_or_else(|err| {
            tracing::warn!(
                topic = %view.name,
                error = %error_chain(&err),
                "keeping the broker's log settings: the topic's stored config is invalid"
            );
            config.log.clone()
        });
        // Logs found at start were opened with the broker's settings; a
        // partition whose directory is gone starts empty, as Kafka's
        // leader would.
        if let Err(err) = replicas.host(&view.name, 0, view.partitions, &log_config, 0) {
            tracing::error!(
                topic = %view.name,
                error = %error_chain(&err),
                "cannot open the topic's partition logs; it is not served"
            );
        }
        replicas.set_config(&view.name, &log_config);
    }
}

impl BrokerConfig {
    /// The host and port clients are told to connect to: the first
    /// advertised listener, or the first listener, never a controller's.
    pub fn advertised(&self) -> (&str, u16) {
        let listener = self
            .advertised_listeners
            .iter()
            .find(|l| !self.is_controller_listener(&l.name))
            .or(self.client_listeners().next())
            .map(|l| (l.address.host.as_str(), l.address.port));
        listener.unwrap_or(("127.0.0.1", 9092))
    }

    /// The name of the listener clients are told about (`PLAINTEXT`
    /// unless named otherwise): the one brokers' registrations are looked
    /// up by in Metadata.
    pub fn client_listener_name(&self) -> &str {
        self.advertised_listeners
            .iter()
            .find(|l| !self.is_controller_listener(&l.name))
            .or(self.client_listeners().next())
            .map_or("PLAINTEXT", |l| l.name.as_str())
    }

    /// Set from `meta.properties` at start.
    pub fn cluster_id(&self) -> &str {
        self.cluster_id.as_deref().unwrap_or_default()
    }
}

/// A broker with default settings over the log dir `dir`, for handler tests.
#[cfg(test)]
pub fn open_for_test(dir: &std::path::Path) -> Broker {
    let manager = runnel_log::ManagerConfig::new(vec![dir.to_path_buf()]);
    let logs = LogManager::open(manager, 0).expect("open logs");
    let config = BrokerConfig::default();
    let metadata = ClusterMetadata::open(&logs, config.node_id, 0).expect("open metadata");
    let metrics = Arc::new(BrokerMetrics::new());
    Broker::new(config, Arc::new(logs), metadata, metrics)
}
