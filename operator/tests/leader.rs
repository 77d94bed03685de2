//! Leader election against a mocked API server: a free Lease is created,
//! a live one of another replica is left alone, an expired one is taken
//! with the resourceVersion that was read, a lost race (409) is not
//! leadership, and a clean stop gives the Lease up.

#[path = "support/mock_api.rs"]
mod mock_api;

use std::time::Duration;

use k8s_openapi::jiff::{SignedDuration, Timestamp};
use mock_api::client;
use runnel_operator::leader::{Elector, LeaseConfig};
use serde_json::{Value, json};

const LEASE: &str = "/apis/coordination.k8s.io/v1/namespaces/runnel-system/leases/runnel-operator";
const LEASES: &str = "/apis/coordination.k8s.io/v1/namespaces/runnel-system/leases";

fn config(identity: &str) -> LeaseConfig {
    LeaseConfig {
        name: "runnel-operator".into(),
        namespace: "runnel-system".into(),
        identity: identity.into(),
        duration: Duration::from_secs(15),
        renew_every: Duration::from_secs(5),
    }
}

fn lease(holder: &str, renewed: Timestamp, version: &str) -> Value {
    json!({
        "apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
        "metadata": {"name": "runnel-operator", "namespace": "runnel-system", "resourceVersion": version},
        "spec": {
            "holderIdentity": holder, "leaseDurationSeconds": 15,
            "renewTime": renewed.strftime("%Y-%m-%dT%H:%M:%S%.6fZ").to_string(),
            "leaseTransitions": 2,
        },
    })
}

#[tokio::test]
async fn replicas_take_turns_on_the_lease() {
    let (client, mut api) = client();
    let elector = Elector::new(client, config("operator-a"));

    // No Lease yet: created, held by us.
    let round = tokio::spawn(async move { (elector.try_hold().await, elector) });
    api.expect("GET", LEASE).await.fail(404, "NotFound");
    let create = api.expect("POST", LEASES).await;
    assert_eq!(create.body["spec"]["holderIdentity"], "operator-a");
    assert_eq!(create.body["spec"]["leaseDurationSeconds"], 15);
    create.echo();
    let (held, elector) = round.await.expect("no panic");
    assert!(held.expect("no API error"));

    // Another replica renewed it a second ago: wait, write nothing.
    let round = tokio::spawn(async move { (elector.try_hold().await, elector) });
    let live = lease(
        "operator-b",
        Timestamp::now() - SignedDuration::from_secs(1),
        "41",
    );
    api.expect("GET", LEASE).await.respond(200, &live);
    let (held, elector) = round.await.expect("no panic");
    assert!(!held.expect("no API error"));
    api.expect_nothing_more();

    // Not renewed for a minute: taken over, with the version read (so a
    // concurrent taker gets 409) and one more transition.
    let round = tokio::spawn(async move { (elector.try_hold().await, elector) });
    let stale = lease(
        "operator-b",
        Timestamp::now() - SignedDuration::from_secs(60),
        "42",
    );
    api.expect("GET", LEASE).await.respond(200, &stale);
    let replace = api.expect("PUT", LEASE).await;
    assert_eq!(replace.body["metadata"]["resourceVersion"], "42");
    assert_eq!(replace.body["spec"]["holderIdentity"], "operator-a");
    assert_eq!(replace.body["spec"]["leaseTransitions"], 3);
    replace.echo();
    let (held, elector) = round.await.expect("no panic");
    assert!(held.expect("no API error"));

    // The same, but another replica wrote first: no leadership.
    let round = tokio::spawn(async move { (elector.try_hold().await, elector) });
    api.expect("GET", LEASE).await.respond(200, &stale);
    api.expect("PUT", LEASE).await.fail(409, "Conflict");
    let (held, elector) = round.await.expect("no panic");
    assert!(!held.expect("a lost race is not an error"));

    // A clean stop releases a Lease we hold.
    let round = tokio::spawn(async move { elector.release().await });
    let ours = lease("operator-a", Timestamp::now(), "50");
    api.expect("GET", LEASE).await.respond(200, &ours);
    let release = api.expect("PUT", LEASE).await;
    assert!(
        release.body["spec"]["holderIdentity"].is_null(),
        "{}",
        release.body
    );
    assert_eq!(release.body["spec"]["leaseDurationSeconds"], 1);
    release.echo();
    round.await.expect("no panic");
    api.expect_nothing_more();
}
