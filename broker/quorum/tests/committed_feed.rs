//! A lone voter's committed feed: it commits as it proposes, so its feed
//! sends each proposal; restarted from its dir with a feed from 0, it knows
//! no high watermark until it leads again, then sends its whole log once
//! more, in order, up to the new high watermark.
//!
//! Waits are for conditions with a deadline, never sleeps.

mod common;

use std::collections::BTreeMap;

use runnel_quorum::{CommittedFeed, DriverHooks};
use runnel_raft::{Entry, Payload, Role};
use tokio::net::TcpListener;
use tokio::sync::mpsc;

use common::*;

const ALONE: [runnel_raft::NodeId; 1] = [1];

fn feed_from(from: u64) -> (DriverHooks, mpsc::UnboundedReceiver<Vec<Entry>>) {
    let (sender, receiver) = mpsc::unbounded_channel();
    let hooks = DriverHooks {
        committed: Some(CommittedFeed { from, sender }),
        ..DriverHooks::default()
    };
    (hooks, receiver)
}

/// Takes what `receiver` holds into `fed`; `Some` once it reaches `end`.
fn fed_up_to(
    receiver: &mut mpsc::UnboundedReceiver<Vec<Entry>>,
    fed: &mut Vec<Entry>,
    end: u64,
) -> Option<()> {
    while let Ok(run) = receiver.try_recv() {
        fed.extend(run);
    }
    (fed.last().map_or(0, Entry::next_offset) >= end).then_some(())
}

#[tokio::test]
async fn a_lone_voter_feeds_its_log_again_after_a_restart() -> TestResult {
    let dir = tempfile::TempDir::new()?;
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let addrs = BTreeMap::from([(1, addr)]);
    let (hooks, mut receiver) = feed_from(0);
    let driver = start_of(&ALONE, 1, listener, dir.path(), &addrs, hooks)?;
    let handle = driver.handle();
    wait_for("leadership", || {
        (handle.status().role == Role::Leader).then_some(())
    })
    .await?;
    let mut proposed = Vec::new();
    let end = with_timeout(propose(&handle, 0, 3, &mut proposed)).await??;
    let mut fed = Vec::new();
    wait_for("the proposals fed", || {
        fed_up_to(&mut receiver, &mut fed, end)
    })
    .await?;
    driver.shutdown().await;
    while let Ok(run) = receiver.try_recv() {
        fed.extend(run);
    }
    let log = entries_below(dir.path(), end)?;
    assert_eq!(fed, log);
    assert!(matches!(
        fed[0].payload,
        Payload::LeaderChange { leader_id: 1 }
    ));
    for (offset, _) in &proposed {
        assert!(
            fed.iter()
                .any(|e| e.offset == *offset && matches!(e.payload, Payload::Data(_)))
        );
    }

    // Restarted with an empty image: the log goes out again once the node
    // leads (and commits its new epoch's leader change).
    let listener = TcpListener::bind(addr).await?;
    let (hooks, mut receiver) = feed_from(0);
    let driver = start_of(&ALONE, 1, listener, dir.path(), &addrs, hooks)?;
    let handle = driver.handle();
    let high_watermark = wait_for("a high watermark past the old log", || {
        let status = handle.status();
        (status.high_watermark > end).then_some(status.high_watermark)
    })
    .await?;
    let mut again = Vec::new();
    wait_for("the log fed again", || {
        fed_up_to(&mut receiver, &mut again, high_watermark)
    })
    .await?;
    assert_eq!(again[..fed.len()], fed[..]);
    assert_eq!(again.len(), fed.len() + 1, "and the new leader change");
    assert!(
        again
            .iter()
            .all(|e| e.next_offset() <= handle.status().high_watermark)
    );
    driver.shutdown().await;
    Ok(())
}
