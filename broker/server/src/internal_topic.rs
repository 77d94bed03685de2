//! Reading an internal topic (`__consumer_offsets`, `__transaction_state`)
//! back at start: every batch of every partition, in offset order, decoded.

use runnel_log::BatchHeader;
use runnel_log::records::BatchRecords;

use crate::broker::Broker;
use crate::log_reader::{ReadError, for_each_batch};

impl Broker {
    /// Hands every batch of `topic`'s `partitions` to `visit` as
    /// `(partition, header, records)`, each partition from its log start
    /// to its end.
    pub(crate) fn read_internal_topic(
        &self,
        topic: &str,
        partitions: i32,
        mut visit: impl FnMut(i32, &BatchHeader, &BatchRecords),
    ) -> Result<(), ReadError> {
        for partition in 0..partitions {
            let log =
                self.partition(topic, partition)
                    .ok_or_else(|| ReadError::MissingPartition {
                        topic: topic.to_string(),
                        partition,
                    })?;
            let log = log.log();
            let start = log.log_start_offset();
            for_each_batch::<ReadError>(&log, start, topic, |header, batch| {
                let records = BatchRecords::decode(batch).map_err(|source| ReadError::Records {
                    topic: topic.to_string(),
                    source,
                })?;
                visit(partition, header, &records);
                Ok(())
            })?;
        }
        Ok(())
    }
}
