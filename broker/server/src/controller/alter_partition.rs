//! AlterPartition (v2-3) on the CONTROLLER listener: a partition leader's
//! ISR changes, checked by runnel-metadata's `alter_partition` and
//! written as one metadata change for the whole request. The replication
//! issue's leaders send them; the controller answers them now.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::BrokerId;
use kafka_protocol::messages::alter_partition_request::AlterPartitionRequest;
use kafka_protocol::messages::alter_partition_response::{
    AlterPartitionResponse, PartitionData, TopicData,
};
use runnel_http::error_chain;
use runnel_metadata::alter_partition::{AlterPartitionError, IsrChange, alter_isr};
use runnel_metadata::{MetadataRecord, PartitionImage};
use uuid::Uuid;

use crate::broker::Broker;
use crate::cluster_metadata::MetadataError;

type Outcome = (Uuid, i32, Result<PartitionImage, AlterPartitionError>);

pub fn answer(
    broker: &Broker,
    request: &AlterPartitionRequest,
    version: i16,
) -> AlterPartitionResponse {
    let mut response = AlterPartitionResponse::default();
    let id = request.broker_id.0;
    let image = broker.metadata.image();
    if image
        .broker(id)
        .is_none_or(|b| b.epoch != request.broker_epoch)
    {
        response.error_code = ResponseError::StaleBrokerEpoch.code();
        return response;
    }
    let changes: Vec<IsrChange> = request
        .topics
        .iter()
        .flat_map(|topic| {
            topic.partitions.iter().map(|p| IsrChange {
                topic_id: topic.topic_id,
                partition: p.partition_index,
                leader_epoch: p.leader_epoch,
                partition_epoch: p.partition_epoch,
                new_isr: if version >= 3 {
                    p.new_isr_with_epochs
                        .iter()
                        .map(|b| (b.broker_id.0, b.broker_epoch))
                        .collect()
                } else {
                    p.new_isr.iter().map(|b| (b.0, -1)).collect()
                },
                leader_recovery_state: p.leader_recovery_state,
            })
        })
        .collect();
    let changed = broker.metadata.change(crate::clock::now_ms(), |image| {
        let mut records: Vec<MetadataRecord> = Vec::new();
        let mut outcomes: Vec<Outcome> = Vec::new();
        for change in &changes {
            let outcome = alter_isr(image, id, change).map(|(record, after)| {
                records.push(record.into());
                after
            });
            outcomes.push((change.topic_id, change.partition, outcome));
        }
        Ok((records, outcomes))
    });
    match changed {
        Ok((_, outcomes)) => response.topics = topics(outcomes),
        Err(err) => {
            tracing::warn!(broker = id, error = %error_chain(&err), "cannot change an ISR");
            response.error_code = match err {
                MetadataError::NotController { .. } => ResponseError::NotController,
                MetadataError::CommitTimeout { .. } => ResponseError::RequestTimedOut,
                _ => ResponseError::UnknownServerError,
            }
            .code();
        }
    }
    response
}

/// The per-partition answers, grouped by topic in the request's order.
fn topics(outcomes: Vec<Outcome>) -> Vec<TopicData> {
    let mut topics: Vec<TopicData> = Vec::new();
    for (topic_id, partition, outcome) in outcomes {
        let mut data = PartitionData::default();
        data.partition_index = partition;
        match outcome {
            Ok(after) => {
                data.leader_id = BrokerId(after.leader);
                data.leader_epoch = after.leader_epoch;
                data.isr = after.isr.iter().map(|id| BrokerId(*id)).collect();
                data.leader_recovery_state = after.leader_recovery_state;
                data.partition_epoch = after.partition_epoch;
            }
            Err(refused) => {
                tracing::debug!(%topic_id, partition, reason = %refused, "an ISR change was refused");
                data.error_code = code(&refused).code();
            }
        }
        match topics.iter_mut().find(|t| t.topic_id == topic_id) {
            Some(topic) => topic.partitions.push(data),
            None => {
                let mut topic = TopicData::default();
                topic.topic_id = topic_id;
                topic.partitions.push(data);
                topics.push(topic);
            }
        }
    }
    topics
}

fn code(refused: &AlterPartitionError) -> ResponseError {
    match refused {
        AlterPartitionError::UnknownTopicId(_) => ResponseError::UnknownTopicId,
        AlterPartitionError::UnknownPartition { .. } => ResponseError::UnknownTopicOrPartition,
        AlterPartitionError::NotController => ResponseError::NotController,
        AlterPartitionError::FencedLeaderEpoch { .. } => ResponseError::FencedLeaderEpoch,
        AlterPartitionError::InvalidUpdateVersion { .. } => ResponseError::InvalidUpdateVersion,
        AlterPartitionError::NotLeader { .. } | AlterPartitionError::InvalidRequest(_) => {
            ResponseError::InvalidRequest
        }
        AlterPartitionError::IneligibleReplica(_) => ResponseError::IneligibleReplica,
    }
}

#[cfg(test)]
mod tests {
    use kafka_protocol::messages::alter_partition_request;
    use runnel_metadata::BrokerRegistration;

    use super::*;

    /// A broker whose image has broker 1 registered at epoch 5 and a
    /// topic with one partition led by it.
    fn broker_with_topic(dir: &std::path::Path) -> (Broker, Uuid) {
        let broker = crate::broker::open_for_test(dir);
        let registration = BrokerRegistration {
            id: 1,
            incarnation_id: Uuid::from_u64_pair(1, 1),
            epoch: 5,
            endpoints: vec![],
            supported_features: vec![],
            rack: None,
            fenced: false,
            in_controlled_shutdown: false,
            is_migrating_zk_broker: false,
            log_dirs: vec![],
        };
        broker
            .metadata
            .change(0, |_| {
                Ok((runnel_metadata::changes::register_broker(&registration), ()))
            })
            .expect("register");
        let topic = broker
            .topics
            .create_topic("t", 1, 1, Default::default(), false, 0)
            .expect("create");
        (broker, topic.id)
    }

    fn request(topic_id: Uuid, epoch: i64, isr: &[i32]) -> AlterPartitionRequest {
        let mut partition = alter_partition_request::PartitionData::default();
        partition.partition_index = 0;
        partition.new_isr_with_epochs = isr
            .iter()
            .map(|id| {
                alter_partition_request::BrokerState::default()
                    .with_broker_id(BrokerId(*id))
                    .with_broker_epoch(5)
            })
            .collect();
        let mut topic = alter_partition_request::TopicData::default();
        topic.topic_id = topic_id;
        topic.partitions = vec![partition];
        let mut request = AlterPartitionRequest::default();
        request.broker_id = BrokerId(1);
        request.broker_epoch = epoch;
        request.topics = vec![topic];
        request
    }

    #[test]
    fn the_leader_s_isr_change_is_committed_and_answered() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (broker, topic_id) = broker_with_topic(dir.path());
        let response = answer(&broker, &request(topic_id, 5, &[1]), 3);
        assert_eq!(response.error_code, 0);
        let partition = &response.topics[0].partitions[0];
        assert_eq!(partition.error_code, 0, "{response:?}");
        assert_eq!(partition.isr, [BrokerId(1)]);
        assert_eq!(partition.partition_epoch, 1);
        let image = broker.metadata.image();
        assert_eq!(image.partition("t", 0).expect("p").partition_epoch, 1);

        // The same request again carries an old partition epoch.
        let again = answer(&broker, &request(topic_id, 5, &[1]), 3);
        assert_eq!(
            again.topics[0].partitions[0].error_code,
            ResponseError::InvalidUpdateVersion.code()
        );
        let stale = answer(&broker, &request(topic_id, 4, &[1]), 3);
        assert_eq!(stale.error_code, ResponseError::StaleBrokerEpoch.code());
        let unknown = answer(&broker, &request(Uuid::from_u64_pair(3, 3), 5, &[1]), 3);
        assert_eq!(
            unknown.topics[0].partitions[0].error_code,
            ResponseError::UnknownTopicId.code()
        );
    }
}
