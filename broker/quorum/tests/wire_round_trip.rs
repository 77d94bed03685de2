//! Every quorum message through the wire: core message -> `kafka-protocol`
//! struct -> bytes at the version we send -> struct -> core message, which
//! must come back equal; and the refusals of requests we can't serve.

use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::ApiKey;
use kafka_protocol::protocol::StrBytes;
use runnel_protocol::BatchBuilder;
use runnel_quorum::wire::{
    Endpoint, KafkaRequest, KafkaResponse, WireContext, WireError, request_from_kafka,
    request_to_kafka, response_from_kafka, response_to_kafka, version_of,
};
use runnel_raft::message::*;
use runnel_raft::{Entry, ErrorCode, LeaderAndEpoch, Message, OffsetAndEpoch, Payload};

type TestResult = Result<(), Box<dyn std::error::Error>>;

fn ctx(local_id: i32) -> WireContext {
    WireContext {
        cluster_id: "MkU3OEVBNTcwNTJENDM2Qg".to_owned(),
        local_id,
        voters: vec![1, 2, 3],
        endpoints: vec![Endpoint {
            listener: "CONTROLLER".to_owned(),
            host: format!("controller-{local_id}"),
            port: 9093,
        }],
    }
}

fn leader(id: Option<i32>, epoch: u32) -> LeaderAndEpoch {
    LeaderAndEpoch {
        leader_id: id,
        epoch,
    }
}

/// Sends `request` from node 1 to node 2 and the answer back, through
/// bytes at our versions; checks both arrive as they left.
fn round_trip(request: Message, response: Message) -> TestResult {
    let sender = ctx(1);
    let receiver = ctx(2);

    let kafka = request_to_kafka(&sender, 2, &request)?;
    let key = kafka.api_key();
    let version = version_of(key).ok_or("no version")?;
    let mut bytes = BytesMut::new();
    kafka.encode(version, &mut bytes)?;
    let mut bytes = bytes.freeze();
    let decoded = KafkaRequest::decode(key as i16, version, &mut bytes)?;
    assert!(bytes.is_empty(), "{key:?} left bytes over");
    let (from, arrived) = request_from_kafka(&receiver, &decoded)?;
    assert_eq!((from, &arrived), (1, &request));

    let kafka = response_to_kafka(&receiver, &response)?;
    let mut bytes = BytesMut::new();
    kafka.encode(version, &mut bytes)?;
    let mut bytes = bytes.freeze();
    let decoded = KafkaResponse::decode(key as i16, version, &mut bytes)?;
    assert!(bytes.is_empty(), "{key:?} response left bytes over");
    let arrived = response_from_kafka(&decoded, &request)?;
    assert_eq!(arrived, response);
    Ok(())
}

#[test]
fn vote_and_pre_vote() -> TestResult {
    for pre_vote in [false, true] {
        let request = Message::VoteRequest(VoteRequest {
            replica_epoch: 5,
            last_offset_and_epoch: OffsetAndEpoch::new(120, 4),
            pre_vote,
        });
        for (error, granted, current) in [
            (None, true, leader(None, 5)),
            (
                Some(ErrorCode::FencedLeaderEpoch),
                false,
                leader(Some(3), 6),
            ),
            (
                Some(ErrorCode::InconsistentVoterSet),
                false,
                leader(None, 5),
            ),
        ] {
            let response = Message::VoteResponse(VoteResponse {
                error,
                current_leader: current,
                vote_granted: granted,
                pre_vote,
            });
            round_trip(request.clone(), response)?;
        }
    }
    Ok(())
}

#[test]
fn begin_and_end_quorum_epoch() -> TestResult {
    round_trip(
        Message::BeginQuorumEpochRequest(BeginQuorumEpochRequest { leader_epoch: 9 }),
        Message::BeginQuorumEpochResponse(BeginQuorumEpochResponse {
            error: None,
            current_leader: leader(Some(1), 9),
        }),
    )?;
    round_trip(
        Message::BeginQuorumEpochRequest(BeginQuorumEpochRequest { leader_epoch: 9 }),
        Message::BeginQuorumEpochResponse(BeginQuorumEpochResponse {
            error: Some(ErrorCode::FencedLeaderEpoch),
            current_leader: leader(Some(3), 10),
        }),
    )?;
    round_trip(
        Message::EndQuorumEpochRequest(EndQuorumEpochRequest {
            leader_epoch: 9,
            preferred_successors: vec![3, 2],
        }),
        Message::EndQuorumEpochResponse(EndQuorumEpochResponse {
            error: None,
            current_leader: leader(None, 9),
        }),
    )
}

fn data_batch(records: usize) -> Bytes {
    let mut builder = BatchBuilder::new(1_700_000_000_000);
    for i in 0..records {
        builder.push(
            None,
            Some(format!("metadata {i}").as_bytes()),
            1_700_000_000_000,
        );
    }
    Bytes::from(builder.into_batch())
}

#[test]
fn fetch_with_records_of_many_offsets() -> TestResult {
    let request = FetchRequest {
        current_leader_epoch: 4,
        fetch_offset: 17,
        last_fetched_epoch: 3,
    };
    let records = vec![
        Entry {
            offset: 17,
            epoch: 4,
            record_count: 1,
            payload: Payload::LeaderChange { leader_id: 2 },
        },
        Entry {
            offset: 18,
            epoch: 4,
            record_count: 5,
            payload: Payload::Data(data_batch(5)),
        },
        Entry {
            offset: 23,
            epoch: 4,
            record_count: 1,
            payload: Payload::Data(data_batch(1)),
        },
    ];
    let response = FetchResponse {
        error: None,
        current_leader: leader(Some(2), 4),
        high_watermark: 20,
        log_start_offset: 0,
        records: records.clone(),
        diverging_epoch: None,
        snapshot_id: None,
        request_position: OffsetAndEpoch::new(17, 3),
    };
    // The data batches come back stamped with their offsets and epoch, so
    // compare offsets, epochs, spans and payload kinds, then the records.
    let kafka = response_to_kafka(&ctx(2), &Message::FetchResponse(response.clone()))?;
    let mut bytes = BytesMut::new();
    kafka.encode(18, &mut bytes)?;
    let decoded = KafkaResponse::decode(ApiKey::Fetch as i16, 18, &mut bytes.freeze())?;
    let Message::FetchResponse(arrived) =
        response_from_kafka(&decoded, &Message::FetchRequest(request.clone()))?
    else {
        return Err("not a fetch response".into());
    };
    let spans = |entries: &[Entry]| -> Vec<(u64, u32, u32)> {
        entries
            .iter()
            .map(|e| (e.offset, e.epoch, e.record_count))
            .collect()
    };
    assert_eq!(spans(&arrived.records), spans(&records));
    assert_eq!(arrived.records[0], records[0]);
    assert_eq!(
        FetchResponse {
            records: Vec::new(),
            ..arrived.clone()
        },
        FetchResponse {
            records: Vec::new(),
            ..response
        }
    );
    // What arrived is stamped: it goes round unchanged from now on.
    round_trip(
        Message::FetchRequest(request),
        Message::FetchResponse(arrived),
    )?;
    Ok(())
}

#[test]
fn fetch_answers_diverging_epoch_snapshot_id_and_errors() -> TestResult {
    let request = Message::FetchRequest(FetchRequest {
        current_leader_epoch: 4,
        fetch_offset: 30,
        last_fetched_epoch: 3,
    });
    let base = FetchResponse {
        error: None,
        current_leader: leader(Some(2), 4),
        high_watermark: 25,
        log_start_offset: 10,
        records: Vec::new(),
        diverging_epoch: None,
        snapshot_id: None,
        request_position: OffsetAndEpoch::new(30, 3),
    };
    for response in [
        FetchResponse {
            diverging_epoch: Some(OffsetAndEpoch::new(22, 3)),
            ..base.clone()
        },
        FetchResponse {
            diverging_epoch: Some(OffsetAndEpoch::new(0, 0)),
            ..base.clone()
        },
        FetchResponse {
            snapshot_id: Some(OffsetAndEpoch::new(10, 2)),
            ..base.clone()
        },
        FetchResponse {
            error: Some(ErrorCode::NotLeaderOrFollower),
            current_leader: leader(None, 4),
            ..base.clone()
        },
        FetchResponse {
            error: Some(ErrorCode::UnknownLeaderEpoch),
            ..base.clone()
        },
    ] {
        round_trip(request.clone(), Message::FetchResponse(response))?;
    }
    Ok(())
}

#[test]
fn fetch_snapshot() -> TestResult {
    let request = Message::FetchSnapshotRequest(FetchSnapshotRequest {
        current_leader_epoch: 4,
        snapshot_id: OffsetAndEpoch::new(1000, 3),
        position: 4096,
    });
    for (error, bytes) in [
        (None, Bytes::from_static(b"snapshot chunk")),
        (Some(ErrorCode::SnapshotNotFound), Bytes::new()),
        (Some(ErrorCode::PositionOutOfRange), Bytes::new()),
    ] {
        let response = Message::FetchSnapshotResponse(FetchSnapshotResponse {
            error,
            current_leader: leader(Some(2), 4),
            snapshot_id: OffsetAndEpoch::new(1000, 3),
            size: 8192,
            position: 4096,
            unaligned_records: bytes,
        });
        round_trip(request.clone(), response)?;
    }
    Ok(())
}

#[test]
fn older_vote_versions_carry_a_vote_but_not_a_pre_vote() -> TestResult {
    let vote = |pre_vote| {
        Message::VoteRequest(VoteRequest {
            replica_epoch: 5,
            last_offset_and_epoch: OffsetAndEpoch::new(120, 4),
            pre_vote,
        })
    };
    for version in [0, 1] {
        let kafka = request_to_kafka(&ctx(1), 2, &vote(false))?;
        let mut bytes = BytesMut::new();
        kafka.encode(version, &mut bytes)?;
        let decoded = KafkaRequest::decode(ApiKey::Vote as i16, version, &mut bytes.freeze())?;
        assert_eq!(request_from_kafka(&ctx(2), &decoded)?, (1, vote(false)));
        let pre_vote = request_to_kafka(&ctx(1), 2, &vote(true))?;
        assert!(
            matches!(
                pre_vote.encode(version, &mut BytesMut::new()),
                Err(WireError::Encode { .. })
            ),
            "a pre-vote at Vote v{version}"
        );
    }
    Ok(())
}

#[test]
fn requests_we_cannot_serve_are_refused_with_kafkas_codes() -> TestResult {
    let fetch = Message::FetchRequest(FetchRequest {
        current_leader_epoch: 1,
        fetch_offset: 0,
        last_fetched_epoch: 0,
    });
    let KafkaRequest::Fetch(good) = request_to_kafka(&ctx(1), 2, &fetch)? else {
        return Err("not a fetch".into());
    };

    let mut other_cluster = good.clone();
    other_cluster.cluster_id = Some(StrBytes::from_static_str("another"));
    let err = request_from_kafka(&ctx(2), &KafkaRequest::Fetch(other_cluster))
        .err()
        .ok_or("served another cluster")?;
    assert_eq!(err.error_code(), 104, "{err}");

    // Kafka's clients may send no cluster id.
    let mut no_cluster = good.clone();
    no_cluster.cluster_id = None;
    assert_eq!(
        request_from_kafka(&ctx(2), &KafkaRequest::Fetch(no_cluster))?,
        (1, fetch)
    );

    let mut other_topic = good.clone();
    other_topic.topics[0].topic_id = uuid::Uuid::from_u128(7);
    other_topic.topics[0].topic.0 = StrBytes::from_static_str("orders");
    let err = request_from_kafka(&ctx(2), &KafkaRequest::Fetch(other_topic))
        .err()
        .ok_or("served another topic")?;
    assert_eq!(err.error_code(), 3, "{err}");

    let vote = Message::VoteRequest(VoteRequest {
        replica_epoch: 1,
        last_offset_and_epoch: OffsetAndEpoch::new(0, 0),
        pre_vote: false,
    });
    let KafkaRequest::Vote(for_node_3) = request_to_kafka(&ctx(1), 3, &vote)? else {
        return Err("not a vote".into());
    };
    let err = request_from_kafka(&ctx(2), &KafkaRequest::Vote(for_node_3))
        .err()
        .ok_or("took another voter's vote")?;
    assert_eq!(err.error_code(), 125, "{err}");

    let negative = kafka_protocol::messages::VoteRequest::default();
    let err = request_from_kafka(&ctx(2), &KafkaRequest::Vote(negative))
        .err()
        .ok_or("no partition")?;
    assert_eq!(err.error_code(), 3, "{err}");
    Ok(())
}

#[test]
fn top_level_errors_and_mismatched_responses_are_errors() -> TestResult {
    let request = Message::BeginQuorumEpochRequest(BeginQuorumEpochRequest { leader_epoch: 2 });
    let refused = KafkaResponse::error(ApiKey::BeginQuorumEpoch, 104).ok_or("no response")?;
    let mut bytes = BytesMut::new();
    refused.encode(1, &mut bytes)?;
    let decoded = KafkaResponse::decode(ApiKey::BeginQuorumEpoch as i16, 1, &mut bytes.freeze())?;
    assert!(matches!(
        response_from_kafka(&decoded, &request),
        Err(WireError::TopLevelError { code: 104, .. })
    ));

    let vote_answer = KafkaResponse::error(ApiKey::Vote, 0).ok_or("no response")?;
    assert!(matches!(
        response_from_kafka(&vote_answer, &request),
        Err(WireError::ResponseMismatch { .. })
    ));
    assert!(matches!(
        request_to_kafka(
            &ctx(1),
            2,
            &Message::BeginQuorumEpochResponse(BeginQuorumEpochResponse {
                error: None,
                current_leader: leader(None, 1),
            })
        ),
        Err(WireError::NotARequest { .. })
    ));
    assert!(matches!(
        KafkaRequest::decode(0, 9, &mut Bytes::new()),
        Err(WireError::NotAQuorumApi { api_key: 0 })
    ));
    Ok(())
}

#[test]
fn epochs_and_offsets_beyond_kafkas_fields_do_not_encode() {
    let request = Message::VoteRequest(VoteRequest {
        replica_epoch: u32::MAX,
        last_offset_and_epoch: OffsetAndEpoch::new(0, 0),
        pre_vote: false,
    });
    assert!(matches!(
        request_to_kafka(&ctx(1), 2, &request),
        Err(WireError::OutOfRange { .. })
    ));
}

#[test]
fn a_kafka_fetch_by_topic_id_only_is_served() -> TestResult {
    let fetch = Message::FetchRequest(FetchRequest {
        current_leader_epoch: 3,
        fetch_offset: 5,
        last_fetched_epoch: 2,
    });
    let KafkaRequest::Fetch(mut kafka) = request_to_kafka(&ctx(1), 2, &fetch)? else {
        return Err("not a fetch".into());
    };
    // What v13+ carries: the id, an empty name; the replica in ReplicaState.
    kafka.topics[0].topic.0 = StrBytes::from_static_str("");
    kafka.replica_id = (-1).into();
    assert_eq!(
        request_from_kafka(&ctx(2), &KafkaRequest::Fetch(kafka))?,
        (1, fetch)
    );
    Ok(())
}

#[test]
fn fetch_before_v15_carries_the_replica_id_in_its_own_field() -> TestResult {
    let fetch = Message::FetchRequest(FetchRequest {
        current_leader_epoch: 3,
        fetch_offset: 5,
        last_fetched_epoch: 2,
    });
    // v12 is the first with LastFetchedEpoch, v13 the first by topic id.
    for version in [12, 13, 14, 15, 17, 18] {
        let kafka = request_to_kafka(&ctx(1), 2, &fetch)?;
        let mut bytes = BytesMut::new();
        kafka.encode(version, &mut bytes)?;
        let decoded = KafkaRequest::decode(ApiKey::Fetch as i16, version, &mut bytes.freeze())?;
        assert_eq!(
            request_from_kafka(&ctx(2), &decoded)?,
            (1, fetch.clone()),
            "Fetch v{version}"
        );
    }
    Ok(())
}
