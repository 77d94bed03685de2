//! Kafka's error code for each typed refusal of the lower layers: the one
//! place the broker chooses them (the coordinators know no codes). Handlers
//! and the parts that answer for them call these; nothing else spells a
//! code as a number.

use kafka_protocol::error::ResponseError;
use runnel_coordinator::group::GroupError;
use runnel_coordinator::txn::TxnError;

use crate::group_coordinator::OffsetsError;
use crate::replica_manager::Awaited;
use crate::txn_coordinator::TxnRequestError;

/// The group coordinator's refusals, as Kafka's `GroupCoordinator` answers.
pub fn group(error: GroupError) -> ResponseError {
    match error {
        GroupError::CoordinatorNotAvailable => ResponseError::CoordinatorNotAvailable,
        GroupError::IllegalGeneration => ResponseError::IllegalGeneration,
        GroupError::InconsistentGroupProtocol => ResponseError::InconsistentGroupProtocol,
        GroupError::UnknownMemberId => ResponseError::UnknownMemberId,
        GroupError::InvalidSessionTimeout => ResponseError::InvalidSessionTimeout,
        GroupError::RebalanceInProgress => ResponseError::RebalanceInProgress,
        GroupError::GroupIdNotFound => ResponseError::GroupIdNotFound,
        GroupError::NonEmptyGroup => ResponseError::NonEmptyGroup,
        GroupError::MemberIdRequired => ResponseError::MemberIdRequired,
        GroupError::FencedInstanceId => ResponseError::FencedInstanceId,
    }
}

/// A response's `error_code` field for a group outcome (0 for none).
pub fn group_code(error: Option<GroupError>) -> i16 {
    error.map_or(0, |e| group(e).code())
}

/// The transaction coordinator's refusals.
pub fn txn(error: TxnError) -> ResponseError {
    match error {
        TxnError::ConcurrentTransactions => ResponseError::ConcurrentTransactions,
        TxnError::ProducerFenced => ResponseError::ProducerFenced,
        TxnError::InvalidProducerIdMapping => ResponseError::InvalidProducerIdMapping,
        TxnError::InvalidTxnState => ResponseError::InvalidTxnState,
        TxnError::InvalidTransactionTimeout => ResponseError::InvalidTransactionTimeout,
    }
}

/// A failed write or read of committed offsets: NOT_COORDINATOR when the
/// group's partition is not loaded here (the client looks the coordinator
/// up again), COORDINATOR_NOT_AVAILABLE for anything else.
pub fn offsets(error: &OffsetsError) -> ResponseError {
    match error {
        OffsetsError::NotCoordinator { .. } => ResponseError::NotCoordinator,
        // Leadership moved before the ISR took the write: the client
        // finds the new coordinator.
        OffsetsError::NotReplicated {
            outcome: Awaited::LeadershipLost,
            ..
        } => ResponseError::NotCoordinator,
        _ => ResponseError::CoordinatorNotAvailable,
    }
}

/// A transactional request the coordinator did not carry out.
pub fn txn_request(error: &TxnRequestError) -> ResponseError {
    match error {
        TxnRequestError::Refused(err) => txn(*err),
        TxnRequestError::NotCoordinator { .. } => ResponseError::NotCoordinator,
        // Retriable: the client tries again.
        TxnRequestError::Store(_) => ResponseError::CoordinatorNotAvailable,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The codes Kafka's protocol gives these errors, pinned so a change of
    /// mapping is a deliberate one.
    #[test]
    fn codes_are_kafkas() {
        let groups = [
            (GroupError::CoordinatorNotAvailable, 15),
            (GroupError::IllegalGeneration, 22),
            (GroupError::InconsistentGroupProtocol, 23),
            (GroupError::UnknownMemberId, 25),
            (GroupError::InvalidSessionTimeout, 26),
            (GroupError::RebalanceInProgress, 27),
            (GroupError::NonEmptyGroup, 68),
            (GroupError::GroupIdNotFound, 69),
            (GroupError::MemberIdRequired, 79),
            (GroupError::FencedInstanceId, 82),
        ];
        for (error, code) in groups {
            assert_eq!(group(error).code(), code, "{error:?}");
        }
        assert_eq!(group_code(None), 0);
        let txns = [
            (TxnError::InvalidTxnState, 48),
            (TxnError::InvalidProducerIdMapping, 49),
            (TxnError::InvalidTransactionTimeout, 50),
            (TxnError::ConcurrentTransactions, 51),
            (TxnError::ProducerFenced, 90),
        ];
        for (error, code) in txns {
            assert_eq!(txn(error).code(), code, "{error:?}");
            assert_eq!(txn_request(&error.into()).code(), code, "{error:?}");
        }
        let not_coordinator = TxnRequestError::NotCoordinator { partition: 3 };
        assert_eq!(txn_request(&not_coordinator).code(), 16);
    }
}
