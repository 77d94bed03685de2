//! `runnel storage`: kafka-storage's `random-uuid` and `format`, with its
//! flags in both spellings. `format` writes `meta.properties` (cluster id,
//! node id, a directory id) in every log dir of a server.properties, and
//! with `process.roles` in its `metadata.log.dir` too (a node with
//! `process.roles` starts only on formatted dirs); a formatted dir is
//! refused unless `--ignore-formatted`.

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use clap::{Args, Subcommand};

use crate::config::{self, ConfigArgs};
use crate::meta;

#[derive(Debug, Subcommand)]
pub enum StorageCommand {
    /// Prints a new cluster id
    RandomUuid,
    /// Writes meta.properties in each log dir (and metadata.log.dir) of
    /// --config for --cluster-id
    Format(FormatArgs),
}

#[derive(Debug, Args)]
pub struct FormatArgs {
    /// The cluster id, as `runnel storage random-uuid` prints one
    #[arg(
        short = 't',
        long = "cluster-id",
        value_name = "ID",
        allow_hyphen_values = true
    )]
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
    for dir in meta::formatted_dirs(&config) {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_the_metadata_log_dir_of_a_quorum_node_too() {
        let root = tempfile::tempdir().expect("tempdir");
        let (data, metadata) = (root.path().join("data"), root.path().join("meta"));
        let config = root.path().join("server.properties");
        let text = format!(
            "process.roles=controller\nnode.id=1\ncontroller.quorum.voters=1@c-1:9093\n\
             listeners=CONTROLLER://c-1:9093\ncontroller.listener.names=CONTROLLER\n\
             log.dirs={}\nmetadata.log.dir={}\n",
            data.display(),
            metadata.display()
        );
        std::fs::write(&config, text).expect("write");
        let id = meta::new_cluster_id();
        let args = |ignore_formatted| FormatArgs {
            cluster_id: id.clone(),
            config: config.clone(),
            ignore_formatted,
            standalone: true,
            no_initial_controllers: false,
        };
        format(args(false)).expect("format");
        for dir in [&data, &metadata] {
            assert!(dir.join(meta::FILE_NAME).exists(), "{}", dir.display());
        }
        std::fs::remove_file(metadata.join(meta::FILE_NAME)).expect("wipe");
        let err = format(args(false)).expect_err("data is formatted");
        assert!(err.to_string().contains("is formatted already"), "{err}");
        format(args(true)).expect("--ignore-formatted formats the rest");
        assert!(metadata.join(meta::FILE_NAME).exists());
    }
}
