//! Consumer groups under load on the real `runnel serve` process, as a
//! program that prints figures: many groups of members joining at once, then
//! committing offsets.
//!
//! One run starts the `runnel` binary (built by Cargo for this bench, in the
//! bench profile) on free ports of 127.0.0.1 with a temporary log dir,
//! creates one topic that every group subscribes to, has one FindCoordinator
//! create `__consumer_offsets` (timed and printed on its own, so that the
//! join figures are about groups), and releases every member at once. Each
//! member has its own connection and does what a classic (eager) Kafka
//! consumer does:
//!
//! - FindCoordinator v3, then JoinGroup v7 with an empty member id, which
//!   the broker answers with MEMBER_ID_REQUIRED and an id, then JoinGroup
//!   again with it (protocol type `consumer`, one protocol `range` with a
//!   ConsumerProtocol v0 subscription to the topic);
//! - SyncGroup v5: the leader sends a range assignment of the topic's
//!   partitions for every member of the generation, the others none;
//! - while its group is not complete yet, Heartbeat v4 every heartbeat
//!   interval; REBALANCE_IN_PROGRESS from SyncGroup or Heartbeat sends the
//!   member back to JoinGroup, as a real consumer rejoins;
//! - OffsetCommit v8 of its partitions, one request at a time (the next is
//!   sent when the previous is answered), with increasing offsets, plus a
//!   Heartbeat whenever one is due;
//! - LeaveGroup v5.
//!
//! A group is stable once every one of its members has had SyncGroup
//! answered without error in the same generation; its time to stable runs
//! from the first JoinGroup any of its members sent. Members that joined a
//! generation without the others learn of the next rebalance only from a
//! Heartbeat, so the heartbeat interval is part of that figure whenever the
//! first rebalance ends before every member has joined, which
//! `group.initial.rebalance.delay.ms` = 0 makes likely. Before the members
//! leave, DescribeGroups v5 must show every group Stable with all its
//! members, and OffsetFetch v8 (all groups in one request) must return the
//! last offset committed for every partition of every group; the run fails
//! otherwise.
//!
//! Printed: time to stable per group (min, p50, p99, max), the wall time
//! until all groups are stable, the generations it took, offset commit
//! requests and partition offsets committed per second with commit latency
//! p50 and p99, and the broker's CPU time (user + system, all threads, from
//! /proc/<pid>/stat) in the join phase and in the commit phase, with the
//! load generator's.
//!
//! Usage: `cargo bench -p runnel-broker --bench group_bench`. Sizes come
//! from `RUNNEL_BENCH_GROUPS` (default 50), `RUNNEL_BENCH_MEMBERS` (members
//! per group, default 4) and `RUNNEL_BENCH_COMMITS` (commit requests per
//! member, default 200); without `--bench`, as `cargo test --benches` runs
//! it to check it still works, 5 x 4 x 20. `RUNNEL_BENCH_PARTITIONS` sets
//! the topic's partitions (default 8, at least the members per group),
//! `RUNNEL_BENCH_INITIAL_DELAY_MS` the broker's
//! `group.initial.rebalance.delay.ms` (default 0; Kafka's default is 3000),
//! `RUNNEL_BENCH_HEARTBEAT_MS` the members' heartbeat interval (default
//! 3000, the Kafka consumer's `heartbeat.interval.ms`),
//! `RUNNEL_BENCH_BINARY` another `runnel` binary than the one Cargo built,
//! `RUNNEL_BENCH_DIR` the parent of the temporary directory.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use bytes::{Buf, BufMut, Bytes, BytesMut};
use kafka_protocol::messages::consumer_protocol_assignment::{
    ConsumerProtocolAssignment, TopicPartition as AssignedPartitions,
};
use kafka_protocol::messages::consumer_protocol_subscription::ConsumerProtocolSubscription;
use kafka_protocol::messages::create_topics_request::{CreatableTopic, CreateTopicsRequest};
use kafka_protocol::messages::create_topics_response::CreateTopicsResponse;
use kafka_protocol::messages::describe_groups_request::DescribeGroupsRequest;
use kafka_protocol::messages::describe_groups_response::DescribeGroupsResponse;
use kafka_protocol::messages::find_coordinator_request::FindCoordinatorRequest;
use kafka_protocol::messages::find_coordinator_response::FindCoordinatorResponse;
use kafka_protocol::messages::heartbeat_request::HeartbeatRequest;
use kafka_protocol::messages::heartbeat_response::HeartbeatResponse;
use kafka_protocol::messages::join_group_request::{JoinGroupRequest, JoinGroupRequestProtocol};
use kafka_protocol::messages::join_group_response::{JoinGroupResponse, JoinGroupResponseMember};
use kafka_protocol::messages::leave_group_request::{LeaveGroupRequest, MemberIdentity};
use kafka_protocol::messages::leave_group_response::LeaveGroupResponse;
use kafka_protocol::messages::offset_commit_request::{
    OffsetCommitRequest, OffsetCommitRequestPartition, OffsetCommitRequestTopic,
};
use kafka_protocol::messages::offset_commit_response::OffsetCommitResponse;
use kafka_protocol::messages::offset_fetch_request::{
    OffsetFetchRequest, OffsetFetchRequestGroup, OffsetFetchRequestTopics,
};
use kafka_protocol::messages::offset_fetch_response::OffsetFetchResponse;
use kafka_protocol::messages::sync_group_request::{SyncGroupRequest, SyncGroupRequestAssignment};
use kafka_protocol::messages::sync_group_response::SyncGroupResponse;
use kafka_protocol::messages::{ApiKey, GroupId, RequestHeader, ResponseHeader, TopicName};
use kafka_protocol::protocol::{Decodable, Encodable, HeaderVersion, StrBytes};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;

const DEFAULT_GROUPS: usize = 50;
const DEFAULT_MEMBERS: usize = 4;
const DEFAULT_COMMITS: usize = 200;
const SMOKE_TEST_GROUPS: usize = 5;
const SMOKE_TEST_MEMBERS: usize = 4;
const SMOKE_TEST_COMMITS: usize = 20;
const DEFAULT_PARTITIONS: usize = 8;
const DEFAULT_INITIAL_DELAY_MS: u64 = 0;
const KAFKA_INITIAL_DELAY_MS: u64 = 3000;
const DEFAULT_HEARTBEAT_MS: u64 = 3000;
const SESSION_TIMEOUT_MS: i32 = 30_000;
const REBALANCE_TIMEOUT_MS: i32 = 60_000;

const FIND_COORDINATOR_VERSION: i16 = 3;
const JOIN_GROUP_VERSION: i16 = 7;
const SYNC_GROUP_VERSION: i16 = 5;
const HEARTBEAT_VERSION: i16 = 4;
const OFFSET_COMMIT_VERSION: i16 = 8;
const OFFSET_FETCH_VERSION: i16 = 8;
const DESCRIBE_GROUPS_VERSION: i16 = 5;
const LEAVE_GROUP_VERSION: i16 = 5;
const CREATE_TOPICS_VERSION: i16 = 7;
/// ConsumerProtocolSubscription and ConsumerProtocolAssignment version.
const CONSUMER_PROTOCOL_VERSION: i16 = 0;

const NONE: i16 = 0;
const REBALANCE_IN_PROGRESS: i16 = 27;
const MEMBER_ID_REQUIRED: i16 = 79;
/// FindCoordinator's key type for a consumer group.
const GROUP_KEY_TYPE: i8 = 0;

const TOPIC: &str = "group-bench";
const PROTOCOL_TYPE: &str = "consumer";
const ASSIGNOR: &str = "range";
const CLIENT_ID: &str = "group-bench";
/// Anything larger is a stream out of step, not a response.
const MAX_RESPONSE_BYTES: usize = 64 << 20;
/// The longest wait for the next member to reach a milestone before the run
/// is declared stuck; more than the rebalance timeout.
const STALL_DEADLINE: Duration = Duration::from_secs(120);
const EXIT_DEADLINE: Duration = Duration::from_secs(120);
const READY_DEADLINE: Duration = Duration::from_secs(30);
/// `sysconf(_SC_CLK_TCK)`, the unit of /proc/<pid>/stat's CPU times. Linux
/// fixes it at 100 for user space; hardcoded to avoid a libc dependency.
const CLOCK_TICKS_PER_SECOND: f64 = 100.0;

fn main() {
    if let Err(err) = run() {
        eprintln!("group_bench: {err:#}");
        std::process::exit(1);
    }
}

#[derive(Debug, Clone, Copy)]
struct Settings {
    groups: usize,
    members: usize,
    commits: usize,
    partitions: usize,
    initial_delay_ms: u64,
    heartbeat: Duration,
}

fn run() -> Result<()> {
    let settings = settings()?;
    let parent = std::env::var_os("RUNNEL_BENCH_DIR").map_or_else(std::env::temp_dir, Into::into);
    let dir = tempfile::Builder::new()
        .prefix("runnel-group-bench-")
        .tempdir_in(&parent)
        .with_context(|| {
            format!(
                "cannot create a temporary directory in {}",
                parent.display()
            )
        })?;
    let overrides = [format!(
        "group.initial.rebalance.delay.ms={}",
        settings.initial_delay_ms
    )];
    let mut broker = BrokerProcess::start(&dir.path().join("data"), &overrides)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("cannot start the load generator's runtime")?;
    let outcome = runtime.block_on(run_groups(broker.addr, broker.pid(), settings));
    // The members' tasks are gone before the broker is asked to stop.
    drop(runtime);
    let shutdown = broker.stop();
    let outcome = outcome?;
    let shutdown = shutdown?;
    report(settings, &outcome, shutdown);
    Ok(())
}

fn settings() -> Result<Settings> {
    let bench = std::env::args().skip(1).any(|a| a == "--bench");
    let (groups, members, commits) = if bench {
        (DEFAULT_GROUPS, DEFAULT_MEMBERS, DEFAULT_COMMITS)
    } else {
        (SMOKE_TEST_GROUPS, SMOKE_TEST_MEMBERS, SMOKE_TEST_COMMITS)
    };
    let members = env_count("RUNNEL_BENCH_MEMBERS", members)?;
    let settings = Settings {
        groups: env_count("RUNNEL_BENCH_GROUPS", groups)?,
        members,
        commits: env_count("RUNNEL_BENCH_COMMITS", commits)?,
        partitions: env_count("RUNNEL_BENCH_PARTITIONS", DEFAULT_PARTITIONS.max(members))?,
        initial_delay_ms: env_ms("RUNNEL_BENCH_INITIAL_DELAY_MS", DEFAULT_INITIAL_DELAY_MS)?,
        heartbeat: Duration::from_millis(env_ms(
            "RUNNEL_BENCH_HEARTBEAT_MS",
            DEFAULT_HEARTBEAT_MS,
        )?),
    };
    ensure!(
        settings.partitions >= settings.members,
        "RUNNEL_BENCH_PARTITIONS={} leaves some of the {} members of a group without a partition",
        settings.partitions,
        settings.members
    );
    ensure!(
        i32::try_from(settings.initial_delay_ms).is_ok(),
        "RUNNEL_BENCH_INITIAL_DELAY_MS={} is out of range",
        settings.initial_delay_ms
    );
    ensure!(
        !settings.heartbeat.is_zero()
            && settings.heartbeat < Duration::from_millis(SESSION_TIMEOUT_MS as u64),
        "RUNNEL_BENCH_HEARTBEAT_MS must be above 0 and below the session timeout of {SESSION_TIMEOUT_MS} ms"
    );
    Ok(settings)
}

/// A positive count from the environment, or `default`.
fn env_count(name: &str, default: usize) -> Result<usize> {
    match std::env::var(name) {
        Err(_) => Ok(default),
        Ok(value) => value
            .parse::<usize>()
            .ok()
            .filter(|n| *n > 0)
            .with_context(|| format!("{name}={value:?} is not a positive number")),
    }
}

/// Milliseconds from the environment (0 allowed), or `default`.
fn env_ms(name: &str, default: u64) -> Result<u64> {
    match std::env::var(name) {
        Err(_) => Ok(default),
        Ok(value) => value
            .parse::<u64>()
            .with_context(|| format!("{name}={value:?} is not a number of milliseconds")),
    }
}

fn group_name(group: usize) -> String {
    format!("group-bench-{group:04}")
}

/// The offset a member commits for `partition` of `group` in its
/// `commit`th request (from 0): increasing, and different for every group
/// and partition so that an offset stored under the wrong key shows.
fn offset_for(group: usize, partition: i32, commit: usize) -> i64 {
    ((group as i64 * 1000 + i64::from(partition)) * 1_000_000) + commit as i64 + 1
}

/// What the members of one group have reached, shared by its members and
/// read by the main task once every group is stable.
#[derive(Debug, Clone)]
struct GroupProgress {
    first_join: Option<Instant>,
    /// Per member (by index): the generation its SyncGroup last succeeded in.
    synced: Vec<Option<i32>>,
    /// The generation every member synced in, and when the last one did.
    stable: Option<(i32, Instant)>,
    /// JoinGroup requests sent, MEMBER_ID_REQUIRED round trips included.
    joins: usize,
    /// Rebalances members learnt of from SyncGroup, and from Heartbeat.
    rejoins_after_sync: usize,
    rejoins_after_heartbeat: usize,
}

impl GroupProgress {
    fn new(members: usize) -> Self {
        Self {
            first_join: None,
            synced: vec![None; members],
            stable: None,
            joins: 0,
            rejoins_after_sync: 0,
            rejoins_after_heartbeat: 0,
        }
    }
}

/// Where the main task has let the members go; they wait for each step.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Phase {
    Connect,
    Join,
    Commit,
    Leave,
}

/// A member telling the main task it is done with a phase.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Milestone {
    Connected,
    Stable,
    Committed,
}

#[derive(Debug, Clone)]
struct MemberSpec {
    group: usize,
    index: usize,
    addr: SocketAddr,
    settings: Settings,
}

/// What one member measured.
#[derive(Debug, Default)]
struct MemberReport {
    commit_latencies: Vec<Duration>,
    partition_offsets: u64,
    heartbeats: u64,
}

/// A joined member's place in its group.
#[derive(Debug, Clone)]
struct Membership {
    member_id: StrBytes,
    generation_id: i32,
    partitions: Vec<i32>,
}

/// The figures of one run.
#[derive(Debug)]
struct Outcome {
    /// The first FindCoordinator, which creates `__consumer_offsets`.
    offsets_topic_created: Duration,
    joins: JoinFigures,
    join: Cost,
    commit: Cost,
    commit_wall: Duration,
    commit_latencies: Vec<Duration>,
    partition_offsets: u64,
    heartbeats: u64,
    offsets_verified: usize,
}

/// What the groups' progress says about the join phase.
#[derive(Debug, Default)]
struct JoinFigures {
    time_to_stable: Vec<Duration>,
    /// From the release until the last group was stable.
    all_stable: Duration,
    /// From the release to each group's first JoinGroup: FindCoordinator.
    first_join_after_release: Vec<Duration>,
    generations: Vec<i32>,
    joins: usize,
    rejoins_after_sync: usize,
    rejoins_after_heartbeat: usize,
    /// Groups where a member learnt of a rebalance only from a Heartbeat.
    groups_told_by_heartbeat: usize,
}

impl JoinFigures {
    fn gather(progress: &[Arc<watch::Sender<GroupProgress>>], released: Instant) -> Result<Self> {
        let mut figures = Self::default();
        for (group, progress) in progress.iter().enumerate() {
            let progress = progress.borrow();
            let (Some(first_join), Some((generation, stable_at))) =
                (progress.first_join, progress.stable)
            else {
                bail!(
                    "{} reported stable without a record of it: {progress:?}",
                    group_name(group)
                );
            };
            figures
                .time_to_stable
                .push(stable_at.duration_since(first_join));
            figures.all_stable = figures.all_stable.max(stable_at.duration_since(released));
            figures
                .first_join_after_release
                .push(first_join.duration_since(released));
            figures.generations.push(generation);
            figures.joins += progress.joins;
            figures.rejoins_after_sync += progress.rejoins_after_sync;
            figures.rejoins_after_heartbeat += progress.rejoins_after_heartbeat;
            figures.groups_told_by_heartbeat += usize::from(progress.rejoins_after_heartbeat > 0);
        }
        Ok(figures)
    }
}

async fn run_groups(addr: SocketAddr, broker_pid: u32, settings: Settings) -> Result<Outcome> {
    let mut admin = Connection::open(addr).await?;
    create_topic(&mut admin, settings.partitions).await?;
    let started = Instant::now();
    find_coordinator(&mut admin, &GroupId(StrBytes::from(group_name(0))), addr).await?;
    let offsets_topic_created = started.elapsed();

    let (phase_tx, phase_rx) = watch::channel(Phase::Connect);
    let (milestone_tx, mut milestones) = mpsc::unbounded_channel();
    let mut progress = Vec::with_capacity(settings.groups);
    let mut tasks = JoinSet::new();
    for group in 0..settings.groups {
        let (progress_tx, _) = watch::channel(GroupProgress::new(settings.members));
        let progress_tx = Arc::new(progress_tx);
        for index in 0..settings.members {
            let spec = MemberSpec {
                group,
                index,
                addr,
                settings,
            };
            tasks.spawn(member(
                spec,
                Arc::clone(&progress_tx),
                phase_rx.clone(),
                milestone_tx.clone(),
            ));
        }
        progress.push(progress_tx);
    }
    drop(milestone_tx);
    let members = settings.groups * settings.members;
    let mut waiter = Waiter {
        milestones: &mut milestones,
        tasks: &mut tasks,
        members,
    };
    waiter.all_reached(Milestone::Connected).await?;

    let join_meter = Meter::start(broker_pid)?;
    let released = Instant::now();
    phase_tx.send_replace(Phase::Join);
    waiter.all_reached(Milestone::Stable).await?;
    let join = join_meter.stop()?;

    let joins = JoinFigures::gather(&progress, released)?;

    let commit_meter = Meter::start(broker_pid)?;
    let commits_released = Instant::now();
    phase_tx.send_replace(Phase::Commit);
    waiter.all_reached(Milestone::Committed).await?;
    let commit_wall = commits_released.elapsed();
    let commit = commit_meter.stop()?;

    describe_groups(&mut admin, settings).await?;
    let offsets_verified = verify_offsets(&mut admin, settings).await?;

    phase_tx.send_replace(Phase::Leave);
    let mut commit_latencies = Vec::with_capacity(members * settings.commits);
    let (mut partition_offsets, mut heartbeats) = (0, 0);
    while let Some(done) = tokio::time::timeout(STALL_DEADLINE, tasks.join_next())
        .await
        .context("members did not leave their groups in time")?
    {
        let report = done.context("a member task panicked")??;
        commit_latencies.extend(report.commit_latencies);
        partition_offsets += report.partition_offsets;
        heartbeats += report.heartbeats;
    }
    Ok(Outcome {
        offsets_topic_created,
        joins,
        join,
        commit,
        commit_wall,
        commit_latencies,
        partition_offsets,
        heartbeats,
        offsets_verified,
    })
}

/// Waits for every member to report a milestone, failing as soon as one
/// member fails (dropping the task set then aborts the others).
#[derive(Debug)]
struct Waiter<'a> {
    milestones: &'a mut mpsc::UnboundedReceiver<Milestone>,
    tasks: &'a mut JoinSet<Result<MemberReport>>,
    members: usize,
}

impl Waiter<'_> {
    async fn all_reached(&mut self, milestone: Milestone) -> Result<()> {
        let mut reached = 0;
        while reached < self.members {
            let next = tokio::time::timeout(STALL_DEADLINE, async {
                tokio::select! {
                    got = self.milestones.recv() => Ok(got),
                    Some(done) = self.tasks.join_next() => Err(done),
                }
            })
            .await
            .with_context(|| {
                format!(
                    "stuck: {reached} of {} members reached {milestone:?}, none for {STALL_DEADLINE:?}",
                    self.members
                )
            })?;
            match next {
                Ok(Some(got)) if got == milestone => reached += 1,
                Ok(got) => bail!("a member reported {got:?} while waiting for {milestone:?}"),
                Err(done) => {
                    done.context("a member task panicked")??;
                    bail!("a member finished before {milestone:?}");
                }
            }
        }
        Ok(())
    }
}

async fn member(
    spec: MemberSpec,
    progress: Arc<watch::Sender<GroupProgress>>,
    mut phase: watch::Receiver<Phase>,
    milestones: mpsc::UnboundedSender<Milestone>,
) -> Result<MemberReport> {
    let group = group_name(spec.group);
    let mut member = Member {
        connection: Connection::open(spec.addr).await?,
        group_id: GroupId(StrBytes::from(group.clone())),
        spec,
        membership: None,
        last_heartbeat: Instant::now(),
        report: MemberReport::default(),
    };
    let _ = milestones.send(Milestone::Connected);
    member.wait_for(&mut phase, Phase::Join).await?;
    let membership = member
        .join(&progress)
        .await
        .with_context(|| format!("member {} of {group} joining", member.spec.index))?;
    member.membership = Some(membership.clone());
    let _ = milestones.send(Milestone::Stable);
    member.wait_for(&mut phase, Phase::Commit).await?;
    member
        .commit(&membership)
        .await
        .with_context(|| format!("member {} of {group} committing", member.spec.index))?;
    let _ = milestones.send(Milestone::Committed);
    member.wait_for(&mut phase, Phase::Leave).await?;
    member
        .leave(&membership)
        .await
        .with_context(|| format!("member {} of {group} leaving", member.spec.index))?;
    Ok(member.report)
}

#[derive(Debug)]
struct Member {
    connection: Connection,
    group_id: GroupId,
    spec: MemberSpec,
    membership: Option<Membership>,
    last_heartbeat: Instant,
    report: MemberReport,
}

impl Member {
    /// Waits for the main task to reach `until`, heartbeating meanwhile once
    /// in a group.
    async fn wait_for(&mut self, phase: &mut watch::Receiver<Phase>, until: Phase) -> Result<()> {
        loop {
            let due = self.last_heartbeat + self.spec.settings.heartbeat;
            tokio::select! {
                reached = async { phase.wait_for(|p| *p >= until).await.map(|_| ()) } => {
                    reached.context("the main task is gone")?;
                    return Ok(());
                }
                () = tokio::time::sleep_until(due.into()), if self.membership.is_some() => {
                    let error = self.heartbeat().await?;
                    ensure!(error == NONE, "heartbeat while waiting for {until:?}: error {error}");
                }
            }
        }
    }

    /// Joins until the whole group is stable in one generation.
    async fn join(&mut self, progress: &watch::Sender<GroupProgress>) -> Result<Membership> {
        find_coordinator(&mut self.connection, &self.group_id, self.spec.addr).await?;
        let mut member_id = StrBytes::default();
        loop {
            progress.send_modify(|p| {
                p.first_join.get_or_insert_with(Instant::now);
                p.joins += 1;
            });
            let joined = self.join_group(&member_id).await?;
            match joined.error_code {
                NONE => {}
                MEMBER_ID_REQUIRED if member_id.is_empty() => {
                    member_id = joined.member_id;
                    continue;
                }
                _ => bail!("JoinGroup failed: {joined:?}"),
            }
            ensure!(
                joined.member_id == member_id,
                "JoinGroup answered for member {:?}, sent {member_id:?}",
                joined.member_id
            );
            let generation_id = joined.generation_id;
            let assignments = if joined.leader == member_id {
                range_assignment(&joined.members, self.spec.settings.partitions)?
            } else {
                Vec::new()
            };
            let synced = self
                .sync_group(&member_id, generation_id, assignments)
                .await?;
            match synced.error_code {
                NONE => {}
                REBALANCE_IN_PROGRESS => {
                    progress.send_modify(|p| p.rejoins_after_sync += 1);
                    continue;
                }
                _ => bail!("SyncGroup in generation {generation_id} failed: {synced:?}"),
            }
            let partitions = own_partitions(&synced.assignment)?;
            ensure!(
                !partitions.is_empty(),
                "SyncGroup in generation {generation_id} assigned nothing: {synced:?}"
            );
            let index = self.spec.index;
            progress.send_modify(|p| {
                p.synced[index] = Some(generation_id);
                if p.stable.is_none() && p.synced.iter().all(|g| *g == Some(generation_id)) {
                    p.stable = Some((generation_id, Instant::now()));
                }
            });
            self.last_heartbeat = Instant::now();
            if self
                .await_group(progress, &member_id, generation_id)
                .await?
            {
                return Ok(Membership {
                    member_id,
                    generation_id,
                    partitions,
                });
            }
        }
    }

    /// After a successful SyncGroup: true once the whole group has synced
    /// in `generation_id`, false when a heartbeat says to rejoin.
    async fn await_group(
        &mut self,
        progress: &watch::Sender<GroupProgress>,
        member_id: &StrBytes,
        generation_id: i32,
    ) -> Result<bool> {
        let mut stable = progress.subscribe();
        loop {
            let due = self.last_heartbeat + self.spec.settings.heartbeat;
            tokio::select! {
                done = async {
                    stable
                        .wait_for(|p| p.stable.is_some_and(|(g, _)| g == generation_id))
                        .await
                        .map(|_| ())
                } => {
                    done.context("the group's progress is gone")?;
                    return Ok(true);
                }
                () = tokio::time::sleep_until(due.into()) => {
                    let error = self.heartbeat_as(member_id, generation_id).await?;
                    match error {
                        NONE => {}
                        REBALANCE_IN_PROGRESS => {
                            progress.send_modify(|p| p.rejoins_after_heartbeat += 1);
                            return Ok(false);
                        }
                        _ => bail!("Heartbeat in generation {generation_id} failed: error {error}"),
                    }
                }
            }
        }
    }

    async fn join_group(&mut self, member_id: &StrBytes) -> Result<JoinGroupResponse> {
        let request = JoinGroupRequest::default()
            .with_group_id(self.group_id.clone())
            .with_session_timeout_ms(SESSION_TIMEOUT_MS)
            .with_rebalance_timeout_ms(REBALANCE_TIMEOUT_MS)
            .with_member_id(member_id.clone())
            .with_protocol_type(StrBytes::from_static_str(PROTOCOL_TYPE))
            .with_protocols(vec![
                JoinGroupRequestProtocol::default()
                    .with_name(StrBytes::from_static_str(ASSIGNOR))
                    .with_metadata(subscription()?),
            ]);
        self.connection
            .call(ApiKey::JoinGroup, JOIN_GROUP_VERSION, &request)
            .await
    }

    async fn sync_group(
        &mut self,
        member_id: &StrBytes,
        generation_id: i32,
        assignments: Vec<SyncGroupRequestAssignment>,
    ) -> Result<SyncGroupResponse> {
        let request = SyncGroupRequest::default()
            .with_group_id(self.group_id.clone())
            .with_generation_id(generation_id)
            .with_member_id(member_id.clone())
            .with_protocol_type(Some(StrBytes::from_static_str(PROTOCOL_TYPE)))
            .with_protocol_name(Some(StrBytes::from_static_str(ASSIGNOR)))
            .with_assignments(assignments);
        self.connection
            .call(ApiKey::SyncGroup, SYNC_GROUP_VERSION, &request)
            .await
    }

    async fn heartbeat(&mut self) -> Result<i16> {
        let Some(membership) = self.membership.clone() else {
            bail!("a heartbeat outside the group");
        };
        self.heartbeat_as(&membership.member_id, membership.generation_id)
            .await
    }

    async fn heartbeat_as(&mut self, member_id: &StrBytes, generation_id: i32) -> Result<i16> {
        let request = HeartbeatRequest::default()
            .with_group_id(self.group_id.clone())
            .with_generation_id(generation_id)
            .with_member_id(member_id.clone());
        let response: HeartbeatResponse = self
            .connection
            .call(ApiKey::Heartbeat, HEARTBEAT_VERSION, &request)
            .await?;
        self.last_heartbeat = Instant::now();
        self.report.heartbeats += 1;
        Ok(response.error_code)
    }

    /// Commits the member's partitions `commits` times, one request at a
    /// time, heartbeating whenever a heartbeat is due.
    async fn commit(&mut self, membership: &Membership) -> Result<()> {
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
            let partitions = membership
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
                .with_generation_id_or_member_epoch(membership.generation_id)
                .with_member_id(membership.member_id.clone())
                .with_topics(vec![
                    OffsetCommitRequestTopic::default()
                        .with_name(topic_name())
                        .with_partitions(partitions),
                ]);
            let sent = Instant::now();
            let response: OffsetCommitResponse = self
                .connection
                .call(ApiKey::OffsetCommit, OFFSET_COMMIT_VERSION, &request)
                .await?;
            self.report.commit_latencies.push(sent.elapsed());
            let answered: Vec<_> = response
                .topics
                .iter()
                .flat_map(|t| t.partitions.iter().map(move |p| (&t.name, p)))
                .collect();
            ensure!(
                answered.len() == membership.partitions.len()
                    && answered
                        .iter()
                        .all(|(name, p)| name.0.as_str() == TOPIC && p.error_code == NONE),
                "OffsetCommit {commit} of partitions {:?} failed: {response:?}",
                membership.partitions
            );
            self.report.partition_offsets += answered.len() as u64;
        }
        Ok(())
    }

    async fn leave(&mut self, membership: &Membership) -> Result<()> {
        let request = LeaveGroupRequest::default()
            .with_group_id(self.group_id.clone())
            .with_members(vec![
                MemberIdentity::default()
                    .with_member_id(membership.member_id.clone())
                    .with_reason(Some(StrBytes::from_static_str("group_bench done"))),
            ]);
        let response: LeaveGroupResponse = self
            .connection
            .call(ApiKey::LeaveGroup, LEAVE_GROUP_VERSION, &request)
            .await?;
        ensure!(
            response.error_code == NONE && response.members.iter().all(|m| m.error_code == NONE),
            "LeaveGroup failed: {response:?}"
        );
        self.membership = None;
        Ok(())
    }
}

/// The JoinGroup metadata of a consumer subscribed to the topic: the
/// ConsumerProtocol version, then the subscription.
fn subscription() -> Result<Bytes> {
    let subscription =
        ConsumerProtocolSubscription::default().with_topics(vec![StrBytes::from_static_str(TOPIC)]);
    let mut buf = BytesMut::new();
    buf.put_i16(CONSUMER_PROTOCOL_VERSION);
    subscription.encode(&mut buf, CONSUMER_PROTOCOL_VERSION)?;
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
            let mut buf = BytesMut::new();
            buf.put_i16(CONSUMER_PROTOCOL_VERSION);
            assignment.encode(&mut buf, CONSUMER_PROTOCOL_VERSION)?;
            Ok(SyncGroupRequestAssignment::default()
                .with_member_id(id.clone())
                .with_assignment(buf.freeze()))
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
async fn find_coordinator(
    connection: &mut Connection,
    group_id: &GroupId,
    addr: SocketAddr,
) -> Result<()> {
    let request = FindCoordinatorRequest::default()
        .with_key(group_id.0.clone())
        .with_key_type(GROUP_KEY_TYPE);
    let response: FindCoordinatorResponse = connection
        .call(ApiKey::FindCoordinator, FIND_COORDINATOR_VERSION, &request)
        .await?;
    ensure!(
        response.error_code == NONE && response.port == i32::from(addr.port()),
        "FindCoordinator for {:?} does not name this broker ({addr}): {response:?}",
        group_id.0
    );
    Ok(())
}

async fn create_topic(connection: &mut Connection, partitions: usize) -> Result<()> {
    let request = CreateTopicsRequest::default()
        .with_topics(vec![
            CreatableTopic::default()
                .with_name(topic_name())
                .with_num_partitions(i32::try_from(partitions)?)
                .with_replication_factor(1),
        ])
        .with_timeout_ms(30_000);
    let response: CreateTopicsResponse = connection
        .call(ApiKey::CreateTopics, CREATE_TOPICS_VERSION, &request)
        .await?;
    ensure!(
        response.topics.len() == 1 && response.topics.iter().all(|t| t.error_code == NONE),
        "cannot create topic {TOPIC}: {response:?}"
    );
    Ok(())
}

/// Checks that every group is Stable with all its members.
async fn describe_groups(connection: &mut Connection, settings: Settings) -> Result<()> {
    let groups: Vec<GroupId> = (0..settings.groups)
        .map(|g| GroupId(StrBytes::from(group_name(g))))
        .collect();
    let request = DescribeGroupsRequest::default().with_groups(groups.clone());
    let response: DescribeGroupsResponse = connection
        .call(ApiKey::DescribeGroups, DESCRIBE_GROUPS_VERSION, &request)
        .await?;
    ensure!(
        response.groups.len() == groups.len(),
        "DescribeGroups answered for {} of {} groups",
        response.groups.len(),
        groups.len()
    );
    for (described, asked) in response.groups.iter().zip(&groups) {
        ensure!(
            described.group_id == *asked
                && described.error_code == NONE
                && described.group_state.as_str() == "Stable"
                && described.members.len() == settings.members
                && described.protocol_type.as_str() == PROTOCOL_TYPE
                && described.protocol_data.as_str() == ASSIGNOR,
            "{} is not Stable with {} {PROTOCOL_TYPE}/{ASSIGNOR} members: group {:?}, error {}, state {:?}, {} members, protocol {:?}/{:?}",
            asked.0,
            settings.members,
            described.group_id.0,
            described.error_code,
            described.group_state,
            described.members.len(),
            described.protocol_type,
            described.protocol_data,
        );
    }
    Ok(())
}

/// Checks with one OffsetFetch of all groups that every partition holds
/// the last offset committed; returns how many offsets it checked.
async fn verify_offsets(connection: &mut Connection, settings: Settings) -> Result<usize> {
    let partitions: Vec<i32> = (0..settings.partitions as i32).collect();
    let groups = (0..settings.groups)
        .map(|g| {
            OffsetFetchRequestGroup::default()
                .with_group_id(GroupId(StrBytes::from(group_name(g))))
                .with_topics(Some(vec![
                    OffsetFetchRequestTopics::default()
                        .with_name(topic_name())
                        .with_partition_indexes(partitions.clone()),
                ]))
        })
        .collect();
    let request = OffsetFetchRequest::default().with_groups(groups);
    let response: OffsetFetchResponse = connection
        .call(ApiKey::OffsetFetch, OFFSET_FETCH_VERSION, &request)
        .await?;
    ensure!(
        response.groups.len() == settings.groups,
        "OffsetFetch answered for {} of {} groups",
        response.groups.len(),
        settings.groups
    );
    let mut verified = 0;
    let mut wrong = Vec::new();
    for (group, fetched) in response.groups.iter().enumerate() {
        let name = group_name(group);
        ensure!(
            fetched.group_id.0.as_str() == name && fetched.error_code == NONE,
            "OffsetFetch of {name}: group {:?}, error {}",
            fetched.group_id.0,
            fetched.error_code
        );
        let mut seen = Vec::new();
        for topic in &fetched.topics {
            for p in &topic.partitions {
                let expected = offset_for(group, p.partition_index, settings.commits - 1);
                if topic.name.0.as_str() != TOPIC
                    || p.error_code != NONE
                    || p.committed_offset != expected
                {
                    wrong.push(format!(
                        "{name} {}-{}: offset {} (expected {expected}), error {}",
                        topic.name.0, p.partition_index, p.committed_offset, p.error_code
                    ));
                }
                seen.push(p.partition_index);
                verified += 1;
            }
        }
        seen.sort_unstable();
        if seen != partitions {
            wrong.push(format!(
                "{name}: OffsetFetch returned partitions {seen:?}, asked {partitions:?}"
            ));
        }
    }
    if !wrong.is_empty() {
        bail!(
            "OffsetFetch does not return the last committed offsets ({} wrong):\n  {}",
            wrong.len(),
            wrong.join("\n  ")
        );
    }
    Ok(verified)
}

fn topic_name() -> TopicName {
    TopicName(StrBytes::from_static_str(TOPIC))
}

/// One client connection, one request in flight at a time.
#[derive(Debug)]
struct Connection {
    stream: TcpStream,
    buf: BytesMut,
    next_correlation_id: i32,
}

impl Connection {
    async fn open(addr: SocketAddr) -> Result<Self> {
        let stream = TcpStream::connect(addr)
            .await
            .with_context(|| format!("cannot connect to the broker at {addr}"))?;
        stream.set_nodelay(true)?;
        Ok(Self {
            stream,
            buf: BytesMut::with_capacity(4096),
            next_correlation_id: 0,
        })
    }

    /// Sends a request and reads its response.
    async fn call<Req, Resp>(
        &mut self,
        api_key: ApiKey,
        version: i16,
        request: &Req,
    ) -> Result<Resp>
    where
        Req: Encodable + HeaderVersion,
        Resp: Decodable + HeaderVersion,
    {
        let correlation_id = self.next_correlation_id;
        self.next_correlation_id = self.next_correlation_id.wrapping_add(1);
        let frame = request_frame(api_key, version, correlation_id, request)
            .with_context(|| format!("encoding {api_key:?} v{version}"))?;
        self.stream
            .write_all(&frame)
            .await
            .with_context(|| format!("sending {api_key:?} v{version}"))?;
        self.read_response(version, correlation_id)
            .await
            .with_context(|| format!("reading the {api_key:?} v{version} response"))
    }

    async fn read_response<R: Decodable + HeaderVersion>(
        &mut self,
        version: i16,
        correlation_id: i32,
    ) -> Result<R> {
        self.fill(4).await?;
        let size =
            u32::from_be_bytes([self.buf[0], self.buf[1], self.buf[2], self.buf[3]]) as usize;
        ensure!(
            size <= MAX_RESPONSE_BYTES,
            "response size prefix {size} is out of range"
        );
        self.fill(4 + size).await?;
        let mut frame = self.buf.split_to(4 + size).freeze();
        frame.advance(4);
        let header = ResponseHeader::decode(&mut frame, R::header_version(version))?;
        ensure!(
            header.correlation_id == correlation_id,
            "response to correlation id {}, expected {correlation_id}",
            header.correlation_id
        );
        R::decode(&mut frame, version)
    }

    async fn fill(&mut self, len: usize) -> Result<()> {
        if self.buf.len() < len {
            self.buf.reserve(len - self.buf.len());
        }
        while self.buf.len() < len {
            if self.stream.read_buf(&mut self.buf).await? == 0 {
                bail!("the broker closed the connection");
            }
        }
        Ok(())
    }
}

/// A whole request frame: size prefix, header, body.
fn request_frame<R: Encodable + HeaderVersion>(
    api_key: ApiKey,
    version: i16,
    correlation_id: i32,
    body: &R,
) -> Result<Vec<u8>> {
    let header = RequestHeader::default()
        .with_request_api_key(api_key as i16)
        .with_request_api_version(version)
        .with_correlation_id(correlation_id)
        .with_client_id(Some(StrBytes::from_static_str(CLIENT_ID)));
    let mut frame = vec![0u8; 4];
    header.encode(&mut frame, R::header_version(version))?;
    body.encode(&mut frame, version)?;
    let size = i32::try_from(frame.len() - 4).context("request too large")?;
    frame[..4].copy_from_slice(&size.to_be_bytes());
    Ok(frame)
}

fn report(settings: Settings, outcome: &Outcome, shutdown: Duration) {
    let members = settings.groups * settings.members;
    let commits = outcome.commit_latencies.len();
    let commit_seconds = outcome.commit_wall.as_secs_f64();
    let mut time_to_stable = outcome.joins.time_to_stable.clone();
    time_to_stable.sort_unstable();
    let mut latencies = outcome.commit_latencies.clone();
    latencies.sort_unstable();
    let mut first_joins = outcome.joins.first_join_after_release.clone();
    first_joins.sort_unstable();
    let mut generations = outcome.joins.generations.clone();
    generations.sort_unstable();
    let ms = |d: Option<&Duration>| d.map_or(f64::NAN, |d| d.as_secs_f64() * 1e3);

    println!();
    println!(
        "runnel consumer group benchmark: {} groups x {} members = {members} members (one connection each, all released at once), \
         one topic of {} partitions, range assignor",
        settings.groups, settings.members, settings.partitions
    );
    println!(
        "(group.initial.rebalance.delay.ms = {} ms; Kafka's default is {KAFKA_INITIAL_DELAY_MS} ms, which adds that much to a new group's first rebalance;",
        settings.initial_delay_ms
    );
    println!(
        " heartbeat every {} ms; broker and load generator share {} cores)",
        settings.heartbeat.as_millis(),
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    println!(
        "join:   time to stable per group (first JoinGroup to last SyncGroup answer): min {:.1} ms, p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        ms(time_to_stable.first()),
        ms(percentile(&time_to_stable, 0.50)),
        ms(percentile(&time_to_stable, 0.99)),
        ms(time_to_stable.last()),
    );
    println!(
        "        all {} groups stable {:.1} ms after release; generations per group: min {}, p50 {}, max {}; \
         {} JoinGroup requests ({:.2} per member)",
        settings.groups,
        outcome.joins.all_stable.as_secs_f64() * 1e3,
        generations.first().copied().unwrap_or_default(),
        percentile(&generations, 0.50).copied().unwrap_or_default(),
        generations.last().copied().unwrap_or_default(),
        outcome.joins.joins,
        outcome.joins.joins as f64 / members as f64,
    );
    println!(
        "        rejoins told by SyncGroup: {}; by Heartbeat: {}, in {} groups (each waits up to a heartbeat interval)",
        outcome.joins.rejoins_after_sync,
        outcome.joins.rejoins_after_heartbeat,
        outcome.joins.groups_told_by_heartbeat,
    );
    println!(
        "        first JoinGroup of a group {:.1} to {:.1} ms after release (FindCoordinator first); \
         broker {:.2} CPU s, load generator {:.2} CPU s, machine {:.0}% busy",
        ms(first_joins.first()),
        ms(first_joins.last()),
        outcome.join.broker_cpu_seconds,
        outcome.join.client_cpu_seconds,
        100.0 * outcome.join.machine_busy,
    );
    println!(
        "        (before the release, the first FindCoordinator created __consumer_offsets in {:.1} ms)",
        outcome.offsets_topic_created.as_secs_f64() * 1e3
    );
    println!(
        "commit: {commits} OffsetCommit v8 requests ({} per member, one at a time per member) in {commit_seconds:.2} s: \
         {:.0} commits/s, {:.0} partition offsets/s",
        settings.commits,
        commits as f64 / commit_seconds,
        outcome.partition_offsets as f64 / commit_seconds,
    );
    println!(
        "        latency p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms; broker {:.2} CPU s ({:.0} us per commit), load generator {:.2} CPU s, machine {:.0}% busy",
        ms(percentile(&latencies, 0.50)),
        ms(percentile(&latencies, 0.99)),
        ms(latencies.last()),
        outcome.commit.broker_cpu_seconds,
        outcome.commit.broker_cpu_seconds / commits as f64 * 1e6,
        outcome.commit.client_cpu_seconds,
        100.0 * outcome.commit.machine_busy,
    );
    println!(
        "verified: DescribeGroups shows every group Stable with {} members; OffsetFetch v8 returns the last committed offset for all {} group partitions; \
         {} heartbeats; broker stopped (SIGTERM) in {:.2} s",
        settings.members,
        outcome.offsets_verified,
        outcome.heartbeats,
        shutdown.as_secs_f64()
    );
}

/// The nearest-rank percentile of sorted values.
fn percentile<T>(sorted: &[T], q: f64) -> Option<&T> {
    let rank = (q * sorted.len() as f64).ceil() as usize;
    sorted.get(rank.clamp(1, sorted.len().max(1)) - 1)
}

/// The `runnel serve` child process, killed if dropped while running.
#[derive(Debug)]
struct BrokerProcess {
    child: Child,
    addr: SocketAddr,
    exited: bool,
}

impl BrokerProcess {
    fn start(log_dir: &Path, overrides: &[String]) -> Result<Self> {
        let binary = std::env::var_os("RUNNEL_BENCH_BINARY")
            .unwrap_or_else(|| env!("CARGO_BIN_EXE_runnel").into());
        let mut command = Command::new(&binary);
        command
            .arg("serve")
            .arg("--log-dirs")
            .arg(log_dir)
            .args(["--listeners", "PLAINTEXT://127.0.0.1:0"])
            .args(["--override", "metrics.listen=127.0.0.1:0"]);
        for value in overrides {
            command.arg("--override").arg(value);
        }
        for (key, _) in std::env::vars() {
            if key.starts_with("RUNNEL_") {
                command.env_remove(key);
            }
        }
        let mut child = command
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .with_context(|| format!("cannot start {}", Path::new(&binary).display()))?;
        let stdout = child.stdout.take().context("no stdout pipe")?;
        let (ready_tx, ready) = std::sync::mpsc::channel();
        // Keeps reading after the ready line so the broker never blocks on
        // a full pipe.
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if let Some(rest) = line.strip_prefix("runnel: listening on ") {
                    let addr = rest.split(' ').next().unwrap_or_default().to_string();
                    let _ = ready_tx.send(addr);
                }
            }
        });
        let mut broker = Self {
            child,
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            exited: false,
        };
        let addr = ready
            .recv_timeout(READY_DEADLINE)
            .context("no `runnel: listening on` line from the broker")?;
        broker.addr = addr
            .parse()
            .with_context(|| format!("listener address {addr:?}"))?;
        eprintln!(
            "group_bench: runnel serve (pid {}) listening on {}",
            broker.pid(),
            broker.addr
        );
        Ok(broker)
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends SIGTERM and waits for a clean exit; returns how long it took.
    fn stop(&mut self) -> Result<Duration> {
        let started = Instant::now();
        let status = Command::new("kill")
            .arg("-TERM")
            .arg(self.pid().to_string())
            .status()
            .context("cannot run kill")?;
        ensure!(
            status.success(),
            "kill -TERM {} failed: {status}",
            self.pid()
        );
        loop {
            if let Some(status) = self.child.try_wait()? {
                self.exited = true;
                ensure!(status.success(), "the broker exited with {status}");
                return Ok(started.elapsed());
            }
            if started.elapsed() > EXIT_DEADLINE {
                bail!("the broker did not exit within {EXIT_DEADLINE:?} of SIGTERM");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for BrokerProcess {
    fn drop(&mut self) {
        if !self.exited {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// The CPU readings at the start of a phase.
#[derive(Debug)]
struct Meter {
    broker_pid: u32,
    broker_cpu_seconds: f64,
    client_cpu_seconds: f64,
    machine: MachineTicks,
}

/// CPU time spent and machine load over one phase.
#[derive(Debug, Clone, Copy)]
struct Cost {
    broker_cpu_seconds: f64,
    client_cpu_seconds: f64,
    /// Share of the whole machine's CPU time that was not idle.
    machine_busy: f64,
}

impl Meter {
    fn start(broker_pid: u32) -> Result<Self> {
        Ok(Self {
            broker_pid,
            broker_cpu_seconds: cpu_seconds(&broker_pid.to_string())?,
            client_cpu_seconds: cpu_seconds("self")?,
            machine: MachineTicks::read()?,
        })
    }

    fn stop(self) -> Result<Cost> {
        Ok(Cost {
            broker_cpu_seconds: cpu_seconds(&self.broker_pid.to_string())?
                - self.broker_cpu_seconds,
            client_cpu_seconds: cpu_seconds("self")? - self.client_cpu_seconds,
            machine_busy: MachineTicks::read()?.busy_since(self.machine),
        })
    }
}

/// User plus system CPU time of a process (all its threads), from
/// /proc/<pid>/stat; `pid` may be `self`.
fn cpu_seconds(pid: &str) -> Result<f64> {
    let path = format!("/proc/{pid}/stat");
    let stat = std::fs::read_to_string(&path).with_context(|| format!("cannot read {path}"))?;
    // Fields after the command name, which is in parentheses and may hold
    // spaces: state is field 3, utime 14 and stime 15 (1-based).
    let after_comm = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest)
        .with_context(|| format!("{path} has no command name"))?;
    let fields: Vec<&str> = after_comm.split_whitespace().collect();
    let ticks = |field: usize| -> Result<f64> {
        let value = fields
            .get(field - 3)
            .with_context(|| format!("{path} is too short"))?;
        Ok(value.parse::<u64>()? as f64)
    };
    Ok((ticks(14)? + ticks(15)?) / CLOCK_TICKS_PER_SECOND)
}

/// All CPUs' ticks from the first line of /proc/stat.
#[derive(Debug, Clone, Copy)]
struct MachineTicks {
    total: u64,
    idle: u64,
}

impl MachineTicks {
    fn read() -> Result<Self> {
        let stat = std::fs::read_to_string("/proc/stat").context("cannot read /proc/stat")?;
        // cpu user nice system idle iowait irq softirq steal guest guest_nice;
        // guest time is already counted in user, so it is left out.
        let ticks: Vec<u64> = stat
            .lines()
            .next()
            .and_then(|line| line.strip_prefix("cpu "))
            .context("/proc/stat does not start with the cpu line")?
            .split_whitespace()
            .take(8)
            .map(str::parse)
            .collect::<Result<_, _>>()?;
        ensure!(ticks.len() == 8, "/proc/stat's cpu line is too short");
        Ok(Self {
            total: ticks.iter().sum(),
            idle: ticks[3] + ticks[4],
        })
    }

    fn busy_since(self, before: Self) -> f64 {
        let total = self.total.saturating_sub(before.total);
        let idle = self.idle.saturating_sub(before.idle);
        if total == 0 {
            return 0.0;
        }
        total.saturating_sub(idle) as f64 / total as f64
    }
}
