//! The quorum's responses: [`Message`] response variants to
//! `kafka-protocol` structs and back. A response decodes against the
//! request it answers (matched by the driver through the correlation id):
//! the core wants the pre-vote flag of a Vote and the position of a Fetch
//! echoed, which Kafka's responses don't carry.

use super::*;

/// The Kafka response for `message` (a response variant).
pub fn response_to_kafka(ctx: &WireContext, message: &Message) -> Result<KafkaResponse, WireError> {
    Ok(match message {
        Message::VoteResponse(r) => KafkaResponse::Vote(vote(r)?),
        Message::BeginQuorumEpochResponse(r) => {
            KafkaResponse::BeginQuorumEpoch(begin_quorum_epoch(r)?)
        }
        Message::EndQuorumEpochResponse(r) => KafkaResponse::EndQuorumEpoch(end_quorum_epoch(r)?),
        Message::FetchResponse(r) => KafkaResponse::Fetch(fetch(ctx, r)?),
        Message::FetchSnapshotResponse(r) => KafkaResponse::FetchSnapshot(fetch_snapshot(r)?),
        other => {
            return Err(WireError::NotAResponse {
                api: other.api_name(),
            });
        }
    })
}

/// The core's message for a Kafka response to `request`, the core's
/// request it answers.
pub fn response_from_kafka(
    response: &KafkaResponse,
    request: &Message,
) -> Result<Message, WireError> {
    let mismatch = || WireError::ResponseMismatch {
        response: api_name(response.api_key()),
        request: request.api_name(),
    };
    match (response, request) {
        (KafkaResponse::Vote(r), Message::VoteRequest(q)) => from_vote(r, q.pre_vote),
        (KafkaResponse::BeginQuorumEpoch(r), Message::BeginQuorumEpochRequest(_)) => {
            from_begin_quorum_epoch(r)
        }
        (KafkaResponse::EndQuorumEpoch(r), Message::EndQuorumEpochRequest(_)) => {
            from_end_quorum_epoch(r)
        }
        (KafkaResponse::Fetch(r), Message::FetchRequest(q)) => {
            from_fetch(r, OffsetAndEpoch::new(q.fetch_offset, q.last_fetched_epoch))
        }
        (KafkaResponse::FetchSnapshot(r), Message::FetchSnapshotRequest(_)) => {
            from_fetch_snapshot(r)
        }
        _ => Err(mismatch()),
    }
}

fn top_level(api: &'static str, code: i16) -> Result<(), WireError> {
    match code {
        0 => Ok(()),
        code => Err(WireError::TopLevelError { api, code }),
    }
}

fn vote(r: &raft::VoteResponse) -> Result<VoteResponse, WireError> {
    const API: &str = "Vote";
    let (leader_id, leader_epoch) = leader_fields(API, r.current_leader)?;
    let partition = vote_response::PartitionData::default()
        .with_partition_index(METADATA_PARTITION)
        .with_error_code(error_code(r.error))
        .with_leader_id(leader_id)
        .with_leader_epoch(leader_epoch)
        .with_vote_granted(r.vote_granted);
    Ok(VoteResponse::default().with_topics(vec![
        vote_response::TopicData::default()
            .with_topic_name(topic_name())
            .with_partitions(vec![partition]),
    ]))
}

fn from_vote(r: &VoteResponse, pre_vote: bool) -> Result<Message, WireError> {
    const API: &str = "Vote";
    top_level(API, r.error_code)?;
    let p = only(
        API,
        &r.topics,
        |t| is_metadata_topic(&t.topic_name),
        |t| &t.partitions,
        |p| p.partition_index,
    )?;
    Ok(Message::VoteResponse(raft::VoteResponse {
        error: parse_error_code(API, p.error_code)?,
        current_leader: leader_and_epoch(API, p.leader_id.0, p.leader_epoch)?,
        vote_granted: p.vote_granted,
        pre_vote,
    }))
}

fn begin_quorum_epoch(
    r: &raft::BeginQuorumEpochResponse,
) -> Result<BeginQuorumEpochResponse, WireError> {
    const API: &str = "BeginQuorumEpoch";
    let (leader_id, leader_epoch) = leader_fields(API, r.current_leader)?;
    let partition = begin_quorum_epoch_response::PartitionData::default()
        .with_partition_index(METADATA_PARTITION)
        .with_error_code(error_code(r.error))
        .with_leader_id(leader_id)
        .with_leader_epoch(leader_epoch);
    Ok(BeginQuorumEpochResponse::default().with_topics(vec![
        begin_quorum_epoch_response::TopicData::default()
            .with_topic_name(topic_name())
            .with_partitions(vec![partition]),
    ]))
}

fn from_begin_quorum_epoch(r: &BeginQuorumEpochResponse) -> Result<Message, WireError> {
    const API: &str = "BeginQuorumEpoch";
    top_level(API, r.error_code)?;
    let p = only(
        API,
        &r.topics,
        |t| is_metadata_topic(&t.topic_name),
        |t| &t.partitions,
        |p| p.partition_index,
    )?;
    Ok(Message::BeginQuorumEpochResponse(
        raft::BeginQuorumEpochResponse {
            error: parse_error_code(API, p.error_code)?,
            current_leader: leader_and_epoch(API, p.leader_id.0, p.leader_epoch)?,
        },
    ))
}

fn end_quorum_epoch(r: &raft::EndQuorumEpochResponse) -> Result<EndQuorumEpochResponse, WireError> {
    const API: &str = "EndQuorumEpoch";
    let (leader_id, leader_epoch) = leader_fields(API, r.current_leader)?;
    let partition = end_quorum_epoch_response::PartitionData::default()
        .with_partition_index(METADATA_PARTITION)
        .with_error_code(error_code(r.error))
        .with_leader_id(leader_id)
        .with_leader_epoch(leader_epoch);
    Ok(EndQuorumEpochResponse::default().with_topics(vec![
        end_quorum_epoch_response::TopicData::default()
            .with_topic_name(topic_name())
            .with_partitions(vec![partition]),
    ]))
}

fn from_end_quorum_epoch(r: &EndQuorumEpochResponse) -> Result<Message, WireError> {
    const API: &str = "EndQuorumEpoch";
    top_level(API, r.error_code)?;
    let p = only(
        API,
        &r.topics,
        |t| is_metadata_topic(&t.topic_name),
        |t| &t.partitions,
        |p| p.partition_index,
    )?;
    Ok(Message::EndQuorumEpochResponse(
        raft::EndQuorumEpochResponse {
            error: parse_error_code(API, p.error_code)?,
            current_leader: leader_and_epoch(API, p.leader_id.0, p.leader_epoch)?,
        },
    ))
}

fn fetch(ctx: &WireContext, r: &raft::FetchResponse) -> Result<FetchResponse, WireError> {
    const API: &str = "Fetch";
    let (leader_id, leader_epoch) = leader_fields(API, r.current_leader)?;
    let high_watermark = to_i64(API, "HighWatermark", r.high_watermark)?;
    let mut partition = fetch_response::PartitionData::default()
        .with_partition_index(METADATA_PARTITION)
        .with_error_code(error_code(r.error))
        .with_high_watermark(high_watermark)
        .with_last_stable_offset(high_watermark)
        .with_log_start_offset(to_i64(API, "LogStartOffset", r.log_start_offset)?)
        .with_current_leader(
            fetch_response::LeaderIdAndEpoch::default()
                .with_leader_id(leader_id)
                .with_leader_epoch(leader_epoch),
        )
        .with_records(Some(
            encode_entries(&r.records, &ctx.voters)
                .map_err(|source| WireError::Records { api: API, source })?,
        ));
    if let Some(diverging) = r.diverging_epoch {
        partition = partition.with_diverging_epoch(
            fetch_response::EpochEndOffset::default()
                .with_epoch(to_i32(API, "DivergingEpoch.Epoch", diverging.epoch)?)
                .with_end_offset(to_i64(API, "DivergingEpoch.EndOffset", diverging.offset)?),
        );
    }
    if let Some(snapshot_id) = r.snapshot_id {
        partition = partition.with_snapshot_id(
            fetch_response::SnapshotId::default()
                .with_end_offset(to_i64(API, "SnapshotId.EndOffset", snapshot_id.offset)?)
                .with_epoch(to_i32(API, "SnapshotId.Epoch", snapshot_id.epoch)?),
        );
    }
    let topic = fetch_response::FetchableTopicResponse::default()
        .with_topic(topic_name())
        .with_topic_id(METADATA_TOPIC_ID)
        .with_partitions(vec![partition]);
    Ok(FetchResponse::default().with_responses(vec![topic]))
}

fn from_fetch(r: &FetchResponse, request_position: OffsetAndEpoch) -> Result<Message, WireError> {
    const API: &str = "Fetch";
    top_level(API, r.error_code)?;
    let p = only(
        API,
        &r.responses,
        |t| t.topic_id == METADATA_TOPIC_ID || is_metadata_topic(&t.topic),
        |t| &t.partitions,
        |p| p.partition_index,
    )?;
    let error = parse_error_code(API, p.error_code)?;
    // Kafka marks "none" with -1 in both fields; a diverging epoch is set
    // by its epoch, a snapshot id by either field.
    let diverging_epoch = if p.diverging_epoch.epoch >= 0 {
        Some(OffsetAndEpoch::new(
            from_i64(
                API,
                "DivergingEpoch.EndOffset",
                p.diverging_epoch.end_offset,
            )?,
            from_i32(API, "DivergingEpoch.Epoch", p.diverging_epoch.epoch)?,
        ))
    } else {
        None
    };
    let snapshot_id = if p.snapshot_id.epoch >= 0 || p.snapshot_id.end_offset >= 0 {
        Some(OffsetAndEpoch::new(
            from_i64(API, "SnapshotId.EndOffset", p.snapshot_id.end_offset)?,
            from_i32(API, "SnapshotId.Epoch", p.snapshot_id.epoch)?,
        ))
    } else {
        None
    };
    let records = match &p.records {
        Some(bytes) if error.is_none() => {
            decode_entries(bytes).map_err(|source| WireError::Records { api: API, source })?
        }
        _ => Vec::new(),
    };
    Ok(Message::FetchResponse(raft::FetchResponse {
        error,
        current_leader: leader_and_epoch(
            API,
            p.current_leader.leader_id.0,
            p.current_leader.leader_epoch,
        )?,
        high_watermark: from_i64(API, "HighWatermark", p.high_watermark)?,
        log_start_offset: from_i64(API, "LogStartOffset", p.log_start_offset)?,
        records,
        diverging_epoch,
        snapshot_id,
        request_position,
    }))
}

fn fetch_snapshot(r: &raft::FetchSnapshotResponse) -> Result<FetchSnapshotResponse, WireError> {
    const API: &str = "FetchSnapshot";
    let (leader_id, leader_epoch) = leader_fields(API, r.current_leader)?;
    let partition = fetch_snapshot_response::PartitionSnapshot::default()
        .with_index(METADATA_PARTITION)
        .with_error_code(error_code(r.error))
        .with_snapshot_id(
            fetch_snapshot_response::SnapshotId::default()
                .with_end_offset(to_i64(API, "SnapshotId.EndOffset", r.snapshot_id.offset)?)
                .with_epoch(to_i32(API, "SnapshotId.Epoch", r.snapshot_id.epoch)?),
        )
        .with_current_leader(
            fetch_snapshot_response::LeaderIdAndEpoch::default()
                .with_leader_id(leader_id)
                .with_leader_epoch(leader_epoch),
        )
        .with_size(to_i64(API, "Size", r.size)?)
        .with_position(to_i64(API, "Position", r.position)?)
        .with_unaligned_records(r.unaligned_records.clone());
    Ok(FetchSnapshotResponse::default().with_topics(vec![
        fetch_snapshot_response::TopicSnapshot::default()
            .with_name(topic_name())
            .with_partitions(vec![partition]),
    ]))
}

fn from_fetch_snapshot(r: &FetchSnapshotResponse) -> Result<Message, WireError> {
    const API: &str = "FetchSnapshot";
    top_level(API, r.error_code)?;
    let p = only(
        API,
        &r.topics,
        |t| is_metadata_topic(&t.name),
        |t| &t.partitions,
        |p| p.index,
    )?;
    Ok(Message::FetchSnapshotResponse(
        raft::FetchSnapshotResponse {
            error: parse_error_code(API, p.error_code)?,
            current_leader: leader_and_epoch(
                API,
                p.current_leader.leader_id.0,
                p.current_leader.leader_epoch,
            )?,
            snapshot_id: OffsetAndEpoch::new(
                from_i64(API, "SnapshotId.EndOffset", p.snapshot_id.end_offset)?,
                from_i32(API, "SnapshotId.Epoch", p.snapshot_id.epoch)?,
            ),
            size: from_i64(API, "Size", p.size)?,
            position: from_i64(API, "Position", p.position)?,
            unaligned_records: p.unaligned_records.clone(),
        },
    ))
}
