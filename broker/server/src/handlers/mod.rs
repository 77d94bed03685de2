//! One handler per API key. `dispatch` decodes the request body, calls the
//! handler and encodes its response; Kafka error codes are chosen in the
//! handlers.

mod add_offsets_to_txn;
mod add_partitions_to_txn;
mod alter_configs;
mod alter_partition_reassignments;
mod api_versions;
mod context;
mod create_partitions;
mod create_topics;
mod delete_groups;
mod delete_topics;
mod describe_cluster;
mod describe_configs;
mod describe_groups;
pub mod describe_quorum;
mod describe_transactions;
mod elect_leaders;
mod end_txn;
mod fetch;
mod find_coordinator;
mod forward;
mod heartbeat;
mod incremental_alter_configs;
mod init_producer_id;
mod join_group;
mod leave_group;
mod list_groups;
mod list_offsets;
mod metadata;
mod offset_commit;
mod offset_delete;
mod offset_fetch;
mod offset_for_leader_epoch;
mod produce;
mod sync_group;
mod txn_offset_commit;
mod write_txn_markers;

use bytes::BytesMut;
use kafka_protocol::messages::{ApiKey, TopicName};
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};
use runnel_log::FileRegion;
use runnel_protocol::fetch_writer::Chunk;
use runnel_protocol::request::{self, Request, RequestError};
use runnel_protocol::response::{self, ResponseError};
use runnel_protocol::versions;
use thiserror::Error;

use crate::broker::Broker;
pub use context::{Admin, Coordinators, DataPath, GroupPath, TxnPath};

/// What goes back on the connection for one request.
#[derive(Debug)]
pub enum Reply {
    /// A whole encoded response frame.
    Frame(BytesMut),
    /// A Fetch response: bytes and file regions to send in order.
    Fetch(Vec<Chunk<FileRegion>>),
    /// No response: a produce request with `acks=0`.
    Nothing,
    /// No response, and the connection is closed (an `acks=0` produce
    /// request that was refused: the producer's only sign of it).
    Close(String),
}

/// Why a request could not be answered; the connection is closed.
#[derive(Debug, Error)]
pub enum HandlerError {
    #[error("{api:?} version {version} is not supported")]
    UnsupportedVersion { api: ApiKey, version: i16 },
    #[error("{api:?} is not implemented by this broker yet")]
    NotImplemented { api: ApiKey },
    #[error("cannot decode the request body")]
    Decode(#[from] RequestError),
    #[error("cannot encode the response")]
    Encode(#[from] ResponseError),
    #[error("cannot encode the fetch response")]
    EncodeFetch {
        #[source]
        source: runnel_protocol::FetchWriteError,
    },
    #[error("the controller's answer of {size} bytes is too large to frame")]
    ForwardedTooLarge { size: usize },
}

impl HandlerError {
    /// Short label for metrics.
    pub fn label(&self) -> &'static str {
        match self {
            Self::UnsupportedVersion { .. } => "unsupported_version",
            Self::NotImplemented { .. } => "not_implemented",
            Self::Decode(_) => "decode",
            Self::Encode(_) | Self::EncodeFetch { .. } | Self::ForwardedTooLarge { .. } => "encode",
        }
    }
}

/// Answers one request; `peer` is the client's address (for group
/// members' `client_host`).
pub async fn dispatch(
    broker: &Broker,
    request: &Request,
    peer: std::net::SocketAddr,
) -> Result<Reply, HandlerError> {
    let (api, version) = (request.api_key, request.api_version);
    if api == ApiKey::ApiVersions {
        return api_versions::handle(request);
    }
    if !versions::supports(api, version) {
        return Err(HandlerError::UnsupportedVersion { api, version });
    }
    if forward::is_forwarded(api)
        && let Some(reply) = forward::to_controller(broker, request).await?
    {
        return Ok(reply);
    }
    let now = now_ms();
    let data_path = DataPath::of(broker);
    let admin = Admin::of(broker);
    let group_path = GroupPath::of(broker);
    let txn_path = TxnPath::of(broker);
    match api {
        ApiKey::Metadata => respond(
            request,
            &metadata::handle(&admin, body(request)?, version, now),
        ),
        ApiKey::Produce => match produce::handle(&data_path, body(request)?, version, now).await {
            produce::Answer::Response(response) => respond(request, &response),
            produce::Answer::Nothing => Ok(Reply::Nothing),
            produce::Answer::Close(why) => Ok(Reply::Close(why)),
        },
        ApiKey::Fetch => fetch::handle(&data_path, request, body(request)?).await,
        ApiKey::ListOffsets => respond(
            request,
            &list_offsets::handle(&data_path, body(request)?, version),
        ),
        ApiKey::OffsetForLeaderEpoch => respond(
            request,
            &offset_for_leader_epoch::handle(&data_path, body(request)?),
        ),
        ApiKey::CreateTopics => respond(
            request,
            &disk_work(|| Ok(create_topics::handle(&admin, body(request)?, version, now)))?,
        ),
        ApiKey::DeleteTopics => respond(
            request,
            &disk_work(|| Ok(delete_topics::handle(&admin, body(request)?, version)))?,
        ),
        ApiKey::CreatePartitions => respond(
            request,
            &disk_work(|| Ok(create_partitions::handle(&admin, body(request)?, now)))?,
        ),
        ApiKey::AlterPartitionReassignments => respond(
            request,
            &disk_work(|| {
                Ok(alter_partition_reassignments::alter(
                    &admin,
                    body(request)?,
                    now,
                ))
            })?,
        ),
        ApiKey::ListPartitionReassignments => respond(
            request,
            &alter_partition_reassignments::list(&admin, body(request)?),
        ),
        ApiKey::ElectLeaders => respond(
            request,
            &disk_work(|| Ok(elect_leaders::handle(&admin, body(request)?, version, now)))?,
        ),
        ApiKey::DescribeConfigs => respond(
            request,
            &describe_configs::handle(&admin, body(request)?, version),
        ),
        ApiKey::AlterConfigs => respond(request, &alter_configs::handle(&admin, body(request)?)),
        ApiKey::IncrementalAlterConfigs => respond(
            request,
            &incremental_alter_configs::handle(&admin, body(request)?),
        ),
        ApiKey::DescribeCluster => respond(
            request,
            &describe_cluster::handle(&admin, body(request)?, version),
        ),
        ApiKey::DescribeQuorum => match broker.metadata.quorum() {
            Some(quorum) => respond(
                request,
                &describe_quorum::cluster::handle(
                    &broker.config,
                    quorum,
                    body(request)?,
                    version,
                    now,
                    describe_quorum::cluster::NotLeader::Forward,
                )
                .await,
            ),
            None => respond(
                request,
                &describe_quorum::handle(
                    &broker.config,
                    &broker.metadata,
                    body(request)?,
                    version,
                    now,
                ),
            ),
        },
        ApiKey::FindCoordinator => respond(
            request,
            &disk_work(|| {
                Ok(find_coordinator::handle(
                    &Coordinators::of(broker),
                    body(request)?,
                    version,
                ))
            })?,
        ),
        ApiKey::JoinGroup => {
            let client_id = request
                .header
                .client_id
                .as_deref()
                .unwrap_or_default()
                .to_string();
            let response =
                join_group::handle(&group_path, body(request)?, version, &client_id, peer).await;
            respond(request, &response)
        }
        ApiKey::SyncGroup => respond(
            request,
            &sync_group::handle(&group_path, body(request)?, version).await,
        ),
        ApiKey::Heartbeat => respond(request, &heartbeat::handle(&group_path, body(request)?)),
        ApiKey::LeaveGroup => respond(
            request,
            &leave_group::handle(&group_path, body(request)?, version),
        ),
        ApiKey::DescribeGroups => respond(
            request,
            &describe_groups::handle(&group_path, body(request)?, version),
        ),
        ApiKey::DeleteGroups => respond(
            request,
            &delete_groups::handle(&group_path, body(request)?, now),
        ),
        ApiKey::ListGroups => respond(
            request,
            &list_groups::handle(&group_path, body(request)?, version),
        ),
        ApiKey::OffsetCommit => respond(
            request,
            &offset_commit::handle(&group_path, body(request)?, now),
        ),
        ApiKey::InitProducerId => respond(
            request,
            // A new block of ids is written and fsynced once per 1,000.
            &disk_work(|| Ok(init_producer_id::handle(&txn_path, body(request)?, now)))?,
        ),
        ApiKey::AddPartitionsToTxn => respond(
            request,
            &disk_work(|| {
                Ok(add_partitions_to_txn::handle(
                    &txn_path,
                    body(request)?,
                    version,
                    now,
                ))
            })?,
        ),
        ApiKey::AddOffsetsToTxn => respond(
            request,
            &disk_work(|| Ok(add_offsets_to_txn::handle(&txn_path, body(request)?, now)))?,
        ),
        ApiKey::TxnOffsetCommit => respond(
            request,
            &disk_work(|| Ok(txn_offset_commit::handle(&txn_path, body(request)?, now)))?,
        ),
        ApiKey::EndTxn => respond(
            request,
            // The markers are written before the answer.
            &disk_work(|| Ok(end_txn::handle(&txn_path, body(request)?, now)))?,
        ),
        ApiKey::WriteTxnMarkers => respond(
            request,
            &disk_work(|| {
                Ok(write_txn_markers::handle(
                    &data_path,
                    &group_path,
                    body(request)?,
                    now,
                ))
            })?,
        ),
        ApiKey::DescribeTransactions => respond(
            request,
            &describe_transactions::describe(&txn_path, body(request)?),
        ),
        ApiKey::ListTransactions => respond(
            request,
            &describe_transactions::list(&txn_path, body(request)?, version, now),
        ),
        ApiKey::OffsetDelete => respond(
            request,
            &offset_delete::handle(&group_path, body(request)?, now),
        ),
        ApiKey::OffsetFetch => respond(
            request,
            &offset_fetch::handle(&group_path, body(request)?, version),
        ),
        api => Err(HandlerError::NotImplemented { api }),
    }
}

/// Runs a handler that may create or delete partition logs (fsyncs, file
/// creation: the first FindCoordinator creates `__consumer_offsets`'s 50
/// partitions) off the async workers' turn, so other connections keep
/// being served meanwhile.
fn disk_work<T>(handler: impl FnOnce() -> Result<T, HandlerError>) -> Result<T, HandlerError> {
    tokio::task::block_in_place(handler)
}

fn body<T: Decodable>(request: &Request) -> Result<T, HandlerError> {
    Ok(request::decode_body(request)?)
}

fn respond<T: Encodable>(request: &Request, body: &T) -> Result<Reply, HandlerError> {
    Ok(Reply::Frame(response::encode(
        request.api_key,
        request.api_version,
        request.header.correlation_id,
        body,
    )?))
}

pub(crate) fn topic_name(name: &str) -> TopicName {
    TopicName(StrBytes::from_string(name.to_string()))
}

pub(crate) fn str_bytes(text: impl Into<String>) -> StrBytes {
    StrBytes::from_string(text.into())
}

pub(crate) use crate::clock::now_ms;
