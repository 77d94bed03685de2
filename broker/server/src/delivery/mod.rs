//! Delayed delivery: a delay-level topic (`delivery.delay.ms`,
//! `delivery.target`) is an ordinary topic whose records this broker moves
//! to the target topic when their time comes, exactly once.
//!
//! - `mover`: the task that moves due records, one transaction per move.
//! - `due_time`: when a record sent through an entry topic is due, from
//!   its headers; the produce path checks them.
//! - `wheel`: which level a record hops to next.
//!
//! A level's topic configs and their checks are `level_config.rs`, which
//! topic changes use without the mover.

pub mod due_time;
pub mod mover;
pub mod wheel;

pub use mover::{DELIVERY_GROUP, Mover};
