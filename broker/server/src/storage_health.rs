//! Log dirs that cannot take writes. An append that fails on storage (a
//! full disk, an I/O error) marks its log dir failing: the error is logged
//! with the dir and the OS error (at most once per [`LOG_EVERY`] per dir,
//! with the count left unlogged), counted, and `/readyz` turns not ready.
//!
//! Unlike Kafka, which takes a failed dir offline until a restart, a dir
//! here clears by itself: the next append to it that succeeds, or a probe
//! write (a file of [`PROBE_BYTES`], synced and removed) that succeeds,
//! clears it. A full disk is the common case on Kubernetes, and space comes
//! back (retention, a deleted topic, a grown volume) without a restart.

use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

/// Where the counts go (the broker's metrics implement it), so that this
/// module needs nothing else of the broker.
pub trait StorageMetrics: Send + Sync + std::fmt::Debug {
    /// A write to `log_dir` failed on storage.
    fn storage_error(&self, log_dir: &str);
    /// Whether `log_dir` cannot take writes now.
    fn log_dir_failing(&self, log_dir: &str, failing: bool);
}

/// How often one dir's storage errors are logged at the most.
const LOG_EVERY: Duration = Duration::from_secs(10);
/// The probe write: more than a small batch, so that a disk with a few
/// bytes free does not pass for writable.
const PROBE_BYTES: usize = 1 << 20;
const PROBE_FILE: &str = ".runnel-write-probe";

#[derive(Debug)]
struct DirState {
    path: PathBuf,
    failing: AtomicBool,
    /// The last error, as logged: `/readyz` names it.
    last_error: Mutex<String>,
    unlogged: AtomicU64,
    last_logged: Mutex<Option<Instant>>,
}

/// The health of every log dir; cheap to query on the produce path (one
/// atomic load while all dirs are fine).
#[derive(Debug)]
pub struct StorageHealth {
    dirs: Vec<DirState>,
    any_failing: AtomicBool,
    metrics: Arc<dyn StorageMetrics>,
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl StorageHealth {
    pub fn new<'a>(
        log_dirs: impl IntoIterator<Item = &'a Path>,
        metrics: Arc<dyn StorageMetrics>,
    ) -> Self {
        Self {
            dirs: log_dirs
                .into_iter()
                .map(|path| DirState {
                    path: path.to_path_buf(),
                    failing: AtomicBool::new(false),
                    last_error: Mutex::new(String::new()),
                    unlogged: AtomicU64::new(0),
                    last_logged: Mutex::new(None),
                })
                .collect(),
            any_failing: AtomicBool::new(false),
            metrics,
        }
    }

    /// The log dir that holds `partition_dir`.
    fn dir_of(&self, partition_dir: &Path) -> Option<&DirState> {
        self.dirs
            .iter()
            .find(|dir| partition_dir.starts_with(&dir.path))
    }

    /// A write under `partition_dir` failed on storage with `error` (its
    /// whole cause chain).
    pub fn write_failed(&self, partition_dir: &Path, error: &str) {
        let metrics = &*self.metrics;
        let Some(dir) = self.dir_of(partition_dir) else {
            return;
        };
        let dir_name = dir.path.display().to_string();
        metrics.storage_error(&dir_name);
        *lock(&dir.last_error) = error.to_string();
        if !dir.failing.swap(true, Ordering::AcqRel) {
            self.any_failing.store(true, Ordering::Release);
            metrics.log_dir_failing(&dir_name, true);
        }
        let now = Instant::now();
        let mut last_logged = lock(&dir.last_logged);
        if last_logged.is_some_and(|at| now.duration_since(at) < LOG_EVERY) {
            dir.unlogged.fetch_add(1, Ordering::Relaxed);
            return;
        }
        *last_logged = Some(now);
        drop(last_logged);
        let also_failed = dir.unlogged.swap(0, Ordering::Relaxed);
        tracing::error!(
            log_dir = %dir.path.display(),
            partition_dir = %partition_dir.display(),
            error,
            also_failed,
            "log dir cannot take writes; produce requests to it get KAFKA_STORAGE_ERROR"
        );
    }

    /// A write under `partition_dir` succeeded: clears its dir if it was
    /// failing. One atomic load while no dir is failing.
    pub fn write_succeeded(&self, partition_dir: &Path) {
        if !self.any_failing.load(Ordering::Acquire) {
            return;
        }
        if let Some(dir) = self.dir_of(partition_dir) {
            self.clear(dir, "a write succeeded");
        }
    }

    fn clear(&self, dir: &DirState, how: &str) {
        if dir.failing.swap(false, Ordering::AcqRel) {
            let dir_name = dir.path.display().to_string();
            self.metrics.log_dir_failing(&dir_name, false);
            tracing::info!(log_dir = %dir_name, how, "log dir takes writes again");
            self.refresh_any_failing();
        }
    }

    /// `any_failing` from the dirs' own flags. A clear racing a new
    /// failure elsewhere may leave it false for a moment; the probe pass
    /// calls this every second, so the fast path is never wrong for long.
    fn refresh_any_failing(&self) {
        let any = self.dirs.iter().any(|d| d.failing.load(Ordering::Acquire));
        self.any_failing.store(any, Ordering::Release);
    }

    /// Tries a probe write in every failing dir and clears those where it
    /// succeeds (blocking: run it off the async workers).
    pub fn probe_failing(&self) {
        for dir in &self.dirs {
            if !dir.failing.load(Ordering::Acquire) {
                continue;
            }
            match probe(&dir.path) {
                Ok(()) => self.clear(dir, "a probe write succeeded"),
                Err(err) => *lock(&dir.last_error) = format!("probe write: {err}"),
            }
        }
        self.refresh_any_failing();
    }

    /// What `/readyz` says while dirs are failing: one line per dir.
    pub fn not_ready_because(&self) -> Vec<String> {
        self.dirs
            .iter()
            .filter(|dir| dir.failing.load(Ordering::Acquire))
            .map(|dir| {
                format!(
                    "log dir {} cannot take writes: {}",
                    dir.path.display(),
                    lock(&dir.last_error)
                )
            })
            .collect()
    }
}

/// Writes, syncs and removes a probe file in `dir`.
fn probe(dir: &Path) -> std::io::Result<()> {
    let path = dir.join(PROBE_FILE);
    let written = File::create(&path).and_then(|mut file| {
        file.write_all(&[0u8; PROBE_BYTES])?;
        file.sync_data()
    });
    let removed = fs::remove_file(&path);
    written?;
    removed
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::BrokerMetrics;

    #[test]
    fn a_failed_write_marks_its_dir_until_a_write_or_a_probe_succeeds() {
        let a = tempfile::tempdir().expect("tempdir");
        let b = tempfile::tempdir().expect("tempdir");
        let metrics = Arc::new(BrokerMetrics::new());
        let health = StorageHealth::new([a.path(), b.path()], Arc::clone(&metrics) as _);
        assert!(health.not_ready_because().is_empty());

        health.write_failed(
            &a.path().join("t-0"),
            "No space left on device (os error 28)",
        );
        assert_eq!(
            health.not_ready_because(),
            vec![format!(
                "log dir {} cannot take writes: No space left on device (os error 28)",
                a.path().display()
            )]
        );
        // Another dir's success clears nothing.
        health.write_succeeded(&b.path().join("t-1"));
        assert_eq!(health.not_ready_because().len(), 1);
        health.write_succeeded(&a.path().join("t-0"));
        assert!(health.not_ready_because().is_empty());

        health.write_failed(&b.path().join("t-1"), "Input/output error (os error 5)");
        health.probe_failing();
        assert!(
            health.not_ready_because().is_empty(),
            "the probe write succeeded"
        );
        assert!(!b.path().join(PROBE_FILE).exists());
        let text = metrics.encode();
        assert!(
            text.contains("runnel_storage_errors_total{log_dir="),
            "{text}"
        );
    }
}
