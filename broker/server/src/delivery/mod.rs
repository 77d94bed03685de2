//! Delayed delivery: a delay-level topic (`delivery.delay.ms`,
//! `delivery.target`) is an ordinary topic whose records this broker moves
//! to the target topic when their time comes, exactly once.
//!
//! - `config`: a level's topic configs and the checks that keep its
//!   records until they are moved.
//! - `mover`: the task that moves due records, one transaction per move.

pub mod config;
pub mod mover;

pub use mover::{DELIVERY_GROUP, Mover};
