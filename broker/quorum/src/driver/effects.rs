//! Carrying out the core's [`Effect`]s in order, without I/O of its own:
//! [`carry_out`] walks the effects of one call into the core and hands each
//! to an [`EffectSink`] (the driver's files, sockets and status watch, or a
//! recorder in tests).
//!
//! - Order is the core's: an effect is done before the next starts, so a
//!   `PersistQuorumState` is written and synced before any `Send` after it
//!   (a granted vote is on disk before the grant leaves), and a `FlushLog`
//!   before a Fetch reports the offset.
//! - A failed persist or flush stops the walk: nothing after it goes out,
//!   and the driver stops (Kafka's raft client exits too).
//! - The core answers a request in the same call that handles it, with one
//!   `Send` of the matching response to the requester. [`Awaiting`] names
//!   that request; the first such `Send` is its answer and goes back on the
//!   connection the request came in on ([`EffectSink::answer`]), with its
//!   correlation id. Other requests are new outbound requests.

use runnel_raft::{Effect, Epoch, Message, NodeId, QuorumStateData, Role};

use super::DriverError;

/// Where each effect lands.
pub trait EffectSink {
    /// How an inbound request is answered (its connection's reply slot).
    type Reply;

    /// Write and sync the `quorum-state` file.
    fn persist(&mut self, state: QuorumStateData) -> Result<(), DriverError>;
    /// Sync the log up to `end_offset`.
    fn flush(&mut self, end_offset: u64) -> Result<(), DriverError>;
    /// A request of ours to `to`.
    fn send_request(&mut self, to: NodeId, message: Message);
    /// The answer to the request being handled.
    fn answer(&mut self, reply: Self::Reply, message: Message);
    fn high_watermark(&mut self, high_watermark: u64);
    fn role_changed(&mut self, role: Role, epoch: Epoch, leader_id: Option<NodeId>);
}

/// An inbound request waiting for the core's answer.
#[derive(Debug)]
pub struct Awaiting<R> {
    pub from: NodeId,
    /// The request's API ([`Message::api_name`]).
    pub api: &'static str,
    pub reply: R,
}

/// Whether `message` is a response (the core only sends responses as
/// answers).
pub fn is_response(message: &Message) -> bool {
    matches!(
        message,
        Message::VoteResponse(_)
            | Message::BeginQuorumEpochResponse(_)
            | Message::EndQuorumEpochResponse(_)
            | Message::FetchResponse(_)
            | Message::FetchSnapshotResponse(_)
    )
}

/// Carries out `effects` in order (see the module doc). Returns the
/// request still awaiting an answer if the core gave none (the caller drops
/// it, which closes that connection).
pub fn carry_out<S: EffectSink>(
    effects: Vec<Effect>,
    mut awaiting: Option<Awaiting<S::Reply>>,
    sink: &mut S,
) -> Result<Option<Awaiting<S::Reply>>, DriverError> {
    for effect in effects {
        match effect {
            Effect::PersistQuorumState(state) => sink.persist(state)?,
            Effect::FlushLog { end_offset } => sink.flush(end_offset)?,
            Effect::Send { to, message } if is_response(&message) => {
                match awaiting.take_if(|a| a.from == to && a.api == message.api_name()) {
                    Some(a) => sink.answer(a.reply, message),
                    // Never happens with runnel-raft's core: it answers only
                    // the request it is handling.
                    None => tracing::warn!(
                        to,
                        api = message.api_name(),
                        "the quorum core answered a request that is not waiting; dropped"
                    ),
                }
            }
            Effect::Send { to, message } => sink.send_request(to, message),
            Effect::HighWatermark { high_watermark } => sink.high_watermark(high_watermark),
            Effect::RoleChanged {
                role,
                epoch,
                leader_id,
            } => sink.role_changed(role, epoch, leader_id),
        }
    }
    Ok(awaiting)
}

#[cfg(test)]
mod tests {
    use runnel_raft::message::{FetchRequest, VoteRequest, VoteResponse};
    use runnel_raft::{LeaderAndEpoch, OffsetAndEpoch};

    use super::*;

    /// What the sink saw, in order.
    #[derive(Debug, PartialEq)]
    enum Seen {
        Persist(QuorumStateData),
        Flush(u64),
        Request(NodeId, &'static str),
        Answer(u32, &'static str),
        HighWatermark(u64),
        Role(Role, Epoch),
    }

    #[derive(Default)]
    struct Recorder {
        seen: Vec<Seen>,
        fail_persist: bool,
    }

    impl EffectSink for Recorder {
        type Reply = u32;

        fn persist(&mut self, state: QuorumStateData) -> Result<(), DriverError> {
            if self.fail_persist {
                return Err(DriverError::Stopped);
            }
            self.seen.push(Seen::Persist(state));
            Ok(())
        }
        fn flush(&mut self, end_offset: u64) -> Result<(), DriverError> {
            self.seen.push(Seen::Flush(end_offset));
            Ok(())
        }
        fn send_request(&mut self, to: NodeId, message: Message) {
            self.seen.push(Seen::Request(to, message.api_name()));
        }
        fn answer(&mut self, reply: u32, message: Message) {
            self.seen.push(Seen::Answer(reply, message.api_name()));
        }
        fn high_watermark(&mut self, high_watermark: u64) {
            self.seen.push(Seen::HighWatermark(high_watermark));
        }
        fn role_changed(&mut self, role: Role, epoch: Epoch, _leader_id: Option<NodeId>) {
            self.seen.push(Seen::Role(role, epoch));
        }
    }

    fn vote_state() -> QuorumStateData {
        QuorumStateData {
            leader_epoch: 3,
            leader_id: None,
            voted_id: Some(2),
        }
    }

    fn grant() -> Message {
        Message::VoteResponse(VoteResponse {
            error: None,
            current_leader: LeaderAndEpoch {
                leader_id: None,
                epoch: 3,
            },
            vote_granted: true,
            pre_vote: false,
        })
    }

    fn fetch() -> Message {
        Message::FetchRequest(FetchRequest {
            current_leader_epoch: 3,
            fetch_offset: 0,
            last_fetched_epoch: 0,
        })
    }

    #[test]
    fn the_vote_is_persisted_before_the_grant_answers_the_request() -> Result<(), DriverError> {
        let effects = vec![
            Effect::PersistQuorumState(vote_state()),
            Effect::RoleChanged {
                role: Role::Unattached,
                epoch: 3,
                leader_id: None,
            },
            Effect::Send {
                to: 2,
                message: grant(),
            },
        ];
        let awaiting = Awaiting {
            from: 2,
            api: "Vote",
            reply: 7,
        };
        let mut sink = Recorder::default();
        let left = carry_out(effects, Some(awaiting), &mut sink)?;
        assert!(left.is_none());
        assert_eq!(
            sink.seen,
            vec![
                Seen::Persist(vote_state()),
                Seen::Role(Role::Unattached, 3),
                Seen::Answer(7, "Vote"),
            ]
        );
        Ok(())
    }

    #[test]
    fn a_failed_persist_stops_every_later_effect() {
        let effects = vec![
            Effect::PersistQuorumState(vote_state()),
            Effect::Send {
                to: 2,
                message: grant(),
            },
            Effect::Send {
                to: 3,
                message: fetch(),
            },
        ];
        let mut sink = Recorder {
            fail_persist: true,
            ..Recorder::default()
        };
        let awaiting = Awaiting {
            from: 2,
            api: "Vote",
            reply: 7,
        };
        assert!(carry_out(effects, Some(awaiting), &mut sink).is_err());
        assert!(sink.seen.is_empty());
    }

    #[test]
    fn requests_go_out_and_effects_keep_their_order() -> Result<(), DriverError> {
        let vote = Message::VoteRequest(VoteRequest {
            replica_epoch: 4,
            last_offset_and_epoch: OffsetAndEpoch::new(10, 3),
            pre_vote: false,
        });
        let effects = vec![
            Effect::FlushLog { end_offset: 10 },
            Effect::Send {
                to: 2,
                message: vote.clone(),
            },
            Effect::Send {
                to: 3,
                message: vote,
            },
            Effect::HighWatermark { high_watermark: 9 },
        ];
        let mut sink = Recorder::default();
        let left = carry_out::<Recorder>(effects, None, &mut sink)?;
        assert!(left.is_none());
        assert_eq!(
            sink.seen,
            vec![
                Seen::Flush(10),
                Seen::Request(2, "Vote"),
                Seen::Request(3, "Vote"),
                Seen::HighWatermark(9),
            ]
        );
        Ok(())
    }

    #[test]
    fn only_the_matching_response_answers_the_waiting_request() -> Result<(), DriverError> {
        // A Vote answer to node 3 does not answer node 2's Fetch.
        let effects = vec![Effect::Send {
            to: 3,
            message: grant(),
        }];
        let awaiting = Awaiting {
            from: 2,
            api: "Fetch",
            reply: 1,
        };
        let mut sink = Recorder::default();
        let left = carry_out(effects, Some(awaiting), &mut sink)?;
        assert_eq!(left.map(|a| a.reply), Some(1));
        assert!(sink.seen.is_empty());
        Ok(())
    }
}
