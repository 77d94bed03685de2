//! Kafka's internal topics, `__consumer_offsets` and `__transaction_state`,
//! created the first time a group or a transactional producer needs them,
//! as Kafka does: an ordinary topic change, whose local changes make the
//! coordinators load the new partitions.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::group_coordinator::OFFSETS_TOPIC;
use crate::topic_admin::{TopicAdmin, TopicOpError};
use crate::txn_coordinator::TRANSACTION_TOPIC;

/// Kafka's `offsets.topic.segment.bytes` and
/// `transaction.state.log.segment.bytes`: 100 MiB.
const SEGMENT_BYTES: u64 = 100 << 20;

#[derive(Debug)]
pub struct InternalTopics {
    admin: Arc<TopicAdmin>,
    /// `offsets.topic.num.partitions` and `offsets.topic.replication.factor`.
    offsets: (i32, i16),
    /// `transaction.state.log.num.partitions` and
    /// `transaction.state.log.replication.factor`.
    transactions: (i32, i16),
}

impl InternalTopics {
    pub fn new(admin: Arc<TopicAdmin>, offsets: (i32, i16), transactions: (i32, i16)) -> Self {
        Self {
            admin,
            offsets,
            transactions,
        }
    }

    /// Creates `__consumer_offsets` if it does not exist yet.
    pub fn ensure_offsets(&self, now_ms: i64) -> Result<(), TopicOpError> {
        self.ensure(OFFSETS_TOPIC, self.offsets, now_ms)
    }

    /// Creates `__transaction_state` if it does not exist yet.
    pub fn ensure_transactions(&self, now_ms: i64) -> Result<(), TopicOpError> {
        self.ensure(TRANSACTION_TOPIC, self.transactions, now_ms)
    }

    fn ensure(
        &self,
        name: &str,
        (partitions, replication_factor): (i32, i16),
        now_ms: i64,
    ) -> Result<(), TopicOpError> {
        if self.admin.topic(name).is_some() {
            return Ok(());
        }
        let configs = BTreeMap::from([
            ("cleanup.policy".to_string(), "compact".to_string()),
            ("segment.bytes".to_string(), SEGMENT_BYTES.to_string()),
        ]);
        match self
            .admin
            .create_topic(name, partitions, replication_factor, configs, false, now_ms)
        {
            Ok(_) | Err(TopicOpError::AlreadyExists(_)) => Ok(()),
            Err(err) => Err(err),
        }
    }
}
