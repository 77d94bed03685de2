//! Bad producer input is refused with the matching error and leaves the log
//! exactly as it was: same log end offset, same file bytes, same reads.

mod common;

use std::path::Path;

use common::*;
use runnel_log::batch::BatchError;
use runnel_log::{LogError, PartitionLog};

/// Byte positions in the RecordBatch v2 header.
const LENGTH: usize = 8;
const MAGIC: usize = 16;
const CRC: usize = 17;
const ATTRIBUTES: usize = 21;
const LAST_OFFSET_DELTA: usize = 23;
const RECORDS_COUNT: usize = 57;

/// What a test can see of a log from outside.
#[derive(Debug, PartialEq, Eq)]
struct Snapshot {
    log_end_offset: i64,
    log_bytes: Vec<u8>,
    index_bytes: Vec<u8>,
    time_index_bytes: Vec<u8>,
    batches: Vec<Vec<u8>>,
    max_timestamp: Option<(i64, i64)>,
}

fn snapshot(dir: &Path, log: &PartitionLog) -> Snapshot {
    let base = log.active_segment().base_offset();
    Snapshot {
        log_end_offset: log.log_end_offset(),
        log_bytes: read_file(&seg_path(dir, base, ".log")),
        index_bytes: read_file(&seg_path(dir, base, ".index")),
        time_index_bytes: read_file(&seg_path(dir, base, ".timeindex")),
        batches: read_all_batches(log),
        max_timestamp: log.max_timestamp(),
    }
}

/// A log holding two batches (offsets 0-4), with index entries on every
/// batch so a stray index write would show. Small index files keep the
/// snapshots cheap.
fn log_with_data(dir: &Path, pairs: &[(&str, &str)]) -> PartitionLog {
    let mut pairs = pairs.to_vec();
    pairs.push(("index.interval.bytes", "0"));
    pairs.push(("segment.index.bytes", "65536"));
    let mut log = open(dir, config(&pairs), unclean());
    log.append(&simple_batch(2, NOW, 20), NOW).expect("append");
    log.append(&simple_batch(3, NOW + 5, 20), NOW)
        .expect("append");
    log
}

/// Appends `bytes`, expects a refusal, checks nothing changed, and returns
/// the error.
fn refuse(dir: &Path, log: &mut PartitionLog, bytes: &[u8]) -> LogError {
    let before = snapshot(dir, log);
    let err = log
        .append(bytes, NOW)
        .expect_err("the append must be refused");
    assert_eq!(
        snapshot(dir, log),
        before,
        "a refused append changed the log ({err})"
    );
    err
}

fn invalid(err: LogError) -> (usize, BatchError) {
    match err {
        LogError::InvalidBatch { index, source } => (index, source),
        other => panic!("expected InvalidBatch, got {other:?}"),
    }
}

fn crc_of(batch: &[u8]) -> u32 {
    u32::from_be_bytes(batch[CRC..CRC + 4].try_into().expect("4 bytes"))
}

#[test]
fn a_wrong_crc_is_refused_with_both_values() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut log = log_with_data(dir.path(), &[]);
    let good = simple_batch(2, NOW, 30);

    let mut flipped_record = good.clone();
    let last = flipped_record.len() - 1;
    flipped_record[last] ^= 0x40;
    let (index, source) = invalid(refuse(dir.path(), &mut log, &flipped_record));
    assert_eq!(index, 0);
    assert_eq!(
        source,
        BatchError::CrcMismatch {
            stored: crc_of(&good),
            computed: crc32c(&flipped_record[21..]),
        }
    );

    let mut wrong_field = good.clone();
    wrong_field[CRC] ^= 0x01;
    let (_, source) = invalid(refuse(dir.path(), &mut log, &wrong_field));
    assert_eq!(
        source,
        BatchError::CrcMismatch {
            stored: crc_of(&good) ^ 0x0100_0000,
            computed: crc_of(&good),
        }
    );

    // Attributes are covered by the CRC too.
    let mut attributes = good.clone();
    attributes[ATTRIBUTES + 1] = 0x10; // transactional
    let (_, source) = invalid(refuse(dir.path(), &mut log, &attributes));
    assert!(
        matches!(source, BatchError::CrcMismatch { .. }),
        "{source:?}"
    );
}

#[test]
fn a_wrong_magic_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut log = log_with_data(dir.path(), &[]);
    for magic in [0u8, 1, 3, 0xff] {
        let mut batch = simple_batch(1, NOW, 10);
        batch[MAGIC] = magic;
        let (index, source) = invalid(refuse(dir.path(), &mut log, &batch));
        assert_eq!(index, 0);
        assert_eq!(source, BatchError::UnsupportedMagic { magic: magic as i8 });
    }
}

#[test]
fn lengths_that_do_not_fit_the_buffer_are_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut log = log_with_data(dir.path(), &[]);
    let good = simple_batch(2, NOW, 30);
    let size = good.len();

    let (_, source) = invalid(refuse(dir.path(), &mut log, &good[..size - 1]));
    assert_eq!(
        source,
        BatchError::Truncated {
            declared: size,
            available: size - 1
        }
    );

    let mut longer = good.clone();
    let length = (size - 12 + 1000) as i32;
    longer[LENGTH..LENGTH + 4].copy_from_slice(&length.to_be_bytes());
    let (_, source) = invalid(refuse(dir.path(), &mut log, &longer));
    assert_eq!(
        source,
        BatchError::Truncated {
            declared: size + 1000,
            available: size
        }
    );

    for length in [-1i32, 0, 48, i32::MIN] {
        let mut tiny = good.clone();
        tiny[LENGTH..LENGTH + 4].copy_from_slice(&length.to_be_bytes());
        let (_, source) = invalid(refuse(dir.path(), &mut log, &tiny));
        assert_eq!(source, BatchError::LengthTooSmall { length });
    }

    let (_, source) = invalid(refuse(dir.path(), &mut log, &good[..60]));
    assert_eq!(source, BatchError::TooShort { available: 60 });
    let (_, source) = invalid(refuse(dir.path(), &mut log, &[0u8]));
    assert_eq!(source, BatchError::TooShort { available: 1 });

    assert!(matches!(
        refuse(dir.path(), &mut log, &[]),
        LogError::EmptyAppend
    ));
}

#[test]
fn a_bad_batch_after_good_ones_refuses_the_whole_append() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut log = log_with_data(dir.path(), &[]);
    let good = simple_batch(2, NOW, 30);
    let mut bad = simple_batch(1, NOW, 30);
    bad[70] ^= 0xff;

    let (index, source) = invalid(refuse(dir.path(), &mut log, &[good.clone(), bad].concat()));
    assert_eq!(index, 1);
    assert!(
        matches!(source, BatchError::CrcMismatch { .. }),
        "{source:?}"
    );

    let mut trailing = [good.clone(), good.clone()].concat();
    trailing.extend_from_slice(&[1, 2, 3, 4, 5]);
    let (index, source) = invalid(refuse(dir.path(), &mut log, &trailing));
    assert_eq!((index, source), (2, BatchError::TooShort { available: 5 }));

    let mut cut = [good.clone(), good.clone()].concat();
    cut.truncate(good.len() + 70);
    let (index, source) = invalid(refuse(dir.path(), &mut log, &cut));
    assert_eq!(
        (index, source),
        (
            1,
            BatchError::Truncated {
                declared: good.len(),
                available: 70
            }
        )
    );

    // The same good batches alone are taken, at the unchanged log end.
    let info = log
        .append(&[good.clone(), good].concat(), NOW)
        .expect("valid append");
    assert_eq!((info.first_offset, info.last_offset), (5, 8));
}

#[test]
fn offset_ranges_that_do_not_match_the_record_count_are_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut log = log_with_data(dir.path(), &[]);
    let good = simple_batch(2, NOW, 30);
    let patched = |last_offset_delta: i32, records_count: i32| {
        let mut batch = good.clone();
        batch[LAST_OFFSET_DELTA..LAST_OFFSET_DELTA + 4]
            .copy_from_slice(&last_offset_delta.to_be_bytes());
        batch[RECORDS_COUNT..RECORDS_COUNT + 4].copy_from_slice(&records_count.to_be_bytes());
        fix_crc(&mut batch);
        batch
    };
    for (last_offset_delta, records_count) in [
        (5, 2),
        (0, 2),
        (-1, 0),
        (-2, -1),
        // Consistent, but far more records than the bytes could hold.
        (999_999, 1_000_000),
        (i32::MAX - 1, i32::MAX),
    ] {
        let (index, source) = invalid(refuse(
            dir.path(),
            &mut log,
            &patched(last_offset_delta, records_count),
        ));
        assert_eq!(index, 0);
        assert_eq!(
            source,
            BatchError::InvalidOffsetRange {
                last_offset_delta,
                records_count
            }
        );
    }
}

#[test]
fn unknown_compression_codecs_are_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut log = log_with_data(dir.path(), &[]);
    for codec in [5i16, 6, 7] {
        let mut batch = simple_batch(1, NOW, 10);
        batch[ATTRIBUTES..ATTRIBUTES + 2].copy_from_slice(&codec.to_be_bytes());
        fix_crc(&mut batch);
        let (_, source) = invalid(refuse(dir.path(), &mut log, &batch));
        assert_eq!(source, BatchError::UnknownCompression { codec });
    }
}

#[test]
fn batches_larger_than_max_message_bytes_are_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let small = simple_batch(1, NOW, 10);
    let large = simple_batch(4, NOW, 100);
    let max = large.len() - 1;
    let mut log = log_with_data(dir.path(), &[("max.message.bytes", &max.to_string())]);

    let err = refuse(dir.path(), &mut log, &large);
    assert!(
        matches!(err, LogError::BatchTooLarge { index: 0, size, max: m } if size == large.len() && m == max),
        "{err:?}"
    );
    let err = refuse(
        dir.path(),
        &mut log,
        &[small.clone(), large.clone()].concat(),
    );
    assert!(
        matches!(err, LogError::BatchTooLarge { index: 1, .. }),
        "{err:?}"
    );

    // Exactly max.message.bytes is allowed.
    let mut config = log.config().clone();
    config.max_message_bytes = large.len();
    log.set_config(config);
    let info = log.append(&large, NOW).expect("a batch of exactly the max");
    assert_eq!(info.first_offset, 5);
}

#[test]
fn reads_outside_the_log_are_out_of_range() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut log = log_with_data(dir.path(), &[]);
    assert_eq!(log.log_end_offset(), 5);
    for offset in [6, 1_000, i64::MAX, -1, i64::MIN] {
        let err = log
            .read(offset, 1 << 20, None, true)
            .expect_err("out of range");
        assert!(
            matches!(
                err,
                LogError::OffsetOutOfRange {
                    offset: o,
                    log_start_offset: 0,
                    log_end_offset: 5
                } if o == offset
            ),
            "{err:?}"
        );
    }
    // The log end itself is in range and empty.
    assert!(
        log.read(5, 1 << 20, None, true)
            .expect("read at the end")
            .region
            .is_none()
    );

    // Below a moved log start offset is out of range too.
    log.advance_log_start_offset(2).expect("advance");
    assert!(matches!(
        log.read(1, 1 << 20, None, true),
        Err(LogError::OffsetOutOfRange {
            offset: 1,
            log_start_offset: 2,
            log_end_offset: 5
        })
    ));
    let region = log
        .read(2, 1 << 20, None, true)
        .expect("read at the start")
        .region
        .expect("region");
    assert!(region.length > 0);
    assert!(matches!(
        log.advance_log_start_offset(6),
        Err(LogError::OffsetOutOfRange { offset: 6, .. })
    ));
}

/// Random damage never panics, never half-writes, and whatever is accepted
/// is a valid batch that survives a recovery scan.
#[test]
fn random_damage_is_refused_or_stored_whole() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut log = log_with_data(dir.path(), &[]);
    let good = [simple_batch(3, NOW, 40), simple_batch(1, NOW + 9, 5)].concat();
    let mut rng = fastrand::Rng::with_seed(0xbad_1a9u64);
    let mut accepted = 0;
    for _ in 0..3_000 {
        let mut bytes = good.clone();
        match rng.u8(..4) {
            0 => {
                let at = rng.usize(..bytes.len());
                bytes[at] = rng.u8(..);
            }
            1 => bytes.truncate(rng.usize(..bytes.len())),
            2 => {
                for _ in 0..rng.usize(1..8) {
                    let at = rng.usize(..bytes.len());
                    bytes[at] ^= 1 << rng.u8(..8);
                }
            }
            _ => bytes.extend((0..rng.usize(1..100)).map(|_| rng.u8(..))),
        }
        let before = snapshot(dir.path(), &log);
        match log.append(&bytes, NOW) {
            Ok(info) => {
                accepted += 1;
                assert_eq!(info.first_offset, before.log_end_offset);
            }
            Err(err) => assert_eq!(snapshot(dir.path(), &log), before, "{err}"),
        }
    }
    // Only damage outside the CRC's cover (base offset, leader epoch) passes.
    assert!(accepted > 0 && accepted < 600, "accepted {accepted}");
    let end = log.log_end_offset();
    let batches = read_all_batches(&log);
    drop(log);
    let log = open(dir.path(), config(&[]), unclean());
    assert_eq!(log.log_end_offset(), end, "recovery found nothing to cut");
    assert_eq!(read_all_batches(&log), batches);
}
