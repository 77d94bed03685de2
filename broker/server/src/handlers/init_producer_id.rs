//! InitProducerId for idempotent producers: a new producer id at epoch 0
//! for every request without a transactional id, as Kafka does (a producer
//! that asks with its current id and epoch, KIP-360, gets a new id too).
//! Transactional ids wait for the transaction coordinator.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::ProducerId;
use kafka_protocol::messages::init_producer_id_request::InitProducerIdRequest;
use kafka_protocol::messages::init_producer_id_response::InitProducerIdResponse;

use crate::broker::Broker;

pub fn handle(broker: &Broker, request: InitProducerIdRequest) -> InitProducerIdResponse {
    let mut response = InitProducerIdResponse::default()
        .with_producer_id(ProducerId(-1))
        .with_producer_epoch(-1);
    if let Some(transactional_id) = &request.transactional_id {
        tracing::warn!(
            transactional_id = %transactional_id.0,
            "InitProducerId with a transactional id: transactions are not served yet"
        );
        response.error_code = ResponseError::CoordinatorNotAvailable.code();
        return response;
    }
    match broker.producer_ids.next() {
        Ok(id) => response
            .with_producer_id(ProducerId(id))
            .with_producer_epoch(0),
        Err(err) => {
            tracing::error!(error = %crate::broker::error_chain(&err), "cannot hand out a producer id");
            response.error_code = ResponseError::KafkaStorageError.code();
            response
        }
    }
}
