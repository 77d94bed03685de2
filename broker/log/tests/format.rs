//! Golden bytes: what an append leaves in `.log`, `.index` and `.timeindex`,
//! every byte worked out by hand from Kafka's formats.
//!
//! The batch under test is spelled out byte by byte (RecordBatch v2, two
//! records, zigzag varints); its CRC-32C comes from the tests' own CRC code.
//! Index entries follow Kafka 3.7+ `LogSegment.append`: before each batch,
//! when more than `index.interval.bytes` were appended since the last entry,
//! the offset index maps that batch's last offset to its start position and
//! the time index gets the segment's max timestamp so far (if it grew) with
//! the last offset of the batch that carried it. Rolling or closing a
//! segment adds the max timestamp as a final time index entry and trims both
//! files to their entries.

mod common;

use std::path::Path;

use common::*;
use runnel_log::batch::{BatchHeader, validate};
use runnel_log::{LogManager, ManagerConfig, TopicPartition};

const T: i64 = NOW; // 0x0000_018B_CFE5_6800
/// `segment.index.bytes` default, 10 MiB, rounded down to whole entries.
const OFFSET_INDEX_PREALLOCATED: u64 = 10 * 1024 * 1024;
const TIME_INDEX_PREALLOCATED: u64 = 10 * 1024 * 1024 / 12 * 12;
/// Size of the hand-made batch: 61 header bytes + 98 record bytes.
const HAND_BATCH_BYTES: usize = 159;
/// CRC-32C of the hand-made batch with first timestamp `T`, derived once
/// with `common::crc32c` and kept as a golden value.
const HAND_BATCH_CRC_AT_T: u32 = 0x1676_8064;

/// The records section of the hand-made batch.
fn hand_records() -> Vec<u8> {
    let mut r = Vec::new();
    // Record 0: 17 bytes after its length (zigzag 34 = 0x22).
    r.extend_from_slice(&[
        0x22, // length 17
        0x00, // attributes
        0x00, // timestamp delta 0
        0x00, // offset delta 0
        0x04, // key length 2
        b'k', b'0', //
        0x0a, // value length 5
        b'h', b'e', b'l', b'l', b'o', //
        0x02, // 1 header
        0x02, b'h', // header key length 1, "h"
        0x02, b'v', // header value length 1, "v"
    ]);
    // Record 1: 78 bytes after its length (zigzag 156 = 0x9c 0x01).
    r.extend_from_slice(&[
        0x9c, 0x01, // length 78
        0x00, // attributes
        0xc8, 0x01, // timestamp delta 100 (zigzag 200)
        0x02, // offset delta 1
        0x01, // null key (-1)
        0x8c, 0x01, // value length 70 (zigzag 140)
    ]);
    r.extend_from_slice(&[b'x'; 70]);
    r.push(0x00); // no headers
    assert_eq!(r.len(), 98);
    r
}

/// A two-record RecordBatch v2 as a plain producer sends it: no
/// compression, CreateTime, no idempotence; records at `first_timestamp`
/// and `first_timestamp + 100`.
fn hand_batch(base_offset: i64, first_timestamp: i64) -> Vec<u8> {
    let mut b = Vec::new();
    b.extend_from_slice(&base_offset.to_be_bytes()); //  0 base offset
    b.extend_from_slice(&[0x00, 0x00, 0x00, 0x93]); //  8 length 147 = 159 - 12
    b.extend_from_slice(&[0xff; 4]); // 12 partition leader epoch -1
    b.push(0x02); // 16 magic
    b.extend_from_slice(&[0; 4]); // 17 CRC-32C, set below
    b.extend_from_slice(&[0x00, 0x00]); // 21 attributes
    b.extend_from_slice(&[0x00, 0x00, 0x00, 0x01]); // 23 last offset delta
    b.extend_from_slice(&first_timestamp.to_be_bytes()); // 27 first timestamp
    b.extend_from_slice(&(first_timestamp + 100).to_be_bytes()); // 35 max timestamp
    b.extend_from_slice(&[0xff; 8]); // 43 producer id -1
    b.extend_from_slice(&[0xff; 2]); // 51 producer epoch -1
    b.extend_from_slice(&[0xff; 4]); // 53 base sequence -1
    b.extend_from_slice(&[0x00, 0x00, 0x00, 0x02]); // 57 records count
    assert_eq!(b.len(), 61);
    b.extend_from_slice(&hand_records());
    fix_crc(&mut b);
    assert_eq!(b.len(), HAND_BATCH_BYTES);
    b
}

fn offset_entry(relative_offset: u32, position: u32) -> Vec<u8> {
    let mut e = relative_offset.to_be_bytes().to_vec();
    e.extend_from_slice(&position.to_be_bytes());
    e
}

fn time_entry(timestamp: i64, relative_offset: u32) -> Vec<u8> {
    let mut e = timestamp.to_be_bytes().to_vec();
    e.extend_from_slice(&relative_offset.to_be_bytes());
    e
}

fn concat(parts: &[Vec<u8>]) -> Vec<u8> {
    parts.concat()
}

/// Every file in `dir` is `<20 digits>.log|.index|.timeindex|.snapshot`,
/// or the `leader-epoch-checkpoint` Kafka keeps beside them; returns the
/// sorted names of the segment files (producer state snapshots left out).
fn segment_file_names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .expect("list")
        .map(|e| e.expect("entry").file_name().into_string().expect("utf-8"))
        .filter(|name| name != "leader-epoch-checkpoint")
        .collect();
    names.sort();
    for name in &names {
        let (stem, suffix) = name.split_at(name.find('.').expect("has a suffix"));
        assert!(
            stem.len() == 20 && stem.bytes().all(|b| b.is_ascii_digit()),
            "{name} is not named by a 20-digit base offset"
        );
        assert!(
            [".log", ".index", ".timeindex", ".snapshot"].contains(&suffix),
            "unexpected file {name}"
        );
    }
    names.retain(|n| !n.ends_with(".snapshot"));
    names
}

/// `batch` as an append at `base_offset` stores it: the bytes as sent but
/// for the base offset and the leader epoch, both outside the CRC (Kafka's
/// LogValidator stamps the epoch likewise).
fn as_appended(batch: &[u8], base_offset: i64) -> Vec<u8> {
    let mut out = with_base_offset(batch, base_offset);
    out[12..16].copy_from_slice(&runnel_log::log::LEADER_EPOCH.to_be_bytes());
    out
}

fn base_of(batch: &[u8]) -> i64 {
    i64::from_be_bytes(batch[..8].try_into().expect("8 bytes"))
}

#[test]
fn own_crc32c_matches_the_standard_check_value() {
    // CRC-32C of "123456789" (RFC 3720, appendix B.4).
    assert_eq!(crc32c(b"123456789"), 0xE306_9283);
}

#[test]
fn the_hand_made_batch_is_what_kafka_would_send() {
    let batch = hand_batch(0, T);
    #[rustfmt::skip]
    let header: [u8; 61] = [
        0, 0, 0, 0, 0, 0, 0, 0,                  // base offset 0
        0x00, 0x00, 0x00, 0x93,                  // length 147
        0xff, 0xff, 0xff, 0xff,                  // leader epoch -1
        0x02,                                    // magic 2
        (HAND_BATCH_CRC_AT_T >> 24) as u8, (HAND_BATCH_CRC_AT_T >> 16) as u8,
        (HAND_BATCH_CRC_AT_T >> 8) as u8, HAND_BATCH_CRC_AT_T as u8,
        0x00, 0x00,                              // attributes
        0x00, 0x00, 0x00, 0x01,                  // last offset delta 1
        0x00, 0x00, 0x01, 0x8b, 0xcf, 0xe5, 0x68, 0x00, // first timestamp T
        0x00, 0x00, 0x01, 0x8b, 0xcf, 0xe5, 0x68, 0x64, // max timestamp T + 100
        0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, // producer id -1
        0xff, 0xff,                              // producer epoch -1
        0xff, 0xff, 0xff, 0xff,                  // base sequence -1
        0x00, 0x00, 0x00, 0x02,                  // 2 records
    ];
    assert_eq!(&batch[..61], &header[..]);
    assert_eq!(&batch[61..], &hand_records()[..]);
    // The crate's own CRC and header view agree with ours.
    let parsed = validate(&batch).expect("the crate accepts the hand-made batch");
    assert_eq!(parsed.crc, HAND_BATCH_CRC_AT_T);
    assert_eq!(
        (
            parsed.records_count,
            parsed.last_offset(),
            parsed.max_timestamp
        ),
        (2, 1, T + 100)
    );
    assert_eq!(
        BatchHeader::parse(&batch).expect("header").size_bytes(),
        HAND_BATCH_BYTES
    );
}

#[test]
fn appends_store_the_bytes_as_sent_and_index_them_as_kafka_does() {
    let dir = tempfile::tempdir().expect("tempdir");
    let dir = dir.path();
    // Exactly one hand batch is not "more than" the interval; two are.
    let mut log = open(
        dir,
        config(&[("index.interval.bytes", "159")]),
        Default::default(),
    );

    // A producer's base offset is whatever it sent; the log replaces it.
    let a = hand_batch(0x0102_0304_0506_0708, T); // offsets 0-1 at 0, max T+100
    let b = hand_batch(0, T); // offsets 2-3 at 159, max T+100
    let c = hand_batch(0, T + 1000); // offsets 4-5 at 318, max T+1100
    let d = hand_batch(0, T + 500); // offsets 6-7 at 477, max T+600
    let e = hand_batch(0, T + 2000); // offsets 8-9 at 636, max T+2100
    let f = hand_batch(0, T + 2500); // offsets 10-11 at 795, max T+2600

    let info = log.append(&a, NOW).expect("append to an empty log");
    assert_eq!((info.first_offset, info.last_offset), (0, 1));
    assert_eq!((info.records_count, info.size_bytes), (2, 159));
    let info = log.append(&b, NOW).expect("append after data");
    assert_eq!((info.first_offset, info.last_offset), (2, 3));
    let info = log
        .append(&concat(&[c.clone(), d.clone()]), NOW)
        .expect("append two batches at once");
    assert_eq!((info.first_offset, info.last_offset), (4, 7));
    assert_eq!(info.max_timestamp, T + 1100);
    let info = log
        .append(&concat(&[e.clone(), f.clone()]), NOW)
        .expect("append two batches at once");
    assert_eq!((info.first_offset, info.last_offset), (8, 11));
    assert_eq!(log.log_end_offset(), 12);

    let log_path = seg_path(dir, 0, ".log");
    let index_path = seg_path(dir, 0, ".index");
    let time_path = seg_path(dir, 0, ".timeindex");
    let expected_log = concat(&[
        as_appended(&a, 0),
        as_appended(&b, 2),
        as_appended(&c, 4),
        as_appended(&d, 6),
        as_appended(&e, 8),
        as_appended(&f, 10),
    ]);
    assert_eq!(read_file(&log_path), expected_log);

    // Before each batch, bytes appended since the last entry:
    //   a: 0 -> none        b: 159, not more than 159 -> none
    //   c: 318 -> (5 -> 318), max so far (T+1100, 5) grew -> time entry
    //   d: 159 -> none      e: 318 -> (9 -> 636), time (T+2100, 9)
    //   f: 159 -> none (its max T+2600 waits for the roll)
    let expected_index = concat(&[offset_entry(5, 318), offset_entry(9, 636)]);
    let expected_time = concat(&[time_entry(T + 1100, 5), time_entry(T + 2100, 9)]);
    // The active segment's indexes are preallocated; entries are at the front.
    let index = read_file(&index_path);
    assert_eq!(index.len() as u64, OFFSET_INDEX_PREALLOCATED);
    assert_eq!(&index[..16], &expected_index[..]);
    assert!(index[16..].iter().all(|b| *b == 0));
    let time = read_file(&time_path);
    assert_eq!(time.len() as u64, TIME_INDEX_PREALLOCATED);
    assert_eq!(&time[..24], &expected_time[..]);
    assert!(time[24..].iter().all(|b| *b == 0));

    log.roll(NOW).expect("roll");
    // Trimmed to their entries; the roll adds the max timestamp (T+2600, 11).
    assert_eq!(read_file(&index_path), expected_index);
    assert_eq!(
        read_file(&time_path),
        concat(&[
            time_entry(T + 1100, 5),
            time_entry(T + 2100, 9),
            time_entry(T + 2600, 11),
        ])
    );
    assert_eq!(read_file(&log_path), expected_log, "roll keeps the data");
    // The new segment is named after the log end offset.
    assert_eq!(file_len(&seg_path(dir, 12, ".log")), 0);
    assert_eq!(
        file_len(&seg_path(dir, 12, ".index")),
        OFFSET_INDEX_PREALLOCATED
    );
    assert_eq!(
        file_len(&seg_path(dir, 12, ".timeindex")),
        TIME_INDEX_PREALLOCATED
    );

    let g = hand_batch(-1, T + 3000); // offsets 12-13 at 0 of the new segment
    let info = log.append(&g, NOW).expect("append after roll");
    assert_eq!((info.first_offset, info.last_offset), (12, 13));
    assert_eq!(read_file(&seg_path(dir, 12, ".log")), as_appended(&g, 12));

    // Lookups go through the indexes and land on batch starts.
    let region = log
        .read(7, u32::MAX as u64, None, true)
        .expect("read")
        .region
        .expect("region");
    assert_eq!((region.position, region.length), (477, 3 * 159));
    let region = log
        .read(9, 10, None, false)
        .expect("read")
        .region
        .expect("region");
    assert_eq!((region.position, region.length), (636, 10));
    let region = log
        .read(13, u32::MAX as u64, None, true)
        .expect("read")
        .region
        .expect("region");
    assert_eq!((region.position, region.length), (0, 159));
    assert_eq!(log.offset_for_timestamp(T).expect("lookup"), Some((0, T)));
    // Timestamps need not grow with offsets: d (T+500) follows c (T+1000).
    // The answer is the first offset whose timestamp reaches the target.
    assert_eq!(
        log.offset_for_timestamp(T + 150).expect("lookup"),
        Some((4, T + 1000))
    );
    assert_eq!(
        log.offset_for_timestamp(T + 550).expect("lookup"),
        Some((4, T + 1000))
    );
    assert_eq!(
        log.offset_for_timestamp(T + 1050).expect("lookup"),
        Some((5, T + 1100))
    );
    assert_eq!(
        log.offset_for_timestamp(T + 2550).expect("lookup"),
        Some((11, T + 2600))
    );
    assert_eq!(
        log.offset_for_timestamp(T + 2601).expect("lookup"),
        Some((12, T + 3000))
    );
    assert_eq!(log.offset_for_timestamp(T + 3101).expect("lookup"), None);
    assert_eq!(log.max_timestamp(), Some((T + 3100, 13)));

    log.close().expect("close");
    // One batch since the roll: no offset entry; the close adds the max.
    assert_eq!(read_file(&seg_path(dir, 12, ".index")), Vec::<u8>::new());
    assert_eq!(
        read_file(&seg_path(dir, 12, ".timeindex")),
        time_entry(T + 3100, 1)
    );
    assert_eq!(
        segment_file_names(dir),
        [
            "00000000000000000000.index",
            "00000000000000000000.log",
            "00000000000000000000.timeindex",
            "00000000000000000012.index",
            "00000000000000000012.log",
            "00000000000000000012.timeindex",
        ]
    );
}

#[test]
fn a_clean_manager_shutdown_trims_indexes_and_checkpoints_the_log_end() {
    let root = tempfile::tempdir().expect("tempdir");
    let root = root.path();
    let log_config = config(&[("index.interval.bytes", "159")]);
    let mut manager_config = ManagerConfig::new(vec![root.to_path_buf()]);
    manager_config.default_config = log_config.clone();
    let tp = TopicPartition::new("golden", 0);

    // One 80-byte record: 61 + length(1) + attributes, timestamp delta,
    // offset delta (3) + key length, "k0" (3) + value length, 10 bytes (11)
    // + header count (1).
    let small = simple_batch(1, T - 10, 10);
    assert_eq!(small.len(), 80);
    let h1 = hand_batch(0, T);
    let h2 = hand_batch(0, T + 50);

    let manager = LogManager::open(manager_config.clone(), NOW).expect("open");
    let log = manager
        .get_or_create(&tp, log_config, NOW)
        .expect("create partition");
    {
        let mut log = log.lock().expect("lock");
        log.append(&small, NOW).expect("append"); // offset 0 at 0
        log.append(&small, NOW).expect("append"); // offset 1 at 80
        // The hand batches go to a log already holding data.
        let info = log.append(&h1, NOW).expect("append"); // 2-3 at 160
        assert_eq!(info.first_offset, 2);
        let info = log.append(&h2, NOW).expect("append"); // 4-5 at 319
        assert_eq!(info.first_offset, 4);
    }
    drop(log);
    manager.shutdown().expect("clean shutdown");

    let dir = root.join("golden-0");
    assert_eq!(
        read_file(&seg_path(&dir, 0, ".log")),
        concat(&[
            as_appended(&small, 0),
            as_appended(&small, 1),
            as_appended(&h1, 2),
            as_appended(&h2, 4),
        ])
    );
    // Before each batch: 0, 80, then 160 > 159 -> (3 -> 160) and the max so
    // far (T+100, 3); then 159 -> none. The close adds (T+150, 5).
    assert_eq!(
        read_file(&seg_path(&dir, 0, ".index")),
        offset_entry(3, 160)
    );
    assert_eq!(
        read_file(&seg_path(&dir, 0, ".timeindex")),
        concat(&[time_entry(T + 100, 3), time_entry(T + 150, 5)])
    );
    segment_file_names(&dir);
    assert!(root.join(".kafka_cleanshutdown").exists());
    assert_eq!(
        std::fs::read_to_string(root.join("recovery-point-offset-checkpoint")).expect("read"),
        "0\n1\ngolden 0 6\n"
    );
    assert_eq!(
        std::fs::read_to_string(root.join("log-start-offset-checkpoint")).expect("read"),
        "0\n1\ngolden 0 0\n"
    );

    // Reopened, the trimmed index still finds batch starts.
    let manager = LogManager::open(manager_config, NOW).expect("reopen");
    assert!(manager.started_clean());
    let log = manager.get(&tp).expect("partition reopened");
    let log = log.lock().expect("lock");
    assert_eq!(log.log_end_offset(), 6);
    let region = log
        .read(5, u32::MAX as u64, None, true)
        .expect("read")
        .region
        .expect("region");
    assert_eq!((region.position, region.length), (319, 159));
    assert_eq!(
        log.offset_for_timestamp(T + 120).expect("lookup"),
        Some((5, T + 150))
    );
}

#[test]
fn an_append_of_more_batches_than_the_index_has_room_for_stays_whole() {
    // segment.index.bytes 4096 holds 512 offset entries; with
    // index.interval.bytes 0 every batch after the first gets one. One
    // append of 600 batches must not write past the index.
    let dir = tempfile::tempdir().expect("tempdir");
    let settings = [
        ("segment.index.bytes", "4096"),
        ("index.interval.bytes", "0"),
    ];
    let mut log = open(dir.path(), config(&settings), Default::default());
    let batches: Vec<Vec<u8>> = (0..600)
        .map(|i| with_base_offset(&hand_batch(0, T + i), 2 * i))
        .collect();
    let info = log.append(&batches.concat(), NOW).expect("append");
    assert_eq!((info.first_offset, info.last_offset), (0, 1199));
    let stored: Vec<Vec<u8>> = batches.iter().map(|b| as_appended(b, base_of(b))).collect();
    assert_eq!(read_all_batches(&log), stored);
    let more = log.append(&hand_batch(0, T + 600), NOW).expect("append");
    assert_eq!(more.first_offset, 1200);
    for offset in [0, 1, 700, 1023, 1198, 1200] {
        let region = log
            .read(offset, 1, None, true)
            .expect("read")
            .region
            .expect("region");
        let bytes = region.to_vec().expect("bytes");
        let base = i64::from_be_bytes(bytes[..8].try_into().expect("8 bytes"));
        assert_eq!(base, offset / 2 * 2, "read at {offset}");
    }
    drop(log);
    let log = open(dir.path(), config(&settings), unclean());
    assert_eq!(log.log_end_offset(), 1202);
}
