//! Requests on the CONTROLLER listener that are not the quorum's: see the
//! module doc of `controller`.

use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::ProducerId;
use kafka_protocol::messages::allocate_producer_ids_request::AllocateProducerIdsRequest;
use kafka_protocol::messages::allocate_producer_ids_response::AllocateProducerIdsResponse;
use kafka_protocol::messages::alter_partition_request::AlterPartitionRequest;
use kafka_protocol::messages::api_versions_response::{ApiVersion, ApiVersionsResponse};
use kafka_protocol::messages::broker_heartbeat_request::BrokerHeartbeatRequest;
use kafka_protocol::messages::broker_heartbeat_response::BrokerHeartbeatResponse;
use kafka_protocol::messages::broker_registration_request::BrokerRegistrationRequest;
use kafka_protocol::messages::broker_registration_response::BrokerRegistrationResponse;
use kafka_protocol::messages::describe_quorum_request::DescribeQuorumRequest;
use kafka_protocol::messages::{ApiKey, BrokerId};
use kafka_protocol::protocol::{Decodable, Encodable};
use runnel_http::error_chain;
use runnel_metadata::records::{BrokerEndpoint, BrokerFeature};
use runnel_metadata::{BrokerRegistration, fencing};
use runnel_quorum::ControllerRequest;
use runnel_quorum::wire::quorum_api_versions;
use tokio::sync::mpsc;

use super::sessions::BrokerSessions;
use crate::broker::Broker;
use crate::cluster_metadata::MetadataError;
use crate::handlers::{self, Reply, describe_quorum};

/// The APIs the CONTROLLER listener serves besides the quorum's.
const CONTROLLER_APIS: [(ApiKey, i16, i16); 13] = [
    (ApiKey::ApiVersions, 0, 3),
    (ApiKey::BrokerRegistration, 0, 4),
    (ApiKey::BrokerHeartbeat, 0, 1),
    (ApiKey::CreateTopics, 2, 7),
    (ApiKey::DeleteTopics, 1, 6),
    (ApiKey::CreatePartitions, 0, 3),
    (ApiKey::DescribeQuorum, 0, 2),
    (ApiKey::AlterConfigs, 0, 2),
    (ApiKey::IncrementalAlterConfigs, 0, 1),
    (ApiKey::AllocateProducerIds, 0, 0),
    (ApiKey::AlterPartition, 2, 3),
    (ApiKey::ElectLeaders, 0, 2),
    (ApiKey::AlterPartitionReassignments, 0, 0),
];

/// Answers each request `requests` brings, each in its own task (a
/// change waits for the quorum). Ends when the driver stops.
pub async fn serve_controller_requests(
    broker: Arc<Broker>,
    sessions: Arc<BrokerSessions>,
    mut requests: mpsc::Receiver<ControllerRequest>,
) {
    // Requests in flight hold the broker: the loop ends only once they
    // have, so that shutdown gets the storage back.
    let mut in_flight = tokio::task::JoinSet::new();
    loop {
        let request = tokio::select! {
            request = requests.recv() => match request {
                Some(request) => request,
                None => break,
            },
            Some(_) = in_flight.join_next(), if !in_flight.is_empty() => continue,
        };
        let broker = Arc::clone(&broker);
        let sessions = Arc::clone(&sessions);
        in_flight.spawn(async move {
            let ControllerRequest {
                header,
                body,
                reply,
            } = request;
            let api = header.request_api_key;
            match answer(&broker, &sessions, header, body).await {
                Ok(response) => {
                    let _ = reply.send(response);
                }
                // Dropping the reply closes the connection.
                Err(err) => tracing::debug!(api, error = %err, "closing a controller connection"),
            }
        });
    }
    while in_flight.join_next().await.is_some() {}
}

#[derive(Debug, thiserror::Error)]
enum AnswerError {
    #[error("API key {0} is not served on the controller listener")]
    UnknownApi(i16),
    #[error("cannot decode the {api:?} v{version} request")]
    Decode {
        api: ApiKey,
        version: i16,
        #[source]
        source: anyhow::Error,
    },
    #[error("cannot encode the {api:?} response")]
    Encode {
        api: ApiKey,
        #[source]
        source: anyhow::Error,
    },
    #[error(transparent)]
    Handler(#[from] handlers::HandlerError),
}

async fn answer(
    broker: &Broker,
    sessions: &BrokerSessions,
    header: kafka_protocol::messages::RequestHeader,
    body: Bytes,
) -> Result<Bytes, AnswerError> {
    let version = header.request_api_version;
    let api = ApiKey::try_from(header.request_api_key)
        .map_err(|()| AnswerError::UnknownApi(header.request_api_key))?;
    match api {
        ApiKey::ApiVersions => encode(api, version, &api_versions()),
        ApiKey::BrokerRegistration => {
            let request = decode::<BrokerRegistrationRequest>(api, version, body)?;
            encode(api, version, &register(broker, sessions, request))
        }
        ApiKey::BrokerHeartbeat => {
            let request = decode::<BrokerHeartbeatRequest>(api, version, body)?;
            encode(api, version, &heartbeat(broker, sessions, &request))
        }
        ApiKey::DescribeQuorum => {
            let request = decode::<DescribeQuorumRequest>(api, version, body)?;
            let quorum = broker
                .metadata
                .quorum()
                .ok_or(AnswerError::UnknownApi(api as i16))?;
            let response = describe_quorum::cluster::handle(
                &broker.config,
                quorum,
                request,
                version,
                crate::clock::now_ms(),
                describe_quorum::cluster::NotLeader::Refuse,
            )
            .await;
            encode(api, version, &response)
        }
        ApiKey::AlterPartition => {
            let request = decode::<AlterPartitionRequest>(api, version, body)?;
            encode(
                api,
                version,
                &super::alter_partition::answer(broker, &request, version),
            )
        }
        ApiKey::AllocateProducerIds => {
            let request = decode::<AllocateProducerIdsRequest>(api, version, body)?;
            encode(api, version, &allocate_producer_ids(broker, &request))
        }
        ApiKey::CreateTopics
        | ApiKey::DeleteTopics
        | ApiKey::CreatePartitions
        | ApiKey::ElectLeaders
        | ApiKey::AlterPartitionReassignments
        | ApiKey::AlterConfigs
        | ApiKey::IncrementalAlterConfigs => {
            let request = runnel_protocol::request::Request {
                api_key: api,
                api_version: version,
                header,
                body,
            };
            let peer = std::net::SocketAddr::from(([127, 0, 0, 1], 0));
            match handlers::dispatch(broker, &request, peer).await? {
                Reply::Frame(frame) => {
                    let header_version = api.response_header_version(version);
                    let skip = runnel_protocol::frame::SIZE_PREFIX_BYTES
                        + runnel_protocol::response::header_bytes(header_version);
                    Ok(frame.freeze().slice(skip..))
                }
                Reply::Fetch(_) | Reply::Nothing | Reply::Close(_) => {
                    Err(AnswerError::UnknownApi(api as i16))
                }
            }
        }
        _ => Err(AnswerError::UnknownApi(api as i16)),
    }
}

fn decode<T: Decodable>(api: ApiKey, version: i16, mut body: Bytes) -> Result<T, AnswerError> {
    T::decode(&mut body, version).map_err(|source| AnswerError::Decode {
        api,
        version,
        source,
    })
}

fn encode<T: Encodable>(api: ApiKey, version: i16, response: &T) -> Result<Bytes, AnswerError> {
    let mut buf = bytes::BytesMut::new();
    response
        .encode(&mut buf, version)
        .map_err(|source| AnswerError::Encode { api, source })?;
    Ok(buf.freeze())
}

fn api_versions() -> ApiVersionsResponse {
    let mut response = ApiVersionsResponse::default();
    let quorum = quorum_api_versions();
    response.api_keys = CONTROLLER_APIS
        .into_iter()
        .chain(quorum)
        .map(|(api, min, max)| {
            ApiVersion::default()
                .with_api_key(api as i16)
                .with_min_version(min)
                .with_max_version(max)
        })
        .collect();
    response
}

/// The error code a refused controller change answers.
fn change_error(err: &MetadataError) -> ResponseError {
    match err {
        MetadataError::NotController { .. } => ResponseError::NotController,
        MetadataError::CommitTimeout { .. } => ResponseError::RequestTimedOut,
        _ => ResponseError::UnknownServerError,
    }
}

fn register(
    broker: &Broker,
    sessions: &BrokerSessions,
    request: BrokerRegistrationRequest,
) -> BrokerRegistrationResponse {
    let mut response = BrokerRegistrationResponse::default();
    if request.cluster_id.as_str() != broker.config.cluster_id() {
        response.error_code = ResponseError::InconsistentClusterId.code();
        return response;
    }
    let id = request.broker_id.0;
    let endpoints = request
        .listeners
        .iter()
        .map(|l| BrokerEndpoint {
            name: l.name.to_string(),
            host: l.host.to_string(),
            port: l.port,
            security_protocol: l.security_protocol,
        })
        .collect();
    let features = request
        .features
        .iter()
        .map(|f| BrokerFeature {
            name: f.name.to_string(),
            min_supported_version: f.min_supported_version,
            max_supported_version: f.max_supported_version,
        })
        .collect();
    let changed = broker.metadata.change(crate::clock::now_ms(), |image| {
        // The broker epoch: the offset the registration will have, as
        // Kafka's controller uses; above any earlier epoch of this id.
        let epoch = image.offset() + 1;
        let registration = BrokerRegistration {
            id,
            incarnation_id: request.incarnation_id,
            epoch,
            endpoints,
            supported_features: features,
            rack: request.rack.as_ref().map(|r| r.to_string()),
            fenced: false,
            in_controlled_shutdown: false,
            is_migrating_zk_broker: false,
            log_dirs: request.log_dirs.clone(),
        };
        // A broker back (a new process, its log maybe gone) leaves the
        // ISRs it shares until it caught up; where it was the last in
        // sync, it leads (again).
        let mut records = fencing::rejoin_partitions(image, id);
        records.extend(runnel_metadata::changes::register_broker(&registration));
        Ok((records, epoch))
    });
    match changed {
        Ok((_, epoch)) => {
            sessions.heard_from(id, Instant::now());
            tracing::info!(broker = id, epoch, "registered a broker");
            response.broker_epoch = epoch;
        }
        Err(err) => {
            tracing::warn!(broker = id, error = %error_chain(&err), "cannot register a broker");
            response.error_code = change_error(&err).code();
        }
    }
    response
}

/// Answers a heartbeat: the session of a broker at its registered epoch
/// goes on, and a fenced one is unfenced (it leads its leaderless
/// partitions again); any other epoch is STALE_BROKER_EPOCH, so the
/// broker registers anew.
fn heartbeat(
    broker: &Broker,
    sessions: &BrokerSessions,
    request: &BrokerHeartbeatRequest,
) -> BrokerHeartbeatResponse {
    let mut response = BrokerHeartbeatResponse::default();
    let is_leader = broker
        .metadata
        .quorum()
        .is_some_and(|q| q.handle().status().role == runnel_raft::Role::Leader);
    if !is_leader {
        response.error_code = ResponseError::NotController.code();
        return response;
    }
    let image = broker.metadata.image();
    let BrokerId(id) = request.broker_id;
    let registered = image
        .broker(id)
        .filter(|registered| registered.epoch == request.broker_epoch);
    let Some(registered) = registered else {
        response.error_code = ResponseError::StaleBrokerEpoch.code();
        return response;
    };
    sessions.heard_from(id, Instant::now());
    response.is_caught_up = true;
    response.is_fenced = registered.fenced;
    if request.want_shut_down {
        return shut_down(broker, id, response);
    }
    if registered.fenced && !request.want_fence {
        let unfenced = broker.metadata.change(crate::clock::now_ms(), |image| {
            Ok((fencing::unfence_broker(image, id), ()))
        });
        match unfenced {
            Ok(_) => {
                tracing::info!(broker = id, "unfenced a broker that heartbeats again");
                response.is_fenced = false;
            }
            Err(err) => {
                tracing::warn!(broker = id, error = %error_chain(&err), "cannot unfence a broker");
                response.error_code = change_error(&err).code();
            }
        }
    }
    response
}

/// A block of producer ids for the broker that asks (a ProducerIdsRecord
/// in the metadata log, so no id is handed out twice across failovers).
fn allocate_producer_ids(
    broker: &Broker,
    request: &AllocateProducerIdsRequest,
) -> AllocateProducerIdsResponse {
    let mut response = AllocateProducerIdsResponse::default();
    let id = request.broker_id.0;
    let image = broker.metadata.image();
    if image
        .broker(id)
        .is_none_or(|b| b.epoch != request.broker_epoch)
    {
        response.error_code = ResponseError::StaleBrokerEpoch.code();
        return response;
    }
    let taken = broker.metadata.change(crate::clock::now_ms(), |image| {
        runnel_metadata::changes::allocate_producer_ids(image, id, request.broker_epoch)
    });
    match taken {
        Ok((_, block)) => {
            response.producer_id_start = ProducerId(block.first_producer_id);
            response.producer_id_len = i32::try_from(block.size).unwrap_or(i32::MAX);
        }
        Err(err) => {
            tracing::warn!(broker = id, error = %error_chain(&err), "cannot allocate producer ids");
            response.error_code = change_error(&err).code();
        }
    }
    response
}

/// Kafka's controlled shutdown, asked by a heartbeat with want_shut_down:
/// the broker is fenced now, its partitions lose their leader (with
/// replicas, another would take over), and it may stop.
fn shut_down(
    broker: &Broker,
    id: i32,
    mut response: BrokerHeartbeatResponse,
) -> BrokerHeartbeatResponse {
    let changed = broker.metadata.change(crate::clock::now_ms(), |image| {
        Ok((fencing::shut_down_broker(image, id), ()))
    });
    match changed {
        Ok(_) => {
            tracing::info!(
                broker = id,
                "a broker shuts down: fenced, its partitions moved off"
            );
            response.is_fenced = true;
            response.should_shut_down = true;
        }
        Err(err) => {
            tracing::warn!(broker = id, error = %error_chain(&err), "cannot fence a broker that shuts down");
            response.error_code = change_error(&err).code();
        }
    }
    response
}
