//! Client tools run as `runnel` subcommands, with the flags of Kafka's
//! console tools so that users' habits carry over.
//!
//! - [`produce`]: `runnel produce`, stdin lines as records.
//! - [`consume`]: `runnel consume`, records as stdout lines.
//! - [`forward`]: `runnel forward`, a lagging group's backlog moved into
//!   an overflow topic, exactly once.
//! - [`perf`]: `runnel perf produce|consume`, throughput and latency.
//! - [`topics`]: `runnel topics`, kafka-topics' actions.
//! - [`groups`]: `runnel groups`, kafka-consumer-groups' list and describe.
//! - [`metadata_quorum`]: `runnel metadata-quorum describe`, as
//!   kafka-metadata-quorum.
//! - [`storage`]: `runnel storage random-uuid|format`, as kafka-storage.

pub mod consume;
pub mod forward;
pub mod groups;
pub mod metadata_quorum;
pub mod perf;
pub mod produce;
pub mod storage;
pub mod topics;

use anyhow::{Context, Result, bail};

/// Splits a `NAME=VALUE` flag value.
pub fn name_value(flag: &str, pair: &str) -> Result<(String, String)> {
    match pair.split_once('=') {
        Some((name, value)) if !name.trim().is_empty() => {
            Ok((name.trim().to_string(), value.to_string()))
        }
        _ => bail!("{flag} {pair:?}: expected NAME=VALUE"),
    }
}

/// A tokio runtime for one tool run.
pub fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}
