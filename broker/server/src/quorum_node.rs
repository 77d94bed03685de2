//! Starts this node's part of the KRaft quorum (`process.roles` set): the
//! quorum driver on the CONTROLLER listener over `__cluster_metadata-0`
//! in `metadata.log.dir`, with its `quorum-state` file beside the log, as
//! Kafka lays them out.
//!
//! Combined nodes (`process.roles=broker,controller`) are voters and
//! brokers; controller-only nodes (`process.roles=controller`) are voters
//! that never register as brokers (they serve no clients and hold no
//! partitions); broker-only nodes (`process.roles=broker`) are observers
//! that fetch the log from the voters and register as brokers.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use kafka_protocol::messages::BrokerId;
use kafka_protocol::messages::broker_heartbeat_request::BrokerHeartbeatRequest;
use runnel_log::{LoadState, LogConfig, LogManager, PartitionLog, TopicPartition};
use runnel_quorum::disk_log::DiskLog;
use runnel_quorum::wire::{Endpoint, WireContext};
use runnel_quorum::{
    CommittedFeed, ControllerClient, ControllerRequest, DriverConfig, DriverHooks, QuorumDriver,
    quorum_state_file,
};
use runnel_raft::{Entry, NodeId, RaftConfig};
use tokio::net::TcpListener;
use tokio::sync::mpsc;

use crate::cluster_metadata::METADATA_TOPIC;
use crate::config::BrokerConfig;
use crate::config::QuorumConfig;

/// Requests on the controller listener waiting for the broker.
const CONTROLLER_QUEUE: usize = 256;

/// A running quorum node and what the broker takes from it.
#[derive(Debug)]
pub struct QuorumNode {
    pub driver: QuorumDriver,
    /// Requests to the active controller (registration, forwarding).
    pub client: Arc<ControllerClient>,
    /// Committed entries, from offset 0, to replay into the image.
    pub committed: mpsc::UnboundedReceiver<Vec<Entry>>,
    /// Requests on the CONTROLLER listener that are not the quorum's.
    pub controller_requests: mpsc::Receiver<ControllerRequest>,
    /// Where the controller listener is bound, on a voter.
    pub controller_addr: Option<SocketAddr>,
}

/// Starts the driver (see the module doc). `manager` hands over the
/// metadata log when it sits in a log dir.
pub async fn start(
    config: &BrokerConfig,
    quorum: &QuorumConfig,
    manager: &LogManager,
    now_ms: i64,
) -> Result<QuorumNode> {
    if quorum.voters.is_empty() {
        bail!(
            "controller.quorum.voters is empty: a Runnel cluster needs its static voters listed (controller.quorum.bootstrap.servers alone, KIP-853, is not supported yet)"
        );
    }
    // A voter serves the quorum on its controller listener. A broker-only
    // node is an observer: it fetches from the voters and nobody sends it
    // quorum requests, so its driver listens on a loopback port alone.
    let (listener, listener_name, advertised_host) = match config.controller_listener() {
        Some(listener_config) => {
            let listener = TcpListener::bind((
                listener_config.address.host.as_str(),
                listener_config.address.port,
            ))
            .await
            .with_context(|| {
                format!("cannot listen on {listener_config} (the controller listener)")
            })?;
            let advertised = config
                .advertised_controller_listener()
                .unwrap_or(listener_config);
            (
                listener,
                listener_config.name.clone(),
                advertised.address.host.clone(),
            )
        }
        None => {
            let listener = TcpListener::bind(("127.0.0.1", 0))
                .await
                .context("cannot listen on a loopback port for the quorum driver")?;
            let name = quorum
                .controller_listener_names
                .first()
                .cloned()
                .unwrap_or_else(|| "CONTROLLER".into());
            (listener, name, "127.0.0.1".to_string())
        }
    };
    let controller_addr = listener
        .local_addr()
        .context("controller listener address")?;

    let mut voters: BTreeMap<NodeId, SocketAddr> = BTreeMap::new();
    for voter in &quorum.voters {
        let addr = tokio::net::lookup_host((voter.host.as_str(), voter.port))
            .await
            .ok()
            .and_then(|mut addrs| addrs.next())
            .with_context(|| {
                format!(
                    "cannot resolve voter {}@{}:{} of controller.quorum.voters",
                    voter.id, voter.host, voter.port
                )
            })?;
        voters.insert(voter.id, addr);
    }
    let node_id = config.node_id;
    let voter_ids: Vec<NodeId> = voters.keys().copied().collect();

    let metadata_dir = config.metadata_log_dir().to_path_buf();
    let log = open_metadata_log(manager, &metadata_dir, now_ms)?;
    let log = DiskLog::new(log, voter_ids.clone()).context("cannot open the metadata log")?;

    let mut raft = RaftConfig::new(node_id, voter_ids.iter().copied());
    raft.election_timeout_ms = quorum.election_timeout_ms;
    raft.election_backoff_max_ms = quorum.election_backoff_max_ms;
    raft.fetch_timeout_ms = quorum.fetch_timeout_ms;
    raft.request_timeout_ms = quorum.request_timeout_ms;
    raft.fetch_backoff_ms = CAUGHT_UP_FETCH_INTERVAL.as_millis() as u64;
    let wire = WireContext {
        cluster_id: config.cluster_id().to_owned(),
        local_id: node_id,
        voters: voter_ids,
        endpoints: vec![Endpoint {
            listener: listener_name,
            host: advertised_host,
            port: controller_addr.port(),
        }],
    };
    let peers = voters
        .iter()
        .filter(|(id, _)| **id != node_id)
        .map(|(id, addr)| (*id, *addr))
        .collect();
    let seed = rand_seed(node_id);
    let driver_config = DriverConfig {
        raft,
        wire,
        peers,
        seed,
    };
    let (committed_tx, committed) = mpsc::unbounded_channel();
    let (requests_tx, controller_requests) = mpsc::channel(CONTROLLER_QUEUE);
    let hooks = DriverHooks {
        committed: Some(CommittedFeed {
            from: 0,
            sender: committed_tx,
        }),
        controller_requests: Some(requests_tx),
    };
    let driver = QuorumDriver::start_with_hooks(
        driver_config,
        listener,
        log,
        quorum_state_file::path_in(&metadata_dir),
        hooks,
    )
    .context("cannot start the quorum driver")?;
    let client = Arc::new(ControllerClient::new(
        format!("runnel-broker-{node_id}"),
        voters,
        driver.handle().watch_status(),
    ));
    tracing::info!(
        node = node_id,
        controller_listener = %controller_addr,
        metadata_log_dir = %metadata_dir.display(),
        "started the metadata quorum"
    );
    Ok(QuorumNode {
        driver,
        client,
        committed,
        controller_requests,
        controller_addr: quorum.roles.controller.then_some(controller_addr),
    })
}

/// `__cluster_metadata-0`, taken from the log manager when it opened it
/// (it is in a log dir), else opened in `metadata_dir`.
fn open_metadata_log(
    manager: &LogManager,
    metadata_dir: &Path,
    now_ms: i64,
) -> Result<PartitionLog> {
    let tp = TopicPartition::new(METADATA_TOPIC, 0);
    if let Some(log) = manager.take(&tp) {
        return Ok(log);
    }
    let dir = metadata_dir.join(tp.dir_name());
    std::fs::create_dir_all(&dir)
        .with_context(|| format!("cannot create the metadata log dir {}", dir.display()))?;
    PartitionLog::open(&dir, LogConfig::default(), LoadState::default(), now_ms)
        .with_context(|| format!("cannot open the metadata log in {}", dir.display()))
}

/// The election timer's seed: differs per node and per start.
fn rand_seed(node_id: NodeId) -> u64 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or(Duration::ZERO)
        .as_nanos() as u64;
    nanos ^ (node_id as u64).rotate_left(32)
}

/// The broker's tasks on a quorum node, ended by dropping it.
#[derive(Debug)]
pub struct QuorumTasks {
    pub driver: QuorumDriver,
    tasks: tokio::task::JoinSet<()>,
    /// Registers this broker and heartbeats: stopped first at shutdown.
    registration: tokio::task::JoinHandle<()>,
    /// The leaders' ISR changes and their lag check, and the controller's
    /// own leader elections: stopped with it.
    isr: tokio::task::JoinSet<()>,
    client: Arc<ControllerClient>,
    /// Fires when the image can no longer follow the log; `None` once it
    /// answered (a oneshot must not be polled again).
    pub replay_failed: Option<tokio::sync::oneshot::Receiver<String>>,
}

impl QuorumTasks {
    /// Kafka's controlled shutdown: stops heartbeating, then asks the
    /// controller with a heartbeat that wants to shut down; the controller
    /// fences this broker at once, so its partitions are not left to a
    /// stopped broker until its session times out. Gives up (logged) after
    /// `timeout`: the session timeout fences it then.
    pub async fn controlled_shutdown(
        &mut self,
        config: &BrokerConfig,
        epoch: i64,
        timeout: Duration,
    ) {
        self.registration.abort();
        let request = BrokerHeartbeatRequest::default()
            .with_broker_id(BrokerId(config.node_id))
            .with_broker_epoch(epoch)
            .with_want_fence(true)
            .with_want_shut_down(true);
        match self.client.send(request, 1, timeout).await {
            Ok(response) if response.should_shut_down => {
                tracing::info!("the controller fenced this broker for its shutdown");
            }
            Ok(response) => tracing::warn!(
                error_code = response.error_code,
                "the controller did not agree to this broker's controlled shutdown; its session will time out"
            ),
            Err(err) => tracing::warn!(
                error = %runnel_http::error_chain(&err),
                "no controlled shutdown: the controller could not be reached; this broker's session will time out"
            ),
        }
    }

    /// Stops the driver (as a crash would: nothing is handed over), then
    /// waits for the tasks, which end once it has: what they were waiting
    /// on fails at once, and each lets go of the broker before the storage
    /// is closed. Any still running after a while are aborted.
    pub async fn shutdown(mut self) {
        self.registration.abort();
        self.isr.shutdown().await;
        self.driver.shutdown().await;
        let joined = tokio::time::timeout(TASKS_STOP_TIMEOUT, async {
            while self.tasks.join_next().await.is_some() {}
        })
        .await;
        if joined.is_err() {
            tracing::warn!("quorum tasks still running at shutdown; aborting them");
            self.tasks.shutdown().await;
        }
    }
}

/// How often a caught-up follower fetches the metadata log: the leader
/// does not hold fetches until there is news (Kafka's long poll), so this
/// bounds how late a committed change reaches the other nodes (and a new
/// leader's first commit). Each idle follower sends 20 small fetches a
/// second.
const CAUGHT_UP_FETCH_INTERVAL: Duration = Duration::from_millis(50);

/// How long shutdown waits for the quorum tasks to end on their own.
const TASKS_STOP_TIMEOUT: Duration = Duration::from_secs(10);

/// How long start-up waits for the quorum and this broker's registration
/// before giving up.
const START_TIMEOUT: Duration = Duration::from_secs(300);

/// Runs the broker's side of `node` over `broker`: the image follows the
/// committed entries, the controller listener's other requests are
/// answered, and this broker registers and heartbeats. Returns once the
/// image holds what was committed when a leader was first known and
/// lists this broker.
pub async fn run_broker_side(
    broker: &Arc<crate::broker::Broker>,
    node: QuorumNode,
    heartbeat_interval: Duration,
    session_timeout: Duration,
    figures: Arc<crate::quorum_metrics::QuorumFigures>,
) -> Result<QuorumTasks> {
    let QuorumNode {
        driver,
        client,
        mut committed,
        controller_requests,
        ..
    } = node;
    let mut tasks = tokio::task::JoinSet::new();
    let (failed_tx, replay_failed) = tokio::sync::oneshot::channel();
    tasks.spawn(crate::quorum_metrics::refresh_voters(
        Arc::downgrade(broker),
        Arc::clone(&figures),
    ));
    {
        let broker = Arc::clone(broker);
        tasks.spawn(async move {
            while let Some(entries) = committed.recv().await {
                let Some(backend) = broker.metadata.quorum() else {
                    return;
                };
                let started = std::time::Instant::now();
                let replayed = crate::cluster_metadata::replay_committed(
                    &broker.metadata,
                    backend,
                    &entries,
                    crate::clock::now_ms(),
                );
                figures.applied(started.elapsed());
                if let Err(err) = replayed {
                    let message = runnel_http::error_chain(&err);
                    tracing::error!(error = %message, "the metadata image cannot follow the metadata log");
                    let _ = failed_tx.send(message);
                    return;
                }
            }
        });
    }
    let sessions = Arc::new(crate::controller::BrokerSessions::new(session_timeout));
    tasks.spawn(crate::controller::serve_controller_requests(
        Arc::clone(broker),
        Arc::clone(&sessions),
        controller_requests,
    ));
    // Checked twenty times a session, so a broker is fenced at most a
    // twentieth of its session timeout late.
    let fence_tick = (session_timeout / 20).max(Duration::from_millis(20));
    tasks.spawn(crate::controller::fence_expired_sessions(
        Arc::clone(broker),
        sessions,
        fence_tick,
    ));
    let handle = driver.handle();
    let backend = broker
        .metadata
        .quorum()
        .context("the metadata does not follow the quorum")?;
    let mut status = handle.watch_status();
    let caught_up = async {
        loop {
            let now = *status.borrow_and_update();
            if now.leader_id.is_some() && backend.applied_end() >= now.high_watermark {
                return Ok::<_, anyhow::Error>(());
            }
            tokio::select! {
                changed = status.changed() => changed.context("the quorum driver stopped")?,
                () = tokio::time::sleep(Duration::from_millis(20)) => {}
            }
        }
    };
    tracing::info!(
        "waiting for the metadata quorum to elect a leader and for the image to catch up"
    );
    tokio::time::timeout(START_TIMEOUT, caught_up)
        .await
        .context("the metadata quorum elected no leader in time (are a majority of controller.quorum.voters up?)")??;
    // Every voter may become the controller, which runs these.
    let mut isr = tokio::task::JoinSet::new();
    isr.spawn(crate::controller::elect_leaders_periodically(Arc::clone(
        broker,
    )));
    let is_broker = broker.config.quorum.as_ref().is_none_or(|q| q.roles.broker);
    if !is_broker {
        // A controller-only node never registers as a broker: no partition
        // is placed on it.
        return Ok(QuorumTasks {
            driver,
            tasks,
            registration: tokio::spawn(async {}),
            isr,
            client,
            replay_failed: Some(replay_failed),
        });
    }
    {
        let updates = Arc::clone(&broker.isr_updates);
        let metadata = Arc::clone(&broker.metadata);
        let client = Arc::clone(&client);
        isr.spawn(async move { updates.run(metadata, client).await });
    }
    isr.spawn(crate::replication::isr_updates::check_lagging_followers(
        Arc::clone(&broker.replicas),
        Arc::clone(&broker.isr_updates),
        broker.config.replication.lag_time_max_ms,
    ));
    let registration = {
        let config = Arc::new(broker.config.clone());
        let client = Arc::clone(&client);
        tokio::spawn(async move {
            let err = crate::controller::keep_registered(config, client, heartbeat_interval).await;
            tracing::error!(error = %runnel_http::error_chain(&err), "this broker cannot register with the controller");
        })
    };
    let node_id = broker.config.node_id;
    let registered = async {
        loop {
            if broker.metadata.image().broker(node_id).is_some() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    tokio::time::timeout(START_TIMEOUT, registered)
        .await
        .context("this broker's registration did not reach its image in time")?;
    Ok(QuorumTasks {
        driver,
        tasks,
        registration,
        isr,
        client,
        replay_failed: Some(replay_failed),
    })
}
