//! The quorum's requests: [`Message`] request variants to `kafka-protocol`
//! structs and back.

use super::*;

/// The Kafka request for `message` (a request variant) from this node to
/// node `to`.
pub fn request_to_kafka(
    ctx: &WireContext,
    to: NodeId,
    message: &Message,
) -> Result<KafkaRequest, WireError> {
    Ok(match message {
        Message::VoteRequest(r) => KafkaRequest::Vote(vote(ctx, to, r)?),
        Message::BeginQuorumEpochRequest(r) => {
            KafkaRequest::BeginQuorumEpoch(begin_quorum_epoch(ctx, to, r)?)
        }
        Message::EndQuorumEpochRequest(r) => {
            KafkaRequest::EndQuorumEpoch(end_quorum_epoch(ctx, r)?)
        }
        Message::FetchRequest(r) => KafkaRequest::Fetch(fetch(ctx, r)?),
        Message::FetchSnapshotRequest(r) => KafkaRequest::FetchSnapshot(fetch_snapshot(ctx, r)?),
        other => {
            return Err(WireError::NotARequest {
                api: other.api_name(),
            });
        }
    })
}

/// The sender and the core's message for a Kafka request addressed to this
/// node.
pub fn request_from_kafka(
    ctx: &WireContext,
    request: &KafkaRequest,
) -> Result<(NodeId, Message), WireError> {
    match request {
        KafkaRequest::Vote(r) => from_vote(ctx, r),
        KafkaRequest::BeginQuorumEpoch(r) => from_begin_quorum_epoch(ctx, r),
        KafkaRequest::EndQuorumEpoch(r) => from_end_quorum_epoch(ctx, r),
        KafkaRequest::Fetch(r) => from_fetch(ctx, r),
        KafkaRequest::FetchSnapshot(r) => from_fetch_snapshot(ctx, r),
    }
}

fn leader_endpoints<T>(ctx: &WireContext, make: impl Fn(&Endpoint) -> T) -> Vec<T> {
    ctx.endpoints.iter().map(make).collect()
}

fn vote(ctx: &WireContext, to: NodeId, r: &raft::VoteRequest) -> Result<VoteRequest, WireError> {
    const API: &str = "Vote";
    let partition = vote_request::PartitionData::default()
        .with_partition_index(METADATA_PARTITION)
        .with_replica_epoch(to_i32(API, "ReplicaEpoch", r.replica_epoch)?)
        .with_replica_id(BrokerId(ctx.local_id))
        .with_last_offset_epoch(to_i32(
            API,
            "LastOffsetEpoch",
            r.last_offset_and_epoch.epoch,
        )?)
        .with_last_offset(to_i64(API, "LastOffset", r.last_offset_and_epoch.offset)?)
        .with_pre_vote(r.pre_vote);
    Ok(VoteRequest::default()
        .with_cluster_id(cluster_id(ctx))
        .with_voter_id(BrokerId(to))
        .with_topics(vec![
            vote_request::TopicData::default()
                .with_topic_name(topic_name())
                .with_partitions(vec![partition]),
        ]))
}

fn from_vote(ctx: &WireContext, r: &VoteRequest) -> Result<(NodeId, Message), WireError> {
    const API: &str = "Vote";
    check_cluster_id(API, ctx, r.cluster_id.as_ref())?;
    check_recipient(API, ctx, r.voter_id)?;
    let p = only(
        API,
        &r.topics,
        |t| is_metadata_topic(&t.topic_name),
        |t| &t.partitions,
        |p| p.partition_index,
    )?;
    let message = raft::VoteRequest {
        replica_epoch: from_i32(API, "ReplicaEpoch", p.replica_epoch)?,
        last_offset_and_epoch: OffsetAndEpoch::new(
            from_i64(API, "LastOffset", p.last_offset)?,
            from_i32(API, "LastOffsetEpoch", p.last_offset_epoch)?,
        ),
        pre_vote: p.pre_vote,
    };
    let from = node_id(API, "ReplicaId", p.replica_id.0)?;
    Ok((from, Message::VoteRequest(message)))
}

fn begin_quorum_epoch(
    ctx: &WireContext,
    to: NodeId,
    r: &raft::BeginQuorumEpochRequest,
) -> Result<BeginQuorumEpochRequest, WireError> {
    const API: &str = "BeginQuorumEpoch";
    let partition = begin_quorum_epoch_request::PartitionData::default()
        .with_partition_index(METADATA_PARTITION)
        .with_leader_id(BrokerId(ctx.local_id))
        .with_leader_epoch(to_i32(API, "LeaderEpoch", r.leader_epoch)?);
    Ok(BeginQuorumEpochRequest::default()
        .with_cluster_id(cluster_id(ctx))
        .with_voter_id(BrokerId(to))
        .with_topics(vec![
            begin_quorum_epoch_request::TopicData::default()
                .with_topic_name(topic_name())
                .with_partitions(vec![partition]),
        ])
        .with_leader_endpoints(leader_endpoints(ctx, |e| {
            begin_quorum_epoch_request::LeaderEndpoint::default()
                .with_name(StrBytes::from_string(e.listener.clone()))
                .with_host(StrBytes::from_string(e.host.clone()))
                .with_port(e.port)
        })))
}

fn from_begin_quorum_epoch(
    ctx: &WireContext,
    r: &BeginQuorumEpochRequest,
) -> Result<(NodeId, Message), WireError> {
    const API: &str = "BeginQuorumEpoch";
    check_cluster_id(API, ctx, r.cluster_id.as_ref())?;
    check_recipient(API, ctx, r.voter_id)?;
    let p = only(
        API,
        &r.topics,
        |t| is_metadata_topic(&t.topic_name),
        |t| &t.partitions,
        |p| p.partition_index,
    )?;
    let message = raft::BeginQuorumEpochRequest {
        leader_epoch: from_i32(API, "LeaderEpoch", p.leader_epoch)?,
    };
    let from = node_id(API, "LeaderId", p.leader_id.0)?;
    Ok((from, Message::BeginQuorumEpochRequest(message)))
}

fn end_quorum_epoch(
    ctx: &WireContext,
    r: &raft::EndQuorumEpochRequest,
) -> Result<EndQuorumEpochRequest, WireError> {
    const API: &str = "EndQuorumEpoch";
    // v0 lists ids, v1 replica keys; the encoder writes the version's.
    let candidates = r
        .preferred_successors
        .iter()
        .map(|id| end_quorum_epoch_request::ReplicaInfo::default().with_candidate_id(BrokerId(*id)))
        .collect();
    let partition = end_quorum_epoch_request::PartitionData::default()
        .with_partition_index(METADATA_PARTITION)
        .with_leader_id(BrokerId(ctx.local_id))
        .with_leader_epoch(to_i32(API, "LeaderEpoch", r.leader_epoch)?)
        .with_preferred_successors(r.preferred_successors.clone())
        .with_preferred_candidates(candidates);
    Ok(EndQuorumEpochRequest::default()
        .with_cluster_id(cluster_id(ctx))
        .with_topics(vec![
            end_quorum_epoch_request::TopicData::default()
                .with_topic_name(topic_name())
                .with_partitions(vec![partition]),
        ])
        .with_leader_endpoints(leader_endpoints(ctx, |e| {
            end_quorum_epoch_request::LeaderEndpoint::default()
                .with_name(StrBytes::from_string(e.listener.clone()))
                .with_host(StrBytes::from_string(e.host.clone()))
                .with_port(e.port)
        })))
}

fn from_end_quorum_epoch(
    ctx: &WireContext,
    r: &EndQuorumEpochRequest,
) -> Result<(NodeId, Message), WireError> {
    const API: &str = "EndQuorumEpoch";
    check_cluster_id(API, ctx, r.cluster_id.as_ref())?;
    let p = only(
        API,
        &r.topics,
        |t| is_metadata_topic(&t.topic_name),
        |t| &t.partitions,
        |p| p.partition_index,
    )?;
    let preferred_successors = if p.preferred_candidates.is_empty() {
        p.preferred_successors.clone()
    } else {
        p.preferred_candidates
            .iter()
            .map(|c| c.candidate_id.0)
            .collect()
    };
    let message = raft::EndQuorumEpochRequest {
        leader_epoch: from_i32(API, "LeaderEpoch", p.leader_epoch)?,
        preferred_successors,
    };
    let from = node_id(API, "LeaderId", p.leader_id.0)?;
    Ok((from, Message::EndQuorumEpochRequest(message)))
}

fn fetch(ctx: &WireContext, r: &raft::FetchRequest) -> Result<FetchRequest, WireError> {
    const API: &str = "Fetch";
    let partition = fetch_request::FetchPartition::default()
        .with_partition(METADATA_PARTITION)
        .with_current_leader_epoch(to_i32(API, "CurrentLeaderEpoch", r.current_leader_epoch)?)
        .with_fetch_offset(to_i64(API, "FetchOffset", r.fetch_offset)?)
        .with_last_fetched_epoch(to_i32(API, "LastFetchedEpoch", r.last_fetched_epoch)?)
        .with_partition_max_bytes(FETCH_MAX_BYTES)
        .with_high_watermark(i64::MAX);
    // Below v13 the topic goes by name, from v13 by id: set both.
    let topic = fetch_request::FetchTopic::default()
        .with_topic(topic_name())
        .with_topic_id(METADATA_TOPIC_ID)
        .with_partitions(vec![partition]);
    Ok(FetchRequest::default()
        .with_cluster_id(cluster_id(ctx))
        // From v15 the replica id is in ReplicaState; the encoder moves it
        // for older versions.
        .with_replica_id(BrokerId(-1))
        .with_replica_state(
            fetch_request::ReplicaState::default().with_replica_id(BrokerId(ctx.local_id)),
        )
        .with_max_wait_ms(FETCH_MAX_WAIT_MS)
        .with_min_bytes(0)
        .with_max_bytes(FETCH_MAX_BYTES)
        .with_topics(vec![topic]))
}

fn from_fetch(ctx: &WireContext, r: &FetchRequest) -> Result<(NodeId, Message), WireError> {
    const API: &str = "Fetch";
    check_cluster_id(API, ctx, r.cluster_id.as_ref())?;
    let p = only(
        API,
        &r.topics,
        |t| t.topic_id == METADATA_TOPIC_ID || is_metadata_topic(&t.topic),
        |t| &t.partitions,
        |p| p.partition,
    )?;
    let message = raft::FetchRequest {
        current_leader_epoch: from_i32(API, "CurrentLeaderEpoch", p.current_leader_epoch)?,
        fetch_offset: from_i64(API, "FetchOffset", p.fetch_offset)?,
        last_fetched_epoch: from_i32(API, "LastFetchedEpoch", p.last_fetched_epoch)?,
    };
    let replica_id = if r.replica_state.replica_id.0 >= 0 {
        r.replica_state.replica_id.0
    } else {
        r.replica_id.0
    };
    let from = node_id(API, "ReplicaId", replica_id)?;
    Ok((from, Message::FetchRequest(message)))
}

fn fetch_snapshot(
    ctx: &WireContext,
    r: &raft::FetchSnapshotRequest,
) -> Result<FetchSnapshotRequest, WireError> {
    const API: &str = "FetchSnapshot";
    let snapshot_id = fetch_snapshot_request::SnapshotId::default()
        .with_end_offset(to_i64(API, "EndOffset", r.snapshot_id.offset)?)
        .with_epoch(to_i32(API, "Epoch", r.snapshot_id.epoch)?);
    let partition = fetch_snapshot_request::PartitionSnapshot::default()
        .with_partition(METADATA_PARTITION)
        .with_current_leader_epoch(to_i32(API, "CurrentLeaderEpoch", r.current_leader_epoch)?)
        .with_snapshot_id(snapshot_id)
        .with_position(to_i64(API, "Position", r.position)?);
    Ok(FetchSnapshotRequest::default()
        .with_cluster_id(cluster_id(ctx))
        .with_replica_id(BrokerId(ctx.local_id))
        .with_max_bytes(FETCH_MAX_BYTES)
        .with_topics(vec![
            fetch_snapshot_request::TopicSnapshot::default()
                .with_name(topic_name())
                .with_partitions(vec![partition]),
        ]))
}

fn from_fetch_snapshot(
    ctx: &WireContext,
    r: &FetchSnapshotRequest,
) -> Result<(NodeId, Message), WireError> {
    const API: &str = "FetchSnapshot";
    check_cluster_id(API, ctx, r.cluster_id.as_ref())?;
    let p = only(
        API,
        &r.topics,
        |t| is_metadata_topic(&t.name),
        |t| &t.partitions,
        |p| p.partition,
    )?;
    let message = raft::FetchSnapshotRequest {
        current_leader_epoch: from_i32(API, "CurrentLeaderEpoch", p.current_leader_epoch)?,
        snapshot_id: OffsetAndEpoch::new(
            from_i64(API, "EndOffset", p.snapshot_id.end_offset)?,
            from_i32(API, "Epoch", p.snapshot_id.epoch)?,
        ),
        position: from_i64(API, "Position", p.position)?,
    };
    let from = node_id(API, "ReplicaId", r.replica_id.0)?;
    Ok((from, Message::FetchSnapshotRequest(message)))
}
