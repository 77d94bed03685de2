//! Transaction markers for partitions other brokers lead: sent to each
//! leader as Kafka's WriteTxnMarkers (v1), on the inter-broker listener
//! of its registration. A partition whose leader refuses, can't be
//! reached or is not known yet is tried again, by the leader the image
//! then names, until every marker is written or the deadline passes:
//! the transaction's outcome is in `__transaction_state` already, so its
//! markers must all land.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use kafka_protocol::messages::write_txn_markers_request::{
    WritableTxnMarker, WritableTxnMarkerTopic, WriteTxnMarkersRequest,
};
use kafka_protocol::messages::{ProducerId, TopicName};
use kafka_protocol::protocol::StrBytes;
use runnel_client::connection::Connection;
use runnel_coordinator::txn::{Markers, Outcome};

use crate::cluster_metadata::ClusterMetadata;

const WRITE_TXN_MARKERS_VERSION: i16 = 1;
/// How long a transaction's markers are tried before its end fails.
pub const MARKERS_DEADLINE: Duration = Duration::from_secs(30);
const RETRY_BACKOFF: Duration = Duration::from_millis(100);

/// Where a partition's marker goes now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Destination {
    /// The partition is gone: its marker is not needed.
    Gone,
    /// No leader now: wait for one.
    NoLeader,
    /// This broker.
    Here,
    /// Broker `id`, at `host:port`.
    Broker(i32),
}

#[derive(Debug)]
pub struct RemoteMarkers {
    metadata: Arc<ClusterMetadata>,
    node_id: i32,
    /// The listener brokers talk to each other on.
    listener: String,
}

impl RemoteMarkers {
    pub fn new(metadata: Arc<ClusterMetadata>, node_id: i32, listener: String) -> Self {
        Self {
            metadata,
            node_id,
            listener,
        }
    }

    pub fn destination(&self, topic: &str, partition: i32) -> Destination {
        let image = self.metadata.image();
        match image.partition(topic, partition) {
            None => Destination::Gone,
            Some(p) if p.leader < 0 => Destination::NoLeader,
            Some(p) if p.leader == self.node_id => Destination::Here,
            Some(p) => Destination::Broker(p.leader),
        }
    }

    /// Sends `markers` for `partitions` to broker `leader`; the partitions
    /// it did not write (all of them when it can't be reached).
    pub fn send(
        &self,
        markers: &Markers,
        leader: i32,
        partitions: Vec<(String, i32)>,
    ) -> Vec<(String, i32)> {
        let Some(address) = self.address(leader) else {
            tracing::debug!(
                broker = leader,
                listener = %self.listener,
                "no address for a transaction marker's leader yet"
            );
            return partitions;
        };
        let request = request(markers, &partitions);
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return partitions;
        };
        let answer = tokio::task::block_in_place(|| {
            runtime.block_on(async {
                let connection = Connection::open(&address, "runnel-txn-coordinator").await?;
                connection.call(WRITE_TXN_MARKERS_VERSION, &request).await
            })
        });
        let response = match answer {
            Ok(response) => response,
            Err(err) => {
                tracing::debug!(broker = leader, %address, error = %err, "cannot send transaction markers");
                return partitions;
            }
        };
        let mut failed = Vec::new();
        for result in response.markers {
            for topic in result.topics {
                for p in topic.partitions {
                    if p.error_code != 0 {
                        tracing::debug!(broker = leader, topic = %topic.name.0, partition = p.partition_index, error_code = p.error_code, "a transaction marker was refused");
                        failed.push((topic.name.0.to_string(), p.partition_index));
                    }
                }
            }
        }
        failed
    }

    /// `host:port` of broker `id`'s inter-broker listener.
    fn address(&self, id: i32) -> Option<String> {
        self.metadata.image().broker_address(id, &self.listener)
    }
}

/// One WriteTxnMarkers request for `partitions`.
fn request(markers: &Markers, partitions: &[(String, i32)]) -> WriteTxnMarkersRequest {
    let mut topics: BTreeMap<&str, Vec<i32>> = BTreeMap::new();
    for (topic, partition) in partitions {
        topics.entry(topic.as_str()).or_default().push(*partition);
    }
    let marker = WritableTxnMarker::default()
        .with_producer_id(ProducerId(markers.producer_id))
        .with_producer_epoch(markers.producer_epoch)
        .with_transaction_result(markers.outcome == Outcome::Commit)
        .with_coordinator_epoch(0)
        .with_topics(
            topics
                .into_iter()
                .map(|(name, indexes)| {
                    WritableTxnMarkerTopic::default()
                        .with_name(TopicName(StrBytes::from_string(name.to_owned())))
                        .with_partition_indexes(indexes)
                })
                .collect(),
        );
    WriteTxnMarkersRequest::default().with_markers(vec![marker])
}

/// Waits before the next try, if the deadline allows one.
pub fn back_off(started: Instant) -> bool {
    if started.elapsed() + RETRY_BACKOFF > MARKERS_DEADLINE {
        return false;
    }
    std::thread::sleep(RETRY_BACKOFF);
    true
}
