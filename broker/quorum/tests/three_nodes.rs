//! Three quorum drivers on loopback ports, each with its own dir, real
//! disk log and committed feed: they elect one leader; what it is given
//! commits on all three; with the leader stopped the other two elect a new
//! one in a later epoch and go on committing; the stopped node restarted
//! from its dir catches up, its feed going on from where it stopped; every
//! node holds the same committed entries at the same offsets, and every
//! feed sent exactly those, in order, once, never past the high watermark.
//!
//! Waits are for conditions with a deadline, never sleeps.

mod common;

use runnel_quorum::{CommittedFeed, DriverHooks, QuorumHandle};
use runnel_raft::{Entry, Payload};
use tokio::net::TcpListener;
use tokio::sync::mpsc;

use common::*;

/// What one node's committed feed sent, across its restarts.
#[derive(Default)]
struct Fed {
    receiver: Option<mpsc::UnboundedReceiver<Vec<Entry>>>,
    entries: Vec<Entry>,
    /// A feed sent an entry its node's high watermark had not passed.
    past_high_watermark: Option<String>,
}

impl Fed {
    /// Where the next entry is expected: the broker's image offset + 1.
    fn next_offset(&self) -> u64 {
        self.entries.last().map_or(0, Entry::next_offset)
    }

    /// Hooks for a (re)start of the node, fed from `next_offset`.
    fn hooks(&mut self) -> DriverHooks {
        let (sender, receiver) = mpsc::unbounded_channel();
        self.receiver = Some(receiver);
        DriverHooks {
            committed: Some(CommittedFeed {
                from: self.next_offset(),
                sender,
            }),
            ..DriverHooks::default()
        }
    }

    /// Takes what the feed sent, checking it against the node's high
    /// watermark (read after: it only grows, and is set before a send).
    fn drain(&mut self, node: Option<&QuorumHandle>) {
        let Some(receiver) = &mut self.receiver else {
            return;
        };
        while let Ok(run) = receiver.try_recv() {
            self.entries.extend(run);
        }
        if let Some(node) = node {
            let high_watermark = node.status().high_watermark;
            if self.next_offset() > high_watermark {
                self.past_high_watermark = Some(format!(
                    "sent up to {} with the high watermark at {high_watermark}",
                    self.next_offset()
                ));
            }
        }
    }
}

/// Drains every feed; `Some` once each running node's has sent up to
/// `end`.
fn all_fed(nodes: &[Node], feds: &mut [Fed], end: u64) -> Option<()> {
    let mut all = true;
    for (node, fed) in nodes.iter().zip(feds.iter_mut()) {
        let handle = node.handle();
        fed.drain(handle.as_ref());
        all &= handle.is_none() || fed.next_offset() >= end;
    }
    all.then_some(())
}

/// The offsets of `entries` follow each other from 0: none skipped, none
/// twice.
fn check_contiguous(entries: &[Entry]) -> TestResult {
    let mut next = 0;
    for entry in entries {
        if entry.offset != next {
            return Err(format!("entry at {} where {next} was due", entry.offset).into());
        }
        next = entry.next_offset();
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_nodes_elect_commit_fail_over_and_catch_up() -> TestResult {
    let (listeners, addrs) = bind_all().await?;
    let mut nodes = Vec::new();
    let mut feds: Vec<Fed> = VOTERS.iter().map(|_| Fed::default()).collect();
    for ((id, listener), fed) in VOTERS.into_iter().zip(listeners).zip(&mut feds) {
        let dir = tempfile::TempDir::new()?;
        let driver = start(id, listener, dir.path(), &addrs, fed.hooks())?;
        nodes.push(Node {
            id,
            addr: addrs[&id],
            dir,
            driver: Some(driver),
        });
    }

    // One leader, followed by both others.
    let (first, first_status) = wait_for("a leader", || one_leader(&nodes)).await?;
    assert!(first_status.epoch >= 1);
    let leader = nodes[first].handle().ok_or("leader stopped")?;
    let mut proposed = Vec::new();
    let end = with_timeout(propose(&leader, 0, 5, &mut proposed)).await??;
    wait_for("the first proposals committed everywhere", || {
        all_reach(&nodes, end)
    })
    .await?;
    wait_for("the first proposals fed everywhere", || {
        all_fed(&nodes, &mut feds, end)
    })
    .await?;

    // The leader stops; the other two elect a new one in a later epoch.
    let stopped = nodes[first].driver.take().ok_or("no driver")?;
    stopped.shutdown().await;
    // What its feed sent before it stopped is the broker's image.
    feds[first].drain(None);
    let (second, _) = wait_for("a new leader", || {
        one_leader(&nodes).filter(|(_, s)| s.epoch > first_status.epoch)
    })
    .await?;
    assert_ne!(second, first);
    let leader = nodes[second].handle().ok_or("leader stopped")?;
    let end = with_timeout(propose(&leader, 5, 5, &mut proposed)).await??;
    wait_for("the later proposals committed by the two", || {
        all_reach(&nodes, end)
    })
    .await?;

    // The stopped node comes back from its dir and catches up; its feed
    // starts where the broker's image ends.
    let restart_from = feds[first].next_offset();
    let fed_before_restart = feds[first].entries.len();
    let listener = TcpListener::bind(nodes[first].addr).await?;
    let hooks = feds[first].hooks();
    let restarted = start(
        nodes[first].id,
        listener,
        nodes[first].dir.path(),
        &addrs,
        hooks,
    )?;
    let back = restarted.handle();
    nodes[first].driver = Some(restarted);
    wait_for("the restarted node caught up", || {
        let leader_hw = leader.status().high_watermark;
        let status = back.status();
        (status.log_end_offset >= leader_hw && status.high_watermark >= end).then_some(())
    })
    .await?;
    let committed = leader.status().high_watermark;
    assert!(committed >= end);
    wait_for("every feed reached the high watermark", || {
        all_fed(&nodes, &mut feds, committed)
    })
    .await?;
    let resumed = feds[first]
        .entries
        .get(fed_before_restart)
        .ok_or("the restarted feed sent nothing")?;
    assert_eq!(resumed.offset, restart_from, "the restarted feed's start");

    // Every node holds the same committed entries, the proposals at the
    // offsets they were given.
    for node in &mut nodes {
        if let Some(driver) = node.driver.take() {
            driver.shutdown().await;
        }
    }
    let logs = nodes
        .iter()
        .map(|n| entries_below(n.dir.path(), committed))
        .collect::<Result<Vec<_>, _>>()?;
    assert_eq!(logs[0], logs[1]);
    assert_eq!(logs[0], logs[2]);
    let leader_changes = logs[0]
        .iter()
        .filter(|e| matches!(e.payload, Payload::LeaderChange { .. }))
        .count();
    assert!(leader_changes >= 2, "a leader change per elected epoch");
    for (offset, data) in &proposed {
        let entry = logs[0]
            .iter()
            .find(|e| e.offset == *offset)
            .ok_or(format!("no entry at offset {offset}"))?;
        let Payload::Data(stored) = &entry.payload else {
            return Err(format!("offset {offset} holds a leader change").into());
        };
        assert_eq!(
            stored[STAMPED_HEADER_BYTES..],
            data[STAMPED_HEADER_BYTES..],
            "offset {offset}"
        );
    }

    // Every feed sent exactly the committed entries, in order, once, the
    // whole batches as stored, never past its node's high watermark.
    for (node, fed) in nodes.iter().zip(&feds) {
        let id = node.id;
        if let Some(past) = &fed.past_high_watermark {
            return Err(format!("node {id}'s feed {past}").into());
        }
        check_contiguous(&fed.entries).map_err(|e| format!("node {id}'s feed: {e}"))?;
        let below: Vec<&Entry> = fed
            .entries
            .iter()
            .filter(|e| e.offset < committed)
            .collect();
        let expected: Vec<&Entry> = logs[0].iter().collect();
        assert_eq!(below, expected, "node {id}'s feed");
    }
    Ok(())
}
