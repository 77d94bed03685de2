//! `runnel serve`: the broker process. Until the Kafka protocol listener
//! lands it opens the storage and keeps it: the log dirs are locked, every
//! partition is opened (and recovered after an unclean stop), logs are
//! flushed and retention applied every second, compacted topics cleaned
//! every 15 seconds, checkpoints written every minute, and SIGTERM or Ctrl-C closes everything and leaves the
//! clean-shutdown marker.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, bail};
use runnel_log::{LogManager, ManagerConfig};
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::oneshot;
use tokio::time::MissedTickBehavior;

const MAINTENANCE_INTERVAL: Duration = Duration::from_secs(1);
const CHECKPOINT_INTERVAL: Duration = Duration::from_secs(60);
/// Kafka's `log.cleaner.backoff.ms`.
const CLEANER_INTERVAL: Duration = Duration::from_secs(15);

#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    /// Directories holding the partition logs, comma-separated (Kafka's
    /// `log.dirs`). Created when missing; each is locked while the broker
    /// runs.
    #[arg(
        long = "log-dirs",
        env = "RUNNEL_LOG_DIRS",
        value_name = "DIR[,DIR...]",
        value_delimiter = ',',
        default_value = "./runnel-data"
    )]
    log_dirs: Vec<PathBuf>,
}

pub fn run(args: ServeArgs) -> Result<()> {
    let log_dirs = checked_log_dirs(args.log_dirs)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("runnel")
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(serve(log_dirs))
}

fn checked_log_dirs(log_dirs: Vec<PathBuf>) -> Result<Vec<PathBuf>> {
    if log_dirs.is_empty() {
        bail!("--log-dirs names no directory");
    }
    let mut seen = HashSet::new();
    for (i, dir) in log_dirs.iter().enumerate() {
        if dir.as_os_str().is_empty() {
            bail!(
                "--log-dirs entry {} is empty; give directories separated by commas",
                i + 1
            );
        }
        if !seen.insert(dir) {
            bail!("--log-dirs names {} twice", dir.display());
        }
    }
    Ok(log_dirs)
}

async fn serve(log_dirs: Vec<PathBuf>) -> Result<()> {
    // Installed before the ready line: a signal sent as soon as it is read
    // must reach this loop, not the default action.
    let mut terminate = signal(SignalKind::terminate()).context("cannot listen for SIGTERM")?;
    let mut interrupt = signal(SignalKind::interrupt()).context("cannot listen for SIGINT")?;

    let shown = display_dirs(&log_dirs);
    let fresh = log_dirs.iter().all(|dir| is_missing_or_empty(dir));
    let started = Instant::now();
    let config = ManagerConfig::new(log_dirs);
    let manager = tokio::task::spawn_blocking(move || LogManager::open(config, now_ms()))
        .await
        .context("opening the storage panicked")?
        .with_context(|| format!("cannot open storage in {shown}"))?;
    let manager = Arc::new(manager);
    let partitions = manager.partitions().len();
    let start_kind = if fresh {
        "new"
    } else if manager.started_clean() {
        "clean start"
    } else {
        "recovered after an unclean shutdown"
    };
    tracing::info!(
        elapsed_ms = started.elapsed().as_millis() as u64,
        partitions,
        start_kind,
        "storage opened"
    );
    let plural = if partitions == 1 { "" } else { "s" };
    println!(
        "runnel: storage ready in {shown} ({partitions} partition{plural}, {start_kind}); \
         Kafka protocol listener not implemented yet"
    );

    let (stop, stopped) = oneshot::channel();
    let maintenance = tokio::spawn(maintain(Arc::clone(&manager), stopped));

    let signal_name = tokio::select! {
        _ = terminate.recv() => "SIGTERM",
        _ = interrupt.recv() => "SIGINT",
    };
    tracing::info!(signal = signal_name, "shutting down");
    // The maintenance task may be mid-flush; it stops after that.
    let _ = stop.send(());
    maintenance.await.context("the maintenance task panicked")?;
    let manager = Arc::into_inner(manager)
        .context("storage is still in use at shutdown; not writing the clean-shutdown marker")?;
    tokio::task::spawn_blocking(move || manager.shutdown())
        .await
        .context("closing the storage panicked")?
        .with_context(|| format!("cannot close storage in {shown} cleanly"))?;
    tracing::info!("storage closed cleanly");
    Ok(())
}

/// Flushes logs whose `flush.ms` has passed and applies retention every
/// second, and writes the checkpoints every minute, until told to stop. A
/// failure is logged and retried at the next tick.
async fn maintain(manager: Arc<LogManager>, mut stop: oneshot::Receiver<()>) {
    let mut tick = tokio::time::interval(MAINTENANCE_INTERVAL);
    tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut last_checkpoint = Instant::now();
    let mut last_clean = Instant::now();
    loop {
        tokio::select! {
            _ = &mut stop => return,
            _ = tick.tick() => {}
        }
        let checkpoint = last_checkpoint.elapsed() >= CHECKPOINT_INTERVAL;
        if checkpoint {
            last_checkpoint = Instant::now();
        }
        let clean = last_clean.elapsed() >= CLEANER_INTERVAL;
        if clean {
            last_clean = Instant::now();
        }
        let tasks = Maintenance { checkpoint, clean };
        let manager = Arc::clone(&manager);
        let done =
            tokio::task::spawn_blocking(move || maintain_once(&manager, now_ms(), tasks)).await;
        if let Err(err) = done {
            tracing::error!(error = %err, "storage maintenance panicked");
        }
    }
}

/// The less frequent tasks due at one tick.
#[derive(Debug, Clone, Copy)]
struct Maintenance {
    checkpoint: bool,
    clean: bool,
}

fn maintain_once(manager: &LogManager, now_ms: i64, tasks: Maintenance) {
    match manager.flush_due(now_ms) {
        Ok(0) => {}
        Ok(flushed) => tracing::debug!(flushed, "flushed logs past flush.ms"),
        Err(err) => tracing::error!(error = %chain(err), "flushing logs failed"),
    }
    if let Err(err) = manager.apply_retention(now_ms) {
        tracing::error!(error = %chain(err), "applying retention failed");
    }
    if tasks.clean {
        match manager.clean_compacted(now_ms) {
            Ok(stats) if stats.segments_cleaned > 0 => {
                tracing::info!(?stats, "compacted logs");
            }
            Ok(_) => {}
            Err(err) => tracing::error!(error = %chain(err), "compacting logs failed"),
        }
    }
    if tasks.checkpoint
        && let Err(err) = manager.checkpoint()
    {
        tracing::error!(error = %chain(err), "writing checkpoints failed");
    }
}

/// An error with its causes, `outer: inner: ...`.
fn chain(err: runnel_log::LogError) -> String {
    format!("{:#}", anyhow::Error::from(err))
}

fn display_dirs(dirs: &[PathBuf]) -> String {
    dirs.iter()
        .map(|d| d.display().to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

/// Whether a log dir holds nothing yet, so this is its first start.
fn is_missing_or_empty(dir: &Path) -> bool {
    std::fs::read_dir(dir).map_or(true, |mut entries| entries.next().is_none())
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dirs(names: &[&str]) -> Vec<PathBuf> {
        names.iter().map(PathBuf::from).collect()
    }

    #[test]
    fn log_dirs_must_be_distinct_and_non_empty() {
        assert!(checked_log_dirs(dirs(&["a", "b"])).is_ok());
        let twice = checked_log_dirs(dirs(&["a", "b", "a"])).expect_err("duplicate");
        assert_eq!(twice.to_string(), "--log-dirs names a twice");
        let empty = checked_log_dirs(dirs(&["a", ""])).expect_err("empty entry");
        assert!(empty.to_string().contains("entry 2 is empty"), "{empty}");
        assert!(checked_log_dirs(Vec::new()).is_err());
    }
}
