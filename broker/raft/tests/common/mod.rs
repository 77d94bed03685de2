//! Helpers shared by the integration tests: the deterministic simulation
//! ([`sim`]) and the safety properties it checks ([`checker`]).

pub mod checker;
pub mod sim;
