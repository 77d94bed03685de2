//! The backlog surge's reaction time, as a program that prints figures:
//! the operator's ConsumerGroup reconciler, a real broker, real consumers
//! and a real `runnel forward`, with Kubernetes played by a small fake
//! (the API answered at the HTTP level; "pods" are processes and tasks:
//! scaling the originals to 0 closes their consumers, applying the
//! forwarders' Deployment starts `runnel forward`, deleting it sends
//! SIGTERM). A producer outruns a slow original consumer until the lag
//! crosses `lagAbove`; printed: the time from that moment to the first
//! record forwarded (the forwarder's first committed transaction), with
//! the lag interval the reconciler ran on, then each phase's time.
//!
//! Usage: `cargo bench -p runnel-broker --bench surge_bench`;
//! `RUNNEL_BENCH_LAG_INTERVAL_MS` (default 5000) sets the reconciler's
//! interval, `RUNNEL_BENCH_BINARY` runs another `runnel` binary.

#[path = "../../../operator/tests/support/mock_api.rs"]
mod mock_api;
#[allow(dead_code)] // each bench uses a part of the support
#[path = "support/mod.rs"]
mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, ensure};
use runnel_client::{Admin, Consumer, ConsumerConfig, Producer, ProducerConfig, ProducerRecord};
use runnel_operator::crd::ConsumerGroup;
use runnel_operator::metrics::OperatorMetrics;
use runnel_operator::reconcile::{Context, group};
use serde_json::{Value, json};

use support::process::BrokerProcess;

const BENCH: &str = "surge_bench";
const NS: &str = "bench";
const THRESHOLD: i64 = 20_000;
const DEADLINE: Duration = Duration::from_secs(300);

fn main() {
    support::exit_on_error(BENCH, run());
}

fn run() -> Result<()> {
    let interval = Duration::from_millis(support::env_ms("RUNNEL_BENCH_LAG_INTERVAL_MS", 5_000)?);
    let dir = support::temp_dir("runnel-surge-bench-")?;
    let mut broker = BrokerProcess::start(
        BENCH,
        &dir.path().join("data"),
        &["group.initial.rebalance.delay.ms=0".to_string()],
    )?;
    let bootstrap = broker.addr.to_string();
    let runtime = support::load_generator_runtime()?;
    let outcome = runtime.block_on(surge(&bootstrap, interval));
    broker.stop()?;
    outcome
}

/// What the fake Kubernetes saw happen, and when.
#[derive(Default)]
struct Timeline {
    events: Vec<(String, Instant)>,
}

async fn surge(bootstrap: &str, interval: Duration) -> Result<()> {
    let admin = Admin::new(bootstrap, BENCH).await?;
    admin.create_topic("orders", 2, 1, &[]).await?;
    admin.create_topic("orders.overflow", 24, 1, &[]).await?;

    // The original consumer: reads slowly (100 records per 100 ms).
    let originals_running = Arc::new(AtomicBool::new(true));
    let original = tokio::spawn(slow_original(
        bootstrap.to_string(),
        Arc::clone(&originals_running),
    ));
    // A producer faster than it: the lag grows.
    let producing = Arc::new(AtomicBool::new(true));
    let producer = tokio::spawn(produce(bootstrap.to_string(), Arc::clone(&producing)));

    let (client, mut api) = mock_api::client();
    let ctx = Arc::new(Context::new(
        client,
        Arc::new(OperatorMetrics::new()),
        interval,
    ));
    let (status_tx, mut status_rx) = tokio::sync::watch::channel(Value::Null);
    let reconciler = {
        let ctx = Arc::clone(&ctx);
        tokio::spawn(async move {
            loop {
                let status = status_rx.borrow_and_update().clone();
                let resource = Arc::new(resource(&status));
                let wait = match group::reconcile(Arc::clone(&resource), Arc::clone(&ctx)).await {
                    // What the controller would wait (Action has no getter).
                    Ok(_) => {
                        let now = status_rx.borrow().clone();
                        let phase = serde_json::from_value(now["surge"]["phase"].clone()).ok();
                        group::next_look(phase, interval)
                    }
                    Err(err) => {
                        eprintln!("{BENCH}: reconcile failed: {err}");
                        Duration::from_millis(500)
                    }
                };
                tokio::time::sleep(wait).await;
            }
        })
    };

    let mut kube = FakeKube {
        bootstrap: bootstrap.to_string(),
        originals_running,
        forwarder: None,
        timeline: Timeline::default(),
        status: status_tx,
        overflow_replicas: 0,
        original_replicas: 1,
    };
    // The moment the lag crosses the threshold, measured beside the
    // reconciler (which only looks every interval).
    let watch_admin = Admin::new(bootstrap, BENCH).await?;
    let crossed = tokio::spawn(async move {
        loop {
            if let Ok(lag) = runnel_operator::lag::group_lag(
                &watch_admin,
                "orders-workers",
                &["orders".to_string()],
            )
            .await
                && lag.total > THRESHOLD
            {
                return Instant::now();
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    });
    let started = Instant::now();
    let first_forwarded = loop {
        ensure!(
            started.elapsed() < DEADLINE,
            "no record forwarded within {DEADLINE:?}"
        );
        tokio::select! {
            exchange = api.next() => {
                let exchange = exchange.context("the reconciler's client is gone")?;
                kube.answer(exchange);
            }
            () = tokio::time::sleep(Duration::from_millis(5)) => {
                if kube.forwarder.is_some() && forwarded(&admin).await > 0 {
                    break Instant::now();
                }
            }
        }
    };
    let crossed = crossed.await?;
    producing.store(false, Ordering::Release);
    producer.await??;
    reconciler.abort();
    original.abort();
    let since = |label: &str| {
        kube.timeline
            .events
            .iter()
            .find(|(l, _)| l == label)
            .map(|(_, at)| format!("{:.2} s", at.duration_since(crossed).as_secs_f64()))
            .unwrap_or_else(|| "-".into())
    };
    println!(
        "{BENCH}: lag crossed {THRESHOLD}; first record forwarded {:.2} s later \
         (reconciler every {:.1} s, forSeconds 0, Draining looked at every 2 s)",
        first_forwarded.duration_since(crossed).as_secs_f64(),
        interval.as_secs_f64()
    );
    println!(
        "{BENCH}: after the crossing: SurgeStarted {}, originals gone {}, ForwardingStarted {}, \
         forwarder started {}",
        since("SurgeStarted"),
        since("originals stopped"),
        since("ForwardingStarted"),
        since("forwarder started"),
    );
    if let Some(mut child) = kube.forwarder.take() {
        let _ = child.kill();
        let _ = child.wait();
    }
    Ok(())
}

/// Records the forwarder committed into the overflow (its high watermarks).
async fn forwarded(admin: &Admin) -> i64 {
    let partitions: Vec<(String, i32)> = (0..24)
        .map(|p| ("orders.overflow".to_string(), p))
        .collect();
    admin
        .end_offsets(&partitions)
        .await
        .map(|ends| ends.iter().sum())
        .unwrap_or(0)
}

fn resource(status: &Value) -> ConsumerGroup {
    let mut value = json!({
        "apiVersion": "runnel.dev/v1alpha1", "kind": "ConsumerGroup",
        "metadata": {"name": "orders", "namespace": NS, "uid": "g1",
                     "generation": 1, "resourceVersion": "1"},
        "spec": {
            "cluster": "demo", "groupId": "orders-workers", "topics": ["orders"],
            "backlogForwarding": {
                "overflow": {"name": "orders.overflow", "partitions": 24, "group": "overflow-workers"},
                "start": {"lagAbove": THRESHOLD, "forSeconds": 0},
                "stop": {"lagBelow": 10},
                "originals": {"scaleTargetRef": {"kind": "Deployment", "name": "workers"}},
                "overflowConsumers": {
                    "scaleTargetRef": {"kind": "Deployment", "name": "overflow-workers"},
                    "replicas": 12
                }
            }
        },
    });
    if !status.is_null() {
        value["status"] = status.clone();
    }
    serde_json::from_value(value).expect("a ConsumerGroup")
}

/// Kubernetes, as far as the surge needs it.
struct FakeKube {
    bootstrap: String,
    originals_running: Arc<AtomicBool>,
    forwarder: Option<std::process::Child>,
    timeline: Timeline,
    status: tokio::sync::watch::Sender<Value>,
    overflow_replicas: i32,
    original_replicas: i32,
}

impl FakeKube {
    fn mark(&mut self, label: &str) {
        self.timeline
            .events
            .push((label.to_string(), Instant::now()));
    }

    fn answer(&mut self, exchange: mock_api::Exchange) {
        let scale = |name: &str, replicas: i32| {
            json!({"apiVersion": "autoscaling/v1", "kind": "Scale",
                   "metadata": {"name": name, "namespace": NS},
                   "spec": {"replicas": replicas}, "status": {"replicas": replicas}})
        };
        let method = exchange.method.clone();
        let path = exchange.path.clone();
        match (method.as_str(), path.as_str()) {
            ("GET", p) if p.ends_with("/clusters/demo") => exchange.respond(
                200,
                &json!({"apiVersion": "runnel.dev/v1alpha1", "kind": "Cluster",
                        "metadata": {"name": "demo", "namespace": NS, "uid": "c1"},
                        "spec": {"brokers": 1, "image": "runnel:bench", "storage": {"size": "1Gi"}},
                        "status": {"readyBrokers": 1, "bootstrap": self.bootstrap}}),
            ),
            ("GET", p) if p.ends_with("/deployments/workers/scale") => {
                exchange.respond(200, &scale("workers", self.original_replicas));
            }
            ("PATCH", p) if p.ends_with("/deployments/workers/scale") => {
                let replicas = exchange.body["spec"]["replicas"].as_i64().unwrap_or(0) as i32;
                self.original_replicas = replicas;
                if replicas == 0 {
                    self.originals_running.store(false, Ordering::Release);
                    self.mark("originals stopped");
                }
                exchange.respond(200, &scale("workers", replicas));
            }
            ("PATCH", p) if p.ends_with("/overflow-workers/scale") => {
                self.overflow_replicas =
                    exchange.body["spec"]["replicas"].as_i64().unwrap_or(0) as i32;
                exchange.respond(200, &scale("overflow-workers", self.overflow_replicas));
            }
            ("GET", p) if p.ends_with("/deployments/orders-forwarder") => {
                if self.forwarder.is_some() {
                    exchange.respond(
                        200,
                        &json!({"apiVersion": "apps/v1", "kind": "Deployment",
                                "metadata": {"name": "orders-forwarder", "namespace": NS},
                                "spec": {"replicas": 1, "selector": {}, "template": {}},
                                "status": {"readyReplicas": 1}}),
                    );
                } else {
                    exchange.fail(404, "NotFound");
                }
            }
            ("PATCH", p) if p.ends_with("/deployments/orders-forwarder") => {
                if self.forwarder.is_none() {
                    let binary = std::env::var_os("RUNNEL_BENCH_BINARY")
                        .unwrap_or_else(|| env!("CARGO_BIN_EXE_runnel").into());
                    let args: Vec<String> = serde_json::from_value(
                        exchange.body["spec"]["template"]["spec"]["containers"][0]["args"].clone(),
                    )
                    .unwrap_or_default();
                    // The pod's args but its metrics port (the last two).
                    let args = &args[..args.len().saturating_sub(2)];
                    self.forwarder = std::process::Command::new(binary)
                        .args(args)
                        .env("RUST_LOG", "warn")
                        .stdout(std::process::Stdio::null())
                        .stderr(std::process::Stdio::null())
                        .spawn()
                        .ok();
                    self.mark("forwarder started");
                }
                exchange.echo();
            }
            ("POST", p) if p.ends_with("/events") => {
                if let Some(reason) = exchange.body["reason"].as_str() {
                    let reason = reason.to_string();
                    self.mark(&reason);
                }
                exchange.echo();
            }
            ("PATCH", p) if p.ends_with("/consumergroups/orders/status") => {
                let status = exchange.body["status"].clone();
                let answer = serde_json::to_value(resource(&status)).expect("JSON");
                let _ = self.status.send(status);
                exchange.respond(200, &answer);
            }
            ("PATCH", _) => exchange.echo(),
            _ => exchange.fail(404, "NotFound"),
        }
    }
}

async fn slow_original(bootstrap: String, running: Arc<AtomicBool>) -> Result<()> {
    let config = ConsumerConfig::new(&bootstrap)
        .set("group.id", "orders-workers")?
        .set("auto.offset.reset", "earliest")?
        .set("max.partition.fetch.bytes", "2048")?;
    let mut consumer = Consumer::new(config).await?;
    consumer.subscribe(&["orders"])?;
    while running.load(Ordering::Acquire) {
        consumer.poll(Duration::from_millis(50)).await?;
        consumer.commit().await?;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Scaled to 0: the pod stops, the member leaves.
    consumer.close().await;
    Ok(())
}

async fn produce(bootstrap: String, running: Arc<AtomicBool>) -> Result<()> {
    let producer = Producer::new(ProducerConfig::new(&bootstrap).set("linger.ms", "5")?).await?;
    let value = vec![b'x'; 1000];
    let mut i = 0u64;
    while running.load(Ordering::Acquire) {
        for _ in 0..100 {
            let key = format!("k{}", i % 1000);
            drop(
                producer
                    .send(ProducerRecord::new("orders", &value).key(key.as_bytes()))
                    .await?,
            );
            i += 1;
        }
        // 10,000 records/s.
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    producer.close().await;
    Ok(())
}
