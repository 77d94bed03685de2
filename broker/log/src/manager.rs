//! The log manager: every partition log of the broker across its
//! `log.dirs`. It locks each dir, opens all partitions in parallel at start,
//! keeps the recovery-point and log-start checkpoints, and writes the
//! clean-shutdown marker when it is closed.

use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use crate::checkpoint::{self, LOG_START_OFFSET_FILE, RECOVERY_POINT_FILE};
use crate::config::LogConfig;
use crate::error::{LogError, Result};
use crate::load::LoadState;
use crate::log::PartitionLog;
use crate::topic_partition::TopicPartition;

/// Present in a log dir only between a clean shutdown and the next start;
/// Kafka's name, so its tools agree.
pub const CLEAN_SHUTDOWN_FILE: &str = ".kafka_cleanshutdown";
const LOCK_FILE: &str = ".lock";

#[derive(Debug, Clone)]
pub struct ManagerConfig {
    /// `log.dirs`.
    pub log_dirs: Vec<PathBuf>,
    /// The broker-wide log settings; topics may override them.
    pub default_config: LogConfig,
    /// Threads opening partitions at start (`num.recovery.threads.per.data.dir`
    /// times the number of dirs).
    pub recovery_threads: usize,
}

impl ManagerConfig {
    pub fn new(log_dirs: Vec<PathBuf>) -> Self {
        Self {
            log_dirs,
            default_config: LogConfig::default(),
            recovery_threads: std::thread::available_parallelism().map_or(2, |n| n.get()),
        }
    }
}

/// A partition log shared between the tasks that append to and read it.
pub type SharedLog = Arc<Mutex<PartitionLog>>;

#[derive(Debug)]
struct LogDir {
    path: PathBuf,
    /// Held for the manager's life: one broker per dir.
    _lock: File,
}

#[derive(Debug)]
struct Entry {
    log: SharedLog,
    dir_index: usize,
}

#[derive(Debug)]
pub struct LogManager {
    dirs: Vec<LogDir>,
    /// Locked only for lookups and inserts, never while a log is opened
    /// or deleted: reads and appends to other partitions look logs up.
    logs: Mutex<HashMap<TopicPartition, Entry>>,
    /// Held while a log is created, so two creators of one partition do
    /// not both open its files.
    creating: Mutex<()>,
    default_config: LogConfig,
    /// Whether the last stop was clean, per dir (for the startup line).
    clean_start: Vec<bool>,
}

/// Locks a log, whatever a panicking holder left: the log's own invariants
/// hold between calls, so its state stays usable.
pub fn lock(log: &SharedLog) -> MutexGuard<'_, PartitionLog> {
    log.lock().unwrap_or_else(PoisonError::into_inner)
}

impl LogManager {
    /// Locks every dir and opens every partition log found in them.
    pub fn open(config: ManagerConfig, now_ms: i64) -> Result<Self> {
        let mut dirs = Vec::new();
        let mut clean_start = Vec::new();
        let mut jobs: Vec<(usize, TopicPartition, PathBuf, LoadState)> = Vec::new();
        for (dir_index, path) in config.log_dirs.iter().enumerate() {
            std::fs::create_dir_all(path).map_err(|source| LogError::CreateDir {
                path: path.clone(),
                source,
            })?;
            let lock = lock_dir(path)?;
            let clean = path.join(CLEAN_SHUTDOWN_FILE).exists();
            let recovery_points = checkpoint::read(&path.join(RECOVERY_POINT_FILE))?;
            let start_offsets = checkpoint::read(&path.join(LOG_START_OFFSET_FILE))?;
            for (tp, log_dir) in partition_dirs(path)? {
                let state = LoadState {
                    recovery_point: recovery_points.get(&tp).copied().unwrap_or(0),
                    log_start_offset: start_offsets.get(&tp).copied().unwrap_or(0),
                    clean_shutdown: clean,
                };
                jobs.push((dir_index, tp, log_dir, state));
            }
            dirs.push(LogDir {
                path: path.clone(),
                _lock: lock,
            });
            clean_start.push(clean);
        }

        let opened = open_in_parallel(
            &jobs,
            &config.default_config,
            config.recovery_threads,
            now_ms,
        )?;
        let logs = jobs
            .into_iter()
            .zip(opened)
            .map(|((dir_index, tp, _, _), log)| {
                (
                    tp,
                    Entry {
                        log: Arc::new(Mutex::new(log)),
                        dir_index,
                    },
                )
            })
            .collect();
        // The marker only vouches for the stop before this start.
        for dir in &dirs {
            let marker = dir.path.join(CLEAN_SHUTDOWN_FILE);
            if marker.exists() {
                std::fs::remove_file(&marker).map_err(|source| LogError::Delete {
                    path: marker,
                    source,
                })?;
            }
        }
        let manager = Self {
            dirs,
            logs: Mutex::new(logs),
            creating: Mutex::new(()),
            default_config: config.default_config,
            clean_start,
        };
        manager.checkpoint()?;
        Ok(manager)
    }

    fn entries(&self) -> MutexGuard<'_, HashMap<TopicPartition, Entry>> {
        self.logs.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub fn log_dirs(&self) -> impl Iterator<Item = &Path> {
        self.dirs.iter().map(|d| d.path.as_path())
    }

    /// Whether every dir had its clean-shutdown marker at start.
    pub fn started_clean(&self) -> bool {
        self.clean_start.iter().all(|c| *c)
    }

    pub fn default_config(&self) -> &LogConfig {
        &self.default_config
    }

    pub fn get(&self, tp: &TopicPartition) -> Option<SharedLog> {
        self.entries().get(tp).map(|e| Arc::clone(&e.log))
    }

    pub fn partitions(&self) -> Vec<TopicPartition> {
        let mut tps: Vec<_> = self.entries().keys().cloned().collect();
        tps.sort();
        tps
    }

    /// The log of `tp`, created with `config` in the dir holding the fewest
    /// partitions when it does not exist yet. The files are created with
    /// no lock held that lookups of other partitions wait for.
    pub fn get_or_create(
        &self,
        tp: &TopicPartition,
        config: LogConfig,
        now_ms: i64,
    ) -> Result<SharedLog> {
        if let Some(log) = self.get(tp) {
            return Ok(log);
        }
        let _creating = self.creating.lock().unwrap_or_else(PoisonError::into_inner);
        let dir_index = {
            let entries = self.entries();
            if let Some(entry) = entries.get(tp) {
                return Ok(Arc::clone(&entry.log));
            }
            let mut counts = vec![0usize; self.dirs.len()];
            for entry in entries.values() {
                counts[entry.dir_index] += 1;
            }
            (0..self.dirs.len()).min_by_key(|i| counts[*i]).unwrap_or(0)
        };
        let path = self.dirs[dir_index].path.join(tp.dir_name());
        let log = PartitionLog::open(&path, config, LoadState::default(), now_ms)?;
        crate::log::sync_dir(&self.dirs[dir_index].path)?;
        let log = Arc::new(Mutex::new(log));
        self.entries().insert(
            tp.clone(),
            Entry {
                log: Arc::clone(&log),
                dir_index,
            },
        );
        Ok(log)
    }

    /// Stops managing `tp` and hands its log over whole, for an owner of
    /// its own (the KRaft quorum's `__cluster_metadata-0`): no flush,
    /// retention or checkpoint here touches it after. None when it is not
    /// open here or another holder still shares it (it stays managed).
    pub fn take(&self, tp: &TopicPartition) -> Option<PartitionLog> {
        let mut entries = self.entries();
        let entry = entries.remove(tp)?;
        match Arc::try_unwrap(entry.log) {
            Ok(log) => Some(log.into_inner().unwrap_or_else(PoisonError::into_inner)),
            Err(shared) => {
                entries.insert(
                    tp.clone(),
                    Entry {
                        log: shared,
                        dir_index: entry.dir_index,
                    },
                );
                None
            }
        }
    }

    /// Removes a partition and its files.
    pub fn delete(&self, tp: &TopicPartition) -> Result<bool> {
        let removed = self.entries().remove(tp);
        let Some(entry) = removed else {
            return Ok(false);
        };
        let dir = lock(&entry.log).dir().to_path_buf();
        std::fs::remove_dir_all(&dir).map_err(|source| LogError::Delete { path: dir, source })?;
        Ok(true)
    }

    fn all_logs(&self) -> Vec<(TopicPartition, usize, SharedLog)> {
        self.entries()
            .iter()
            .map(|(tp, e)| (tp.clone(), e.dir_index, Arc::clone(&e.log)))
            .collect()
    }

    /// Flushes the logs whose `flush.ms` has passed; returns how many. A
    /// log that fails to flush is given to `failed` with its directory,
    /// and the others are still flushed.
    pub fn flush_due(&self, now_ms: i64, mut failed: impl FnMut(&Path, LogError)) -> usize {
        let mut flushed = 0;
        for (_, _, log) in self.all_logs() {
            let mut log = lock(&log);
            match log.flush_if_due(now_ms) {
                Ok(true) => flushed += 1,
                Ok(false) => {}
                Err(err) => failed(log.dir(), err),
            }
        }
        flushed
    }

    /// Applies retention to every log; returns the segments removed.
    pub fn apply_retention(&self, now_ms: i64) -> Result<usize> {
        let mut removed = 0;
        for (_, _, log) in self.all_logs() {
            removed += lock(&log).apply_retention(now_ms)?;
        }
        Ok(removed)
    }

    /// Forgets idempotent producers idle for `max_idle_ms`
    /// (`producer.id.expiration.ms`) in every log; returns how many.
    pub fn expire_producers(&self, now_ms: i64, max_idle_ms: i64) -> usize {
        self.all_logs()
            .into_iter()
            .map(|(_, _, log)| lock(&log).expire_producers(now_ms, max_idle_ms))
            .sum()
    }

    /// Compacts every log whose `cleanup.policy` includes `compact`. Each
    /// log's lock is held only to snapshot it and to swap the result in; the
    /// reading and writing happen without it, so appends go on.
    pub fn clean_compacted(&self, now_ms: i64) -> Result<crate::cleaner::CleanStats> {
        use crate::cleaner::{Snapshot, install, prepare};
        let mut total = crate::cleaner::CleanStats::default();
        for (_, _, log) in self.all_logs() {
            let snapshot = {
                let log = lock(&log);
                if !log.config().cleanup_policy.compact {
                    continue;
                }
                Snapshot::take(&log)
            };
            let prepared = prepare(&snapshot, now_ms)?;
            let stats = install(&mut lock(&log), prepared, now_ms)?;
            total.add(&stats);
        }
        Ok(total)
    }

    /// Writes each dir's recovery-point and log-start checkpoints.
    pub fn checkpoint(&self) -> Result<()> {
        let mut recovery = vec![BTreeMap::new(); self.dirs.len()];
        let mut starts = vec![BTreeMap::new(); self.dirs.len()];
        for (tp, dir_index, log) in self.all_logs() {
            let log = lock(&log);
            recovery[dir_index].insert(tp.clone(), log.recovery_point());
            starts[dir_index].insert(tp, log.log_start_offset());
        }
        for (i, dir) in self.dirs.iter().enumerate() {
            checkpoint::write(&dir.path.join(RECOVERY_POINT_FILE), &recovery[i])?;
            checkpoint::write(&dir.path.join(LOG_START_OFFSET_FILE), &starts[i])?;
        }
        Ok(())
    }

    /// Flushes and closes every log, writes the checkpoints, then the
    /// clean-shutdown marker: the next start skips recovery.
    pub fn shutdown(self) -> Result<()> {
        self.checkpoint_after_close()?;
        for dir in &self.dirs {
            let marker = dir.path.join(CLEAN_SHUTDOWN_FILE);
            File::create(&marker)
                .and_then(|f| f.sync_all())
                .map_err(|source| LogError::WriteCheckpoint {
                    path: marker,
                    source,
                })?;
            crate::log::sync_dir(&dir.path)?;
        }
        Ok(())
    }

    fn checkpoint_after_close(&self) -> Result<()> {
        let logs: Vec<_> = self.entries().drain().collect();
        let mut recovery = vec![BTreeMap::new(); self.dirs.len()];
        let mut starts = vec![BTreeMap::new(); self.dirs.len()];
        for (tp, entry) in logs {
            let log = match Arc::try_unwrap(entry.log) {
                Ok(mutex) => mutex.into_inner().unwrap_or_else(PoisonError::into_inner),
                Err(shared) => {
                    // Still referenced elsewhere: flush and trim in place.
                    let mut log = lock(&shared);
                    log.flush()?;
                    recovery[entry.dir_index].insert(tp.clone(), log.recovery_point());
                    starts[entry.dir_index].insert(tp, log.log_start_offset());
                    continue;
                }
            };
            recovery[entry.dir_index].insert(tp.clone(), log.log_end_offset());
            starts[entry.dir_index].insert(tp, log.log_start_offset());
            log.close()?;
        }
        for (i, dir) in self.dirs.iter().enumerate() {
            checkpoint::write(&dir.path.join(RECOVERY_POINT_FILE), &recovery[i])?;
            checkpoint::write(&dir.path.join(LOG_START_OFFSET_FILE), &starts[i])?;
        }
        Ok(())
    }
}

fn lock_dir(path: &Path) -> Result<File> {
    let lock_path = path.join(LOCK_FILE);
    let file = File::create(&lock_path).map_err(|source| LogError::DirLocked {
        path: path.to_path_buf(),
        source,
    })?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(std::fs::TryLockError::WouldBlock) => Err(LogError::DirLocked {
            path: path.to_path_buf(),
            source: std::io::Error::new(
                std::io::ErrorKind::WouldBlock,
                "another process holds .lock",
            ),
        }),
        Err(std::fs::TryLockError::Error(source)) => Err(LogError::DirLocked {
            path: path.to_path_buf(),
            source,
        }),
    }
}

fn partition_dirs(path: &Path) -> Result<Vec<(TopicPartition, PathBuf)>> {
    let list_err = |source| LogError::ListDir {
        path: path.to_path_buf(),
        source,
    };
    let mut found = Vec::new();
    for entry in std::fs::read_dir(path).map_err(list_err)? {
        let entry = entry.map_err(list_err)?;
        if !entry.file_type().map_err(list_err)?.is_dir() {
            continue;
        }
        let name = entry.file_name();
        let Some(tp) = name.to_str().and_then(TopicPartition::from_dir_name) else {
            tracing::warn!(dir = %entry.path().display(), "skipping a directory that is not <topic>-<partition>");
            continue;
        };
        found.push((tp, entry.path()));
    }
    found.sort();
    Ok(found)
}

/// Opens the logs on `threads` worker threads, each taking the next job.
fn open_in_parallel(
    jobs: &[(usize, TopicPartition, PathBuf, LoadState)],
    config: &LogConfig,
    threads: usize,
    now_ms: i64,
) -> Result<Vec<PartitionLog>> {
    let next = AtomicUsize::new(0);
    let results: Vec<Mutex<Option<Result<PartitionLog>>>> =
        jobs.iter().map(|_| Mutex::new(None)).collect();
    std::thread::scope(|scope| {
        for _ in 0..threads.clamp(1, jobs.len().max(1)) {
            scope.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some((_, _, dir, state)) = jobs.get(i) else {
                        break;
                    };
                    // A panic while opening one log fails the start with
                    // that log's name instead of unwinding through the scope.
                    let opened = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                        PartitionLog::open(dir, config.clone(), *state, now_ms)
                    }));
                    if let Ok(opened) = opened {
                        *results[i].lock().unwrap_or_else(PoisonError::into_inner) = Some(opened);
                    }
                }
            });
        }
    });
    results
        .into_iter()
        .zip(jobs)
        .map(|(slot, (_, _, dir, _))| {
            slot.into_inner()
                .unwrap_or_else(PoisonError::into_inner)
                .unwrap_or_else(|| Err(LogError::OpenWorkerPanicked { dir: dir.clone() }))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::builder::BatchBuilder;

    const NOW: i64 = 1_700_000_000_000;

    #[test]
    fn spreads_partitions_over_dirs_and_reopens_them_all() {
        let root = tempfile::tempdir().expect("tempdir");
        let dirs = vec![root.path().join("a"), root.path().join("b")];
        let manager = LogManager::open(ManagerConfig::new(dirs.clone()), NOW).expect("open");
        let batch = BatchBuilder::new(NOW).record(None, Some(b"v"), NOW).build();
        for p in 0..4 {
            let tp = TopicPartition::new("orders", p);
            let log = manager
                .get_or_create(&tp, LogConfig::default(), NOW)
                .expect("create");
            for _ in 0..=p {
                lock(&log).append(&batch, NOW).expect("append");
            }
        }
        for dir in &dirs {
            let count = std::fs::read_dir(dir)
                .expect("list")
                .filter(|e| e.as_ref().is_ok_and(|e| e.path().is_dir()))
                .count();
            assert_eq!(count, 2, "{}", dir.display());
        }
        manager.shutdown().expect("shutdown");
        for dir in &dirs {
            assert!(dir.join(CLEAN_SHUTDOWN_FILE).exists());
        }

        let manager = LogManager::open(ManagerConfig::new(dirs.clone()), NOW).expect("reopen");
        assert!(manager.started_clean());
        assert_eq!(manager.partitions().len(), 4);
        for p in 0..4 {
            let log = manager
                .get(&TopicPartition::new("orders", p))
                .expect("found");
            assert_eq!(lock(&log).log_end_offset(), p as i64 + 1);
        }
        for dir in &dirs {
            assert!(!dir.join(CLEAN_SHUTDOWN_FILE).exists());
            let points = checkpoint::read(&dir.join(RECOVERY_POINT_FILE)).expect("checkpoint");
            assert_eq!(points.len(), 2);
        }
    }

    #[test]
    fn cleans_only_compacted_logs() {
        let root = tempfile::tempdir().expect("tempdir");
        let manager = LogManager::open(ManagerConfig::new(vec![root.path().to_path_buf()]), NOW)
            .expect("open");
        let mut compact = LogConfig::default();
        compact.set("cleanup.policy", "compact").expect("valid");
        let batch = BatchBuilder::new(NOW)
            .record(Some(b"k"), Some(b"v"), NOW)
            .build();
        for (name, config) in [("kept", LogConfig::default()), ("compacted", compact)] {
            let log = manager
                .get_or_create(&TopicPartition::new(name, 0), config, NOW)
                .expect("create");
            let mut log = lock(&log);
            for _ in 0..3 {
                log.append(&batch, NOW).expect("append");
                log.roll(NOW).expect("roll");
            }
        }
        let stats = manager.clean_compacted(NOW).expect("clean");
        assert_eq!((stats.records_kept, stats.records_removed), (1, 2));
        let size = |name: &str| {
            let log = manager.get(&TopicPartition::new(name, 0)).expect("log");
            lock(&log).size_bytes()
        };
        assert_eq!(size("kept"), 3 * batch.len() as u64);
        assert_eq!(size("compacted"), batch.len() as u64);
    }

    #[test]
    fn deleting_a_partition_removes_its_directory() {
        let root = tempfile::tempdir().expect("tempdir");
        let manager = LogManager::open(ManagerConfig::new(vec![root.path().to_path_buf()]), NOW)
            .expect("open");
        let tp = TopicPartition::new("gone", 0);
        manager
            .get_or_create(&tp, LogConfig::default(), NOW)
            .expect("create");
        assert!(root.path().join("gone-0").exists());
        assert!(manager.delete(&tp).expect("delete"));
        assert!(!root.path().join("gone-0").exists());
        assert!(manager.get(&tp).is_none());
        assert!(!manager.delete(&tp).expect("delete again"));
    }
}
