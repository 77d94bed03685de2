//! Opening a log after an unclean stop: torn tails are cut at the last whole
//! batch, segments after a cut go, damaged or missing indexes are rebuilt,
//! and a clean shutdown through the log manager skips recovery.

mod common;

use std::path::Path;

use common::*;
use runnel_log::{LogError, LogManager, ManagerConfig, PartitionLog, TopicPartition};

/// Appends `count` batches of assorted sizes; returns them as stored.
fn fill(log: &mut PartitionLog, count: usize) -> Vec<Vec<u8>> {
    fill_with(log, count, batch_for_offset)
}

fn fill_with(log: &mut PartitionLog, count: usize, generate: fn(i64) -> Vec<u8>) -> Vec<Vec<u8>> {
    (0..count)
        .map(|_| {
            let offset = log.log_end_offset();
            let mut batch = generate(offset);
            let info = log.append(&batch, NOW).expect("append");
            assert_eq!(info.first_offset, offset);
            // What the log stores: the append stamps the leader epoch.
            batch[12..16].copy_from_slice(&runnel_log::log::LEADER_EPOCH.to_be_bytes());
            batch
        })
        .collect()
}

/// Start position of every batch in a `.log` file.
fn batch_positions(batches: &[Vec<u8>]) -> Vec<u64> {
    batches
        .iter()
        .scan(0u64, |position, batch| {
            let start = *position;
            *position += batch.len() as u64;
            Some(start)
        })
        .collect()
}

fn set_len(path: &Path, len: u64) {
    std::fs::OpenOptions::new()
        .write(true)
        .open(path)
        .expect("open for write")
        .set_len(len)
        .expect("set_len");
}

fn append_bytes(path: &Path, bytes: &[u8]) {
    use std::io::Write;
    std::fs::OpenOptions::new()
        .append(true)
        .open(path)
        .expect("open for append")
        .write_all(bytes)
        .expect("write");
}

/// After recovery the log holds exactly `expected`, ends where its last
/// batch ends, takes new appends at that end, and reads them back.
fn assert_log_is(log: &mut PartitionLog, expected: &[Vec<u8>]) {
    let stored = read_all_batches(log);
    assert_eq!(base_offsets(&stored), base_offsets(expected));
    assert!(
        stored == expected,
        "recovered batches differ from those written"
    );
    let end = expected.last().map_or(0, |b| last_offset_of(b) + 1);
    assert_eq!(log.log_end_offset(), end);
    let mut next = batch_for_offset(end);
    let info = log.append(&next, NOW).expect("append after recovery");
    assert_eq!(info.first_offset, end);
    next[12..16].copy_from_slice(&runnel_log::log::LEADER_EPOCH.to_be_bytes());
    let stored = read_all_batches(log);
    assert_eq!(stored.last(), Some(&next));
    assert_eq!(&stored[..stored.len() - 1], expected);
}

#[test]
fn a_torn_tail_is_cut_at_the_last_whole_batch() {
    // What a crash can leave after the last whole batch, by kind.
    type Damage = fn(&[u8]) -> (usize, Vec<u8>);
    let damages: [(&str, Damage); 7] = [
        ("half a batch", |last| (last.len() / 2, vec![])),
        ("part of a header", |_| (30, vec![])),
        ("a whole header only", |_| (61, vec![])),
        ("all but one byte", |last| (last.len() - 1, vec![])),
        ("half a batch then garbage", |last| {
            (last.len() / 2, b"garbage after a torn write".to_vec())
        }),
        ("zeros, as a preallocating filesystem leaves", |_| {
            (0, vec![0u8; 4096])
        }),
        ("a header promising more than follows", |last| {
            let mut header = last[..61].to_vec();
            header[8..12].copy_from_slice(&1_000_000i32.to_be_bytes());
            (0, [header, vec![7u8; 500]].concat())
        }),
    ];
    for (name, damage) in damages {
        let dir = tempfile::tempdir().expect("tempdir");
        let dir = dir.path();
        let mut log = open(dir, config(&[]), unclean());
        let written = fill(&mut log, 40);
        // No close: the process died with the indexes preallocated.
        drop(log);

        let (whole, lost) = written.split_at(written.len() - 1);
        let end_of_whole = whole.iter().map(Vec::len).sum::<usize>() as u64;
        let (keep, garbage) = damage(&lost[0]);
        let log_path = seg_path(dir, 0, ".log");
        set_len(&log_path, end_of_whole + keep as u64);
        append_bytes(&log_path, &garbage);

        let mut log = open(dir, config(&[]), unclean());
        assert_eq!(
            file_len(&log_path),
            end_of_whole,
            "{name}: cut at the batch boundary"
        );
        assert_eq!(log.recovery_point(), log.log_end_offset(), "{name}");
        assert_log_is(&mut log, whole);
    }
}

#[test]
fn a_corrupt_batch_in_the_middle_cuts_there_and_later_segments_go() {
    let dir = tempfile::tempdir().expect("tempdir");
    let dir = dir.path();
    let settings = [("segment.bytes", "40000"), ("index.interval.bytes", "1000")];
    let mut log = open(dir, config(&settings), unclean());
    let written = fill(&mut log, 150);
    let bases: Vec<i64> = log.segments().map(|s| s.base_offset()).collect();
    assert!(bases.len() >= 4, "want several segments, got {bases:?}");
    drop(log);
    assert_eq!(segment_bases(dir), bases);

    // Flip a byte in the records of a batch in the middle of segment 1.
    let victim_base = bases[1];
    let in_segment: Vec<Vec<u8>> = written
        .iter()
        .filter(|b| {
            let base = base_offsets(std::slice::from_ref(b))[0];
            base >= victim_base && base < bases[2]
        })
        .cloned()
        .collect();
    let victim = in_segment.len() / 2;
    let position = batch_positions(&in_segment)[victim];
    let log_path = seg_path(dir, victim_base, ".log");
    let mut bytes = read_file(&log_path);
    bytes[position as usize + 70] ^= 0x55;
    std::fs::write(&log_path, &bytes).expect("write");

    let victim_offset = base_offsets(&in_segment)[victim];
    let kept: Vec<Vec<u8>> = written
        .iter()
        .filter(|b| base_offsets(std::slice::from_ref(b))[0] < victim_offset)
        .cloned()
        .collect();
    let mut log = open(dir, config(&settings), unclean());
    assert_eq!(
        segment_bases(dir),
        &bases[..2],
        "segments after the cut are gone"
    );
    for base in &bases[2..] {
        for suffix in [".log", ".index", ".timeindex"] {
            assert!(!seg_path(dir, *base, suffix).exists(), "{base}{suffix}");
        }
    }
    assert_eq!(file_len(&log_path), position);
    assert_eq!(log.log_end_offset(), victim_offset);
    assert_log_is(&mut log, &kept);
}

#[test]
fn recovery_starts_at_the_recovery_point_segment() {
    let dir = tempfile::tempdir().expect("tempdir");
    let dir = dir.path();
    let settings = [("segment.bytes", "40000")];
    let mut log = open(dir, config(&settings), unclean());
    let mut written = fill(&mut log, 100);
    log.flush().expect("flush");
    let recovery_point = log.recovery_point();
    assert_eq!(recovery_point, log.log_end_offset());
    written.extend(fill(&mut log, 60));
    let bases: Vec<i64> = log.segments().map(|s| s.base_offset()).collect();
    drop(log);

    // Tear the tail of the last segment.
    let last_base = *bases.last().expect("segments");
    let log_path = seg_path(dir, last_base, ".log");
    let size = file_len(&log_path);
    let last_len = written.last().expect("batches").len() as u64;
    set_len(&log_path, size - last_len / 2);
    written.pop();

    let state = runnel_log::LoadState {
        recovery_point,
        log_start_offset: 0,
        clean_shutdown: false,
    };
    let mut log = open(dir, config(&settings), state);
    assert_eq!(file_len(&log_path), size - last_len);
    assert_log_is(&mut log, &written);
}

/// Writes a log of several segments with index entries, closes it cleanly
/// and returns what it holds and each segment's index files as closed.
type IndexFiles = Vec<(i64, Vec<u8>, Vec<u8>)>;

fn closed_log(dir: &Path, settings: &[(&str, &str)]) -> (Vec<Vec<u8>>, IndexFiles) {
    let mut log = open(dir, config(settings), unclean());
    let written = fill_with(&mut log, 200, small_batch_for_offset);
    let end = log.log_end_offset();
    log.close().expect("close");
    let indexes = segment_bases(dir)
        .into_iter()
        .map(|base| {
            (
                base,
                read_file(&seg_path(dir, base, ".index")),
                read_file(&seg_path(dir, base, ".timeindex")),
            )
        })
        .collect::<Vec<_>>();
    assert!(indexes.len() >= 3);
    assert!(
        indexes
            .iter()
            .all(|(_, i, t)| !i.is_empty() && !t.is_empty()),
        "every segment has index entries"
    );
    assert_eq!(last_offset_of(written.last().expect("batches")) + 1, end);
    (written, indexes)
}

/// Reads at the first and last offset of every batch, and a time lookup at
/// every record's timestamp, find what was written.
fn assert_reads(log: &PartitionLog, written: &[Vec<u8>]) {
    for (i, batch) in written.iter().enumerate() {
        let base = base_offsets(std::slice::from_ref(batch))[0];
        for offset in [base, last_offset_of(batch)] {
            let region = log
                .read(offset, 1, None, true)
                .expect("read")
                .region
                .expect("region");
            assert_eq!(
                region.to_vec().expect("bytes"),
                *batch,
                "read at offset {offset}"
            );
        }
        // The generated batches stamp the record at offset o with NOW + o.
        for offset in base..=last_offset_of(batch) {
            assert_eq!(
                log.offset_for_timestamp(NOW + offset).expect("time lookup"),
                Some((offset, NOW + offset)),
                "time lookup for offset {offset} in batch {i}"
            );
        }
    }
}

/// [`assert_reads`], and the log's max timestamp is its last record's.
fn assert_lookups(log: &PartitionLog, written: &[Vec<u8>]) {
    assert_reads(log, written);
    let last_offset = last_offset_of(written.last().expect("batches"));
    let last_ts = NOW + last_offset;
    assert_eq!(log.max_timestamp(), Some((last_ts, last_offset)));
    assert_eq!(log.offset_for_timestamp(last_ts + 1).expect("lookup"), None);
}

fn assert_indexes_as_closed(dir: &Path, closed: &IndexFiles) {
    for (base, index, time_index) in closed {
        assert_eq!(
            &read_file(&seg_path(dir, *base, ".index")),
            index,
            "{base}.index"
        );
        assert_eq!(
            &read_file(&seg_path(dir, *base, ".timeindex")),
            time_index,
            "{base}.timeindex"
        );
    }
}

const INDEXED: [(&str, &str); 2] = [("segment.bytes", "40000"), ("index.interval.bytes", "500")];

#[test]
fn deleted_indexes_are_rebuilt_even_after_a_clean_stop() {
    let dir = tempfile::tempdir().expect("tempdir");
    let dir = dir.path();
    let (written, closed) = closed_log(dir, &INDEXED);
    let bases: Vec<i64> = closed.iter().map(|(b, _, _)| *b).collect();
    let end = last_offset_of(written.last().expect("batches")) + 1;
    std::fs::remove_file(seg_path(dir, bases[0], ".index")).expect("rm");
    std::fs::remove_file(seg_path(dir, bases[1], ".timeindex")).expect("rm");
    let last = *bases.last().expect("bases");
    std::fs::remove_file(seg_path(dir, last, ".index")).expect("rm");
    std::fs::remove_file(seg_path(dir, last, ".timeindex")).expect("rm");

    let log = open(dir, config(&INDEXED), clean(end));
    assert_eq!(log.log_end_offset(), end);
    assert_lookups(&log, &written);
    log.close().expect("close");
    assert_indexes_as_closed(dir, &closed);
}

#[test]
fn indexes_full_of_random_bytes_are_rebuilt_even_after_a_clean_stop() {
    for seed in 0..20u64 {
        let dir = tempfile::tempdir().expect("tempdir");
        let dir = dir.path();
        let (written, closed) = closed_log(dir, &INDEXED);
        let end = last_offset_of(written.last().expect("batches")) + 1;
        let mut rng = fastrand::Rng::with_seed(seed);
        for (base, index, time_index) in &closed {
            let noise = |len: usize, rng: &mut fastrand::Rng| -> Vec<u8> {
                (0..len).map(|_| rng.u8(..)).collect()
            };
            std::fs::write(seg_path(dir, *base, ".index"), noise(index.len(), &mut rng))
                .expect("write");
            std::fs::write(
                seg_path(dir, *base, ".timeindex"),
                noise(time_index.len(), &mut rng),
            )
            .expect("write");
        }

        let log = open(dir, config(&INDEXED), clean(end));
        assert_eq!(log.log_end_offset(), end, "seed {seed}");
        assert_lookups(&log, &written);
        log.close().expect("close");
        assert_indexes_as_closed(dir, &closed);
    }
}

#[test]
fn a_time_index_entry_past_the_segment_is_rebuilt() {
    // Well formed and increasing, but naming an offset the segment does not
    // hold: trusting it would send time lookups past the segment's data.
    let dir = tempfile::tempdir().expect("tempdir");
    let dir = dir.path();
    let (written, closed) = closed_log(dir, &INDEXED);
    let end = last_offset_of(written.last().expect("batches")) + 1;
    let (base, _, time_index) = &closed[0];
    let next_base = closed[1].0;
    let mut bad = time_index.clone();
    let entry = bad.len() - 12;
    let past = (next_base - base + 5) as u32;
    bad[entry + 8..entry + 12].copy_from_slice(&past.to_be_bytes());
    std::fs::write(seg_path(dir, *base, ".timeindex"), &bad).expect("write");

    let log = open(dir, config(&INDEXED), clean(end));
    assert_lookups(&log, &written);
    log.close().expect("close");
    assert_indexes_as_closed(dir, &closed);
}

#[test]
fn an_offset_index_entry_inside_a_batch_is_rebuilt() {
    // Increasing and below the file size, but pointing into the middle of a
    // batch rather than at its start.
    let dir = tempfile::tempdir().expect("tempdir");
    let dir = dir.path();
    let (written, closed) = closed_log(dir, &INDEXED);
    let end = last_offset_of(written.last().expect("batches")) + 1;
    let (base, index, _) = &closed[0];
    let mut bad = index.clone();
    let position = u32::from_be_bytes(bad[4..8].try_into().expect("4 bytes"));
    bad[4..8].copy_from_slice(&(position + 3).to_be_bytes());
    std::fs::write(seg_path(dir, *base, ".index"), &bad).expect("write");

    let log = open(dir, config(&INDEXED), clean(end));
    assert_lookups(&log, &written);
    log.close().expect("close");
    assert_indexes_as_closed(dir, &closed);
}

fn manager_config(root: &Path) -> ManagerConfig {
    let mut config = ManagerConfig::new(vec![root.to_path_buf()]);
    config.default_config = common::config(&INDEXED);
    config
}

#[test]
fn a_clean_manager_shutdown_needs_no_recovery() {
    let root = tempfile::tempdir().expect("tempdir");
    let root = root.path();
    let tp = TopicPartition::new("clean", 3);
    let manager = LogManager::open(manager_config(root), NOW).expect("open");
    assert!(!manager.started_clean(), "a new dir has no marker");
    let written = {
        let log = manager
            .get_or_create(&tp, config(&INDEXED), NOW)
            .expect("create");
        let mut log = log.lock().expect("lock");
        fill(&mut log, 80)
    };
    let end = last_offset_of(written.last().expect("batches")) + 1;
    manager.shutdown().expect("shutdown");
    assert!(root.join(".kafka_cleanshutdown").exists());
    assert_eq!(
        std::fs::read_to_string(root.join("recovery-point-offset-checkpoint")).expect("read"),
        format!("0\n1\nclean 3 {end}\n")
    );

    // Damage that only a recovery scan would notice: a record byte of the
    // last batch. A clean start does not scan, so the batch stays.
    let dir = root.join("clean-3");
    let last_base = *segment_bases(&dir).last().expect("segments");
    let log_path = seg_path(&dir, last_base, ".log");
    let size = file_len(&log_path);
    let mut bytes = read_file(&log_path);
    let last = bytes.len() - 1;
    bytes[last] ^= 0xff;
    std::fs::write(&log_path, &bytes).expect("write");

    let manager = LogManager::open(manager_config(root), NOW).expect("reopen");
    assert!(manager.started_clean());
    assert!(
        !root.join(".kafka_cleanshutdown").exists(),
        "the marker vouches only for one start"
    );
    {
        let log = manager.get(&tp).expect("partition");
        let log = log.lock().expect("lock");
        assert_eq!(log.log_end_offset(), end);
        assert_eq!(log.recovery_point(), end);
        assert_eq!(file_len(&log_path), size, "nothing was cut");
        assert_reads(&log, &written[..written.len() - 1]);
    }
    // Now stop uncleanly: the next start scans from the recovery point (the
    // last segment) and cuts the damaged batch.
    drop(manager);
    let manager = LogManager::open(manager_config(root), NOW).expect("reopen");
    assert!(!manager.started_clean());
    let log = manager.get(&tp).expect("partition");
    let mut log = log.lock().expect("lock");
    assert_log_is(&mut log, &written[..written.len() - 1]);
}

#[test]
fn an_unclean_manager_stop_recovers_every_append() {
    let root = tempfile::tempdir().expect("tempdir");
    let root = root.path();
    let tp = TopicPartition::new("dirty", 0);
    let manager = LogManager::open(manager_config(root), NOW).expect("open");
    let written = {
        let log = manager
            .get_or_create(&tp, config(&INDEXED), NOW)
            .expect("create");
        let mut log = log.lock().expect("lock");
        fill(&mut log, 80)
    };
    drop(manager); // no shutdown: no marker, no final checkpoint
    assert!(!root.join(".kafka_cleanshutdown").exists());
    let manager = LogManager::open(manager_config(root), NOW).expect("reopen");
    assert!(!manager.started_clean());
    let log = manager.get(&tp).expect("partition");
    let mut log = log.lock().expect("lock");
    assert_lookups(&log, &written);
    assert_log_is(&mut log, &written);
}

#[test]
fn a_second_manager_on_the_same_dir_is_refused() {
    let root = tempfile::tempdir().expect("tempdir");
    let first = LogManager::open(manager_config(root.path()), NOW).expect("open");
    let err = LogManager::open(manager_config(root.path()), NOW).expect_err("locked");
    assert!(
        matches!(&err, LogError::DirLocked { path, .. } if path == root.path()),
        "{err:?}"
    );
    first.shutdown().expect("shutdown");
    LogManager::open(manager_config(root.path()), NOW).expect("free again after shutdown");
}

#[test]
fn recovery_with_a_smaller_segment_index_bytes_than_the_segment_was_written_with() {
    // The segment got 599 offset index entries under the default
    // segment.index.bytes; the setting then shrank to 512 entries' worth.
    let dir = tempfile::tempdir().expect("tempdir");
    let dir = dir.path();
    let mut log = open(dir, config(&[("index.interval.bytes", "0")]), unclean());
    let written = fill_with(&mut log, 600, small_batch_for_offset);
    drop(log);
    let settings = [
        ("index.interval.bytes", "0"),
        ("segment.index.bytes", "4096"),
    ];
    let mut log = open(dir, config(&settings), unclean());
    assert_lookups(&log, &written);
    assert_log_is(&mut log, &written);
}

#[test]
fn a_shutdown_while_a_log_is_still_shared_reopens_correctly() {
    // A task still holding the log at shutdown: the manager can only flush
    // it, so its active segment keeps preallocated indexes under a clean
    // marker. The next start must not take the zero-filled tail as entries.
    let root = tempfile::tempdir().expect("tempdir");
    let root = root.path();
    let tp = TopicPartition::new("held", 1);
    let manager = LogManager::open(manager_config(root), NOW).expect("open");
    let log = manager
        .get_or_create(&tp, config(&INDEXED), NOW)
        .expect("create");
    let written = fill_with(&mut log.lock().expect("lock"), 200, small_batch_for_offset);
    let end = last_offset_of(written.last().expect("batches")) + 1;
    manager.shutdown().expect("shutdown");
    drop(log);
    assert!(root.join(".kafka_cleanshutdown").exists());
    let dir = root.join("held-1");
    let last_base = *segment_bases(&dir).last().expect("segments");
    assert_eq!(
        file_len(&seg_path(&dir, last_base, ".index")),
        10 * 1024 * 1024,
        "still preallocated"
    );

    let manager = LogManager::open(manager_config(root), NOW).expect("reopen");
    assert!(manager.started_clean());
    let log = manager.get(&tp).expect("partition");
    let mut log = log.lock().expect("lock");
    assert_eq!(log.log_end_offset(), end);
    assert_lookups(&log, &written);
    assert_log_is(&mut log, &written);
}

#[test]
fn an_index_entry_inside_a_batch_in_the_middle_still_reads_right() {
    // Opening checks the first and last entries only; a bad one between
    // them is caught when a read lands on it, which then scans the segment.
    let dir = tempfile::tempdir().expect("tempdir");
    let dir = dir.path();
    let (written, closed) = closed_log(dir, &INDEXED);
    let end = last_offset_of(written.last().expect("batches")) + 1;
    let (base, index, _) = &closed[0];
    let entries = index.len() / 8;
    assert!(entries >= 3, "the test needs a middle entry, has {entries}");
    let middle = entries / 2 * 8;
    let mut bad = index.clone();
    let position = u32::from_be_bytes(bad[middle + 4..middle + 8].try_into().expect("4 bytes"));
    bad[middle + 4..middle + 8].copy_from_slice(&(position + 3).to_be_bytes());
    std::fs::write(seg_path(dir, *base, ".index"), &bad).expect("write");

    let log = open(dir, config(&INDEXED), clean(end));
    assert_lookups(&log, &written);
}

#[test]
fn a_valid_batch_whose_offsets_go_back_ends_the_recovered_log() {
    // CRC-valid bytes at the tail that repeat an earlier offset (a stale
    // write, not a torn one) must not become part of the log.
    let dir = tempfile::tempdir().expect("tempdir");
    let dir = dir.path();
    let mut log = open(dir, config(&[]), unclean());
    let written = fill(&mut log, 3);
    drop(log);
    append_bytes(&seg_path(dir, 0, ".log"), &with_base_offset(&written[0], 0));
    let mut log = open(dir, config(&[]), unclean());
    assert_log_is(&mut log, &written);
}
