//! This broker's registration with the active controller and its
//! heartbeats: see the module doc of `controller`.

use std::sync::Arc;
use std::time::Duration;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::BrokerId;
use kafka_protocol::messages::broker_heartbeat_request::BrokerHeartbeatRequest;
use kafka_protocol::messages::broker_registration_request::{
    BrokerRegistrationRequest, Feature, Listener,
};
use kafka_protocol::protocol::StrBytes;
use runnel_http::error_chain;
use runnel_quorum::{ControllerClient, ControllerClientError};
use uuid::Uuid;

use crate::config::BrokerConfig;

const REGISTRATION_VERSION: i16 = 4;
const HEARTBEAT_VERSION: i16 = 1;
/// The wait before trying a refused registration again.
const RETRY_BACKOFF: Duration = Duration::from_millis(200);
/// Kafka's `metadata.version` range this broker supports
/// (4.0-IV3 .. 4.1-IV1 in Kafka's numbering).
const METADATA_VERSION: (i16, i16) = (25, 26);

#[derive(Debug, thiserror::Error)]
pub enum RegistrationError {
    #[error("the controller could not be reached")]
    Client(#[from] ControllerClientError),
    #[error("the controller refused the registration of broker {broker}: {error:?}")]
    Refused { broker: i32, error: ResponseError },
}

/// Registers this broker, then heartbeats until the task is dropped;
/// registers again when a heartbeat is refused. Failures are logged and
/// retried: it never returns but on an error no retry can mend (another
/// cluster id).
pub async fn keep_registered(
    config: Arc<BrokerConfig>,
    client: Arc<ControllerClient>,
    interval: Duration,
) -> RegistrationError {
    let incarnation = Uuid::new_v4();
    loop {
        let epoch = match register(&config, &client, incarnation, interval).await {
            Ok(epoch) => epoch,
            Err(
                err @ RegistrationError::Refused {
                    error: ResponseError::InconsistentClusterId,
                    ..
                },
            ) => return err,
            Err(err) => {
                tracing::warn!(error = %error_chain(&err), "broker registration failed; retrying");
                tokio::time::sleep(RETRY_BACKOFF).await;
                continue;
            }
        };
        tracing::info!(
            broker = config.node_id,
            epoch,
            "registered with the controller"
        );
        heartbeat_until_refused(&config, &client, epoch, interval).await;
    }
}

async fn register(
    config: &BrokerConfig,
    client: &ControllerClient,
    incarnation: Uuid,
    timeout: Duration,
) -> Result<i64, RegistrationError> {
    let listeners = config
        .client_listeners()
        .map(|l| {
            let advertised = config
                .advertised_listeners
                .iter()
                .find(|a| a.name == l.name)
                .unwrap_or(l);
            Listener::default()
                .with_name(StrBytes::from_string(l.name.clone()))
                .with_host(StrBytes::from_string(advertised.address.host.clone()))
                .with_port(advertised.address.port)
                .with_security_protocol(0)
        })
        .collect();
    let request = BrokerRegistrationRequest::default()
        .with_broker_id(BrokerId(config.node_id))
        .with_cluster_id(StrBytes::from_string(config.cluster_id().to_owned()))
        .with_incarnation_id(incarnation)
        .with_listeners(listeners)
        .with_features(vec![
            Feature::default()
                .with_name(StrBytes::from_static_str("metadata.version"))
                .with_min_supported_version(METADATA_VERSION.0)
                .with_max_supported_version(METADATA_VERSION.1),
        ])
        .with_rack(
            config
                .rack
                .as_deref()
                .map(|r| StrBytes::from_string(r.to_owned())),
        );
    let response = client
        .send(
            request,
            REGISTRATION_VERSION,
            timeout.max(Duration::from_secs(5)),
        )
        .await?;
    match ResponseError::try_from_code(response.error_code) {
        None => Ok(response.broker_epoch),
        Some(error) => Err(RegistrationError::Refused {
            broker: config.node_id,
            error,
        }),
    }
}

/// Heartbeats every `interval`; returns when the controller refuses one
/// (this broker must register again).
async fn heartbeat_until_refused(
    config: &BrokerConfig,
    client: &ControllerClient,
    epoch: i64,
    interval: Duration,
) {
    let mut ticks = tokio::time::interval(interval);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        let request = BrokerHeartbeatRequest::default()
            .with_broker_id(BrokerId(config.node_id))
            .with_broker_epoch(epoch);
        match client.send(request, HEARTBEAT_VERSION, interval * 2).await {
            Ok(response) => match ResponseError::try_from_code(response.error_code) {
                None => {}
                Some(ResponseError::NotController) => {}
                Some(error) => {
                    tracing::info!(
                        broker = config.node_id,
                        ?error,
                        "the controller refused a heartbeat; registering again"
                    );
                    return;
                }
            },
            Err(err) => {
                tracing::debug!(error = %error_chain(&err), "a heartbeat to the controller failed")
            }
        }
    }
}
