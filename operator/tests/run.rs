//! `runnel-operator run` put together, against a mocked API server: it
//! takes the leader Lease, then its controllers list and watch Clusters
//! (and their StatefulSets), Topics and ConsumerGroups in the namespace;
//! `/metrics`, `/healthz` and `/readyz` answer; on shutdown it stops and
//! gives the Lease up.

#[path = "support/mock_api.rs"]
mod mock_api;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use mock_api::{Exchange, client};
use runnel_operator::leader::LeaseConfig;
use runnel_operator::run::{RunOptions, run};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot};

const LEASE: &str = "/apis/coordination.k8s.io/v1/namespaces/runnel-system/leases/runnel-operator";

async fn http_get(addr: std::net::SocketAddr, path: &str) -> Option<String> {
    let mut stream = TcpStream::connect(addr).await.ok()?;
    stream
        .write_all(format!("GET {path} HTTP/1.0\r\n\r\n").as_bytes())
        .await
        .ok()?;
    let mut out = String::new();
    stream.read_to_string(&mut out).await.ok()?;
    Some(out)
}

fn free_port() -> std::net::SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.local_addr().expect("addr")
}

/// What a list of any kind answers with when there is nothing.
fn empty_list() -> serde_json::Value {
    json!({"apiVersion": "v1", "kind": "List", "metadata": {"resourceVersion": "1"}, "items": []})
}

fn lease_answer(holder: Option<&str>) -> serde_json::Value {
    json!({
        "apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
        "metadata": {"name": "runnel-operator", "namespace": "runnel-system", "resourceVersion": "7"},
        "spec": {"holderIdentity": holder, "leaseDurationSeconds": 15,
                 "renewTime": "2026-11-24T00:00:00.000000Z"},
    })
}

#[tokio::test]
async fn the_operator_leads_watches_serves_metrics_and_releases_the_lease() {
    let (client, mut api) = client();
    let addr = free_port();
    let options = RunOptions {
        namespace: Some("streaming".into()),
        http_addr: addr,
        lag_interval: Duration::from_secs(30),
        lease: Some(LeaseConfig {
            name: "runnel-operator".into(),
            namespace: "runnel-system".into(),
            identity: "operator-0".into(),
            duration: Duration::from_secs(15),
            // Long enough not to renew during the test.
            renew_every: Duration::from_secs(600),
        }),
    };
    let (stop, stopped) = oneshot::channel::<()>();
    let operator = tokio::spawn(run(client, options, async {
        let _ = stopped.await;
    }));

    // The Lease first: nothing is listed before it is held.
    api.expect("GET", LEASE).await.fail(404, "NotFound");
    let create = api
        .expect(
            "POST",
            "/apis/coordination.k8s.io/v1/namespaces/runnel-system/leases",
        )
        .await;
    assert_eq!(create.body["spec"]["holderIdentity"], "operator-0");
    create.echo();

    // Then the controllers list (empty) and watch (left open) their kinds;
    // the release comes after the stop.
    let (listed_tx, mut listed_rx) = mpsc::unbounded_channel::<String>();
    let (released_tx, released_rx) = oneshot::channel::<serde_json::Value>();
    let server = tokio::spawn(async move {
        let mut open_watches: Vec<Exchange> = Vec::new();
        let mut released_tx = Some(released_tx);
        while let Some(exchange) = api.next().await {
            match (exchange.method.as_str(), exchange.path.as_str()) {
                ("GET", LEASE) => exchange.respond(200, &lease_answer(Some("operator-0"))),
                ("PUT", LEASE) => {
                    if let Some(tx) = released_tx.take() {
                        let _ = tx.send(exchange.body.clone());
                    }
                    exchange.echo();
                }
                ("GET", _) if exchange.query.contains("watch=true") => open_watches.push(exchange),
                ("GET", path) => {
                    let _ = listed_tx.send(format!("{path}?{}", exchange.query));
                    exchange.respond(200, &empty_list());
                }
                (method, path) => panic!("unexpected {method} {path}"),
            }
        }
    });
    let mut listed = BTreeSet::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while listed.len() < 4 {
        let left = deadline.saturating_duration_since(Instant::now());
        let query = tokio::time::timeout(left, listed_rx.recv())
            .await
            .unwrap_or_else(|_| panic!("not every kind listed within 30 s: {listed:?}"))
            .expect("server running");
        let path = query.split('?').next().unwrap_or("").to_string();
        if path.contains("statefulsets") {
            assert!(
                query.contains("labelSelector=app.kubernetes.io%2Fmanaged-by%3Drunnel-operator"),
                "{query}"
            );
        }
        listed.insert(path);
    }
    assert_eq!(
        listed.into_iter().collect::<Vec<_>>(),
        [
            "/apis/apps/v1/namespaces/streaming/statefulsets",
            "/apis/runnel.dev/v1alpha1/namespaces/streaming/clusters",
            "/apis/runnel.dev/v1alpha1/namespaces/streaming/consumergroups",
            "/apis/runnel.dev/v1alpha1/namespaces/streaming/topics",
        ]
    );

    let metrics = http_get(addr, "/metrics").await.expect("/metrics answers");
    assert!(metrics.starts_with("HTTP/1.1 200 OK"), "{metrics}");
    assert!(metrics.contains("runnel_operator_leader 1"), "{metrics}");
    let health = http_get(addr, "/healthz").await.expect("/healthz answers");
    assert!(health.starts_with("HTTP/1.1 200 OK"), "{health}");
    let ready = http_get(addr, "/readyz").await.expect("/readyz answers");
    assert!(ready.starts_with("HTTP/1.1 200 OK"), "{ready}");

    stop.send(()).expect("operator running");
    let released = tokio::time::timeout(Duration::from_secs(30), released_rx)
        .await
        .expect("the Lease is released within 30 s")
        .expect("released");
    assert!(released["spec"]["holderIdentity"].is_null(), "{released}");
    tokio::time::timeout(Duration::from_secs(30), operator)
        .await
        .expect("run returns after the stop")
        .expect("no panic")
        .expect("a clean stop");
    server.abort();
}

#[tokio::test]
async fn an_operator_that_loses_the_lease_stops_with_an_error() {
    let (client, mut api) = client();
    let options = RunOptions {
        namespace: Some("streaming".into()),
        http_addr: free_port(),
        lag_interval: Duration::from_secs(30),
        lease: Some(LeaseConfig {
            name: "runnel-operator".into(),
            namespace: "runnel-system".into(),
            identity: "operator-0".into(),
            duration: Duration::from_secs(15),
            renew_every: Duration::from_millis(100),
        }),
    };
    let operator = tokio::spawn(run(client, options, std::future::pending()));
    api.expect("GET", LEASE).await.fail(404, "NotFound");
    api.expect(
        "POST",
        "/apis/coordination.k8s.io/v1/namespaces/runnel-system/leases",
    )
    .await
    .echo();
    // Another replica took the Lease (an operator paused past the lease
    // duration, say): the next renewal finds it live and held by it.
    let server = tokio::spawn(async move {
        let mut open_watches: Vec<Exchange> = Vec::new();
        while let Some(exchange) = api.next().await {
            match (exchange.method.as_str(), exchange.path.as_str()) {
                ("GET", LEASE) => {
                    let now = k8s_openapi::jiff::Timestamp::now();
                    let mut lease = lease_answer(Some("operator-1"));
                    lease["spec"]["renewTime"] =
                        json!(now.strftime("%Y-%m-%dT%H:%M:%S%.6fZ").to_string());
                    exchange.respond(200, &lease);
                }
                ("GET", _) if exchange.query.contains("watch=true") => open_watches.push(exchange),
                ("GET", _) => exchange.respond(200, &empty_list()),
                (method, path) => panic!("unexpected {method} {path}"),
            }
        }
    });
    let err = tokio::time::timeout(Duration::from_secs(30), operator)
        .await
        .expect("run stops within 30 s of losing the Lease")
        .expect("no panic")
        .expect_err("losing the Lease is an error");
    let err = runnel_http::error_chain(&err);
    assert!(err.contains("operator-1"), "{err}");
    server.abort();
}
