//! `runnel-operator`:
//!
//! - `run`: the operator (controllers, `/metrics` and probes, leader
//!   election);
//! - `crd`: prints the CRDs as YAML (`crds/` holds its output).

use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use clap::{Parser, Subcommand, ValueEnum};
use runnel_operator::leader::LeaseConfig;
use runnel_operator::run::{RunOptions, run};

#[derive(Debug, Parser)]
#[command(name = "runnel-operator", about = "Kubernetes operator for Runnel")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Runs the operator against the cluster of the kubeconfig or the
    /// pod's service account
    Run(RunArgs),
    /// Prints the Cluster, Topic and ConsumerGroup CRDs as one YAML stream
    Crd,
}

#[derive(Debug, clap::Args)]
struct RunArgs {
    /// Watch only this namespace (default: all namespaces)
    #[arg(long)]
    namespace: Option<String>,
    /// Address of /metrics, /healthz and /readyz
    #[arg(long, default_value = "0.0.0.0:8080")]
    http_addr: SocketAddr,
    /// Seconds between two lag reads of a ConsumerGroup
    #[arg(long, default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..))]
    lag_interval_seconds: u64,
    /// Reconcile only while holding the leader Lease (for more than one
    /// replica)
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    leader_election: bool,
    /// Name of the leader Lease
    #[arg(long, default_value = "runnel-operator")]
    lease_name: String,
    /// Namespace of the leader Lease (default: $POD_NAMESPACE)
    #[arg(long)]
    lease_namespace: Option<String>,
    /// Log lines as JSON objects or as text
    #[arg(long, value_enum, default_value_t = LogFormat::Json)]
    log_format: LogFormat,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum LogFormat {
    Json,
    Text,
}

fn main() -> ExitCode {
    match execute(Cli::parse().command) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("runnel-operator: {err:#}");
            ExitCode::FAILURE
        }
    }
}

fn execute(command: Command) -> anyhow::Result<()> {
    match command {
        Command::Crd => {
            let yaml = runnel_operator::crd::crds_yaml().context("cannot render the CRDs")?;
            print!("{yaml}");
            Ok(())
        }
        Command::Run(args) => {
            init_logs(args.log_format);
            tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()
                .context("cannot start the async runtime")?
                .block_on(run_operator(args))
        }
    }
}

fn init_logs(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    match format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Text => builder.init(),
    }
}

async fn run_operator(args: RunArgs) -> anyhow::Result<()> {
    let client = kube::Client::try_default()
        .await
        .context("cannot configure the Kubernetes client (no kubeconfig and not in a pod?)")?;
    let lease = if args.leader_election {
        let namespace = args
            .lease_namespace
            .or_else(|| std::env::var("POD_NAMESPACE").ok())
            .or_else(|| args.namespace.clone())
            .context("leader election needs --lease-namespace or $POD_NAMESPACE")?;
        let identity = std::env::var("POD_NAME")
            .ok()
            .filter(|name| !name.is_empty())
            .unwrap_or_else(|| format!("runnel-operator-{}", std::process::id()));
        Some(LeaseConfig {
            name: args.lease_name,
            namespace,
            identity,
            duration: Duration::from_secs(15),
            renew_every: Duration::from_secs(5),
        })
    } else {
        None
    };
    let options = RunOptions {
        namespace: args.namespace,
        http_addr: args.http_addr,
        lag_interval: Duration::from_secs(args.lag_interval_seconds),
        lease,
    };
    run(client, options, shutdown_signal()).await?;
    Ok(())
}

/// SIGTERM (what Kubernetes sends) or Ctrl-C.
async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(term) => term,
                Err(err) => {
                    tracing::warn!(error = %err, "cannot listen for SIGTERM");
                    let _ = ctrl_c.await;
                    return;
                }
            };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}
