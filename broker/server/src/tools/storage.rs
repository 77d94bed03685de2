//! `runnel storage`: kafka-storage's `random-uuid` and `format`, with its
//! flags in both spellings. `format` writes `meta.properties` (cluster id,
//! node id, a directory id) in every log dir of a server.properties; a
//! formatted dir is refused unless `--ignore-formatted`.

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use clap::{Args, Subcommand};

use crate::config::{self, ConfigArgs};
use crate::meta;

#[derive(Debug, Subcommand)]
pub enum StorageCommand {
    /// Prints a new cluster id
    RandomUuid,
    /// Writes meta.properties in each log dir of --config for --cluster-id
    Format(FormatArgs),
}

#[derive(Debug, Args)]
pub struct FormatArgs {
    /// The cluster id, as `runnel storage random-uuid` prints one
    #[arg(short = 't', long = "cluster-id", value_name = "ID")]
    cluster_id: String,
    /// The node's server.properties
    #[arg(short = 'c', long = "config", value_name = "FILE")]
    config: PathBuf,
    /// Leave log dirs that are formatted already as they are
    #[arg(short = 'g', long = "ignore-formatted")]
    ignore_formatted: bool,
    /// A quorum of this one node (what `runnel serve` runs without quorum
    /// settings; nothing more to write)
    #[arg(short = 's', long = "standalone")]
    standalone: bool,
    /// The quorum's voters come from controller.quorum.voters
    #[arg(short = 'N', long = "no-initial-controllers")]
    no_initial_controllers: bool,
}

pub fn run(command: StorageCommand) -> Result<()> {
    match command {
        StorageCommand::RandomUuid => {
            println!("{}", meta::new_cluster_id());
            Ok(())
        }
        StorageCommand::Format(args) => format(args),
    }
}

fn format(args: FormatArgs) -> Result<()> {
    if !meta::is_valid_uuid(&args.cluster_id) {
        bail!(
            "cluster id {:?} is not a valid UUID: 22 characters of URL-safe base64, as `runnel storage random-uuid` prints",
            args.cluster_id
        );
    }
    let config_args = ConfigArgs {
        config: Some(args.config.clone()),
        overrides: Vec::new(),
        listeners: None,
        log_dirs: None,
    };
    // Only the file: RUNNEL_* variables are the running broker's.
    let config = config::load(&config_args.sources(std::iter::empty()))
        .with_context(|| format!("cannot read {}", args.config.display()))?;
    // --standalone and --no-initial-controllers are taken as
    // kafka-storage takes them; a quorum of one needs nothing written.
    let _accepted = (args.standalone, args.no_initial_controllers);
    for dir in &config.log_dirs {
        if meta::format(dir, &args.cluster_id, config.node_id)? {
            println!(
                "Formatting log directory {} with cluster.id {}",
                dir.display(),
                args.cluster_id
            );
        } else if args.ignore_formatted {
            println!(
                "Log directory {} is formatted already: left as it is",
                dir.display()
            );
        } else {
            bail!(
                "log directory {} is formatted already ({} exists); use --ignore-formatted to leave it",
                dir.display(),
                dir.join(meta::FILE_NAME).display()
            );
        }
    }
    Ok(())
}
