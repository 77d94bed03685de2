use bytes::Bytes;

use super::*;

const SESSION_MS: i32 = 10_000;
const REBALANCE_MS: i32 = 30_000;
const DELAY_MS: i64 = 3_000;

fn group() -> Group {
    Group::new("g", GroupConfig::default())
}

fn request(client: &str, member_id: &str, protocols: &[&str]) -> JoinRequest {
    JoinRequest {
        api_version: 5,
        member_id: member_id.to_owned(),
        group_instance_id: None,
        client_id: client.to_owned(),
        client_host: "/10.0.0.1".to_owned(),
        session_timeout_ms: SESSION_MS,
        rebalance_timeout_ms: REBALANCE_MS,
        protocol_type: "consumer".to_owned(),
        protocols: protocols
            .iter()
            .map(|p| (p.to_string(), Bytes::from(format!("{client}:{p}"))))
            .collect(),
        new_member_id: format!("{client}-uuid"),
    }
}

/// A v3 join that needs no member-id handshake.
fn join_v3(group: &mut Group, client: &str, protocols: &[&str], now_ms: i64) -> String {
    let req = JoinRequest {
        api_version: 3,
        ..request(client, "", protocols)
    };
    assert_eq!(group.join(req, now_ms), JoinOutcome::Pending);
    format!("{client}-uuid")
}

fn rejoin(group: &mut Group, client: &str, member_id: &str, now_ms: i64) -> JoinOutcome {
    group.join(request(client, member_id, &["range"]), now_ms)
}

fn join_responses(effects: &[Effect]) -> Vec<(String, JoinResponse)> {
    effects
        .iter()
        .filter_map(|e| match e {
            Effect::JoinResponse {
                member_id,
                response,
            } => Some((member_id.clone(), response.clone())),
            _ => None,
        })
        .collect()
}

fn sync_responses(effects: &[Effect]) -> Vec<(String, SyncResponse)> {
    effects
        .iter()
        .filter_map(|e| match e {
            Effect::SyncResponse {
                member_id,
                response,
            } => Some((member_id.clone(), response.clone())),
            _ => None,
        })
        .collect()
}

fn sync(member_id: &str, generation_id: i32, assignments: &[(&str, &str)]) -> SyncRequest {
    SyncRequest {
        member_id: member_id.to_owned(),
        generation_id,
        assignments: assignments
            .iter()
            .map(|(m, a)| (m.to_string(), Bytes::from(a.to_string())))
            .collect(),
        ..SyncRequest::default()
    }
}

fn heartbeat(member_id: &str, generation_id: i32) -> HeartbeatRequest {
    HeartbeatRequest {
        member_id: member_id.to_owned(),
        group_instance_id: None,
        generation_id,
    }
}

/// c1 (leader), c2, c3 in generation 1, Stable at `DELAY_MS`.
fn stable_three() -> Group {
    let mut g = group();
    for client in ["c1", "c2", "c3"] {
        join_v3(&mut g, client, &["range"], 0);
    }
    assert_eq!(join_responses(&g.poll(DELAY_MS)).len(), 3);
    let leader = sync(
        "c1-uuid",
        1,
        &[("c1-uuid", "p0"), ("c2-uuid", "p1"), ("c3-uuid", "p2")],
    );
    assert!(matches!(g.sync(leader, DELAY_MS), SyncOutcome::Response(_)));
    for member in ["c2-uuid", "c3-uuid"] {
        assert!(matches!(
            g.sync(sync(member, 1, &[]), DELAY_MS),
            SyncOutcome::Response(_)
        ));
    }
    let stored = stored_groups(&g.poll(DELAY_MS));
    assert_eq!(stored.len(), 1, "the leader's sync stores the group");
    assert_eq!(stored[0].generation, 1);
    assert_eq!(stored[0].members.len(), 3);
    assert_eq!(g.state(), GroupState::Stable);
    g
}

fn stored_groups(effects: &[Effect]) -> Vec<crate::GroupMetadataValue> {
    effects
        .iter()
        .filter_map(|e| match e {
            Effect::StoreGroup { value } => Some(value.clone()),
            _ => None,
        })
        .collect()
}

#[test]
fn member_id_handshake() {
    let mut g = group();
    let too_short = JoinRequest {
        session_timeout_ms: 5_999,
        ..request("c1", "", &["range"])
    };
    assert_eq!(
        g.join(too_short, 0),
        JoinOutcome::Response(JoinResponse::error(GroupError::InvalidSessionTimeout, ""))
    );
    let JoinOutcome::Response(first) = g.join(request("c1", "", &["range"]), 0) else {
        panic!("a v5 join without a member id is answered at once");
    };
    assert_eq!(first.error, Some(GroupError::MemberIdRequired));
    assert_eq!(first.member_id, "c1-uuid");
    assert_eq!(g.state(), GroupState::Empty);
    assert!(g.members().is_empty());

    assert_eq!(
        rejoin(&mut g, "c1", "bogus", 1),
        JoinOutcome::Response(JoinResponse::error(GroupError::UnknownMemberId, "bogus"))
    );
    assert_eq!(rejoin(&mut g, "c1", "c1-uuid", 1), JoinOutcome::Pending);
    assert_eq!(g.state(), GroupState::PreparingRebalance);
    assert_eq!(g.members()[0].member_id, "c1-uuid");

    // A handed-out id not used within the session timeout is forgotten.
    let JoinOutcome::Response(second) = g.join(request("c2", "", &["range"]), 2) else {
        panic!("handshake");
    };
    assert_eq!(second.member_id, "c2-uuid");
    g.poll(2 + i64::from(SESSION_MS));
    let late = rejoin(&mut g, "c2", "c2-uuid", 2 + i64::from(SESSION_MS));
    assert_eq!(
        late,
        JoinOutcome::Response(JoinResponse::error(GroupError::UnknownMemberId, "c2-uuid"))
    );
}

#[test]
fn three_members_get_one_generation_after_the_initial_delay() {
    let mut g = group();
    for (client, at) in [("c1", 0), ("c2", 1_000), ("c3", 2_000)] {
        let JoinOutcome::Response(required) = g.join(request(client, "", &["range"]), at) else {
            panic!("handshake");
        };
        assert_eq!(
            rejoin(&mut g, client, &required.member_id, at),
            JoinOutcome::Pending
        );
    }
    // Each new member pushes the end of the delay to its join + 3 s.
    assert!(g.poll(4_999).is_empty());
    assert_eq!(g.state(), GroupState::PreparingRebalance);
    assert_eq!(g.next_deadline_ms(), Some(5_000));

    let responses = join_responses(&g.poll(5_000));
    assert_eq!(g.state(), GroupState::CompletingRebalance);
    assert_eq!(g.generation_id(), 1);
    assert_eq!(g.leader_id(), Some("c1-uuid"));
    assert_eq!(g.protocol_name(), Some("range"));
    let ids: Vec<&str> = responses.iter().map(|(id, _)| id.as_str()).collect();
    assert_eq!(ids, ["c1-uuid", "c2-uuid", "c3-uuid"]);
    for (member_id, response) in &responses {
        assert_eq!(response.error, None);
        assert_eq!(response.generation_id, 1);
        assert_eq!(response.leader, "c1-uuid");
        assert_eq!(&response.member_id, member_id);
        assert_eq!(response.protocol_name.as_deref(), Some("range"));
    }
    let listed: Vec<(String, Bytes)> = responses[0]
        .1
        .members
        .iter()
        .map(|m| (m.member_id.clone(), m.metadata.clone()))
        .collect();
    assert_eq!(
        listed,
        [
            ("c1-uuid".to_owned(), Bytes::from("c1:range")),
            ("c2-uuid".to_owned(), Bytes::from("c2:range")),
            ("c3-uuid".to_owned(), Bytes::from("c3:range")),
        ]
    );
    assert!(responses[1].1.members.is_empty());
    assert!(responses[2].1.members.is_empty());
}

#[test]
fn initial_delay_is_capped_by_the_rebalance_timeout() {
    let mut g = group();
    let short = |client: &str| JoinRequest {
        api_version: 3,
        rebalance_timeout_ms: 4_000,
        ..request(client, "", &["range"])
    };
    assert_eq!(g.join(short("c1"), 0), JoinOutcome::Pending);
    assert_eq!(g.join(short("c2"), 2_000), JoinOutcome::Pending);
    assert!(g.poll(3_999).is_empty());
    assert_eq!(join_responses(&g.poll(4_000)).len(), 2);
}

#[test]
fn sync_distributes_the_leaders_assignments() {
    let mut g = group();
    for client in ["c1", "c2", "c3"] {
        join_v3(&mut g, client, &["range"], 0);
    }
    g.poll(DELAY_MS);
    assert_eq!(g.sync(sync("c2-uuid", 1, &[]), 3_100), SyncOutcome::Pending);
    assert_eq!(g.sync(sync("c3-uuid", 1, &[]), 3_200), SyncOutcome::Pending);
    let leader = sync("c1-uuid", 1, &[("c1-uuid", "p0"), ("c2-uuid", "p1")]);
    let SyncOutcome::Response(own) = g.sync(leader, 3_300) else {
        panic!("the leader is answered at once");
    };
    assert_eq!(own.error, None);
    assert_eq!(own.assignment, Bytes::from("p0"));
    assert_eq!(g.state(), GroupState::Stable);
    let responses = sync_responses(&g.poll(3_300));
    assert_eq!(responses.len(), 2);
    assert_eq!(responses[0].0, "c2-uuid");
    assert_eq!(responses[0].1.assignment, Bytes::from("p1"));
    assert_eq!(responses[0].1.protocol_name.as_deref(), Some("range"));
    assert_eq!(responses[1].0, "c3-uuid");
    assert_eq!(responses[1].1.error, None);
    assert!(responses[1].1.assignment.is_empty());

    // Stable: answered at once with the stored assignment.
    let SyncOutcome::Response(again) = g.sync(sync("c2-uuid", 1, &[]), 4_000) else {
        panic!("stable sync");
    };
    assert_eq!(again.assignment, Bytes::from("p1"));

    let description = g.describe();
    assert_eq!(description.state, "Stable");
    assert_eq!(description.protocol_type, "consumer");
    assert_eq!(description.protocol, "range");
    assert_eq!(description.members[1].client_id, "c2");
    assert_eq!(description.members[1].client_host, "/10.0.0.1");
    assert_eq!(description.members[1].metadata, Bytes::from("c2:range"));
    assert_eq!(description.members[1].assignment, Bytes::from("p1"));
}

#[test]
fn sync_errors_and_a_rebalance_cancels_pending_syncs() {
    let mut g = group();
    join_v3(&mut g, "c1", &["range"], 0);
    join_v3(&mut g, "c2", &["range"], 0);
    assert_eq!(
        g.sync(sync("c1-uuid", 0, &[]), 1),
        SyncOutcome::Response(SyncResponse::error(GroupError::RebalanceInProgress))
    );
    g.poll(DELAY_MS);
    assert_eq!(
        g.sync(sync("c2-uuid", 0, &[]), DELAY_MS),
        SyncOutcome::Response(SyncResponse::error(GroupError::IllegalGeneration))
    );
    assert_eq!(
        g.sync(sync("nobody", 1, &[]), DELAY_MS),
        SyncOutcome::Response(SyncResponse::error(GroupError::UnknownMemberId))
    );
    let wrong_protocol = SyncRequest {
        protocol_name: Some("roundrobin".to_owned()),
        ..sync("c2-uuid", 1, &[])
    };
    assert_eq!(
        g.sync(wrong_protocol, DELAY_MS),
        SyncOutcome::Response(SyncResponse::error(GroupError::InconsistentGroupProtocol))
    );
    assert_eq!(
        g.sync(sync("c2-uuid", 1, &[]), DELAY_MS),
        SyncOutcome::Pending
    );

    // A new member before the leader syncs: c2's held sync must rejoin.
    join_v3(&mut g, "c3", &["range"], DELAY_MS + 1);
    assert_eq!(g.state(), GroupState::PreparingRebalance);
    let responses = sync_responses(&g.poll(DELAY_MS + 1));
    assert_eq!(
        responses,
        [(
            "c2-uuid".to_owned(),
            SyncResponse::error(GroupError::RebalanceInProgress)
        )]
    );
}

#[test]
fn heartbeat_errors_in_each_state() {
    let mut g = group();
    assert_eq!(
        g.heartbeat(&heartbeat("c1-uuid", 0), 0),
        Err(GroupError::UnknownMemberId)
    );

    join_v3(&mut g, "c1", &["range"], 0);
    assert_eq!(g.state(), GroupState::PreparingRebalance);
    assert_eq!(
        g.heartbeat(&heartbeat("c1-uuid", 0), 1),
        Err(GroupError::RebalanceInProgress)
    );
    assert_eq!(
        g.heartbeat(&heartbeat("c1-uuid", 1), 1),
        Err(GroupError::IllegalGeneration)
    );
    assert_eq!(
        g.heartbeat(&heartbeat("c9-uuid", 0), 1),
        Err(GroupError::UnknownMemberId)
    );

    g.poll(DELAY_MS);
    assert_eq!(g.state(), GroupState::CompletingRebalance);
    assert_eq!(g.heartbeat(&heartbeat("c1-uuid", 1), DELAY_MS), Ok(()));
    assert_eq!(
        g.heartbeat(&heartbeat("c1-uuid", 0), DELAY_MS),
        Err(GroupError::IllegalGeneration)
    );

    g.sync(sync("c1-uuid", 1, &[("c1-uuid", "p0")]), DELAY_MS);
    assert_eq!(g.state(), GroupState::Stable);
    assert_eq!(g.heartbeat(&heartbeat("c1-uuid", 1), 4_000), Ok(()));
    assert_eq!(g.members()[0].last_heartbeat_ms, 4_000);
    assert_eq!(
        g.heartbeat(&heartbeat("c1-uuid", 2), 4_000),
        Err(GroupError::IllegalGeneration)
    );

    let leave = g.leave(
        &[LeaveMember {
            member_id: "c1-uuid".to_owned(),
            group_instance_id: None,
        }],
        5_000,
    );
    assert_eq!(leave.member_errors, [None]);
    assert_eq!(g.state(), GroupState::Empty);
    assert_eq!(
        g.heartbeat(&heartbeat("c1-uuid", 2), 5_000),
        Err(GroupError::UnknownMemberId)
    );

    assert_eq!(g.delete(), Ok(()));
    assert_eq!(g.describe().state, "Dead");
    assert_eq!(
        g.heartbeat(&heartbeat("c1-uuid", 2), 5_000),
        Err(GroupError::CoordinatorNotAvailable)
    );
}

#[test]
fn silent_member_is_evicted_and_the_rest_rebalance() {
    let mut g = stable_three();
    // c1 and c2 heartbeat; c3 last spoke at its sync, at 3 s.
    for at in [8_000, 12_000] {
        assert_eq!(g.heartbeat(&heartbeat("c1-uuid", 1), at), Ok(()));
        assert_eq!(g.heartbeat(&heartbeat("c2-uuid", 1), at), Ok(()));
    }
    assert_eq!(g.next_deadline_ms(), Some(13_000));
    assert!(g.poll(12_999).is_empty());
    let effects = g.poll(13_000);
    assert_eq!(
        effects,
        [Effect::MemberEvicted {
            member_id: "c3-uuid".to_owned(),
            reason: EvictionReason::SessionTimeout
        }]
    );
    assert_eq!(g.state(), GroupState::PreparingRebalance);
    assert_eq!(
        g.heartbeat(&heartbeat("c1-uuid", 1), 13_100),
        Err(GroupError::RebalanceInProgress)
    );
    assert_eq!(
        g.heartbeat(&heartbeat("c2-uuid", 1), 13_100),
        Err(GroupError::RebalanceInProgress)
    );

    assert_eq!(
        rejoin(&mut g, "c1", "c1-uuid", 13_200),
        JoinOutcome::Pending
    );
    assert_eq!(
        rejoin(&mut g, "c2", "c2-uuid", 13_300),
        JoinOutcome::Pending
    );
    let responses = join_responses(&g.poll(13_300));
    assert_eq!(responses.len(), 2);
    assert!(
        responses
            .iter()
            .all(|(_, r)| r.generation_id == 2 && r.error.is_none())
    );
    assert_eq!(responses[0].1.members.len(), 2);
    assert_eq!(g.leader_id(), Some("c1-uuid"));
    assert_eq!(g.state(), GroupState::CompletingRebalance);
}

#[test]
fn member_that_does_not_rejoin_is_evicted_at_the_rebalance_timeout() {
    let mut g = stable_three();
    // The leader rejoining starts a rebalance.
    assert_eq!(
        rejoin(&mut g, "c1", "c1-uuid", 10_000),
        JoinOutcome::Pending
    );
    assert_eq!(g.state(), GroupState::PreparingRebalance);
    assert_eq!(
        rejoin(&mut g, "c2", "c2-uuid", 11_000),
        JoinOutcome::Pending
    );
    for at in (15_000..40_000).step_by(5_000) {
        assert_eq!(
            g.heartbeat(&heartbeat("c3-uuid", 1), at),
            Err(GroupError::RebalanceInProgress)
        );
        assert!(g.poll(at).is_empty());
    }
    assert!(g.poll(39_999).is_empty());
    let effects = g.poll(40_000);
    assert_eq!(
        effects[0],
        Effect::MemberEvicted {
            member_id: "c3-uuid".to_owned(),
            reason: EvictionReason::RebalanceTimeout
        }
    );
    let responses = join_responses(&effects);
    assert_eq!(responses.len(), 2);
    assert!(responses.iter().all(|(_, r)| r.generation_id == 2));
    assert_eq!(
        g.heartbeat(&heartbeat("c3-uuid", 2), 40_001),
        Err(GroupError::UnknownMemberId)
    );
}

#[test]
fn leave_triggers_a_rebalance_and_the_last_leave_empties_the_group() {
    let mut g = stable_three();
    let leave = |ids: &[&str]| -> Vec<LeaveMember> {
        ids.iter()
            .map(|id| LeaveMember {
                member_id: id.to_string(),
                group_instance_id: None,
            })
            .collect()
    };
    let out = g.leave(&leave(&["c2-uuid"]), 4_000);
    assert_eq!(
        out,
        LeaveOutcome {
            error: None,
            member_errors: vec![None]
        }
    );
    assert_eq!(g.state(), GroupState::PreparingRebalance);
    assert_eq!(rejoin(&mut g, "c1", "c1-uuid", 4_100), JoinOutcome::Pending);
    // The last of the remaining members to rejoin completes the round.
    assert_eq!(rejoin(&mut g, "c3", "c3-uuid", 4_200), JoinOutcome::Pending);
    assert_eq!(join_responses(&g.poll(4_200)).len(), 2);
    assert_eq!(g.generation_id(), 2);

    assert_eq!(g.delete(), Err(GroupError::NonEmptyGroup));
    let out = g.leave(&leave(&["c1-uuid", "c3-uuid", "x"]), 5_000);
    assert_eq!(
        out.member_errors,
        [None, None, Some(GroupError::UnknownMemberId)]
    );
    assert_eq!(g.state(), GroupState::Empty);
    assert_eq!(g.generation_id(), 3);
    assert!(g.members().is_empty());
    assert_eq!(g.leader_id(), None);
    let effects = g.poll(5_000);
    assert_eq!(stored_groups(&effects).len(), 1, "{effects:?}");
    assert_eq!(effects.len(), 1, "{effects:?}");
}

#[test]
fn a_leaving_joiner_gets_its_held_join_answered() {
    let mut g = group();
    join_v3(&mut g, "c1", &["range"], 0);
    let out = g.leave(
        &[LeaveMember {
            member_id: "c1-uuid".to_owned(),
            group_instance_id: None,
        }],
        1,
    );
    assert_eq!(out.member_errors, [None]);
    let responses = join_responses(&g.poll(1));
    assert_eq!(
        responses,
        [(
            "c1-uuid".to_owned(),
            JoinResponse::error(GroupError::UnknownMemberId, "c1-uuid")
        )]
    );
    assert_eq!(g.state(), GroupState::Empty);
}

#[test]
fn protocol_is_selected_by_votes() {
    let mut g = group();
    join_v3(&mut g, "a", &["range", "roundrobin"], 0);
    join_v3(&mut g, "b", &["roundrobin", "range"], 0);
    join_v3(&mut g, "c", &["sticky", "roundrobin", "range"], 0);
    g.poll(DELAY_MS);
    assert_eq!(g.protocol_name(), Some("roundrobin"));

    // Only protocols every member supports count: c's "sticky" does not.
    let mut g = group();
    join_v3(&mut g, "a", &["sticky", "range"], 0);
    join_v3(&mut g, "b", &["sticky", "range"], 0);
    join_v3(&mut g, "c", &["range"], 0);
    g.poll(DELAY_MS);
    assert_eq!(g.protocol_name(), Some("range"));

    let none_in_common = JoinRequest {
        api_version: 3,
        ..request("d", "", &["cooperative-sticky"])
    };
    assert_eq!(
        g.join(none_in_common, DELAY_MS),
        JoinOutcome::Response(JoinResponse::error(
            GroupError::InconsistentGroupProtocol,
            ""
        ))
    );
    let other_type = JoinRequest {
        api_version: 3,
        protocol_type: "connect".to_owned(),
        ..request("d", "", &["range"])
    };
    assert_eq!(
        g.join(other_type, DELAY_MS),
        JoinOutcome::Response(JoinResponse::error(
            GroupError::InconsistentGroupProtocol,
            ""
        ))
    );
}

#[test]
fn static_member_rejoin_keeps_the_generation() {
    let mut g = group();
    let static_join = |instance: &str, member_id: &str, new_id: &str| JoinRequest {
        group_instance_id: Some(instance.to_owned()),
        new_member_id: new_id.to_owned(),
        ..request(instance, member_id, &["range"])
    };
    // Static members skip the member-id handshake.
    assert_eq!(
        g.join(static_join("i1", "", "i1-a"), 0),
        JoinOutcome::Pending
    );
    assert_eq!(
        g.join(static_join("i2", "", "i2-a"), 0),
        JoinOutcome::Pending
    );
    g.poll(DELAY_MS);
    g.sync(sync("i1-a", 1, &[("i1-a", "p0"), ("i2-a", "p1")]), DELAY_MS);
    assert_eq!(
        g.sync(sync("i2-a", 1, &[]), DELAY_MS),
        SyncOutcome::Response(g.sync_response(Bytes::from("p1")))
    );

    // i2 restarts: same protocols, so no rebalance.
    let JoinOutcome::Response(rejoined) = g.join(static_join("i2", "", "i2-b"), 5_000) else {
        panic!("a known static member rejoining a stable group is answered at once");
    };
    assert_eq!(rejoined.error, None);
    assert_eq!(rejoined.member_id, "i2-b");
    assert_eq!(rejoined.generation_id, 1);
    assert_eq!(rejoined.leader, "i1-a");
    assert_eq!(g.state(), GroupState::Stable);
    let SyncOutcome::Response(assigned) = g.sync(sync("i2-b", 1, &[]), 5_000) else {
        panic!("stable sync");
    };
    assert_eq!(assigned.assignment, Bytes::from("p1"));

    // The old member id is fenced.
    let old = HeartbeatRequest {
        group_instance_id: Some("i2".to_owned()),
        ..heartbeat("i2-a", 1)
    };
    assert_eq!(g.heartbeat(&old, 5_100), Err(GroupError::FencedInstanceId));
    assert_eq!(
        g.join(static_join("i2", "i2-a", "unused"), 5_100),
        JoinOutcome::Response(JoinResponse::error(GroupError::FencedInstanceId, "i2-a"))
    );

    // The static leader restarting learns it leads and may skip assigning.
    let JoinOutcome::Response(leader) = g.join(static_join("i1", "", "i1-b"), 6_000) else {
        panic!("static leader rejoin");
    };
    assert_eq!(leader.leader, "i1-b");
    assert!(leader.skip_assignment);
    assert_eq!(leader.members.len(), 2);
    assert_eq!(g.generation_id(), 1);
}

#[test]
fn static_member_with_changed_protocol_rebalances() {
    let mut g = group();
    let static_join = |instance: &str, new_id: &str, protocols: &[&str]| JoinRequest {
        group_instance_id: Some(instance.to_owned()),
        new_member_id: new_id.to_owned(),
        ..request(instance, "", protocols)
    };
    g.join(static_join("i1", "i1-a", &["roundrobin", "range"]), 0);
    g.join(static_join("i2", "i2-a", &["range", "roundrobin"]), 0);
    g.poll(DELAY_MS);
    assert_eq!(g.protocol_name(), Some("roundrobin"));
    g.sync(sync("i1-a", 1, &[]), DELAY_MS);
    assert_eq!(g.state(), GroupState::Stable);
    // i2-b supports only range, so the selected protocol must change.
    assert_eq!(
        g.join(static_join("i2", "i2-b", &["range"]), 5_000),
        JoinOutcome::Pending
    );
    assert_eq!(g.state(), GroupState::PreparingRebalance);
}

#[test]
fn member_that_never_syncs_is_evicted() {
    let mut g = group();
    join_v3(&mut g, "c1", &["range"], 0);
    join_v3(&mut g, "c2", &["range"], 0);
    g.poll(DELAY_MS);
    g.sync(sync("c1-uuid", 1, &[("c1-uuid", "p0")]), DELAY_MS);
    assert_eq!(stored_groups(&g.poll(DELAY_MS)).len(), 1);
    // c2 keeps its session alive but never syncs.
    for at in (5_000..33_000).step_by(5_000) {
        assert_eq!(g.heartbeat(&heartbeat("c1-uuid", 1), at), Ok(()));
        assert_eq!(g.heartbeat(&heartbeat("c2-uuid", 1), at), Ok(()));
        assert!(g.poll(at).is_empty());
    }
    let effects = g.poll(DELAY_MS + i64::from(REBALANCE_MS));
    assert_eq!(
        effects,
        [Effect::MemberEvicted {
            member_id: "c2-uuid".to_owned(),
            reason: EvictionReason::SyncTimeout
        }]
    );
    assert_eq!(g.state(), GroupState::PreparingRebalance);
}

#[test]
fn a_stored_group_is_restored_stable_and_keeps_its_members() {
    let g = stable_three();
    let stored = g.stored_value();
    assert_eq!(stored.protocol.as_deref(), Some("range"));
    assert_eq!(stored.leader.as_deref(), Some("c1-uuid"));
    assert_eq!(stored.members[1].assignment, Bytes::from("p1"));
    assert_eq!(stored.current_state_timestamp_ms, DELAY_MS);

    let mut restored = Group::restore("g", GroupConfig::default(), &stored, 50_000);
    assert_eq!(restored.state(), GroupState::Stable);
    assert_eq!(restored.generation_id(), 1);
    assert_eq!(restored.leader_id(), Some("c1-uuid"));
    assert_eq!(restored.stored_value(), stored);
    // Members carry on with their generation: no rebalance needed.
    assert_eq!(restored.heartbeat(&heartbeat("c2-uuid", 1), 51_000), Ok(()));
    let described = restored.describe();
    assert_eq!(described.members.len(), 3);
    assert_eq!(described.members[2].assignment, Bytes::from("p2"));
    // One that never comes back is evicted after its session timeout.
    assert_eq!(restored.heartbeat(&heartbeat("c1-uuid", 1), 55_000), Ok(()));
    assert_eq!(restored.heartbeat(&heartbeat("c3-uuid", 1), 55_000), Ok(()));
    let effects = restored.poll(51_000 + i64::from(SESSION_MS));
    assert!(effects.contains(&Effect::MemberEvicted {
        member_id: "c2-uuid".to_owned(),
        reason: EvictionReason::SessionTimeout
    }));
    assert_eq!(restored.state(), GroupState::PreparingRebalance);
    assert_eq!(restored.rebalances(), 1);
}

#[test]
fn the_last_member_leaving_stores_the_empty_group() {
    let mut g = stable_three();
    let leaving: Vec<LeaveMember> = ["c1-uuid", "c2-uuid", "c3-uuid"]
        .iter()
        .map(|id| LeaveMember {
            member_id: id.to_string(),
            group_instance_id: None,
        })
        .collect();
    g.leave(&leaving, 20_000);
    let stored = stored_groups(&g.poll(20_000));
    assert_eq!(stored.len(), 1);
    assert!(stored[0].members.is_empty());
    assert_eq!(stored[0].generation, 2);
    assert_eq!(stored[0].current_state_timestamp_ms, 20_000);
    assert_eq!(g.state(), GroupState::Empty);

    let restored = Group::restore("g", GroupConfig::default(), &stored[0], 30_000);
    assert_eq!(restored.state(), GroupState::Empty);
    assert_eq!(restored.generation_id(), 2);
    assert_eq!(restored.protocol_type(), Some("consumer"));
    assert_eq!(restored.state_since_ms(), 20_000);
}

/// A ConsumerProtocolSubscription v1 of `topics` with no user data and no
/// owned partitions.
fn subscription(topics: &[&str]) -> Bytes {
    let mut out = vec![0, 1];
    out.extend_from_slice(&(topics.len() as i32).to_be_bytes());
    for topic in topics {
        out.extend_from_slice(&(topic.len() as i16).to_be_bytes());
        out.extend_from_slice(topic.as_bytes());
    }
    out.extend_from_slice(&(-1i32).to_be_bytes()); // user_data null
    out.extend_from_slice(&0i32.to_be_bytes()); // owned_partitions
    Bytes::from(out)
}

#[test]
fn subscribed_topics_come_from_the_members_subscriptions() {
    let mut g = group();
    for (client, topics) in [("c1", &["a", "b"][..]), ("c2", &["b", "c"][..])] {
        let mut req = JoinRequest {
            api_version: 3,
            ..request(client, "", &["range"])
        };
        req.protocols = vec![("range".to_owned(), subscription(topics))];
        req.new_member_id = format!("{client}-uuid");
        g.join(req, 0);
    }
    assert_eq!(g.subscribed_topics(), None, "no protocol chosen yet");
    g.poll(DELAY_MS);
    let topics: Vec<String> = g
        .subscribed_topics()
        .expect("consumer group")
        .into_iter()
        .collect();
    assert_eq!(topics, ["a", "b", "c"]);

    let mut other = group();
    let mut req = JoinRequest {
        api_version: 3,
        ..request("c1", "", &["range"])
    };
    req.protocols = vec![("range".to_owned(), Bytes::from_static(&[0, 0, 0]))];
    req.new_member_id = "c1-uuid".into();
    other.join(req, 0);
    other.poll(DELAY_MS);
    assert_eq!(other.subscribed_topics(), None, "unreadable subscription");
}
