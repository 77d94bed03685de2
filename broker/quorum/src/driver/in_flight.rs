//! [`InFlight`]: the requests sent on one outbound connection and not yet
//! answered, by correlation id (dropped with its connection: no answer
//! comes on another). A response is decoded against the request
//! it answers (its API and version, and the core's request: the pre-vote
//! flag and fetch position the core wants echoed).

use std::collections::HashMap;

use kafka_protocol::messages::ApiKey;
use runnel_raft::Message;

/// The most requests waiting on one connection; past it the peer is not
/// answering and new requests are dropped (the core retries).
pub const MAX_IN_FLIGHT: usize = 256;

/// One request sent and not yet answered.
#[derive(Debug, Clone, PartialEq)]
pub struct Sent {
    pub api_key: ApiKey,
    pub version: i16,
    pub request: Message,
}

/// See the module doc.
#[derive(Debug, Default)]
pub struct InFlight {
    next_correlation_id: i32,
    pending: HashMap<i32, Sent>,
}

impl InFlight {
    /// The correlation id for `sent`; `None` if [`MAX_IN_FLIGHT`] are
    /// already waiting.
    pub fn register(&mut self, sent: Sent) -> Option<i32> {
        if self.pending.len() >= MAX_IN_FLIGHT {
            return None;
        }
        let id = self.next_correlation_id;
        // Ids wrap at i32::MAX back to 0; MAX_IN_FLIGHT keeps a wrapped id
        // from meeting one still waiting.
        self.next_correlation_id = id.checked_add(1).unwrap_or(0);
        self.pending.insert(id, sent);
        Some(id)
    }

    /// The request `correlation_id` answers, removed.
    pub fn take(&mut self, correlation_id: i32) -> Option<Sent> {
        self.pending.remove(&correlation_id)
    }
}

#[cfg(test)]
mod tests {
    use runnel_raft::message::BeginQuorumEpochRequest;

    use super::*;

    fn sent(epoch: u32) -> Sent {
        Sent {
            api_key: ApiKey::BeginQuorumEpoch,
            version: 1,
            request: Message::BeginQuorumEpochRequest(BeginQuorumEpochRequest {
                leader_epoch: epoch,
            }),
        }
    }

    #[test]
    fn responses_find_their_request_by_correlation_id_in_any_order() {
        let mut in_flight = InFlight::default();
        let a = in_flight.register(sent(1)).expect("room");
        let b = in_flight.register(sent(2)).expect("room");
        assert_ne!(a, b);
        assert_eq!(in_flight.take(b), Some(sent(2)));
        assert_eq!(in_flight.take(b), None, "answered once");
        assert_eq!(in_flight.take(a), Some(sent(1)));
    }

    #[test]
    fn a_full_connection_refuses_until_an_answer_makes_room() {
        let mut in_flight = InFlight::default();
        let first = in_flight.register(sent(1)).expect("room");
        for _ in 1..MAX_IN_FLIGHT {
            assert!(in_flight.register(sent(1)).is_some());
        }
        assert_eq!(in_flight.register(sent(1)), None);
        assert!(in_flight.take(first).is_some());
        assert!(in_flight.register(sent(1)).is_some());
    }

    #[test]
    fn correlation_ids_wrap_to_zero() {
        let mut in_flight = InFlight {
            next_correlation_id: i32::MAX,
            ..InFlight::default()
        };
        assert_eq!(in_flight.register(sent(1)), Some(i32::MAX));
        assert_eq!(in_flight.register(sent(1)), Some(0));
    }
}
