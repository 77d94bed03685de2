//! Idempotent producers' batches in a partition log: a retry is answered
//! with the first write's offsets and not written again, gaps and old
//! epochs are refused, and the state that makes this work survives a clean
//! stop (snapshot) and an unclean one (read again from the log).

mod common;

use common::*;
use runnel_log::producer_state::SequenceError;
use runnel_log::{BatchBuilder, LogError, PartitionLog};

fn idempotent(producer_id: i64, epoch: i16, first_seq: i32, records: usize) -> Vec<u8> {
    let mut builder = BatchBuilder::new(NOW).producer(producer_id, epoch, first_seq);
    for i in 0..records {
        builder.push(None, Some(format!("r{i}").as_bytes()), NOW);
    }
    builder.build()
}

/// Appends batches of 2 records for producer 7, sequences 0, 2, 4, ...
fn fill(log: &mut PartitionLog, batches: i32) {
    for i in 0..batches {
        let info = log
            .append(&idempotent(7, 0, i * 2, 2), NOW)
            .expect("append");
        assert!(!info.duplicate);
    }
}

fn assert_retry_is_found(log: &mut PartitionLog, first_seq: i32, first_offset: i64) {
    let end = log.log_end_offset();
    let info = log
        .append(&idempotent(7, 0, first_seq, 2), NOW)
        .expect("a retry is answered");
    assert!(info.duplicate, "{info:?}");
    assert_eq!(
        (info.first_offset, info.last_offset),
        (first_offset, first_offset + 1)
    );
    assert_eq!(log.log_end_offset(), end, "nothing written for a retry");
}

#[test]
fn retries_are_answered_with_their_first_offsets_and_gaps_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut log = open(dir.path(), config(&[]), unclean());
    fill(&mut log, 3);
    assert_retry_is_found(&mut log, 2, 2);
    assert_retry_is_found(&mut log, 4, 4);
    let err = log
        .append(&idempotent(7, 0, 10, 2), NOW)
        .expect_err("a gap");
    assert!(
        matches!(
            err,
            LogError::Sequence {
                source: SequenceError::OutOfOrder {
                    expected: 6,
                    got: 10,
                    ..
                },
                ..
            }
        ),
        "{err}"
    );
    log.append(&idempotent(7, 1, 0, 1), NOW)
        .expect("a new epoch");
    let err = log
        .append(&idempotent(7, 0, 6, 1), NOW)
        .expect_err("the old epoch");
    assert!(
        matches!(
            err,
            LogError::Sequence {
                source: SequenceError::StaleEpoch { .. },
                ..
            }
        ),
        "{err}"
    );
    // Two batches of one idempotent producer in one append are refused.
    let two = [idempotent(7, 1, 1, 1), idempotent(7, 1, 2, 1)].concat();
    assert!(matches!(
        log.append(&two, NOW),
        Err(LogError::ProducerBatchNotAlone { batches: 2 })
    ));
}

#[test]
fn producer_state_survives_a_clean_stop_through_its_snapshot() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut log = open(dir.path(), config(&[]), unclean());
    fill(&mut log, 3);
    let end = log.log_end_offset();
    log.close().expect("close");
    assert!(seg_path(dir.path(), end, ".snapshot").exists());
    let mut log = open(dir.path(), config(&[]), clean(end));
    assert_retry_is_found(&mut log, 4, 4);
    log.append(&idempotent(7, 0, 6, 2), NOW)
        .expect("the next sequence follows on");
}

#[test]
fn producer_state_is_read_again_from_the_log_after_an_unclean_stop() {
    let dir = tempfile::tempdir().expect("tempdir");
    // Small segments: the first rolls leave snapshots, the last batches are
    // only in the log.
    let small = || config(&[("segment.bytes", "300")]);
    let mut log = open(dir.path(), small(), unclean());
    fill(&mut log, 6);
    assert!(log.segments().count() > 1, "the log rolled");
    drop(log); // no close: no snapshot at the log end
    let mut log = open(dir.path(), small(), unclean());
    assert_retry_is_found(&mut log, 10, 10);
    let err = log
        .append(&idempotent(7, 0, 14, 2), NOW)
        .expect_err("12 is next");
    assert!(matches!(err, LogError::Sequence { .. }), "{err}");
    // Snapshots past the log end are dropped when the log is cut back.
    log.truncate_to(4, NOW).expect("truncate");
    assert_eq!(log.log_end_offset(), 4);
    log.append(&idempotent(7, 0, 4, 2), NOW)
        .expect("sequence 4 follows the batches that remain");
}

#[test]
fn only_the_broker_writes_control_batches() {
    use runnel_log::builder::BatchBuilder as Builder;
    use runnel_protocol::control::ControlType;
    let dir = tempfile::tempdir().expect("tempdir");
    let mut log = open(dir.path(), config(&[]), unclean());
    let marker = Builder::marker(7, 0, ControlType::Commit, 0, NOW).build();
    assert!(matches!(
        log.append(&marker, NOW),
        Err(LogError::ControlBatchFromClient { index: 0 })
    ));
    assert_eq!(log.log_end_offset(), 0);
    let info = log.append_control(&marker, NOW).expect("the broker's own");
    assert_eq!(info.first_offset, 0);
}
