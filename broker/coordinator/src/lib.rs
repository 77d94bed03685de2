//! `runnel-coordinator`: the group and transaction state machines, written
//! as `(state, request, now) -> (state, effects)` with no I/O.
//!
//! Empty until the consumer groups issue lands.
