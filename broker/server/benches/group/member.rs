//! One member of a consumer group, doing what a classic (eager) Kafka
//! consumer does on its own connection (the steps are listed in
//! group_bench's `//!` doc): it joins when the main task lets it, tells it
//! each milestone reached, heartbeats while it waits, and measures its
//! commits.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use bytes::{Buf, BufMut, Bytes, BytesMut};
use kafka_protocol::messages::GroupId;
use kafka_protocol::messages::consumer_protocol_assignment::{
    ConsumerProtocolAssignment, TopicPartition as AssignedPartitions,
};
use kafka_protocol::messages::consumer_protocol_subscription::ConsumerProtocolSubscription;
use kafka_protocol::messages::find_coordinator_request::FindCoordinatorRequest;
use kafka_protocol::messages::heartbeat_request::HeartbeatRequest;
use kafka_protocol::messages::join_group_request::{JoinGroupRequest, JoinGroupRequestProtocol};
use kafka_protocol::messages::join_group_response::{JoinGroupResponse, JoinGroupResponseMember};
use kafka_protocol::messages::leave_group_request::{LeaveGroupRequest, MemberIdentity};
use kafka_protocol::messages::offset_commit_request::{
    OffsetCommitRequest, OffsetCommitRequestPartition, OffsetCommitRequestTopic,
};
use kafka_protocol::messages::sync_group_request::{SyncGroupRequest, SyncGroupRequestAssignment};
use kafka_protocol::messages::sync_group_response::SyncGroupResponse;
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};
use tokio::sync::{mpsc, watch};

use crate::support::wire::Connection;
use crate::{
    ASSIGNOR, CLIENT_ID, GroupProgress, Milestone, NONE, PROTOCOL_TYPE, Phase,
    REBALANCE_TIMEOUT_MS, SESSION_TIMEOUT_MS, Settings, TOPIC, group_id, group_name, offset_for,
    topic_name,
};

const FIND_COORDINATOR_VERSION: i16 = 3;
const JOIN_GROUP_VERSION: i16 = 7;
const SYNC_GROUP_VERSION: i16 = 5;
const HEARTBEAT_VERSION: i16 = 4;
const OFFSET_COMMIT_VERSION: i16 = 8;
const LEAVE_GROUP_VERSION: i16 = 5;
/// ConsumerProtocolSubscription and ConsumerProtocolAssignment version.
const CONSUMER_PROTOCOL_VERSION: i16 = 0;

const REBALANCE_IN_PROGRESS: i16 = 27;
const MEMBER_ID_REQUIRED: i16 = 79;
/// FindCoordinator's key type for a consumer group.
const GROUP_KEY_TYPE: i8 = 0;

#[derive(Debug, Clone)]
pub struct MemberSpec {
    pub group: usize,
    pub index: usize,
    pub addr: SocketAddr,
    pub settings: Settings,
}

/// What one member measured.
#[derive(Debug, Default)]
pub struct MemberReport {
    pub commit_latencies: Vec<Duration>,
    pub partition_offsets: u64,
    pub heartbeats: u64,
}

/// One member's life: connect, join, commit, leave, each once the main task
/// has let the members go on to it.
pub async fn run(
    spec: MemberSpec,
    progress: Arc<watch::Sender<GroupProgress>>,
    mut phase: watch::Receiver<Phase>,
    milestones: mpsc::UnboundedSender<Milestone>,
) -> Result<MemberReport> {
    let (group, index) = (spec.group, spec.index);
    let doing = |what: &str| format!("member {index} of {} {what}", group_name(group));
    let mut member = Member {
        connection: Connection::open(spec.addr, CLIENT_ID).await?,
        group_id: group_id(group),
        spec,
        member_id: StrBytes::default(),
        generation_id: None,
        partitions: Vec::new(),
        last_heartbeat: Instant::now(),
        report: MemberReport::default(),
    };
    let _ = milestones.send(Milestone::Connected);
    member.wait_for(&mut phase, Phase::Join).await?;
    member
        .join(&progress)
        .await
        .with_context(|| doing("joining"))?;
    let _ = milestones.send(Milestone::Stable);
    member.wait_for(&mut phase, Phase::Commit).await?;
    member.commit().await.with_context(|| doing("committing"))?;
    let _ = milestones.send(Milestone::Committed);
    member.wait_for(&mut phase, Phase::Leave).await?;
    member.leave().await.with_context(|| doing("leaving"))?;
    Ok(member.report)
}

/// One consumer: its connection and its place in its group.
#[derive(Debug)]
struct Member {
    connection: Connection,
    group_id: GroupId,
    spec: MemberSpec,
    /// Empty until the broker gives one in its JoinGroup answer.
    member_id: StrBytes,
    /// The generation its SyncGroup last succeeded in; none outside the
    /// group, where it sends no heartbeat.
    generation_id: Option<i32>,
    partitions: Vec<i32>,
    last_heartbeat: Instant,
    report: MemberReport,
}

impl Member {
    /// Waits for the main task to reach `until`, heartbeating meanwhile once
    /// in a group.
    async fn wait_for(&mut self, phase: &mut watch::Receiver<Phase>, until: Phase) -> Result<()> {
        let reached = async {
            let reached = phase.wait_for(|p| *p >= until).await;
            reached.map(|_| ()).context("the main task is gone")
        };
        let error = self.heartbeat_until(reached).await?;
        ensure!(
            error == NONE,
            "heartbeat while waiting for {until:?}: error {error}"
        );
        Ok(())
    }

    /// Waits for `done`, heartbeating whenever a heartbeat is due while in
    /// a generation. Returns NONE once `done` is, or the first error code a
    /// Heartbeat gets.
    async fn heartbeat_until(&mut self, done: impl Future<Output = Result<()>>) -> Result<i16> {
        tokio::pin!(done);
        loop {
            let due = self.last_heartbeat + self.spec.settings.heartbeat;
            tokio::select! {
                done = &mut done => return done.map(|()| NONE),
                () = tokio::time::sleep_until(due.into()), if self.generation_id.is_some() => {
                    let error = self.heartbeat().await?;
                    if error != NONE {
                        return Ok(error);
                    }
                }
            }
        }
    }

    /// Joins until the whole group is stable in one generation.
    async fn join(&mut self, progress: &watch::Sender<GroupProgress>) -> Result<()> {
        find_coordinator(&mut self.connection, &self.group_id, self.spec.addr).await?;
        loop {
            progress.send_modify(|p| {
                p.first_join.get_or_insert_with(Instant::now);
                p.joins += 1;
            });
            let joined = self.join_group().await?;
            match joined.error_code {
                NONE => {}
                MEMBER_ID_REQUIRED if self.member_id.is_empty() => {
                    self.member_id = joined.member_id;
                    continue;
                }
                _ => bail!("JoinGroup failed: {joined:?}"),
            }
            ensure!(
                joined.member_id == self.member_id,
                "JoinGroup answered for member {:?}, sent {:?}",
                joined.member_id,
                self.member_id
            );
            let generation_id = joined.generation_id;
            let assignments = if joined.leader == self.member_id {
                range_assignment(&joined.members, self.spec.settings.partitions)?
            } else {
                Vec::new()
            };
            let synced = self.sync_group(generation_id, assignments).await?;
            match synced.error_code {
                NONE => {}
                REBALANCE_IN_PROGRESS => {
                    progress.send_modify(|p| p.rejoins_after_sync += 1);
                    continue;
                }
                _ => bail!("SyncGroup in generation {generation_id} failed: {synced:?}"),
            }
            self.partitions = own_partitions(&synced.assignment)?;
            ensure!(
                !self.partitions.is_empty(),
                "SyncGroup in generation {generation_id} assigned nothing: {synced:?}"
            );
            self.generation_id = Some(generation_id);
            let index = self.spec.index;
            progress.send_modify(|p| {
                p.synced[index] = Some(generation_id);
                if p.stable.is_none() && p.synced.iter().all(|g| *g == Some(generation_id)) {
                    p.stable = Some((generation_id, Instant::now()));
                }
            });
            self.last_heartbeat = Instant::now();
            if self.await_group(progress, generation_id).await? {
                return Ok(());
            }
        }
    }

    /// After a successful SyncGroup: true once the whole group has synced
    /// in `generation_id`, false when a heartbeat says to rejoin.
    async fn await_group(
        &mut self,
        progress: &watch::Sender<GroupProgress>,
        generation_id: i32,
    ) -> Result<bool> {
        let mut group = progress.subscribe();
        let stable = async {
            let stable = group
                .wait_for(|p| p.stable.is_some_and(|(g, _)| g == generation_id))
                .await;
            stable.map(|_| ()).context("the group's progress is gone")
        };
        match self.heartbeat_until(stable).await? {
            NONE => Ok(true),
            REBALANCE_IN_PROGRESS => {
                progress.send_modify(|p| p.rejoins_after_heartbeat += 1);
                Ok(false)
            }
            error => bail!("Heartbeat in generation {generation_id} failed: error {error}"),
        }
    }

    async fn join_group(&mut self) -> Result<JoinGroupResponse> {
        let request = JoinGroupRequest::default()
            .with_group_id(self.group_id.clone())
            .with_session_timeout_ms(SESSION_TIMEOUT_MS)
            .with_rebalance_timeout_ms(REBALANCE_TIMEOUT_MS)
            .with_member_id(self.member_id.clone())
            .with_protocol_type(StrBytes::from_static_str(PROTOCOL_TYPE))
            .with_protocols(vec![
                JoinGroupRequestProtocol::default()
                    .with_name(StrBytes::from_static_str(ASSIGNOR))
                    .with_metadata(subscription()?),
            ]);
        self.connection.call(JOIN_GROUP_VERSION, &request).await
    }

    async fn sync_group(
        &mut self,
        generation_id: i32,
        assignments: Vec<SyncGroupRequestAssignment>,
    ) -> Result<SyncGroupResponse> {
        let request = SyncGroupRequest::default()
            .with_group_id(self.group_id.clone())
            .with_generation_id(generation_id)
            .with_member_id(self.member_id.clone())
            .with_protocol_type(Some(StrBytes::from_static_str(PROTOCOL_TYPE)))
            .with_protocol_name(Some(StrBytes::from_static_str(ASSIGNOR)))
            .with_assignments(assignments);
        self.connection.call(SYNC_GROUP_VERSION, &request).await
    }

    /// The generation the member is in, for the requests only a member of
    /// the group may send.
    fn generation(&self) -> Result<i32> {
        self.generation_id.context("not in the group")
    }

    async fn heartbeat(&mut self) -> Result<i16> {
        let request = HeartbeatRequest::default()
            .with_group_id(self.group_id.clone())
            .with_generation_id(self.generation()?)
            .with_member_id(self.member_id.clone());
        let response = self.connection.call(HEARTBEAT_VERSION, &request).await?;
        self.last_heartbeat = Instant::now();
        self.report.heartbeats += 1;
        Ok(response.error_code)
    }

    /// Commits the member's partitions `commits` times, one request at a
    /// time, heartbeating whenever a heartbeat is due.
    async fn commit(&mut self) -> Result<()> {
        let commits = self.spec.settings.commits;
        self.report.commit_latencies.reserve(commits);
        for commit in 0..commits {
            if self.last_heartbeat.elapsed() >= self.spec.settings.heartbeat {
                let error = self.heartbeat().await?;
                ensure!(
                    error == NONE,
                    "heartbeat after {commit} commits: error {error}"
                );
            }
            let partitions = self
                .partitions
                .iter()
                .map(|&partition| {
                    OffsetCommitRequestPartition::default()
                        .with_partition_index(partition)
                        .with_committed_offset(offset_for(self.spec.group, partition, commit))
                        .with_committed_metadata(Some(StrBytes::default()))
                })
                .collect();
            let request = OffsetCommitRequest::default()
                .with_group_id(self.group_id.clone())
                .with_generation_id_or_member_epoch(self.generation()?)
                .with_member_id(self.member_id.clone())
                .with_topics(vec![
                    OffsetCommitRequestTopic::default()
                        .with_name(topic_name())
                        .with_partitions(partitions),
                ]);
            let sent = Instant::now();
            let response = self
                .connection
                .call(OFFSET_COMMIT_VERSION, &request)
                .await?;
            self.report.commit_latencies.push(sent.elapsed());
            let answered: Vec<_> = response
                .topics
                .iter()
                .flat_map(|t| t.partitions.iter().map(move |p| (&t.name, p)))
                .collect();
            ensure!(
                answered.len() == self.partitions.len()
                    && answered
                        .iter()
                        .all(|(name, p)| name.0.as_str() == TOPIC && p.error_code == NONE),
                "OffsetCommit {commit} of partitions {:?} failed: {response:?}",
                self.partitions
            );
            self.report.partition_offsets += answered.len() as u64;
        }
        Ok(())
    }

    async fn leave(&mut self) -> Result<()> {
        let request = LeaveGroupRequest::default()
            .with_group_id(self.group_id.clone())
            .with_members(vec![
                MemberIdentity::default()
                    .with_member_id(self.member_id.clone())
                    .with_reason(Some(StrBytes::from_static_str("group_bench done"))),
            ]);
        let response = self.connection.call(LEAVE_GROUP_VERSION, &request).await?;
        ensure!(
            response.error_code == NONE && response.members.iter().all(|m| m.error_code == NONE),
            "LeaveGroup failed: {response:?}"
        );
        self.generation_id = None;
        Ok(())
    }
}

/// The JoinGroup metadata of a consumer subscribed to the topic: the
/// ConsumerProtocol version, then the subscription.
fn subscription() -> Result<Bytes> {
    consumer_protocol(
        &ConsumerProtocolSubscription::default()
            .with_topics(vec![StrBytes::from_static_str(TOPIC)]),
    )
}

/// A ConsumerProtocol message behind its version, as JoinGroup and
/// SyncGroup carry it.
fn consumer_protocol(message: &impl Encodable) -> Result<Bytes> {
    let mut buf = BytesMut::new();
    buf.put_i16(CONSUMER_PROTOCOL_VERSION);
    message.encode(&mut buf, CONSUMER_PROTOCOL_VERSION)?;
    Ok(buf.freeze())
}

/// The leader's range assignment: members sorted by id, each a contiguous
/// run of partitions, the first ones one more when they do not divide.
fn range_assignment(
    members: &[JoinGroupResponseMember],
    partitions: usize,
) -> Result<Vec<SyncGroupRequestAssignment>> {
    ensure!(
        !members.is_empty(),
        "the leader's JoinGroup lists no member"
    );
    let mut ids: Vec<&StrBytes> = members.iter().map(|m| &m.member_id).collect();
    ids.sort();
    let (each, extra) = (partitions / ids.len(), partitions % ids.len());
    let mut next = 0;
    ids.into_iter()
        .enumerate()
        .map(|(i, id)| {
            let count = each + usize::from(i < extra);
            let owned: Vec<i32> = (next..next + count).map(|p| p as i32).collect();
            next += count;
            let assignment = ConsumerProtocolAssignment::default().with_assigned_partitions(vec![
                AssignedPartitions::default()
                    .with_topic(topic_name())
                    .with_partitions(owned),
            ]);
            Ok(SyncGroupRequestAssignment::default()
                .with_member_id(id.clone())
                .with_assignment(consumer_protocol(&assignment)?))
        })
        .collect()
}

/// The partitions of the topic in a SyncGroup assignment.
fn own_partitions(assignment: &Bytes) -> Result<Vec<i32>> {
    let mut buf = assignment.clone();
    ensure!(
        buf.remaining() >= 2,
        "assignment of {} bytes has no version",
        assignment.len()
    );
    let version = buf.get_i16();
    let decoded = ConsumerProtocolAssignment::decode(&mut buf, version)
        .with_context(|| format!("assignment {assignment:?}"))?;
    let mut partitions = Vec::new();
    for owned in decoded.assigned_partitions {
        ensure!(
            owned.topic.0.as_str() == TOPIC,
            "assigned a partition of topic {:?}",
            owned.topic.0
        );
        partitions.extend(owned.partitions);
    }
    Ok(partitions)
}

/// FindCoordinator for a group: this broker must answer itself.
pub async fn find_coordinator(
    connection: &mut Connection,
    group_id: &GroupId,
    addr: SocketAddr,
) -> Result<()> {
    let request = FindCoordinatorRequest::default()
        .with_key(group_id.0.clone())
        .with_key_type(GROUP_KEY_TYPE);
    let response = connection.call(FIND_COORDINATOR_VERSION, &request).await?;
    ensure!(
        response.error_code == NONE && response.port == i32::from(addr.port()),
        "FindCoordinator for {:?} does not name this broker ({addr}): {response:?}",
        group_id.0
    );
    Ok(())
}
