//! The broker's way to the active controller: three quorum drivers on
//! loopback ports, each with the broker's hook for non-quorum requests.
//! A [`ControllerClient`] watching a follower's status sends ApiVersions
//! and BrokerHeartbeat; they reach the leader's hook, the test answers
//! there, and the client gets the decoded answer. With the leader stopped,
//! the next request reaches the new leader's hook.
//!
//! Waits are for conditions with a deadline, never sleeps.

mod common;

use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use kafka_protocol::messages::{
    ApiKey, ApiVersionsRequest, ApiVersionsResponse, BrokerHeartbeatRequest,
    BrokerHeartbeatResponse, BrokerId,
};
use kafka_protocol::protocol::{Decodable, Encodable};
use runnel_quorum::{ControllerClient, ControllerRequest, DriverHooks};
use tokio::sync::mpsc;

use common::*;

const SEND_TIMEOUT: Duration = Duration::from_secs(15);

/// The next request on `hook`, within the deadline.
async fn next_request(
    hook: &mut mpsc::Receiver<ControllerRequest>,
) -> Result<ControllerRequest, Error> {
    Ok(with_timeout(hook.recv())
        .await?
        .ok_or("the hook's sender is gone")?)
}

fn encoded(body: &impl Encodable, version: i16) -> Result<bytes::Bytes, Error> {
    let mut buf = BytesMut::new();
    body.encode(&mut buf, version)?;
    Ok(buf.freeze())
}

/// Answers a BrokerHeartbeat on `hook`: the broker is fenced on node 1
/// only, and the throttle time names the node that answered.
async fn answer_heartbeat(
    hook: &mut mpsc::Receiver<ControllerRequest>,
    node: i32,
    broker_id: i32,
) -> TestResult {
    let request = next_request(hook).await?;
    assert_eq!(
        request.header.request_api_key,
        ApiKey::BrokerHeartbeat as i16
    );
    let version = request.header.request_api_version;
    let mut body = request.body.clone();
    let heartbeat = BrokerHeartbeatRequest::decode(&mut body, version)?;
    assert_eq!(heartbeat.broker_id, BrokerId(broker_id));
    let response = BrokerHeartbeatResponse::default()
        .with_throttle_time_ms(node)
        .with_is_fenced(node == 1);
    request
        .reply
        .send(encoded(&response, version)?)
        .map_err(|_| "the connection is gone")?;
    Ok(())
}

fn heartbeat(broker_id: i32) -> BrokerHeartbeatRequest {
    BrokerHeartbeatRequest::default()
        .with_broker_id(BrokerId(broker_id))
        .with_broker_epoch(12)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_reach_the_active_controller_and_follow_it_after_a_fail_over() -> TestResult {
    let (listeners, addrs) = bind_all().await?;
    let mut nodes = Vec::new();
    let mut hooks = Vec::new();
    for (id, listener) in VOTERS.into_iter().zip(listeners) {
        let (sender, receiver) = mpsc::channel(8);
        hooks.push(receiver);
        let dir = tempfile::TempDir::new()?;
        let with_hook = DriverHooks {
            controller_requests: Some(sender),
            ..DriverHooks::default()
        };
        let driver = start(id, listener, dir.path(), &addrs, with_hook)?;
        nodes.push(Node {
            id,
            addr: addrs[&id],
            dir,
            driver: Some(driver),
        });
    }
    let (first, first_status) = wait_for("a leader", || one_leader(&nodes)).await?;
    // The client watches a follower, which stays up.
    let watched = (first + 1) % nodes.len();
    let status = nodes[watched]
        .handle()
        .ok_or("follower stopped")?
        .watch_status();
    let client = Arc::new(ControllerClient::new(
        "broker-7".to_owned(),
        addrs.clone(),
        status,
    ));

    // ApiVersions, answered on the leader's hook.
    let sending = {
        let client = Arc::clone(&client);
        tokio::spawn(async move {
            client
                .send(ApiVersionsRequest::default(), 3, SEND_TIMEOUT)
                .await
        })
    };
    let request = next_request(&mut hooks[first]).await?;
    assert_eq!(request.header.request_api_key, ApiKey::ApiVersions as i16);
    assert_eq!(request.header.request_api_version, 3);
    assert_eq!(
        request.header.client_id.as_ref().map(|c| c.as_str()),
        Some("broker-7")
    );
    let answer = ApiVersionsResponse::default().with_throttle_time_ms(nodes[first].id);
    request
        .reply
        .send(encoded(&answer, 3)?)
        .map_err(|_| "the connection is gone")?;
    let response = with_timeout(sending).await???;
    assert_eq!(response.throttle_time_ms, nodes[first].id);

    // BrokerHeartbeat (flexible, response header v1) on the same
    // connection.
    let sending = {
        let client = Arc::clone(&client);
        tokio::spawn(async move { client.send(heartbeat(7), 1, SEND_TIMEOUT).await })
    };
    answer_heartbeat(&mut hooks[first], nodes[first].id, 7).await?;
    let response = with_timeout(sending).await???;
    assert_eq!(response.throttle_time_ms, nodes[first].id);
    assert_eq!(response.is_fenced, nodes[first].id == 1);

    // The leader stops: the next heartbeat waits for the new leader and
    // reaches its hook.
    let stopped = nodes[first].driver.take().ok_or("no driver")?;
    stopped.shutdown().await;
    let sending = {
        let client = Arc::clone(&client);
        tokio::spawn(async move { client.send(heartbeat(8), 1, SEND_TIMEOUT).await })
    };
    let (second, _) = wait_for("a new leader", || {
        one_leader(&nodes).filter(|(_, s)| s.epoch > first_status.epoch)
    })
    .await?;
    answer_heartbeat(&mut hooks[second], nodes[second].id, 8).await?;
    let response = with_timeout(sending).await???;
    assert_eq!(response.throttle_time_ms, nodes[second].id);

    // Only the leaders were asked.
    for (i, hook) in hooks.iter_mut().enumerate() {
        assert!(hook.try_recv().is_err(), "node {}'s hook", nodes[i].id);
    }
    for node in &mut nodes {
        if let Some(driver) = node.driver.take() {
            driver.shutdown().await;
        }
    }
    Ok(())
}
