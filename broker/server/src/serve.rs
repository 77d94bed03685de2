//! `runnel serve`: the broker process. It loads the configuration, opens
//! (and if needed recovers) the storage and the topic registry, serves the
//! Kafka protocol on its listener and `/metrics`, `/healthz`, `/readyz` on
//! the metrics port, and keeps the logs: flushed by `flush.ms`, retention
//! every second, compacted topics cleaned every 15 seconds, checkpoints
//! every minute. SIGTERM or Ctrl-C stops accepting, lets in-flight requests
//! finish, flushes, and leaves the clean-shutdown marker.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use runnel_http::error_chain;
use runnel_log::{LogManager, ManagerConfig};
use tokio::net::TcpListener;
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::{oneshot, watch};
use tokio::task::JoinSet;
use tokio::time::MissedTickBehavior;

use crate::broker::Broker;
use crate::cluster_metadata::ClusterMetadata;
use crate::config::{self, BrokerConfig, ConfigArgs};
use crate::connection;
use crate::connection_limits::ConnectionLimits;
use crate::handlers::now_ms;
use crate::metrics::BrokerMetrics;
use crate::storage_health::StorageHealth;
use runnel_http::{self as http, HttpState};

const MAINTENANCE_INTERVAL: Duration = Duration::from_secs(1);
const CHECKPOINT_INTERVAL: Duration = Duration::from_secs(60);
/// Kafka's `log.cleaner.backoff.ms`.
const CLEANER_INTERVAL: Duration = Duration::from_secs(15);
/// How often log dirs that cannot take writes are probed, and `/readyz`
/// updated.
const STORAGE_CHECK_MS: i64 = 1000;

#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    #[command(flatten)]
    config: ConfigArgs,
}

pub fn run(args: ServeArgs) -> Result<()> {
    let config = config::load(&args.config.sources(std::env::vars_os()))?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("runnel")
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(serve(config))
}

async fn serve(mut config: BrokerConfig) -> Result<()> {
    // Installed first: a signal sent as soon as the ready line is read must
    // reach this loop, not the default action.
    let mut terminate = signal(SignalKind::terminate()).context("cannot listen for SIGTERM")?;
    let mut interrupt = signal(SignalKind::interrupt()).context("cannot listen for SIGINT")?;

    // A node of a cluster starts only on formatted storage (a wiped voter
    // must not vote as new); a quorum of one formats itself below.
    crate::meta::check_formatted(&config)
        .map_err(|err| anyhow::anyhow!(error_chain(&err)))
        .context("storage is not formatted for this node")?;
    let shown = display_dirs(&config.log_dirs);
    let fresh = config.log_dirs.iter().all(|dir| is_missing_or_empty(dir));
    let manager_config = ManagerConfig {
        log_dirs: config.log_dirs.clone(),
        default_config: config.log.clone(),
        recovery_threads: config.num_recovery_threads_per_data_dir * config.log_dirs.len(),
    };
    let manager = tokio::task::spawn_blocking(move || LogManager::open(manager_config, now_ms()))
        .await
        .context("opening the storage panicked")?
        .with_context(|| format!("cannot open storage in {shown}"))?;
    let manager = Arc::new(manager);
    let first_dir = config.log_dirs[0].clone();
    let cluster_id =
        crate::meta::cluster_id(&first_dir, config.cluster_id.as_deref(), config.node_id)?;
    config.cluster_id = Some(cluster_id);
    let start_kind = if fresh {
        "new"
    } else if manager.started_clean() {
        "clean start"
    } else {
        "recovered after an unclean shutdown"
    };

    let metrics = Arc::new(BrokerMetrics::new().with_log_manager(&manager));
    let http_state = Arc::new(HttpState::new(
        Arc::clone(&metrics) as Arc<dyn http::EncodeMetrics>
    ));
    let metrics_addr = config.metrics_listen.clone();
    let metrics_listener = TcpListener::bind((metrics_addr.host.as_str(), metrics_addr.port))
        .await
        .with_context(|| format!("cannot listen on {metrics_addr} (metrics.listen)"))?;
    let metrics_bound = metrics_listener
        .local_addr()
        .context("metrics listener address")?;
    let (stop_http, http_stopped) = oneshot::channel::<()>();
    let http_task = tokio::spawn(http::serve(
        metrics_listener,
        Arc::clone(&http_state),
        async {
            let _ = http_stopped.await;
        },
    ));

    // Clients' listener: the first that is not a controller listener; a
    // controller-only node has none.
    let controller_only = config.quorum.as_ref().is_some_and(|q| !q.roles.broker);
    let listener = if controller_only {
        None
    } else {
        Some(bind_client_listener(&mut config).await?)
    };
    let quorum_node = match config.quorum.clone() {
        Some(quorum) => Some(
            crate::quorum_node::start(&config, &quorum, &manager, now_ms())
                .await
                .context("cannot start this node's part of the metadata quorum")?,
        ),
        None => None,
    };
    let controller_addr = quorum_node.as_ref().and_then(|node| node.controller_addr);
    let metadata = if let Some(node) = &quorum_node {
        ClusterMetadata::on_quorum(
            config.node_id,
            node.driver.handle(),
            Arc::clone(&node.client),
        )
    } else {
        let manager = Arc::clone(&manager);
        let node_id = config.node_id;
        tokio::task::spawn_blocking(move || ClusterMetadata::open(&manager, node_id, now_ms()))
            .await
            .context("loading the cluster metadata panicked")?
            .map_err(|err| anyhow::anyhow!(error_chain(&err)))
            .context("cannot load the cluster metadata")?
    };
    // broker.heartbeat.interval.ms and broker.session.timeout.ms.
    let session = config.quorum.as_ref().map(|q| {
        (
            Duration::from_millis(q.broker_heartbeat_interval_ms),
            Duration::from_millis(q.broker_session_timeout_ms),
        )
    });
    let broker = Arc::new(Broker::new(
        config,
        Arc::clone(&manager),
        metadata,
        Arc::clone(&metrics),
    ));
    // The image follows the quorum only once the applier is registered
    // (Broker::new), so every change reaches this broker's partitions.
    let figures = quorum_figures(&broker, &metrics);
    let mut quorum_tasks = match (quorum_node, session) {
        (Some(node), Some((interval, timeout))) => Some(
            crate::quorum_node::run_broker_side(&broker, node, interval, timeout, figures)
                .await
                .context("this node could not join the cluster")?,
        ),
        _ => None,
    };
    // Partition logs found in the log dirs, the metadata log aside.
    let partitions = manager
        .partitions()
        .iter()
        .filter(|tp| tp.topic != crate::cluster_metadata::METADATA_TOPIC)
        .count();
    metrics.attach_collector(
        crate::metrics::LateSlot::Replication,
        Box::new(crate::replication::metrics::ReplicationCollector {
            replicas: Arc::downgrade(&broker.replicas),
            metadata: Arc::downgrade(&broker.metadata),
            updates: Arc::downgrade(&broker.isr_updates),
        }),
    );
    metrics.attach_collector(
        crate::metrics::LateSlot::Groups,
        Box::new(crate::group_metrics::GroupCollector::new(&broker)),
    );
    // On the quorum, the coordinators loaded their partitions as the image
    // replayed (their listeners follow every change).
    let loaded = if quorum_tasks.is_some() {
        crate::group_coordinator::Loaded::default()
    } else {
        let broker = Arc::clone(&broker);
        tokio::task::spawn_blocking(move || {
            broker
                .group_coordinator
                .load_hosted(&broker.metadata.image())
        })
        .await
        .context("loading committed offsets panicked")?
        .context("cannot load committed offsets")?
    };
    tracing::info!(
        committed = loaded.offsets,
        groups = loaded.groups,
        "committed offsets and groups loaded"
    );
    let transactional_ids = if quorum_tasks.is_some() {
        0
    } else {
        let broker = Arc::clone(&broker);
        tokio::task::spawn_blocking(move || {
            broker.txn_partitions.load_led(&broker.metadata, now_ms())
        })
        .await
        .context("loading transactions panicked")?
        .context("cannot load the transaction state")?
    };
    tracing::info!(transactional_ids, "transactions loaded");
    http_state.set_ready(true);
    let (advertised_host, advertised_port) = broker.config.advertised();
    match (&listener, &controller_addr) {
        (Some(listener), _) => println!(
            "runnel: listening on {} (advertised {advertised_host}:{advertised_port}), \
             data in {shown} ({partitions} partition{}, {start_kind}), metrics on http://{metrics_bound}/metrics",
            listener.local_addr().context("listener address")?,
            if partitions == 1 { "" } else { "s" }
        ),
        (None, Some(controller)) => println!(
            "runnel: listening on {controller} (controller only), \
             data in {shown} ({start_kind}), metrics on http://{metrics_bound}/metrics"
        ),
        (None, None) => bail!("this node serves neither clients nor the quorum"),
    }

    let group_timers = tokio::spawn(Arc::clone(&broker.groups).run_timers());
    let group_store = tokio::spawn(store_groups(Arc::clone(&broker)));
    let (stop, stopped) = watch::channel(false);
    let maintenance = tokio::spawn(maintain(
        Arc::clone(&manager),
        Arc::clone(&broker.storage),
        stopped.clone(),
    ));
    let offsets_expiry = tokio::spawn(expire_offsets(Arc::clone(&broker), stopped.clone()));
    let producer_expiry = tokio::spawn(expire_producer_ids(Arc::clone(&broker), stopped.clone()));
    let txn_timeouts = tokio::spawn(abort_timed_out_transactions(
        Arc::clone(&broker),
        stopped.clone(),
    ));
    let delivery = tokio::spawn(crate::delivery::mover::run(
        broker.delivery_mover(),
        stopped.clone(),
    ));
    let storage_watch = tokio::spawn(watch_storage(
        Arc::clone(&broker),
        Arc::clone(&http_state),
        stopped.clone(),
    ));
    let connection_limits = ConnectionLimits::new(broker.config.connection_quotas.clone());
    let mut connections = JoinSet::new();
    let signal_name = loop {
        tokio::select! {
            _ = terminate.recv() => break "SIGTERM",
            _ = interrupt.recv() => break "SIGINT",
            accepted = accept(listener.as_ref()) => match accepted {
                Ok((stream, peer)) => match connection_limits.admit(peer.ip()) {
                    Ok(slot) => {
                        let _ = stream.set_nodelay(true);
                        let serve = connection::serve(Arc::clone(&broker), stream, peer, stopped.clone());
                        connections.spawn(async move {
                            let _slot = slot;
                            serve.await;
                        });
                    }
                    // Dropping the stream closes it before a byte is read.
                    Err(refusal) => broker.metrics.connection_refused(refusal.label()),
                },
                Err(err) => tracing::warn!(error = %err, "accept failed"),
            },
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
            failed = replay_failed(&mut quorum_tasks) => {
                tracing::error!(error = %failed, "stopping: this node's metadata cannot follow the cluster's");
                break "a failed metadata replay";
            }
        }
    };
    tracing::info!(signal = signal_name, "shutting down");
    if let Some(tasks) = quorum_tasks.as_mut().filter(|_| !controller_only) {
        let epoch = broker
            .metadata
            .image()
            .broker(broker.config.node_id)
            .map_or(-1, |b| b.epoch);
        tasks
            .controlled_shutdown(
                &broker.config,
                epoch,
                controlled_shutdown_timeout(&broker.config),
            )
            .await;
    }
    drop(listener);
    http_state.set_ready(false);
    broker.fetchers.stop().await;
    let _ = stop.send(true);
    broker.groups.release_waiters();
    // Connections finish the request they are in, then close.
    while connections.join_next().await.is_some() {}
    maintenance.await.context("the maintenance task panicked")?;
    // Every task holding the broker ends before it is dropped, so that the
    // log manager can be taken back and closed cleanly.
    offsets_expiry
        .await
        .context("the offsets expiry task panicked")?;
    producer_expiry
        .await
        .context("the producer id expiry task panicked")?;
    txn_timeouts
        .await
        .context("the transaction timeout task panicked")?;
    delivery
        .await
        .context("the delayed delivery task panicked")?;
    storage_watch
        .await
        .context("the storage watch task panicked")?;
    group_timers.abort();
    let _ = group_timers.await;
    group_store.abort();
    let _ = group_store.await;
    // What the groups did last (members that left at shutdown) still lands.
    if let Err(err) = crate::handlers::GroupPath::of(&broker).flush_group_stores(now_ms()) {
        tracing::error!(error = %error_chain(&err), "cannot store groups at shutdown");
    }
    // The next start loads this snapshot instead of replaying the log.
    if let Err(err) = broker.metadata.snapshot(now_ms()) {
        tracing::error!(error = %error_chain(&err), "cannot write a metadata snapshot at shutdown");
    }
    if let Some(tasks) = quorum_tasks.take() {
        tasks.shutdown().await;
    }
    let _ = stop_http.send(());
    http_task.await.context("the metrics server panicked")?;
    drop(broker);
    drop(metrics);
    let manager = Arc::into_inner(manager)
        .context("storage is still in use at shutdown; not writing the clean-shutdown marker")?;
    tokio::task::spawn_blocking(move || manager.shutdown())
        .await
        .context("closing the storage panicked")?
        .with_context(|| format!("cannot close storage in {shown} cleanly"))?;
    tracing::info!("storage closed cleanly");
    Ok(())
}

/// How long a cluster node's shutdown waits for the controller to fence
/// it (Kafka's controlled shutdown): two heartbeat intervals, within 1 to
/// 10 s. A controller out of reach longer (the whole cluster stopping)
/// fences it by its session timeout instead.
fn controlled_shutdown_timeout(config: &BrokerConfig) -> Duration {
    let heartbeat = config
        .quorum
        .as_ref()
        .map_or(2_000, |q| q.broker_heartbeat_interval_ms);
    Duration::from_millis(heartbeat.saturating_mul(2))
        .clamp(Duration::from_secs(1), Duration::from_secs(10))
}

/// Resolves when the quorum's metadata replay failed; never without a
/// quorum, nor once the replay task ended without a failure (the
/// receiver is dropped then: polling a oneshot after its answer panics,
/// and this runs again on every turn of the accept loop).
async fn replay_failed(tasks: &mut Option<crate::quorum_node::QuorumTasks>) -> String {
    let Some(failed) = tasks.as_mut().and_then(|t| t.replay_failed.as_mut()) else {
        return std::future::pending().await;
    };
    let outcome = failed.await;
    if let Some(tasks) = tasks.as_mut() {
        tasks.replay_failed = None;
    }
    match outcome {
        Ok(message) => message,
        Err(_) => std::future::pending().await,
    }
}

/// Flushes logs whose `flush.ms` has passed and applies retention every
/// second, cleans compacted logs every 15 s, and writes the checkpoints
/// every minute, until told to stop. A failure is logged and retried.
async fn maintain(
    manager: Arc<LogManager>,
    storage: Arc<StorageHealth>,
    mut stop: watch::Receiver<bool>,
) {
    let mut tick = tokio::time::interval(MAINTENANCE_INTERVAL);
    tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut last_checkpoint = Instant::now();
    let mut last_clean = Instant::now();
    loop {
        tokio::select! {
            _ = stop.changed() => return,
            _ = tick.tick() => {}
        }
        let checkpoint = last_checkpoint.elapsed() >= CHECKPOINT_INTERVAL;
        if checkpoint {
            last_checkpoint = Instant::now();
        }
        let clean = last_clean.elapsed() >= CLEANER_INTERVAL;
        if clean {
            last_clean = Instant::now();
        }
        let tasks = Maintenance { checkpoint, clean };
        let manager = Arc::clone(&manager);
        let storage = Arc::clone(&storage);
        let done = tokio::task::spawn_blocking(move || {
            maintain_once(&manager, &storage, now_ms(), tasks);
        })
        .await;
        if let Err(err) = done {
            tracing::error!(error = %err, "storage maintenance panicked");
        }
    }
}

/// Writes the groups' records to `__consumer_offsets` as they queue up
/// (the leader's SyncGroup writes its own before answering).
async fn store_groups(broker: Arc<Broker>) {
    loop {
        broker.groups.stores_queued().await;
        let stored = tokio::task::block_in_place(|| {
            crate::handlers::GroupPath::of(&broker).flush_group_stores(now_ms())
        });
        if let Err(err) = stored {
            tracing::error!(
                error = %error_chain(&err),
                "cannot store group metadata in __consumer_offsets"
            );
        }
    }
}

/// Runs `pass` off the async workers every `every_ms`, until told to stop
/// (a pass under way finishes first); `pass` logs what it did. A pass that
/// panics is logged and the next one runs.
async fn every<F>(every_ms: i64, mut stop: watch::Receiver<bool>, what: &'static str, pass: F)
where
    F: Fn() + Clone + Send + 'static,
{
    let mut tick = tokio::time::interval(Duration::from_millis(every_ms.max(1) as u64));
    tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
    tick.tick().await;
    loop {
        tokio::select! {
            _ = stop.changed() => return,
            _ = tick.tick() => {}
        }
        if let Err(err) = tokio::task::spawn_blocking(pass.clone()).await {
            tracing::error!(error = %err, "{what} panicked");
        }
    }
}

/// Every second: a probe write in each log dir that cannot take writes
/// (clearing those where it succeeds), and `/readyz` told which still fail.
async fn watch_storage(
    broker: Arc<Broker>,
    http_state: Arc<HttpState>,
    stop: watch::Receiver<bool>,
) {
    every(STORAGE_CHECK_MS, stop, "checking the log dirs", move || {
        broker.storage.probe_failing();
        let mut reasons = broker.storage.not_ready_because();
        // A broker restarted into a cluster is ready once it is back in
        // every ISR it belongs to (the operator's rolling restart waits).
        let behind = crate::replication::metrics::catching_up(
            &broker.metadata.image(),
            broker.config.node_id,
        );
        if !behind.is_empty() {
            reasons.push(format!(
                "{} partition(s) still catching up with their leaders ({})",
                behind.len(),
                behind
                    .iter()
                    .take(5)
                    .cloned()
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
        http_state.set_not_ready_because(reasons);
    })
    .await
}

/// Expires committed offsets every `offsets.retention.check.interval.ms`.
async fn expire_offsets(broker: Arc<Broker>, stop: watch::Receiver<bool>) {
    let interval = broker.config.offsets_retention_check_interval_ms;
    every(
        interval,
        stop,
        "expiring committed offsets",
        move || match broker.group_coordinator.expire_offsets(now_ms()) {
            Ok((0, 0)) => {}
            Ok((offsets, groups)) => {
                tracing::info!(
                    offsets,
                    groups,
                    "expired committed offsets and empty groups"
                );
            }
            Err(err) => tracing::error!(
                error = %error_chain(&err),
                "expiring committed offsets failed"
            ),
        },
    )
    .await
}

/// Forgets idle idempotent producers every
/// `producer.id.expiration.check.interval.ms`.
async fn expire_producer_ids(broker: Arc<Broker>, stop: watch::Receiver<bool>) {
    let interval = broker.config.producer_id_expiration_check_interval_ms;
    every(interval, stop, "expiring producer ids", move || {
        let max_idle_ms = broker.config.producer_id_expiration_ms;
        match broker
            .replicas
            .logs()
            .expire_producers(now_ms(), max_idle_ms)
        {
            0 => {}
            expired => tracing::info!(expired, "forgot idle producer ids"),
        }
    })
    .await
}

/// Aborts open transactions past their `transaction.timeout.ms`, and
/// forgets transactional ids past `transactional.id.expiration.ms`, every
/// `transaction.abort.timed.out.transaction.cleanup.interval.ms`.
async fn abort_timed_out_transactions(broker: Arc<Broker>, stop: watch::Receiver<bool>) {
    let interval = broker
        .config
        .transaction_abort_timed_out_transaction_cleanup_interval_ms;
    every(
        interval,
        stop,
        "aborting timed-out transactions",
        move || {
            let now = now_ms();
            broker
                .group_coordinator
                .txns_ended(broker.txn_coordinator.abort_timed_out(now));
            broker.txn_coordinator.expire_ids(now);
        },
    )
    .await
}

/// The less frequent tasks due at one tick.
#[derive(Debug, Clone, Copy)]
struct Maintenance {
    checkpoint: bool,
    clean: bool,
}

fn maintain_once(manager: &LogManager, storage: &StorageHealth, now_ms: i64, tasks: Maintenance) {
    // A flush that fails on storage marks its log dir failing, as a
    // failed append does (logged there, rate-limited).
    let flushed = manager.flush_due(now_ms, |dir, err| {
        if err.is_storage_failure() {
            storage.write_failed(dir, &error_chain(&err));
        } else {
            tracing::error!(dir = %dir.display(), error = %error_chain(&err), "flushing a log failed");
        }
    });
    if flushed > 0 {
        tracing::debug!(flushed, "flushed logs past flush.ms");
    }
    if let Err(err) = manager.apply_retention(now_ms) {
        tracing::error!(error = %error_chain(&err), "applying retention failed");
    }
    if tasks.clean {
        match manager.clean_compacted(now_ms) {
            Ok(stats) if stats.segments_cleaned > 0 => {
                tracing::info!(?stats, "compacted logs");
            }
            Ok(_) => {}
            Err(err) => tracing::error!(error = %error_chain(&err), "compacting logs failed"),
        }
    }
    if tasks.checkpoint
        && let Err(err) = manager.checkpoint()
    {
        tracing::error!(error = %error_chain(&err), "writing checkpoints failed");
    }
}

/// An error with its causes, `outer: inner: ...`.
fn display_dirs(dirs: &[std::path::PathBuf]) -> String {
    dirs.iter()
        .map(|d| d.display().to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

/// Whether a log dir holds nothing yet, so this is its first start: it
/// may be formatted (`meta.properties`, and Kafka's `bootstrap.checkpoint`
/// when Kafka's tool formatted it).
fn is_missing_or_empty(dir: &Path) -> bool {
    std::fs::read_dir(dir).map_or(true, |entries| {
        entries.flatten().all(|entry| {
            let name = entry.file_name();
            name == crate::meta::FILE_NAME || name == "bootstrap.checkpoint"
        })
    })
}

/// The quorum's figures (a cluster node's, or a quorum of one's), and
/// their collector attached to the broker's metrics.
fn quorum_figures(
    broker: &Arc<Broker>,
    metrics: &BrokerMetrics,
) -> Arc<crate::quorum_metrics::QuorumFigures> {
    let figures = Arc::new(crate::quorum_metrics::QuorumFigures::default());
    metrics.attach_collector(
        crate::metrics::LateSlot::Quorum,
        Box::new(crate::quorum_metrics::QuorumCollector::new(
            broker,
            Arc::clone(&figures),
        )),
    );
    figures
}

/// Binds the clients' listener (the first that is not a controller
/// listener) and puts its bound port in `config` where port 0 was asked.
async fn bind_client_listener(config: &mut BrokerConfig) -> Result<TcpListener> {
    let client_listener = config
        .listeners
        .iter()
        .position(|l| !config.is_controller_listener(&l.name))
        .context("listeners has no listener for clients, only controller listeners")?;
    let listener_addr = config.listeners[client_listener].address.clone();
    let listener = TcpListener::bind((listener_addr.host.as_str(), listener_addr.port))
        .await
        .with_context(|| {
            format!(
                "cannot listen on {} (listeners)",
                config.listeners[client_listener]
            )
        })?;
    let bound = listener.local_addr().context("listener address")?;
    if config.listeners[client_listener].address.port == 0 {
        config.listeners[client_listener].address.port = bound.port();
    }
    let client_name = config.listeners[client_listener].name.clone();
    if let Some(advertised) = config
        .advertised_listeners
        .iter_mut()
        .find(|a| a.name == client_name)
        && advertised.address.port == 0
    {
        advertised.address.port = bound.port();
    }
    Ok(listener)
}

/// The next client connection; never on a node without a client listener.
async fn accept(
    listener: Option<&TcpListener>,
) -> std::io::Result<(tokio::net::TcpStream, std::net::SocketAddr)> {
    match listener {
        Some(listener) => listener.accept().await,
        None => std::future::pending().await,
    }
}
