//! Producer ids for InitProducerId, never handed out twice, even across
//! restarts: they come from blocks of 1,000 taken through the metadata log
//! (a ProducerIdsRecord, Kafka's AllocateProducerIds) before the first id
//! of a block is used. A restart takes a new block, so at most the unused
//! rest of one block is skipped.
//!
//! Data dirs from before the metadata log kept the end of their last block
//! in `producer-id-block`; cluster_metadata's upgrade turns it into a
//! record.

use std::sync::{Mutex, PoisonError};

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::BrokerId;
use kafka_protocol::messages::allocate_producer_ids_request::AllocateProducerIdsRequest;
use runnel_metadata::changes::allocate_producer_ids;

use crate::cluster_metadata::{ClusterMetadata, MetadataError};

const ALLOCATE_PRODUCER_IDS_VERSION: i16 = 0;

#[derive(Debug, Clone, Copy)]
struct Block {
    next: i64,
    end: i64,
}

#[derive(Debug, Default)]
pub struct ProducerIds {
    /// `None` until the first block is taken.
    block: Mutex<Option<Block>>,
}

impl ProducerIds {
    /// A producer id never handed out before. Appends to the metadata log
    /// (and fsyncs) once per 1,000 ids.
    pub fn next(&self, metadata: &ClusterMetadata, now_ms: i64) -> Result<i64, MetadataError> {
        let mut guard = self.block.lock().unwrap_or_else(PoisonError::into_inner);
        let mut block = match *guard {
            Some(block) if block.next < block.end => block,
            _ => take_block(metadata, now_ms)?,
        };
        let id = block.next;
        block.next += 1;
        *guard = Some(block);
        Ok(id)
    }
}

/// A new block: taken through the metadata log here, or on a cluster node
/// that is not the active controller, asked of it by AllocateProducerIds
/// (Kafka's brokers do the same).
fn take_block(metadata: &ClusterMetadata, now_ms: i64) -> Result<Block, MetadataError> {
    if let Some(quorum) = metadata.quorum().filter(|q| !q.is_controller()) {
        let broker_epoch = metadata
            .image()
            .broker(metadata.node_id())
            .map_or(-1, |b| b.epoch);
        let request = AllocateProducerIdsRequest::default()
            .with_broker_id(BrokerId(metadata.node_id()))
            .with_broker_epoch(broker_epoch);
        let response = quorum.forward(request, ALLOCATE_PRODUCER_IDS_VERSION)?;
        if let Some(error) = ResponseError::try_from_code(response.error_code) {
            return Err(MetadataError::ControllerRefused {
                request: "AllocateProducerIds",
                error,
            });
        }
        return Ok(Block {
            next: response.producer_id_start.0,
            end: response.producer_id_start.0 + i64::from(response.producer_id_len),
        });
    }
    let (_, taken) = metadata.change(now_ms, |image| {
        allocate_producer_ids(image, metadata.node_id(), -1)
    })?;
    Ok(Block {
        next: taken.first_producer_id,
        end: taken.first_producer_id + taken.size,
    })
}
