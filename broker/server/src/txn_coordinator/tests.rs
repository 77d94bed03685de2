//! The coordinator over a replica manager in a temp dir: routing by
//! partition, load and unload, NOT_COORDINATOR for an unloaded shard, and
//! the state it reads back.

use std::sync::Arc;

use runnel_coordinator::txn::TxnError;
use runnel_coordinator::txn_log::TxnState;
use runnel_log::{LogConfig, LogManager, ManagerConfig};

use super::*;

const NOW: i64 = 1_700_000_000_000;
const PARTITIONS: i32 = 4;

struct Fixture {
    _dir: tempfile::TempDir,
    replicas: Arc<ReplicaManager>,
    coordinator: TxnCoordinator,
}

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().expect("tempdir");
    let logs = LogManager::open(ManagerConfig::new(vec![dir.path().to_path_buf()]), NOW)
        .expect("open logs");
    let metadata = ClusterMetadata::open(&logs, 1, NOW).expect("open metadata");
    let replicas = Arc::new(ReplicaManager::for_test(Arc::new(logs)));
    let config = LogConfig::default();
    replicas
        .host(TRANSACTION_TOPIC, 0, PARTITIONS, &config, NOW)
        .expect("host state");
    replicas.host("t", 0, 2, &config, NOW).expect("host t");
    let coordinator = TxnCoordinator::new(
        TxnConfig {
            partitions: PARTITIONS,
            max_timeout_ms: 900_000,
            id_expiration_ms: 60_000,
        },
        Arc::clone(&replicas),
        ProducerIdSource {
            ids: Arc::default(),
            metadata: Arc::new(metadata),
        },
    );
    Fixture {
        _dir: dir,
        replicas,
        coordinator,
    }
}

/// Two transactional ids stored in different partitions.
fn ids_apart(coordinator: &TxnCoordinator) -> (String, String) {
    let first = "txn-0".to_string();
    let other = (1..)
        .map(|i| format!("txn-{i}"))
        .find(|id| coordinator.partition_for(id) != coordinator.partition_for(&first))
        .expect("an id in another partition");
    (first, other)
}

fn end_offset(replicas: &ReplicaManager, topic: &str, partition: i32) -> i64 {
    let partition = replicas.get(topic, partition).expect("partition");
    partition.log().log_end_offset()
}

fn is_not_coordinator<T: std::fmt::Debug>(result: Result<T, TxnRequestError>, partition: i32) {
    match result {
        Err(TxnRequestError::NotCoordinator { partition: p }) => assert_eq!(p, partition),
        other => panic!("expected NOT_COORDINATOR for partition {partition}, got {other:?}"),
    }
}

#[test]
fn ids_route_to_their_partitions_shard() {
    let f = fixture();
    let c = &f.coordinator;
    let (id, other) = ids_apart(c);
    assert_eq!(
        c.partition_for(&id),
        runnel_coordinator::coordinator_partition(&id, PARTITIONS)
    );
    let (home, away) = (c.partition_for(&id), c.partition_for(&other));
    let loaded = c.load(home, NOW).expect("load");
    assert_eq!(loaded.transactional_ids, 0);
    assert!(c.shards.get(home).is_some() && c.shards.get(away).is_none());

    let init = c.init_producer(&id, 60_000, NOW).expect("init");
    assert_eq!((init.producer_epoch, init.ended), (0, None));
    // The record went to the id's own partition.
    assert_eq!(end_offset(&f.replicas, TRANSACTION_TOPIC, home), 1);
    assert_eq!(end_offset(&f.replicas, TRANSACTION_TOPIC, away), 0);

    is_not_coordinator(c.init_producer(&other, 60_000, NOW), away);
    is_not_coordinator(c.check_producer(&other, 1, 0), away);
    is_not_coordinator(c.end_txn(&other, 1, 0, true, NOW), away);
    assert_eq!(end_offset(&f.replicas, TRANSACTION_TOPIC, away), 0);
    // An unknown id of a loaded shard is the state machine's refusal.
    let unknown = (0..)
        .map(|i| format!("unknown-{i}"))
        .find(|u| c.partition_for(u) == home)
        .expect("an id of the loaded shard");
    assert!(matches!(
        c.check_producer(&unknown, 1, 0),
        Err(TxnRequestError::Refused(TxnError::InvalidProducerIdMapping))
    ));
}

#[test]
fn unload_refuses_and_load_reads_the_state_back() {
    let f = fixture();
    let c = &f.coordinator;
    let (id, _) = ids_apart(c);
    let home = c.partition_for(&id);
    c.load(home, NOW).expect("load");
    let init = c.init_producer(&id, 60_000, NOW).expect("init");
    let (pid, epoch) = (init.producer_id, init.producer_epoch);
    c.add_partitions(&id, pid, epoch, vec![("t".into(), 0)], NOW + 1)
        .expect("add");
    assert_eq!(
        c.verify_partitions(&id, pid, epoch, &[("t".into(), 0), ("t".into(), 1)])
            .expect("verify"),
        [true, false]
    );

    c.unload(home);
    assert!(c.shards.get(home).is_none());
    is_not_coordinator(c.check_producer(&id, pid, epoch), home);
    is_not_coordinator(c.add_partitions(&id, pid, epoch, vec![], NOW), home);
    assert!(c.transactions_now().is_empty());

    let loaded = c.load(home, NOW + 2).expect("load again");
    assert_eq!(loaded.transactional_ids, 1);
    assert!(loaded.prepared.is_empty());
    c.check_producer(&id, pid, epoch).expect("still open");
    let ended = c.end_txn(&id, pid, epoch, true, NOW + 3).expect("commit");
    assert_eq!(
        ended,
        Some(TxnEnded {
            producer_id: pid,
            committed: true
        })
    );
    assert_eq!(end_offset(&f.replicas, "t", 0), 1, "the commit marker");
    // A retried EndTxn ends nothing more.
    assert_eq!(
        c.end_txn(&id, pid, epoch, true, NOW + 4).expect("retry"),
        None
    );
    let all = c.transactions_now();
    assert_eq!(all.len(), 1);
    assert_eq!(all[0].1.state, TxnState::CompleteCommit);
}

#[test]
fn a_transaction_left_prepared_is_finished_after_the_load() {
    let f = fixture();
    let c = &f.coordinator;
    let (id, _) = ids_apart(c);
    let home = c.partition_for(&id);
    c.load(home, NOW).expect("load");
    let init = c.init_producer(&id, 60_000, NOW).expect("init");
    let (pid, epoch) = (init.producer_id, init.producer_epoch);
    c.add_partitions(&id, pid, epoch, vec![("t".into(), 1)], NOW)
        .expect("add");
    // A stop between PrepareAbort and the markers.
    let mut txn = c.transactions_now().remove(0).1;
    let markers = txn.begin_abort_fenced(NOW + 1);
    assert_eq!(markers.partitions.len(), 1);
    c.store.store(home, &id, &txn, NOW + 1).expect("prepare");
    c.unload(home);

    let loaded = c.load(home, NOW + 2).expect("load");
    assert_eq!(loaded.prepared.len(), 1, "found prepared");
    let (_, txn) = c.transactions_now().remove(0);
    assert_eq!(
        txn.state,
        TxnState::PrepareAbort,
        "left for finish_prepared"
    );
    let ended = c.finish_prepared(home, loaded.prepared, NOW + 2);
    assert_eq!(
        ended,
        [TxnEnded {
            producer_id: pid,
            committed: false
        }]
    );
    assert_eq!(end_offset(&f.replicas, "t", 1), 1, "the abort marker");
    let (_, txn) = c.transactions_now().remove(0);
    assert_eq!(
        (txn.state, txn.producer_epoch),
        (TxnState::CompleteAbort, 1)
    );
}

#[test]
fn expired_ids_are_forgotten_across_a_load() {
    let f = fixture();
    let c = &f.coordinator;
    let (id, other) = ids_apart(c);
    for partition in 0..PARTITIONS {
        c.load(partition, NOW).expect("load");
    }
    c.init_producer(&id, 60_000, NOW).expect("init");
    let late = c.init_producer(&other, 1_000, NOW + 30_000).expect("init");
    c.add_partitions(
        &other,
        late.producer_id,
        0,
        vec![("t".into(), 0)],
        NOW + 30_000,
    )
    .expect("add");
    // The open transaction is aborted past its timeout.
    assert!(c.abort_timed_out(NOW + 31_000).is_empty());
    let ended = c.abort_timed_out(NOW + 31_001);
    assert_eq!(
        ended,
        [TxnEnded {
            producer_id: late.producer_id,
            committed: false
        }]
    );
    // Only the id idle for transactional.id.expiration.ms is forgotten.
    assert_eq!(c.expire_ids(NOW + 59_999), 0);
    assert_eq!(c.expire_ids(NOW + 60_000), 1);
    for partition in 0..PARTITIONS {
        c.unload(partition);
        c.load(partition, NOW + 60_001).expect("load");
    }
    let ids: Vec<String> = c.transactions_now().into_iter().map(|(id, _)| id).collect();
    assert_eq!(ids, [other]);
    // A forgotten id starts again with a new producer id.
    let again = c.init_producer(&id, 60_000, NOW + 60_002).expect("init");
    assert_eq!(again.producer_epoch, 0);
    assert_ne!(again.producer_id, late.producer_id);
}
