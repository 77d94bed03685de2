//! `runnel-operator crd`: prints the CRDs as YAML (`crds/` holds its
//! output).

use anyhow::Context;
use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(name = "runnel-operator", about = "Kubernetes operator for Runnel")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Prints the Cluster, Topic and ConsumerGroup CRDs as one YAML stream
    Crd,
}

fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::Crd => {
            let yaml = runnel_operator::crd::crds_yaml().context("cannot render the CRDs")?;
            print!("{yaml}");
        }
    }
    Ok(())
}
