//! What a `read_committed` consumer leaves out of a fetch, as Java's
//! consumer does: records of transactions the fetch response lists as
//! aborted, and every control batch (transaction markers).
//!
//! The response lists each aborted transaction in the fetched range by
//! producer id and first offset. Walking the batches in offset order, a
//! producer's transactional batches are dropped from its aborted
//! transaction's first offset until its abort marker.

use kafka_protocol::messages::fetch_response::AbortedTransaction;
use runnel_protocol::batch::BatchHeader;
use runnel_protocol::control::ControlType;

#[derive(Debug, Default)]
pub(super) struct AbortedFilter {
    /// Aborted transactions not reached yet as `(first offset, producer
    /// id)`, latest first so the next one is at the end.
    ahead: Vec<(i64, i64)>,
    /// Producers inside an aborted transaction at the current batch.
    aborting: Vec<i64>,
}

impl AbortedFilter {
    pub fn new(aborted: &[AbortedTransaction]) -> Self {
        let mut ahead: Vec<(i64, i64)> = aborted
            .iter()
            .map(|a| (a.first_offset, a.producer_id.0))
            .collect();
        ahead.sort_unstable_by(|a, b| b.cmp(a));
        Self {
            ahead,
            aborting: Vec::new(),
        }
    }

    /// Whether the batch with `header` is left out. `marker` is the type of
    /// a control batch's record (read only for control batches).
    pub fn skips(&mut self, header: &BatchHeader, marker: Option<ControlType>) -> bool {
        if header.producer_id < 0 {
            return header.is_control();
        }
        while let Some(&(first_offset, producer_id)) = self.ahead.last()
            && first_offset <= header.last_offset()
        {
            self.ahead.pop();
            if !self.aborting.contains(&producer_id) {
                self.aborting.push(producer_id);
            }
        }
        if header.is_control() {
            if marker == Some(ControlType::Abort) {
                self.aborting.retain(|&p| p != header.producer_id);
            }
            return true;
        }
        header.is_transactional() && self.aborting.contains(&header.producer_id)
    }
}

#[cfg(test)]
mod tests {
    use kafka_protocol::messages::ProducerId;
    use runnel_protocol::builder::BatchBuilder;

    use super::*;

    fn header(batch: &[u8]) -> BatchHeader {
        BatchHeader::parse(batch).expect("header")
    }

    #[test]
    fn drops_aborted_transactions_up_to_their_marker() {
        // Producer 7 aborts at offsets 0-1 (marker at 2), then commits 3
        // (marker at 4); producer 8 commits 1 batch at 5 interleaved with
        // nothing; a plain batch at 6.
        let t = 1_000;
        let batches = [
            BatchBuilder::new(t)
                .producer(7, 0, 0)
                .transactional()
                .record(None, Some(b"a"), t)
                .record(None, Some(b"b"), t)
                .build(),
            BatchBuilder::marker(7, 0, ControlType::Abort, 0, t)
                .base_offset(2)
                .build(),
            BatchBuilder::new(t)
                .base_offset(3)
                .producer(7, 0, 2)
                .transactional()
                .record(None, Some(b"c"), t)
                .build(),
            BatchBuilder::marker(7, 0, ControlType::Commit, 0, t)
                .base_offset(4)
                .build(),
            BatchBuilder::new(t)
                .base_offset(5)
                .producer(8, 0, 0)
                .transactional()
                .record(None, Some(b"d"), t)
                .build(),
            BatchBuilder::new(t)
                .base_offset(6)
                .record(None, Some(b"e"), t)
                .build(),
        ];
        let markers = [
            None,
            Some(ControlType::Abort),
            None,
            Some(ControlType::Commit),
            None,
            None,
        ];
        let mut filter = AbortedFilter::new(&[AbortedTransaction::default()
            .with_producer_id(ProducerId(7))
            .with_first_offset(0)]);
        let skipped: Vec<bool> = batches
            .iter()
            .zip(markers)
            .map(|(b, m)| filter.skips(&header(b), m))
            .collect();
        assert_eq!(skipped, [true, true, false, true, false, false]);
    }

    #[test]
    fn without_aborted_transactions_only_markers_go() {
        let t = 1_000;
        let mut filter = AbortedFilter::new(&[]);
        let data = BatchBuilder::new(t)
            .producer(7, 0, 0)
            .transactional()
            .record(None, None, t)
            .build();
        let marker = BatchBuilder::marker(7, 0, ControlType::Abort, 0, t).build();
        assert!(!filter.skips(&header(&data), None));
        assert!(filter.skips(&header(&marker), Some(ControlType::Abort)));
    }
}
