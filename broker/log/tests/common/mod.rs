//! Helpers shared by the integration tests: configs, a CRC-32C of our own
//! (so golden bytes do not lean on the code under test), reading a whole log
//! back batch by batch, and deterministic batches derived from an offset.
#![allow(dead_code)] // each test binary uses a different subset

use std::path::{Path, PathBuf};

use runnel_log::batch::{Batches, HEADER_SIZE};
use runnel_log::{BatchBuilder, LoadState, LogConfig, PartitionLog};

/// A fixed "now" so every timestamp in the tests is exact.
pub const NOW: i64 = 1_700_000_000_000;

/// A log config with Kafka's defaults and `pairs` applied by their names.
pub fn config(pairs: &[(&str, &str)]) -> LogConfig {
    let mut config = LogConfig::default();
    for (key, value) in pairs {
        config.set(key, value).expect("valid log config");
    }
    config
}

/// The state of a log that stopped without a clean shutdown and never
/// flushed: recovery scans every segment.
pub fn unclean() -> LoadState {
    LoadState {
        recovery_point: 0,
        log_start_offset: 0,
        clean_shutdown: false,
    }
}

/// The state of a log closed cleanly with everything below `log_end_offset`
/// flushed.
pub fn clean(log_end_offset: i64) -> LoadState {
    LoadState {
        recovery_point: log_end_offset,
        log_start_offset: 0,
        clean_shutdown: true,
    }
}

pub fn open(dir: &Path, config: LogConfig, state: LoadState) -> PartitionLog {
    PartitionLog::open(dir, config, state, NOW).expect("open log")
}

/// `<dir>/<base offset, 20 digits><suffix>`, written out here rather than
/// taken from the crate so a naming change shows up as a failure.
pub fn seg_path(dir: &Path, base_offset: i64, suffix: &str) -> PathBuf {
    dir.join(format!("{base_offset:020}{suffix}"))
}

pub fn file_len(path: &Path) -> u64 {
    std::fs::metadata(path)
        .unwrap_or_else(|e| panic!("metadata of {}: {e}", path.display()))
        .len()
}

pub fn read_file(path: &Path) -> Vec<u8> {
    std::fs::read(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

/// Base offsets of the `.log` files in `dir`, sorted.
pub fn segment_bases(dir: &Path) -> Vec<i64> {
    let mut bases: Vec<i64> = std::fs::read_dir(dir)
        .expect("list log dir")
        .filter_map(|entry| {
            let name = entry.expect("dir entry").file_name();
            let name = name.to_str()?.to_string();
            let stem = name.strip_suffix(".log")?;
            (stem.len() == 20 && stem.bytes().all(|b| b.is_ascii_digit()))
                .then(|| stem.parse().expect("digits"))
        })
        .collect();
    bases.sort_unstable();
    bases
}

/// CRC-32C (Castagnoli, reflected polynomial 0x82F63B78), bit by bit: slow
/// and obviously right, independent of the `crc32c` crate the log uses.
pub fn crc32c(bytes: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &byte in bytes {
        crc ^= byte as u32;
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0x82F6_3B78
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

/// Recomputes the CRC field (bytes 17..21) over bytes 21..end, after a test
/// changed a covered field on purpose.
pub fn fix_crc(batch: &mut [u8]) {
    let crc = crc32c(&batch[21..]);
    batch[17..21].copy_from_slice(&crc.to_be_bytes());
}

/// `batch` with its base offset field set to `base_offset`.
pub fn with_base_offset(batch: &[u8], base_offset: i64) -> Vec<u8> {
    let mut out = batch.to_vec();
    out[..8].copy_from_slice(&base_offset.to_be_bytes());
    out
}

/// A batch of `records` records with `value_bytes`-byte values, all stamped
/// `timestamp`.
pub fn simple_batch(records: usize, timestamp: i64, value_bytes: usize) -> Vec<u8> {
    let value = vec![b'v'; value_bytes];
    let mut builder = BatchBuilder::new(timestamp);
    for i in 0..records {
        builder.push(Some(format!("k{i}").as_bytes()), Some(&value), timestamp);
    }
    builder.build()
}

/// The batch a writer appends when the log end offset is `offset`: its size,
/// record count and content all follow from the offset, so a reader can
/// regenerate the exact stored bytes (base offset included) from the offset
/// alone.
pub fn batch_for_offset(offset: i64) -> Vec<u8> {
    generated_batch(offset, true)
}

/// Like [`batch_for_offset`], without the occasional large batch.
pub fn small_batch_for_offset(offset: i64) -> Vec<u8> {
    generated_batch(offset, false)
}

fn generated_batch(offset: i64, allow_large: bool) -> Vec<u8> {
    let mut rng = fastrand::Rng::with_seed(offset as u64 ^ 0x05ee_d0ff_5e70);
    let records = 1 + rng.usize(..8);
    // Mostly small batches, now and then a large one.
    let value_bytes = if rng.u8(..) < 8 && allow_large {
        rng.usize(4_000..40_000)
    } else {
        rng.usize(0..300)
    };
    let timestamp = NOW + offset;
    let mut builder = BatchBuilder::new(timestamp).base_offset(offset);
    for i in 0..records {
        let key = format!("key-{}", offset + i as i64);
        let value: Vec<u8> = (0..value_bytes)
            .map(|j| (offset as usize).wrapping_mul(31).wrapping_add(i * 7 + j) as u8)
            .collect();
        builder.push(Some(key.as_bytes()), Some(&value), timestamp + i as i64);
    }
    builder.build()
}

/// Every batch of the log from its start to its end, read back through
/// `PartitionLog::read` one segment region at a time. Panics when a region
/// holds anything but whole, valid batches or the offsets are not contiguous.
pub fn read_all_batches(log: &PartitionLog) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut offset = log.log_start_offset();
    while offset < log.log_end_offset() {
        let info = log
            .read(offset, u32::MAX as u64, None, true)
            .unwrap_or_else(|e| panic!("read at {offset}: {e}"));
        let bytes = info
            .region
            .unwrap_or_else(|| panic!("no region at {offset} below the log end"))
            .to_vec()
            .expect("read region");
        assert!(!bytes.is_empty(), "empty region at {offset}");
        for batch in Batches::new(&bytes) {
            let (header, batch) = batch.unwrap_or_else(|e| panic!("bad batch after {offset}: {e}"));
            assert_eq!(header.base_offset, offset, "offsets are contiguous");
            offset = header.next_offset();
            out.push(batch.to_vec());
        }
    }
    assert_eq!(
        offset,
        log.log_end_offset(),
        "the last batch ends at the log end"
    );
    out
}

/// The base offsets of `batches`.
pub fn base_offsets(batches: &[Vec<u8>]) -> Vec<i64> {
    batches
        .iter()
        .map(|b| i64::from_be_bytes(b[..8].try_into().expect("8 bytes")))
        .collect()
}

/// Offset of the last record of a batch, from its header.
pub fn last_offset_of(batch: &[u8]) -> i64 {
    assert!(batch.len() >= HEADER_SIZE, "not a whole batch header");
    let base = i64::from_be_bytes(batch[..8].try_into().expect("8 bytes"));
    let delta = i32::from_be_bytes(batch[23..27].try_into().expect("4 bytes"));
    base + delta as i64
}
