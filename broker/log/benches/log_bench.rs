//! Storage throughput of `runnel-log`, as a program that prints figures.
//!
//! One run first writes and deletes a file of the benchmark's size, untimed,
//! so that no step pays for the first touch of memory (on a VM that costs a
//! host page fault per page and would halve whichever step ran first). Then
//! it measures, in a temporary directory:
//!
//! - append: 1 KiB records in ~16 KiB batches (15 records, as a producer with
//!   `batch.size` = 16 KiB sends them) appended to a `PartitionLog`, then
//!   one final fsync timed on its own;
//! - plain write: the same bytes with one `write` call per batch to a plain
//!   file in the same directory, the local limit the log is compared to;
//! - read: the whole log read back as 1 MiB file regions (what a fetch
//!   sends), copied into a reused buffer, following offsets batch header by
//!   batch header as a consumer does.
//!
//! Usage: `cargo bench -p runnel-log --bench log_bench [-- SIZE]`, where
//! SIZE (or `RUNNEL_BENCH_BYTES`) is the bytes to append, e.g. `512M`,
//! `4G`; default 2 GiB (16 MiB when run without `--bench`, as
//! `cargo test --benches` does, to check it still works).
//! `RUNNEL_BENCH_DIR` picks the parent of the temporary directory (default:
//! the system temp dir). The page cache cannot be dropped without root, so
//! reads are from a warm page cache.
//!
//! Units: MB = 10^6 bytes, GB = 10^9 bytes. CPU time is this process's user
//! plus system time; the kernel's writeback threads are not included.

use std::error::Error;
use std::fs::File;
use std::io::Write;
use std::path::Path;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use runnel_log::batch::HEADER_SIZE;
use runnel_log::{BatchBuilder, BatchHeader, LoadState, LogConfig, PartitionLog};

type BenchResult<T> = Result<T, Box<dyn Error>>;

const DEFAULT_BYTES: u64 = 2 << 30;
const SMOKE_TEST_BYTES: u64 = 16 << 20;
const RECORD_BYTES: usize = 1024;
/// 15 records of 1 KiB plus record and batch overhead stay under 16 KiB.
const RECORDS_PER_BATCH: usize = 15;
const READ_REGION_BYTES: u64 = 1 << 20;
/// `sysconf(_SC_CLK_TCK)`, the unit of /proc/self/stat's CPU times. Linux
/// fixes it at 100 for user space; hardcoded to avoid a libc dependency.
const CLOCK_TICKS_PER_SECOND: f64 = 100.0;

/// Wall and CPU time of one measured step.
#[derive(Debug, Clone, Copy)]
struct Measured {
    wall: Duration,
    cpu_seconds: f64,
}

#[derive(Debug)]
struct Meter {
    wall: Instant,
    cpu_seconds: f64,
}

impl Meter {
    fn start() -> BenchResult<Self> {
        Ok(Self {
            wall: Instant::now(),
            cpu_seconds: cpu_seconds()?,
        })
    }

    fn stop(self) -> BenchResult<Measured> {
        Ok(Measured {
            wall: self.wall.elapsed(),
            cpu_seconds: cpu_seconds()? - self.cpu_seconds,
        })
    }
}

fn main() {
    if let Err(err) = run() {
        eprintln!("log_bench: {err}");
        std::process::exit(1);
    }
}

fn run() -> BenchResult<()> {
    let target_bytes = target_bytes()?;
    let parent = std::env::var_os("RUNNEL_BENCH_DIR").map_or_else(std::env::temp_dir, Into::into);
    let dir = tempfile::Builder::new()
        .prefix("runnel-log-bench-")
        .tempdir_in(&parent)
        .map_err(|e| {
            format!(
                "cannot create a temporary directory in {}: {e}",
                parent.display()
            )
        })?;

    let batch = one_batch();
    let batches = target_bytes.div_ceil(batch.len() as u64);
    let total_bytes = batches * batch.len() as u64;
    eprintln!(
        "log_bench: {} batches of {} bytes ({:.2} GB) in {}",
        batches,
        batch.len(),
        total_bytes as f64 / 1e9,
        dir.path().display()
    );

    // Untimed: on a VM, the first touch of guest memory costs the host a
    // page fault, which would be billed to whichever step ran first.
    let warm_up_path = dir.path().join("warm-up.bin");
    plain_writes(&warm_up_path, &batch, batches)?;
    std::fs::remove_file(&warm_up_path)?;

    let log_dir = dir.path().join("bench-0");
    let (mut log, append) = append_to_log(&log_dir, &batch, batches)?;
    let append_fsync = Meter::start()?;
    log.flush()?;
    let append_fsync = append_fsync.stop()?;

    let (read, read_bytes) = read_log(&log)?;
    if read_bytes != total_bytes {
        return Err(format!("read back {read_bytes} bytes, appended {total_bytes}").into());
    }
    drop(log);
    std::fs::remove_dir_all(&log_dir)?;

    let plain_path = dir.path().join("plain.bin");
    let (plain, plain_fsync) = plain_writes(&plain_path, &batch, batches)?;
    std::fs::remove_file(&plain_path)?;

    let batch_kib = batch.len() as f64 / 1024.0;
    println!();
    println!(
        "runnel-log benchmark: {:.2} GB, {RECORDS_PER_BATCH} x 1 KiB records per {batch_kib:.1} KiB batch",
        total_bytes as f64 / 1e9
    );
    println!(
        "(untimed warm-up write first; MB = 10^6 bytes, GB = 10^9 bytes; reads from a warm page cache)"
    );
    println!(
        "append  1KiB records, 16KiB batches: {}",
        rate(total_bytes, append)
    );
    println!(
        "  + final fsync:                    {:.2} s ({:.1} MB/s including it)",
        append_fsync.wall.as_secs_f64(),
        mb_per_s(total_bytes, append.wall + append_fsync.wall)
    );
    println!(
        "plain   write(2), one batch a call:  {}",
        rate(total_bytes, plain)
    );
    println!(
        "  + final fsync:                    {:.2} s ({:.1} MB/s including it)",
        plain_fsync.wall.as_secs_f64(),
        mb_per_s(total_bytes, plain.wall + plain_fsync.wall)
    );
    println!(
        "read    1MiB file regions, copied:   {} (page cache warm)",
        rate(total_bytes, read)
    );
    println!(
        "log append vs plain write: {:.0}%",
        100.0 * plain.wall.as_secs_f64() / append.wall.as_secs_f64()
    );
    Ok(())
}

/// The bytes to append: a positional argument or `RUNNEL_BENCH_BYTES`, else
/// 2 GiB under `cargo bench` (which passes `--bench`) and a quick smoke-test
/// size under `cargo test --benches` (which does not).
fn target_bytes() -> BenchResult<u64> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let value = match args.iter().find(|a| !a.starts_with('-')) {
        Some(arg) => arg.clone(),
        None => match std::env::var("RUNNEL_BENCH_BYTES") {
            Ok(value) => value,
            Err(_) if args.iter().any(|a| a == "--bench") => return Ok(DEFAULT_BYTES),
            Err(_) => return Ok(SMOKE_TEST_BYTES),
        },
    };
    parse_size(&value).ok_or_else(|| {
        format!("size {value:?} is not a byte count such as 512M, 2G or 1048576").into()
    })
}

fn parse_size(value: &str) -> Option<u64> {
    let value = value.trim();
    let (digits, unit) = match value.char_indices().find(|(_, c)| !c.is_ascii_digit()) {
        Some((at, _)) => value.split_at(at),
        None => (value, ""),
    };
    let multiplier: u64 = match unit.trim_end_matches(['B', 'b', 'i']) {
        "" => 1,
        "K" | "k" => 1 << 10,
        "M" | "m" => 1 << 20,
        "G" | "g" => 1 << 30,
        _ => return None,
    };
    digits
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(multiplier))
        .filter(|n| *n > 0)
}

fn one_batch() -> Vec<u8> {
    let now = now_ms();
    let value = vec![b'x'; RECORD_BYTES];
    let mut builder = BatchBuilder::new(now);
    for _ in 0..RECORDS_PER_BATCH {
        builder.push(None, Some(&value), now);
    }
    builder.build()
}

fn append_to_log(dir: &Path, batch: &[u8], batches: u64) -> BenchResult<(PartitionLog, Measured)> {
    let now = now_ms();
    let mut log = PartitionLog::open(dir, LogConfig::default(), LoadState::default(), now)?;
    let meter = Meter::start()?;
    for _ in 0..batches {
        log.append(batch, now)?;
    }
    Ok((log, meter.stop()?))
}

/// Reads the log from offset 0 to its end in 1 MiB regions. A region may end
/// inside a batch; the next read starts after the last whole one, found by
/// walking the batch headers. Returns the bytes of whole batches read.
fn read_log(log: &PartitionLog) -> BenchResult<(Measured, u64)> {
    let mut buf = Vec::with_capacity(READ_REGION_BYTES as usize);
    let mut offset = log.log_start_offset();
    let mut total = 0u64;
    let meter = Meter::start()?;
    while offset < log.log_end_offset() {
        let info = log.read(offset, READ_REGION_BYTES, None, true)?;
        let region = info
            .region
            .ok_or_else(|| format!("no region at offset {offset} below the log end"))?;
        buf.clear();
        region.read_into(&mut buf)?;
        let mut position = 0;
        let mut next_offset = offset;
        while buf.len() - position >= HEADER_SIZE {
            let header = BatchHeader::parse(&buf[position..])?;
            if position + header.size_bytes() > buf.len() {
                break;
            }
            position += header.size_bytes();
            next_offset = header.next_offset();
        }
        if next_offset == offset {
            return Err(format!("region at offset {offset} holds no whole batch").into());
        }
        total += position as u64;
        offset = next_offset;
    }
    Ok((meter.stop()?, total))
}

fn plain_writes(path: &Path, batch: &[u8], batches: u64) -> BenchResult<(Measured, Measured)> {
    let mut file = File::create(path)?;
    let meter = Meter::start()?;
    for _ in 0..batches {
        file.write_all(batch)?;
    }
    let written = meter.stop()?;
    let fsync = Meter::start()?;
    file.sync_all()?;
    Ok((written, fsync.stop()?))
}

fn rate(bytes: u64, measured: Measured) -> String {
    format!(
        "{:7.1} MB/s, {:.2} CPU s/GB",
        mb_per_s(bytes, measured.wall),
        measured.cpu_seconds / (bytes as f64 / 1e9)
    )
}

fn mb_per_s(bytes: u64, wall: Duration) -> f64 {
    bytes as f64 / 1e6 / wall.as_secs_f64()
}

/// User plus system CPU time of this process, from /proc/self/stat.
fn cpu_seconds() -> BenchResult<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat")?;
    // Fields after the command name, which is in parentheses and may hold
    // spaces: state is field 3, utime 14 and stime 15 (1-based).
    let after_comm = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest)
        .ok_or("/proc/self/stat has no command name")?;
    let fields: Vec<&str> = after_comm.split_whitespace().collect();
    let ticks = |field: usize| -> BenchResult<f64> {
        let value = fields
            .get(field - 3)
            .ok_or("/proc/self/stat is too short")?;
        Ok(value.parse::<u64>()? as f64)
    };
    Ok((ticks(14)? + ticks(15)?) / CLOCK_TICKS_PER_SECOND)
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}
