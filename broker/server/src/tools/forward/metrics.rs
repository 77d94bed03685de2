//! The forwarder's `/metrics`: records and bytes forwarded, transactions
//! committed and aborted (OpenMetrics; the operator and dashboards read
//! `runnel_forward_records_total`).

use prometheus_client::metrics::counter::Counter;
use prometheus_client::registry::{Registry, Unit};

pub struct ForwardMetrics {
    registry: Registry,
    records: Counter,
    bytes: Counter,
    committed: Counter,
    aborted: Counter,
}

impl ForwardMetrics {
    pub fn new() -> Self {
        let mut registry = Registry::default();
        let records = Counter::default();
        let bytes = Counter::default();
        let committed = Counter::default();
        let aborted = Counter::default();
        registry.register(
            "runnel_forward_records",
            "Records written to the overflow topic in committed transactions",
            records.clone(),
        );
        registry.register_with_unit(
            "runnel_forward",
            "Key and value bytes written to the overflow topic in committed transactions",
            Unit::Bytes,
            bytes.clone(),
        );
        registry.register(
            "runnel_forward_transactions_committed",
            "Transactions committed (one per poll with records)",
            committed.clone(),
        );
        registry.register(
            "runnel_forward_transactions_aborted",
            "Transactions aborted; their records were read and forwarded again",
            aborted.clone(),
        );
        Self {
            registry,
            records,
            bytes,
            committed,
            aborted,
        }
    }

    /// A transaction of `records` records and `bytes` bytes committed.
    pub fn forwarded(&self, records: u64, bytes: u64) {
        self.records.inc_by(records);
        self.bytes.inc_by(bytes);
        self.committed.inc();
    }

    pub fn aborted(&self) {
        self.aborted.inc();
    }

    pub fn encode(&self) -> String {
        let mut out = String::new();
        if let Err(err) = prometheus_client::encoding::text::encode(&mut out, &self.registry) {
            tracing::error!(error = %err, "encoding the metrics failed");
        }
        out
    }
}

impl runnel_http::EncodeMetrics for ForwardMetrics {
    fn encode(&self) -> String {
        ForwardMetrics::encode(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_what_was_forwarded_by_kafka_style_names() {
        let metrics = ForwardMetrics::new();
        metrics.forwarded(3, 300);
        metrics.forwarded(2, 50);
        metrics.aborted();
        let text = metrics.encode();
        for line in [
            "runnel_forward_records_total 5",
            "runnel_forward_bytes_total 350",
            "runnel_forward_transactions_committed_total 2",
            "runnel_forward_transactions_aborted_total 1",
        ] {
            assert!(text.contains(line), "{line} in\n{text}");
        }
    }
}
