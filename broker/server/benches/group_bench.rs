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
//!
//! Code: one member's side is `group/member.rs`; what this bench shares
//! with broker_bench (the broker process, CPU meters, Kafka frames) is
//! `support/`.

#[allow(dead_code)] // each bench uses a part of the support
#[path = "support/mod.rs"]
mod support;

#[path = "group/member.rs"]
mod member;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use kafka_protocol::messages::describe_groups_request::DescribeGroupsRequest;
use kafka_protocol::messages::offset_fetch_request::{
    OffsetFetchRequest, OffsetFetchRequestGroup, OffsetFetchRequestTopics,
};
use kafka_protocol::messages::{GroupId, TopicName};
use kafka_protocol::protocol::StrBytes;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;

use member::{MemberReport, MemberSpec, find_coordinator};
use support::cpu::{Cost, Meter};
use support::process::BrokerProcess;
use support::wire::{Connection, create_topic};
use support::{env_ms, env_positive};

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

const OFFSET_FETCH_VERSION: i16 = 8;
const DESCRIBE_GROUPS_VERSION: i16 = 5;

const NONE: i16 = 0;

const TOPIC: &str = "group-bench";
const PROTOCOL_TYPE: &str = "consumer";
const ASSIGNOR: &str = "range";
const BENCH: &str = "group_bench";
const CLIENT_ID: &str = "group-bench";
/// The longest wait for the next member to reach a milestone before the run
/// is declared stuck; more than the rebalance timeout.
const STALL_DEADLINE: Duration = Duration::from_secs(120);

fn main() {
    support::exit_on_error(BENCH, run());
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
    let dir = support::temp_dir("runnel-group-bench-")?;
    let overrides = [format!(
        "group.initial.rebalance.delay.ms={}",
        settings.initial_delay_ms
    )];
    let mut broker = BrokerProcess::start(BENCH, &dir.path().join("data"), &overrides)?;
    let runtime = support::load_generator_runtime()?;
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
    let (groups, members, commits) = if support::full_size() {
        (DEFAULT_GROUPS, DEFAULT_MEMBERS, DEFAULT_COMMITS)
    } else {
        (SMOKE_TEST_GROUPS, SMOKE_TEST_MEMBERS, SMOKE_TEST_COMMITS)
    };
    let members = env_positive("RUNNEL_BENCH_MEMBERS", members)?;
    let settings = Settings {
        groups: env_positive("RUNNEL_BENCH_GROUPS", groups)?,
        members,
        commits: env_positive("RUNNEL_BENCH_COMMITS", commits)?,
        partitions: env_positive("RUNNEL_BENCH_PARTITIONS", DEFAULT_PARTITIONS.max(members))?,
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

fn group_name(group: usize) -> String {
    format!("group-bench-{group:04}")
}

fn group_id(group: usize) -> GroupId {
    GroupId(StrBytes::from(group_name(group)))
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

/// The figures of one run.
#[derive(Debug)]
struct Outcome {
    /// The first FindCoordinator, which creates `__consumer_offsets`.
    offsets_topic_created: Duration,
    joins: JoinFigures,
    join: Cost,
    commit: Cost,
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
    let mut admin = Connection::open(addr, CLIENT_ID).await?;
    create_topic(&mut admin, TOPIC, i32::try_from(settings.partitions)?).await?;
    let started = Instant::now();
    find_coordinator(&mut admin, &group_id(0), addr).await?;
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
            tasks.spawn(member::run(
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
    phase_tx.send_replace(Phase::Commit);
    waiter.all_reached(Milestone::Committed).await?;
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

/// Checks that every group is Stable with all its members.
async fn describe_groups(connection: &mut Connection, settings: Settings) -> Result<()> {
    let groups: Vec<GroupId> = (0..settings.groups).map(group_id).collect();
    let request = DescribeGroupsRequest::default().with_groups(groups.clone());
    let response = connection.call(DESCRIBE_GROUPS_VERSION, &request).await?;
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
                .with_group_id(group_id(g))
                .with_topics(Some(vec![
                    OffsetFetchRequestTopics::default()
                        .with_name(topic_name())
                        .with_partition_indexes(partitions.clone()),
                ]))
        })
        .collect();
    let request = OffsetFetchRequest::default().with_groups(groups);
    let response = connection.call(OFFSET_FETCH_VERSION, &request).await?;
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

fn report(settings: Settings, outcome: &Outcome, shutdown: Duration) {
    let members = settings.groups * settings.members;
    let commits = outcome.commit_latencies.len();
    let commit_seconds = outcome.commit.wall.as_secs_f64();
    let time_to_stable = sorted(&outcome.joins.time_to_stable);
    let latencies = sorted(&outcome.commit_latencies);
    let first_joins = sorted(&outcome.joins.first_join_after_release);
    let generations = sorted(&outcome.joins.generations);
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

fn sorted<T: Ord + Clone>(values: &[T]) -> Vec<T> {
    let mut sorted = values.to_vec();
    sorted.sort_unstable();
    sorted
}

/// The nearest-rank percentile of sorted values.
fn percentile<T>(sorted: &[T], q: f64) -> Option<&T> {
    let rank = (q * sorted.len() as f64).ceil() as usize;
    sorted.get(rank.clamp(1, sorted.len().max(1)) - 1)
}
