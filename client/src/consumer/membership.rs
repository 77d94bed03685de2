//! Group membership of a subscribing consumer, Kafka's classic (eager)
//! protocol: JoinGroup (with the member-id handshake), the leader runs the
//! assignor over every member's subscription, SyncGroup hands out the
//! assignments, and a heartbeat task keeps the session alive until the
//! coordinator asks for a rebalance, the member is fenced, or the consumer
//! stopped polling for `max.poll.interval.ms` (then it leaves the group, as
//! Java's consumer does).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::GroupId;
use kafka_protocol::messages::heartbeat_request::HeartbeatRequest;
use kafka_protocol::messages::join_group_request::{JoinGroupRequest, JoinGroupRequestProtocol};
use kafka_protocol::messages::leave_group_request::{LeaveGroupRequest, MemberIdentity};
use kafka_protocol::messages::sync_group_request::{SyncGroupRequest, SyncGroupRequestAssignment};
use kafka_protocol::protocol::StrBytes;

use super::assignor;
use super::config::ConsumerConfig;
use crate::cluster::Cluster;
use crate::connection::Connection;
use crate::error::{ClientError, Result, error_chain};

const JOIN_GROUP_VERSION: i16 = 7;
const SYNC_GROUP_VERSION: i16 = 5;
const HEARTBEAT_VERSION: i16 = 4;
const LEAVE_GROUP_VERSION: i16 = 4;
const PROTOCOL_TYPE: &str = "consumer";
/// Joins retried (rebalances racing ours) before giving up.
const JOIN_ATTEMPTS: usize = 20;

/// This member's place in its group, while it has one.
#[derive(Debug)]
pub(super) struct Membership {
    pub coordinator: Connection,
    pub member_id: String,
    pub generation: i32,
    /// Set by the heartbeat task when the member must join again.
    pub rejoin: Arc<AtomicBool>,
    /// Set with `rejoin` when the member's partitions are no longer its
    /// own (fenced, or it left after missing `max.poll.interval.ms`): they
    /// are lost rather than revoked, and not committed.
    pub lost: Arc<AtomicBool>,
    /// Notified with `rejoin`, so a poll with nothing to fetch wakes.
    pub wake: Arc<tokio::sync::Notify>,
    /// Milliseconds since `epoch` at the last poll, for max.poll.interval.ms.
    pub last_poll: Arc<AtomicU64>,
    pub epoch: Instant,
    heartbeat: tokio::task::JoinHandle<()>,
}

impl Drop for Membership {
    fn drop(&mut self) {
        self.heartbeat.abort();
    }
}

impl Membership {
    pub fn polled(&self) {
        self.last_poll
            .store(self.epoch.elapsed().as_millis() as u64, Ordering::Relaxed);
    }

    /// LeaveGroup, so the group rebalances now rather than after the
    /// session timeout.
    pub async fn leave(&self, group: &str) {
        let request = LeaveGroupRequest::default()
            .with_group_id(GroupId(StrBytes::from_string(group.to_string())))
            .with_members(vec![
                MemberIdentity::default()
                    .with_member_id(StrBytes::from_string(self.member_id.clone())),
            ]);
        let _ = self.coordinator.call(LEAVE_GROUP_VERSION, &request).await;
    }
}

/// What a member joins with: its group, its subscription, and the
/// partitions it owns with the generation it got them in.
#[derive(Debug)]
pub(super) struct Joining<'a> {
    pub group: &'a str,
    pub topics: &'a [String],
    pub owned: &'a [(String, i32)],
    pub generation: i32,
}

/// Joins the group; returns the membership and this member's partitions.
/// `member_id` is kept across joins.
pub(super) async fn join(
    cluster: &Cluster,
    config: &ConsumerConfig,
    coordinator: Connection,
    joining: Joining<'_>,
    member_id: &mut String,
) -> Result<(Membership, Vec<(String, i32)>)> {
    let group = joining.group;
    let metadata = assignor::encode_subscription(joining.topics, joining.owned, joining.generation);
    for _ in 0..JOIN_ATTEMPTS {
        let request = JoinGroupRequest::default()
            .with_group_id(GroupId(StrBytes::from_string(group.to_string())))
            .with_session_timeout_ms(config.session_timeout.as_millis() as i32)
            .with_rebalance_timeout_ms(config.max_poll_interval.as_millis() as i32)
            .with_member_id(StrBytes::from_string(member_id.clone()))
            .with_protocol_type(StrBytes::from_static_str(PROTOCOL_TYPE))
            .with_protocols(
                config
                    .assignors
                    .iter()
                    .map(|name| {
                        JoinGroupRequestProtocol::default()
                            .with_name(StrBytes::from_string(name.clone()))
                            .with_metadata(metadata.clone())
                    })
                    .collect(),
            );
        let joined = coordinator.call(JOIN_GROUP_VERSION, &request).await?;
        match ResponseError::try_from_code(joined.error_code) {
            None => {}
            Some(ResponseError::MemberIdRequired) => {
                *member_id = joined.member_id.to_string();
                continue;
            }
            Some(ResponseError::UnknownMemberId) => {
                member_id.clear();
                continue;
            }
            Some(ResponseError::RebalanceInProgress) => continue,
            Some(error) => return Err(ClientError::kafka("JoinGroup", group, -1, error.code())),
        }
        *member_id = joined.member_id.to_string();
        let protocol = joined
            .protocol_name
            .as_ref()
            .map(|p| p.to_string())
            .unwrap_or_else(|| assignor::RANGE.to_string());
        let assignments = if joined.leader == joined.member_id {
            leader_assignments(cluster, &protocol, &joined.members).await?
        } else {
            Vec::new()
        };
        let sync = SyncGroupRequest::default()
            .with_group_id(GroupId(StrBytes::from_string(group.to_string())))
            .with_generation_id(joined.generation_id)
            .with_member_id(joined.member_id.clone())
            .with_protocol_type(Some(StrBytes::from_static_str(PROTOCOL_TYPE)))
            .with_protocol_name(Some(StrBytes::from_string(protocol.clone())))
            .with_assignments(assignments);
        let synced = coordinator.call(SYNC_GROUP_VERSION, &sync).await?;
        match ResponseError::try_from_code(synced.error_code) {
            None => {}
            Some(ResponseError::RebalanceInProgress | ResponseError::IllegalGeneration) => continue,
            Some(ResponseError::UnknownMemberId) => {
                member_id.clear();
                continue;
            }
            Some(error) => return Err(ClientError::kafka("SyncGroup", group, -1, error.code())),
        }
        let partitions = assignor::decode_assignment(&synced.assignment).ok_or_else(|| {
            ClientError::Corrupt {
                topic: group.to_string(),
                partition: -1,
                reason: "unreadable assignment from the group leader".into(),
            }
        })?;
        let rejoin = Arc::new(AtomicBool::new(false));
        let lost = Arc::new(AtomicBool::new(false));
        let wake = Arc::new(tokio::sync::Notify::new());
        let last_poll = Arc::new(AtomicU64::new(0));
        let epoch = Instant::now();
        let heartbeat = tokio::spawn(heartbeat(
            coordinator.clone(),
            HeartbeatState {
                group: group.to_string(),
                member_id: member_id.clone(),
                generation: joined.generation_id,
                interval: config.heartbeat_interval,
                max_poll_interval: config.max_poll_interval,
                rejoin: Arc::clone(&rejoin),
                lost: Arc::clone(&lost),
                wake: Arc::clone(&wake),
                last_poll: Arc::clone(&last_poll),
                epoch,
            },
        ));
        let membership = Membership {
            coordinator,
            member_id: member_id.clone(),
            generation: joined.generation_id,
            rejoin,
            lost,
            wake,
            last_poll,
            epoch,
            heartbeat,
        };
        return Ok((membership, partitions));
    }
    Err(ClientError::kafka(
        "JoinGroup",
        group,
        -1,
        ResponseError::RebalanceInProgress.code(),
    ))
}

/// The leader's assignments for every member.
async fn leader_assignments(
    cluster: &Cluster,
    protocol: &str,
    members: &[kafka_protocol::messages::join_group_response::JoinGroupResponseMember],
) -> Result<Vec<SyncGroupRequestAssignment>> {
    let mut subscriptions: BTreeMap<String, assignor::Subscription> = BTreeMap::new();
    let mut counts: BTreeMap<String, i32> = BTreeMap::new();
    for member in members {
        let subscription = assignor::decode_subscription(&member.metadata).unwrap_or_default();
        for topic in &subscription.topics {
            if !counts.contains_key(topic) {
                cluster.refresh(&[topic.as_str()], false).await?;
                if let Some(info) = cluster.topic(topic) {
                    counts.insert(topic.clone(), info.partitions());
                }
            }
        }
        subscriptions.insert(member.member_id.to_string(), subscription);
    }
    let assigned = assignor::assign(protocol, &subscriptions, &counts);
    Ok(assigned
        .into_iter()
        .map(|(member, partitions)| {
            SyncGroupRequestAssignment::default()
                .with_member_id(StrBytes::from_string(member))
                .with_assignment(assignor::encode_assignment(&partitions))
        })
        .collect())
}

#[derive(Debug)]
struct HeartbeatState {
    group: String,
    member_id: String,
    generation: i32,
    interval: Duration,
    max_poll_interval: Duration,
    rejoin: Arc<AtomicBool>,
    lost: Arc<AtomicBool>,
    wake: Arc<tokio::sync::Notify>,
    last_poll: Arc<AtomicU64>,
    epoch: Instant,
}

impl HeartbeatState {
    fn ask_rejoin(&self, lost: bool) {
        if lost {
            self.lost.store(true, Ordering::Release);
        }
        self.rejoin.store(true, Ordering::Release);
        self.wake.notify_one();
    }
}

/// Heartbeats until a rebalance, fencing or a missed poll deadline asks
/// the member to join again.
async fn heartbeat(coordinator: Connection, state: HeartbeatState) {
    let request = HeartbeatRequest::default()
        .with_group_id(GroupId(StrBytes::from_string(state.group.clone())))
        .with_generation_id(state.generation)
        .with_member_id(StrBytes::from_string(state.member_id.clone()));
    loop {
        tokio::time::sleep(state.interval).await;
        let last_poll = Duration::from_millis(state.last_poll.load(Ordering::Relaxed));
        if state.epoch.elapsed().saturating_sub(last_poll) > state.max_poll_interval {
            tracing::warn!(
                group = state.group,
                "no poll within max.poll.interval.ms: leaving the group"
            );
            let leave = LeaveGroupRequest::default()
                .with_group_id(GroupId(StrBytes::from_string(state.group.clone())))
                .with_members(vec![
                    MemberIdentity::default()
                        .with_member_id(StrBytes::from_string(state.member_id.clone())),
                ]);
            let _ = coordinator.call(LEAVE_GROUP_VERSION, &leave).await;
            state.ask_rejoin(true);
            return;
        }
        match coordinator.call(HEARTBEAT_VERSION, &request).await {
            Ok(response) if response.error_code == 0 => {}
            Ok(response) => {
                tracing::debug!(
                    group = state.group,
                    code = response.error_code,
                    "heartbeat asks to rejoin"
                );
                state.ask_rejoin(matches!(
                    ResponseError::try_from_code(response.error_code),
                    Some(
                        ResponseError::IllegalGeneration
                            | ResponseError::UnknownMemberId
                            | ResponseError::FencedInstanceId
                    )
                ));
                return;
            }
            Err(err) => {
                tracing::debug!(group = state.group, error = %error_chain(&err), "heartbeat failed");
                state.ask_rejoin(false);
                return;
            }
        }
    }
}
