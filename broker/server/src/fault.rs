//! Faults for tests, compiled only with the `fault-injection` feature and
//! switched on by environment variables read at start; a production build
//! has none of this, and nothing here is reachable from the wire.
//!
//! `FAULT_DROP_PRODUCE_RESPONSE_EVERY=N`: every Nth Produce request is
//! appended and then its connection is closed instead of answered, as when
//! a broker or the network fails between the write and the response.

use std::sync::atomic::{AtomicU64, Ordering};

#[derive(Debug, Default)]
pub struct Faults {
    drop_produce_every: u64,
    produces: AtomicU64,
}

impl Faults {
    pub fn from_env() -> Self {
        let drop_produce_every = std::env::var("FAULT_DROP_PRODUCE_RESPONSE_EVERY")
            .ok()
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0);
        if drop_produce_every > 0 {
            tracing::warn!(
                every = drop_produce_every,
                "fault injection: dropping the connection instead of answering Produce requests"
            );
        }
        Self {
            drop_produce_every,
            produces: AtomicU64::new(0),
        }
    }

    /// Whether this Produce request's response is to be dropped.
    pub fn drop_produce_response(&self) -> bool {
        self.drop_produce_every > 0
            && (self.produces.fetch_add(1, Ordering::Relaxed) + 1)
                .is_multiple_of(self.drop_produce_every)
    }
}
