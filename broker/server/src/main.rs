//! `runnel`: the Runnel broker binary.
//!
//! - `main.rs`: the command line, logging setup and exit codes.
//! - [`serve`]: `runnel serve`, the broker process.
//! - [`config`]: the broker's settings from flags, `RUNNEL_*` variables and
//!   a `server.properties` file, with Kafka's names and defaults.
//! - [`broker`]: the assembly of the parts below; [`cluster_metadata`]:
//!   the metadata log and image; [`topic_admin`]: topic changes;
//!   [`internal_topics`]: `__consumer_offsets` and `__transaction_state`;
//!   [`replica_manager`]: the hosted partitions; [`group_coordinator`] and
//!   [`groups`]: committed offsets and consumer groups;
//!   [`txn_coordinator`]: transactions; [`txn_verification`]: a leader's
//!   check with the coordinator before a transaction's first batch;
//!   [`topics`]: a topic as handlers see
//!   it; [`meta`]: `meta.properties` and the cluster id.
//! - [`delivery`]: delayed delivery's mover; [`level_config`]: a delay
//!   level's topic configs.
//! - [`connection`]: one client connection; [`connection_limits`]:
//!   `max.connections` and `max.connections.per.ip`; [`handlers`]: one per
//!   API key; [`error_codes`]: Kafka's code for each typed error of the
//!   coordinators, chosen there only.
//! - [`storage_health`]: log dirs that cannot take writes (`/readyz`).
//! - [`metrics`]: the broker's Prometheus metrics; [`http`]: the metrics
//!   port: `/metrics`, `/healthz`, `/readyz`.
//! - [`tools`]: client subcommands on runnel-client (`runnel produce`,
//!   `runnel consume`, `runnel perf`, `runnel topics`, `runnel groups`,
//!   `runnel storage`).

mod broker;
mod clock;
mod cluster_metadata;
mod config;
mod connection;
mod connection_limits;
mod controller;
mod delivery;
mod error_codes;
#[cfg(feature = "fault-injection")]
mod fault;
mod group_coordinator;
mod group_metrics;
mod groups;
mod handlers;
mod internal_topics;
mod level_config;
mod log_reader;
mod meta;
mod metrics;
mod producer_ids;
mod quorum_metrics;
mod quorum_node;
mod replica_manager;
mod replication;
mod serve;
mod storage_health;
mod tools;
mod topic_admin;
mod topics;
mod txn_coordinator;
mod txn_verification;
mod txns;

use std::io::IsTerminal;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use tracing_subscriber::EnvFilter;

/// Runnel: a Kafka-compatible streaming platform.
#[derive(Debug, Parser)]
#[command(name = "runnel", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Runs a broker: opens (and if needed recovers) the partition logs in
    /// the log dirs, then serves until SIGTERM or Ctrl-C.
    Serve(serve::ServeArgs),
    /// Sends each line of stdin as a record (as kafka-console-producer).
    Produce(tools::produce::ProduceArgs),
    /// Prints each record of a topic on its own line (as
    /// kafka-console-consumer).
    Consume(tools::consume::ConsumeArgs),
    /// Moves a lagging group's backlog into an overflow topic with more
    /// partitions, exactly once (commits the group's offsets in the same
    /// transactions)
    Forward(tools::forward::ForwardArgs),
    /// Measures produce or consume throughput (as Kafka's perf-test tools)
    #[command(subcommand)]
    Perf(tools::perf::PerfCommand),
    /// Creates, deletes, describes, lists and alters topics (as kafka-topics)
    Topics(tools::topics::TopicsArgs),
    /// Lists groups and describes their offsets, lag and members (as
    /// kafka-consumer-groups)
    Groups(tools::groups::GroupsArgs),
    /// Describes the KRaft metadata quorum (as kafka-metadata-quorum)
    MetadataQuorum(tools::metadata_quorum::MetadataQuorumArgs),
    /// Formats log dirs and makes cluster ids (as kafka-storage)
    #[command(subcommand)]
    Storage(tools::storage::StorageCommand),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging();
    let result = match cli.command {
        Command::Serve(args) => serve::run(args),
        Command::Produce(args) => tools::produce::run(args),
        Command::Consume(args) => tools::consume::run(args),
        Command::Forward(args) => tools::forward::run(args),
        Command::Storage(command) => tools::storage::run(command),
        Command::Perf(command) => tools::perf::run(command),
        Command::Topics(args) => tools::topics::run(args),
        Command::Groups(args) => tools::groups::run(args),
        Command::MetadataQuorum(args) => tools::metadata_quorum::run(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("runnel: {err:#}");
            ExitCode::FAILURE
        }
    }
}

/// Logs go to stderr, filtered by `RUST_LOG` (default `info`); stdout is
/// kept for the lines a user or a script waits for. Colours only on a
/// terminal: a pod's log (`kubectl logs`) or a file gets plain text.
fn init_logging() {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
}
