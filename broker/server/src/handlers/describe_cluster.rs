//! DescribeCluster: the brokers Metadata lists (this one alone on one
//! broker; every unfenced one on a cluster), and, as Kafka's brokers
//! answer, this broker as the controller clients send admin requests to
//! (it forwards them).
//! Only the broker endpoint type exists here: a request for controllers
//! gets MISMATCHED_ENDPOINT_TYPE and an unknown type
//! UNSUPPORTED_ENDPOINT_TYPE, as Kafka's brokers answer (INVALID_REQUEST in
//! v0, which has no endpoint type of its own).

use super::Admin;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::BrokerId;
use kafka_protocol::messages::describe_cluster_request::DescribeClusterRequest;
use kafka_protocol::messages::describe_cluster_response::{
    DescribeClusterBroker, DescribeClusterResponse,
};

use super::str_bytes;

/// Kafka's `EndpointType` codes.
const ENDPOINT_BROKER: i8 = 1;
const ENDPOINT_CONTROLLER: i8 = 2;

pub fn handle(
    cx: &Admin<'_>,
    request: DescribeClusterRequest,
    version: i16,
) -> DescribeClusterResponse {
    let mut response = DescribeClusterResponse::default();
    if let Err((error, message)) = check_endpoint_type(request.endpoint_type, version) {
        response.error_code = error.code();
        response.error_message = Some(str_bytes(message));
        return response;
    }
    let node = BrokerId(cx.config.node_id);
    // The brokers Metadata lists: every unfenced one on a cluster.
    response.brokers = super::metadata::brokers(cx)
        .into_iter()
        .map(|b| {
            let mut broker = DescribeClusterBroker::default();
            broker.broker_id = b.node_id;
            broker.host = b.host;
            broker.port = b.port;
            broker.rack = b.rack;
            broker
        })
        .collect();
    response.cluster_id = str_bytes(cx.config.cluster_id());
    response.controller_id = node;
    response
}

fn check_endpoint_type(endpoint_type: i8, version: i16) -> Result<(), (ResponseError, String)> {
    let in_version = |error| {
        if version == 0 {
            ResponseError::InvalidRequest
        } else {
            error
        }
    };
    match endpoint_type {
        ENDPOINT_BROKER => Ok(()),
        ENDPOINT_CONTROLLER => Err((
            in_version(ResponseError::MismatchedEndpointType),
            "the request was sent to an endpoint of type BROKER, but we wanted an endpoint \
             of type CONTROLLER"
                .into(),
        )),
        other => Err((
            in_version(ResponseError::UnsupportedEndpointType),
            format!("unsupported endpoint type {other}"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_broker_endpoint_type_is_served() {
        assert!(check_endpoint_type(1, 0).is_ok());
        assert!(check_endpoint_type(1, 1).is_ok());
        let code = |t, v| check_endpoint_type(t, v).map_err(|(e, _)| e.code());
        assert_eq!(code(2, 1), Err(114));
        assert_eq!(code(7, 1), Err(115));
        assert_eq!(code(0, 1), Err(115));
        assert_eq!(code(7, 0), Err(ResponseError::InvalidRequest.code()));
    }

    #[test]
    fn describes_this_broker_at_every_version() {
        let dir = tempfile::tempdir().expect("tempdir");
        let broker = crate::broker::open_for_test(dir.path());
        for version in 0..=1 {
            let response = handle(
                &super::Admin::of(&broker),
                DescribeClusterRequest::default(),
                version,
            );
            assert_eq!(response.error_code, 0);
            assert_eq!(response.controller_id, BrokerId(1));
            let nodes: Vec<_> = response
                .brokers
                .iter()
                .map(|b| (b.broker_id, b.host.as_str(), b.port))
                .collect();
            assert_eq!(nodes, [(BrokerId(1), "127.0.0.1", 9092)]);
            let encoded = runnel_protocol::response::encode(
                kafka_protocol::messages::ApiKey::DescribeCluster,
                version,
                1,
                &response,
            );
            assert!(encoded.is_ok(), "v{version}: {encoded:?}");
        }
        let mut controllers = DescribeClusterRequest::default();
        controllers.endpoint_type = 2;
        let response = handle(&super::Admin::of(&broker), controllers, 1);
        assert_eq!(
            response.error_code,
            ResponseError::MismatchedEndpointType.code()
        );
        assert!(response.brokers.is_empty());
    }
}
