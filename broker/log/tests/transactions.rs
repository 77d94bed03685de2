//! Transactional batches in a partition log: the last stable offset stops
//! at the oldest open transaction, markers end transactions, aborted ones
//! are listed for `read_committed` fetches from the `.txnindex`, and that
//! list survives a clean stop, an unclean one and retention.

mod common;

use common::*;
use runnel_log::control::ControlType;
use runnel_log::{BatchBuilder, PartitionLog};

fn transactional(producer_id: i64, first_seq: i32, records: usize) -> Vec<u8> {
    let mut builder = BatchBuilder::new(NOW)
        .producer(producer_id, 0, first_seq)
        .transactional();
    for _ in 0..records {
        builder.push(None, Some(b"v"), NOW);
    }
    builder.build()
}

/// Producer 1 writes 2 records (offsets 0-1) and aborts (marker at 2);
/// producer 2 writes 2 (3-4) and leaves its transaction open.
fn aborted_then_open(log: &mut PartitionLog) {
    log.append(&transactional(1, 0, 2), NOW).expect("append");
    assert_eq!(log.last_stable_offset(), 0, "open transaction at 0");
    let marker = log
        .append_marker(1, 0, ControlType::Abort, 0, NOW)
        .expect("marker");
    assert_eq!(marker.first_offset, 2);
    assert_eq!(log.last_stable_offset(), 3);
    log.append(&transactional(2, 0, 2), NOW).expect("append");
    assert_eq!(
        log.last_stable_offset(),
        3,
        "producer 2's transaction is open"
    );
}

fn aborted_of(log: &PartitionLog) -> Vec<(i64, i64, i64)> {
    log.aborted_transactions(0, log.log_end_offset())
        .iter()
        .map(|t| (t.producer_id, t.first_offset, t.last_offset))
        .collect()
}

#[test]
fn markers_move_the_last_stable_offset_and_list_aborts() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut log = open(dir.path(), config(&[]), unclean());
    aborted_then_open(&mut log);
    assert_eq!(aborted_of(&log), [(1, 0, 2)]);
    // A fetch starting after the aborted transaction does not see it.
    assert!(log.aborted_transactions(3, 5).is_empty());
    log.append_marker(2, 0, ControlType::Commit, 0, NOW)
        .expect("commit");
    assert_eq!(log.last_stable_offset(), log.log_end_offset());
    assert_eq!(aborted_of(&log), [(1, 0, 2)], "a commit is not listed");
}

#[test]
fn aborted_transactions_survive_clean_and_unclean_stops() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut log = open(dir.path(), config(&[]), unclean());
    aborted_then_open(&mut log);
    let end = log.log_end_offset();
    log.close().expect("close");
    let log = open(dir.path(), config(&[]), clean(end));
    assert_eq!(aborted_of(&log), [(1, 0, 2)]);
    assert_eq!(log.last_stable_offset(), 3, "still open after a restart");
    drop(log);
    // Unclean, and the .txnindex lost: the replay writes it again.
    std::fs::remove_file(seg_path(dir.path(), 0, ".txnindex")).expect("remove");
    for snapshot in std::fs::read_dir(dir.path()).expect("list") {
        let path = snapshot.expect("entry").path();
        if path.extension().is_some_and(|e| e == "snapshot") {
            std::fs::remove_file(path).expect("remove snapshot");
        }
    }
    let log = open(dir.path(), config(&[]), unclean());
    assert_eq!(aborted_of(&log), [(1, 0, 2)]);
    assert_eq!(log.last_stable_offset(), 3);
    assert!(seg_path(dir.path(), 0, ".txnindex").exists());
}

#[test]
fn truncation_and_retention_drop_aborted_transactions_with_their_segments() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut log = open(dir.path(), config(&[]), unclean());
    aborted_then_open(&mut log);
    log.truncate_to(2, NOW).expect("truncate before the marker");
    assert!(aborted_of(&log).is_empty());
    assert_eq!(
        log.last_stable_offset(),
        0,
        "producer 1's transaction is open again"
    );
    log.append_marker(1, 0, ControlType::Abort, 0, NOW)
        .expect("marker");
    assert_eq!(aborted_of(&log), [(1, 0, 2)]);
    log.roll(NOW).expect("roll");
    log.advance_log_start_offset(3)
        .expect("start past the abort");
    log.apply_retention(NOW).expect("retention");
    assert!(aborted_of(&log).is_empty());
    assert!(!seg_path(dir.path(), 0, ".txnindex").exists());
}
