//! The core's rules one at a time, driven by hand: elections, votes and
//! their persistence, pre-vote, Fetch answers (records, DivergingEpoch,
//! snapshot id), check-quorum, graceful resign, and garbage input that
//! must be answered or ignored, never panic.

use bytes::Bytes;
use runnel_raft::message::{
    BeginQuorumEpochRequest, EndQuorumEpochRequest, FetchRequest, FetchResponse,
    FetchSnapshotRequest, FetchSnapshotResponse, VoteRequest, VoteResponse,
};
use runnel_raft::rng::SplitMix64;
use runnel_raft::{
    Effect, Entry, ErrorCode, LeaderAndEpoch, MemoryLog, Message, NodeId, OffsetAndEpoch, Payload,
    QuorumStateData, RaftConfig, RaftError, RaftNode, ReplicatedLog, Role,
};

type TestResult = Result<(), Box<dyn std::error::Error + Send + Sync>>;

fn node(id: NodeId, voters: &[NodeId], log: &MemoryLog) -> RaftNode {
    RaftNode::new(
        RaftConfig::new(id, voters.iter().copied()),
        QuorumStateData::default(),
        log,
        id as u64,
        0,
    )
}

fn sends(effects: &[Effect]) -> Vec<(NodeId, Message)> {
    effects
        .iter()
        .filter_map(|e| match e {
            Effect::Send { to, message } => Some((*to, message.clone())),
            _ => None,
        })
        .collect()
}

fn data(offset: u64, epoch: u32) -> Entry {
    Entry {
        offset,
        epoch,
        record_count: 1,
        payload: Payload::Data(Bytes::from_static(b"d")),
    }
}

#[test]
fn a_single_voter_elects_itself_and_commits() -> TestResult {
    let mut log = MemoryLog::new();
    let mut raft = node(1, &[1], &log);
    let effects = raft.poll(&mut log, 5_000)?;
    assert_eq!(raft.role(), Role::Leader);
    assert_eq!(raft.epoch(), 1);
    assert!(
        effects.contains(&Effect::PersistQuorumState(QuorumStateData {
            leader_epoch: 1,
            leader_id: Some(1),
            voted_id: Some(1),
        }))
    );
    // The LeaderChange entry commits at once: the high watermark is past it.
    assert_eq!(raft.high_watermark(), 1);
    let end = raft.propose(&mut log, [Bytes::from_static(b"a")])?;
    assert_eq!(end, OffsetAndEpoch::new(2, 1));
    assert_eq!(raft.high_watermark(), 1, "not durable before the flush");
    let effects = raft.poll(&mut log, 5_001)?;
    assert_eq!(
        effects,
        vec![
            Effect::FlushLog { end_offset: 2 },
            Effect::HighWatermark { high_watermark: 2 }
        ]
    );
    Ok(())
}

#[test]
fn a_vote_is_persisted_before_it_is_granted_and_given_once_per_epoch() -> TestResult {
    let mut log = MemoryLog::new();
    let mut voter = node(1, &[1, 2, 3], &log);
    let request = |epoch| {
        Message::VoteRequest(VoteRequest {
            replica_epoch: epoch,
            last_offset_and_epoch: OffsetAndEpoch::new(0, 0),
            pre_vote: false,
        })
    };
    let effects = voter.handle(&mut log, 2, request(1), 10)?;
    let persist = effects
        .iter()
        .position(|e| matches!(e, Effect::PersistQuorumState(d) if d.voted_id == Some(2)));
    let answer = effects.iter().position(
        |e| matches!(e, Effect::Send { message: Message::VoteResponse(r), .. } if r.vote_granted),
    );
    assert!(persist.is_some() && persist < answer, "{effects:?}");

    let effects = voter.handle(&mut log, 3, request(1), 20)?;
    assert!(matches!(
        &sends(&effects)[..],
        [(
            3,
            Message::VoteResponse(VoteResponse {
                vote_granted: false,
                ..
            })
        )]
    ));
    // The same candidate asking again (a retry) is granted again.
    let effects = voter.handle(&mut log, 2, request(1), 30)?;
    assert!(matches!(
        &sends(&effects)[..],
        [(
            2,
            Message::VoteResponse(VoteResponse {
                vote_granted: true,
                ..
            })
        )]
    ));
    Ok(())
}

#[test]
fn a_vote_needs_a_log_as_up_to_date() -> TestResult {
    let mut log = MemoryLog::new();
    log.append(&[data(0, 1), data(1, 2)])?;
    let mut voter = RaftNode::new(
        RaftConfig::new(1, [1, 2, 3]),
        QuorumStateData {
            leader_epoch: 2,
            leader_id: None,
            voted_id: None,
        },
        &log,
        1,
        0,
    );
    // Longer but of an older epoch: refused.
    let stale = Message::VoteRequest(VoteRequest {
        replica_epoch: 3,
        last_offset_and_epoch: OffsetAndEpoch::new(10, 1),
        pre_vote: false,
    });
    let effects = voter.handle(&mut log, 2, stale, 10)?;
    assert!(matches!(
        &sends(&effects)[..],
        [(
            2,
            Message::VoteResponse(VoteResponse {
                vote_granted: false,
                ..
            })
        )]
    ));
    assert_eq!(voter.epoch(), 3, "the newer epoch is taken all the same");
    Ok(())
}

#[test]
fn a_pre_vote_moves_no_epoch_and_is_refused_while_the_leader_is_heard() -> TestResult {
    let mut log = MemoryLog::new();
    let mut follower = node(1, &[1, 2, 3], &log);
    let begin = Message::BeginQuorumEpochRequest(BeginQuorumEpochRequest { leader_epoch: 1 });
    follower.handle(&mut log, 2, begin, 10)?;
    assert_eq!(follower.role(), Role::Follower);
    let pre_vote = |epoch| {
        Message::VoteRequest(VoteRequest {
            replica_epoch: epoch,
            last_offset_and_epoch: OffsetAndEpoch::new(5, 1),
            pre_vote: true,
        })
    };
    // Not yet fetched from the leader, which may be out of reach: granted.
    let effects = follower.handle(&mut log, 3, pre_vote(1), 15)?;
    assert!(effects.iter().any(|e| matches!(
        e,
        Effect::Send {
            message: Message::VoteResponse(VoteResponse {
                vote_granted: true,
                ..
            }),
            ..
        }
    )));
    let fetched = Message::FetchResponse(FetchResponse {
        error: None,
        current_leader: LeaderAndEpoch {
            leader_id: Some(2),
            epoch: 1,
        },
        high_watermark: 0,
        log_start_offset: 0,
        records: Vec::new(),
        diverging_epoch: None,
        snapshot_id: None,
        request_position: OffsetAndEpoch::new(0, 0),
    });
    follower.handle(&mut log, 2, fetched, 18)?;
    let effects = follower.handle(&mut log, 3, pre_vote(1), 20)?;
    assert!(matches!(
        &sends(&effects)[..],
        [
            ..,
            (
                3,
                Message::VoteResponse(VoteResponse {
                    vote_granted: false,
                    pre_vote: true,
                    ..
                })
            )
        ]
    ));
    // A pre-vote for a later epoch is judged on the log alone, and moves
    // nothing.
    let effects = follower.handle(&mut log, 3, pre_vote(4), 30)?;
    assert!(matches!(
        &sends(&effects)[..],
        [
            ..,
            (
                3,
                Message::VoteResponse(VoteResponse {
                    vote_granted: true,
                    pre_vote: true,
                    ..
                })
            )
        ]
    ));
    assert_eq!((follower.role(), follower.epoch()), (Role::Follower, 1));
    Ok(())
}

/// A leader of epoch 3 whose log is `[e1, e1, e3(LeaderChange), ...]`.
fn leader_with_history() -> Result<(RaftNode, MemoryLog), Box<dyn std::error::Error + Send + Sync>>
{
    let mut log = MemoryLog::new();
    log.append(&[data(0, 1), data(1, 1)])?;
    log.flush();
    let mut leader = RaftNode::new(
        RaftConfig::new(1, [1, 2, 3]),
        QuorumStateData {
            leader_epoch: 2,
            leader_id: None,
            voted_id: None,
        },
        &log,
        1,
        0,
    );
    leader.poll(&mut log, 5_000)?;
    let grant = |epoch| {
        Message::VoteResponse(VoteResponse {
            error: None,
            current_leader: LeaderAndEpoch {
                leader_id: None,
                epoch,
            },
            vote_granted: true,
            pre_vote: epoch == 2,
        })
    };
    leader.handle(&mut log, 2, grant(2), 5_001)?;
    leader.handle(&mut log, 2, grant(3), 5_002)?;
    assert_eq!((leader.role(), leader.epoch()), (Role::Leader, 3));
    assert_eq!(log.entry(2).map(|e| e.epoch), Some(3));
    Ok((leader, log))
}

fn fetch(
    leader: &mut RaftNode,
    log: &mut MemoryLog,
    from: NodeId,
    request: FetchRequest,
) -> Result<FetchResponse, Box<dyn std::error::Error + Send + Sync>> {
    let effects = leader.handle(log, from, Message::FetchRequest(request), 5_010)?;
    sends(&effects)
        .into_iter()
        .find_map(|(to, m)| match m {
            Message::FetchResponse(r) if to == from => Some(r),
            _ => None,
        })
        .ok_or_else(|| "no fetch response".into())
}

#[test]
fn the_leader_answers_a_diverging_follower_with_its_epoch_end() -> TestResult {
    let (mut leader, mut log) = leader_with_history()?;
    // The follower has offsets 0..4 with epoch 2 at the end: epoch 2 is not
    // in the leader's log, whose epoch 1 ends at offset 2.
    let response = fetch(
        &mut leader,
        &mut log,
        2,
        FetchRequest {
            current_leader_epoch: 3,
            fetch_offset: 4,
            last_fetched_epoch: 2,
        },
    )?;
    assert_eq!(response.diverging_epoch, Some(OffsetAndEpoch::new(2, 1)));
    assert!(response.records.is_empty());

    // The follower truncates to it and fetches the rest.
    let mut follower_log = MemoryLog::new();
    follower_log.append(&[data(0, 1), data(1, 1), data(2, 2), data(3, 2)])?;
    let mut follower = RaftNode::new(
        RaftConfig::new(2, [1, 2, 3]),
        QuorumStateData {
            leader_epoch: 3,
            leader_id: Some(1),
            voted_id: None,
        },
        &follower_log,
        2,
        5_000,
    );
    let effects = follower.poll(&mut follower_log, 5_000)?;
    let Some((1, Message::FetchRequest(request))) = sends(&effects).into_iter().next() else {
        return Err("no fetch".into());
    };
    let response = fetch(&mut leader, &mut log, 2, request)?;
    follower.handle(
        &mut follower_log,
        1,
        Message::FetchResponse(response),
        5_020,
    )?;
    assert_eq!(follower_log.end_offset(), 2);
    Ok(())
}

#[test]
fn the_high_watermark_waits_for_an_entry_of_the_leaders_epoch() -> TestResult {
    let (mut leader, mut log) = leader_with_history()?;
    // Node 2 has the old epoch's entries but not the LeaderChange: a
    // majority holds offset 2, yet nothing of epoch 3 is committed.
    let request = |offset, epoch| FetchRequest {
        current_leader_epoch: 3,
        fetch_offset: offset,
        last_fetched_epoch: epoch,
    };
    fetch(&mut leader, &mut log, 2, request(2, 1))?;
    assert_eq!(leader.high_watermark(), 0);
    fetch(&mut leader, &mut log, 2, request(3, 3))?;
    assert_eq!(leader.high_watermark(), 3);
    Ok(())
}

#[test]
fn a_fetch_below_the_log_start_gets_the_snapshot() -> TestResult {
    let (mut leader, mut log) = leader_with_history()?;
    let snapshot_id = log.take_snapshot(2).ok_or("no snapshot")?;
    let response = fetch(
        &mut leader,
        &mut log,
        3,
        FetchRequest {
            current_leader_epoch: 3,
            fetch_offset: 0,
            last_fetched_epoch: 0,
        },
    )?;
    assert_eq!(response.snapshot_id, Some(snapshot_id));
    let effects = leader.handle(
        &mut log,
        3,
        Message::FetchSnapshotRequest(FetchSnapshotRequest {
            current_leader_epoch: 3,
            snapshot_id,
            position: 0,
        }),
        5_020,
    )?;
    assert!(matches!(
        &sends(&effects)[..],
        [(
            3,
            Message::FetchSnapshotResponse(FetchSnapshotResponse { error: None, .. })
        )]
    ));
    Ok(())
}

#[test]
fn a_leader_that_hears_from_no_majority_resigns() -> TestResult {
    let (mut leader, mut log) = leader_with_history()?;
    let fetch_timeout_ms = leader.config().fetch_timeout_ms;
    leader.poll(&mut log, 5_002 + fetch_timeout_ms * 2)?;
    assert_eq!(leader.role(), Role::Resigned);
    assert!(matches!(
        leader.propose(&mut log, [Bytes::from_static(b"late")]),
        Err(RaftError::NotLeader { .. })
    ));
    Ok(())
}

#[test]
fn a_graceful_resign_names_the_most_caught_up_voter_first() -> TestResult {
    let (mut leader, mut log) = leader_with_history()?;
    fetch(
        &mut leader,
        &mut log,
        3,
        FetchRequest {
            current_leader_epoch: 3,
            fetch_offset: 3,
            last_fetched_epoch: 3,
        },
    )?;
    let effects = leader.resign(5_100);
    assert_eq!(leader.role(), Role::Resigned);
    let sent = sends(&effects);
    assert_eq!(sent.len(), 2);
    for (_, message) in sent {
        let Message::EndQuorumEpochRequest(EndQuorumEpochRequest {
            preferred_successors,
            ..
        }) = message
        else {
            return Err("not EndQuorumEpoch".into());
        };
        assert_eq!(preferred_successors, vec![3, 2]);
    }
    Ok(())
}

#[test]
fn stale_and_unknown_requests_are_answered_with_errors() -> TestResult {
    let (mut leader, mut log) = leader_with_history()?;
    let stale = fetch(
        &mut leader,
        &mut log,
        2,
        FetchRequest {
            current_leader_epoch: 1,
            fetch_offset: 0,
            last_fetched_epoch: 0,
        },
    )?;
    assert_eq!(stale.error, Some(ErrorCode::FencedLeaderEpoch));
    let effects = leader.handle(
        &mut log,
        99,
        Message::VoteRequest(VoteRequest {
            replica_epoch: 9,
            last_offset_and_epoch: OffsetAndEpoch::new(100, 9),
            pre_vote: false,
        }),
        5_020,
    )?;
    assert!(matches!(
        &sends(&effects)[..],
        [(
            99,
            Message::VoteResponse(VoteResponse {
                error: Some(ErrorCode::InconsistentVoterSet),
                ..
            })
        )]
    ));
    assert_eq!((leader.role(), leader.epoch()), (Role::Leader, 3));
    Ok(())
}

fn random_message(rng: &mut SplitMix64) -> Message {
    let epoch = match rng.below(4) {
        0 => u32::MAX,
        _ => rng.below(5) as u32,
    };
    let offset = match rng.below(4) {
        0 => u64::MAX,
        _ => rng.below(8),
    };
    let leader = LeaderAndEpoch {
        leader_id: [None, Some(1), Some(2), Some(7), Some(-1)][rng.below(5) as usize],
        epoch,
    };
    let pair = OffsetAndEpoch::new(offset, epoch);
    let records = (0..rng.below(3))
        .map(|i| data(offset.wrapping_add(i), rng.below(5) as u32))
        .collect();
    match rng.below(10) {
        0 => Message::VoteRequest(VoteRequest {
            replica_epoch: epoch,
            last_offset_and_epoch: pair,
            pre_vote: rng.below(2) == 0,
        }),
        1 => Message::VoteResponse(VoteResponse {
            error: None,
            current_leader: leader,
            vote_granted: rng.below(2) == 0,
            pre_vote: rng.below(2) == 0,
        }),
        2 => Message::BeginQuorumEpochRequest(BeginQuorumEpochRequest {
            leader_epoch: epoch,
        }),
        3 => Message::EndQuorumEpochRequest(EndQuorumEpochRequest {
            leader_epoch: epoch,
            preferred_successors: vec![3, 1, 99],
        }),
        4 | 5 => Message::FetchRequest(FetchRequest {
            current_leader_epoch: epoch,
            fetch_offset: offset,
            last_fetched_epoch: rng.below(5) as u32,
        }),
        6 | 7 => Message::FetchResponse(FetchResponse {
            error: None,
            current_leader: leader,
            high_watermark: offset,
            log_start_offset: 0,
            records,
            diverging_epoch: (rng.below(2) == 0).then_some(pair),
            snapshot_id: (rng.below(3) == 0).then_some(pair),
            request_position: pair,
        }),
        8 => Message::FetchSnapshotRequest(FetchSnapshotRequest {
            current_leader_epoch: epoch,
            snapshot_id: pair,
            position: offset,
        }),
        _ => Message::FetchSnapshotResponse(FetchSnapshotResponse {
            error: None,
            current_leader: leader,
            snapshot_id: pair,
            size: offset,
            position: rng.below(3),
            unaligned_records: Bytes::from_static(b"xx"),
        }),
    }
}

#[test]
fn garbage_input_is_answered_or_ignored_never_a_panic() -> TestResult {
    let mut rng = SplitMix64::new(42);
    for round in 0..300 {
        let (mut raft, mut log) = leader_with_history()?;
        let mut now_ms = 5_100;
        for _ in 0..40 {
            let from = [1, 2, 3, 7, -1][rng.below(5) as usize];
            let message = random_message(&mut rng);
            now_ms += rng.below(400);
            match raft.handle(&mut log, from, message, now_ms) {
                Ok(_) => {}
                // Only the log may fail; the MemoryLog refuses a write the
                // core should never ask for, so that is a bug too.
                Err(e) => return Err(format!("round {round}: {e}").into()),
            }
            raft.poll(&mut log, now_ms)?;
        }
    }
    Ok(())
}

#[test]
fn an_observer_finds_the_leader_by_fetching_from_a_voter() -> TestResult {
    let mut leader_log = MemoryLog::new();
    let mut leader = node(1, &[1], &leader_log);
    leader.poll(&mut leader_log, 5_000)?;
    leader.propose(&mut leader_log, [Bytes::from_static(b"a")])?;
    leader.poll(&mut leader_log, 5_001)?;
    leader_log.flush();
    assert_eq!(leader.high_watermark(), 2);

    let mut observer_log = MemoryLog::new();
    let mut observer = node(4, &[1], &observer_log);
    let mut now_ms = observer.next_poll_ms();
    let mut outbox = sends(&observer.poll(&mut observer_log, now_ms)?);
    for _ in 0..10 {
        let Some((to, message)) = outbox.pop() else {
            break;
        };
        now_ms += 1;
        outbox = if to == 1 {
            let answers = leader.handle(&mut leader_log, 4, message, 5_000 + now_ms)?;
            sends(&answers)
        } else {
            let effects = observer.handle(&mut observer_log, 1, message, now_ms)?;
            for effect in &effects {
                if let Effect::FlushLog { .. } = effect {
                    observer_log.flush();
                }
            }
            sends(&effects)
        };
    }
    assert_eq!(observer.role(), Role::Follower);
    assert_eq!(observer.leader_id(), Some(1));
    assert_eq!(observer_log.end_offset(), 2);
    assert_eq!(observer.high_watermark(), 2);
    Ok(())
}
