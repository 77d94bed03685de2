//! What the benches share: the run's setup (sizes, environment, temporary
//! directory, the load generator's runtime) here, and
//!
//! - `process`: the `runnel serve` child process, started on free ports and
//!   stopped with SIGTERM;
//! - `cluster`: three such processes as the combined nodes of a cluster,
//!   and the leaders and in-sync replicas Metadata shows;
//! - `cpu`: CPU time of the broker and the load generator, and how busy the
//!   machine was, over one timed phase;
//! - `wire`: Kafka request and response frames over tokio sockets;
//! - `metrics`: gauges read from the broker's Prometheus endpoint;
//! - `limits`: the open files limit, raised for thousands of connections.
//!
//! Included by each bench with `#[path = "support/mod.rs"] mod support;`:
//! Cargo takes `benches/*.rs` and `benches/*/main.rs` as benches, so this
//! directory is not one of its own.

pub mod cluster;
pub mod cpu;
pub mod limits;
pub mod metrics;
pub mod process;
pub mod wire;

use std::path::PathBuf;
use std::str::FromStr;

use anyhow::{Context, Result, ensure};
use tempfile::TempDir;
use tokio::runtime::Runtime;

/// `main` of a bench: runs it, and on failure prints the error with its
/// causes under the bench's name and exits 1.
pub fn exit_on_error(bench: &str, outcome: Result<()>) {
    if let Err(err) = outcome {
        eprintln!("{bench}: {err:#}");
        std::process::exit(1);
    }
}

/// True under `cargo bench`, which passes `--bench`; `cargo test --benches`
/// runs a bench without it, to check it still works at a small size.
pub fn full_size() -> bool {
    std::env::args().skip(1).any(|a| a == "--bench")
}

/// A temporary directory named `prefix...` in `RUNNEL_BENCH_DIR`, or in the
/// system's temporary directory.
pub fn temp_dir(prefix: &str) -> Result<TempDir> {
    let parent: PathBuf =
        std::env::var_os("RUNNEL_BENCH_DIR").map_or_else(std::env::temp_dir, Into::into);
    tempfile::Builder::new()
        .prefix(prefix)
        .tempdir_in(&parent)
        .with_context(|| {
            format!(
                "cannot create a temporary directory in {}",
                parent.display()
            )
        })
}

/// The load generator's tokio runtime, with two worker threads.
pub fn load_generator_runtime() -> Result<Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("cannot start the load generator's runtime")
}

/// A number above zero from the environment variable `name`, or `default`
/// when it is not set.
pub fn env_positive<T>(name: &str, default: T) -> Result<T>
where
    T: FromStr + PartialOrd + Default,
    T::Err: std::error::Error + Send + Sync + 'static,
{
    env_or(name, default, "a positive number", |n| *n > T::default())
}

/// Milliseconds (0 allowed) from the environment variable `name`, or
/// `default` when it is not set.
pub fn env_ms(name: &str, default: u64) -> Result<u64> {
    env_or(name, default, "a number of milliseconds", |_| true)
}

fn env_or<T>(name: &str, default: T, what: &str, valid: fn(&T) -> bool) -> Result<T>
where
    T: FromStr,
    T::Err: std::error::Error + Send + Sync + 'static,
{
    let Ok(value) = std::env::var(name) else {
        return Ok(default);
    };
    let invalid = || format!("{name}={value:?} is not {what}");
    let parsed = value.parse::<T>().with_context(invalid)?;
    ensure!(valid(&parsed), invalid());
    Ok(parsed)
}
