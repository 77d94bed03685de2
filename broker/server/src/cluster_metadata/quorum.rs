//! The metadata log on the KRaft quorum (`process.roles` set): the
//! quorum driver (runnel-quorum) owns `__cluster_metadata-0`, and this
//! broker's image follows what the quorum commits.
//!
//! - Replay ([`replay_committed`]): every node, the active controller
//!   included, replays each run of committed entries the driver hands over
//!   into its image, has the applier put its share in place and publishes
//!   the image, then moves `applied_end` past the entries. LEADER_CHANGE
//!   and other control batches advance `applied_end` and nothing else.
//! - Writes ([`QuorumBackend::change`]) are the active controller's alone:
//!   one at a time, built against an image that holds every entry of the
//!   leader's log (so nothing committed before this leader is missed, and
//!   no change of its own is built over a stale image), proposed, and
//!   returned once the image holds them. A node that is not the leader
//!   answers [`MetadataError::NotController`] with the leader it knows;
//!   its callers forward the request to the controller.
//!
//! Changes are called from synchronous admin code on the runtime's worker
//! threads; the wait for the quorum runs in `block_in_place`, so the
//! driver's task goes on on another worker. A current-thread runtime
//! cannot do that, and a change there is refused with
//! [`MetadataError::NeedsMultiThreadRuntime`] rather than hanging.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use runnel_metadata::{ChangeError, LocalReplicaChanges, MetadataImage, MetadataRecord, log_batch};
use runnel_quorum::{ControllerClient, ProposeError, QuorumHandle};
use runnel_raft::{Entry, Epoch, Payload, Proposal, Role};
use tokio::sync::watch;

use super::{Applied, ClusterMetadata, MetadataError};

/// The longest a change waits for its records to commit and replay.
const COMMIT_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Debug)]
pub struct QuorumBackend {
    handle: QuorumHandle,
    /// Requests to the active controller, for changes made elsewhere.
    client: Arc<ControllerClient>,
    /// The offset after the last entry replayed into the image.
    applied_end: watch::Sender<u64>,
    /// Held for a whole change on the controller (build, propose, wait).
    changes: Mutex<()>,
}

impl QuorumBackend {
    pub fn new(handle: QuorumHandle, client: Arc<ControllerClient>, applied_end: u64) -> Self {
        Self {
            handle,
            client,
            applied_end: watch::Sender::new(applied_end),
            changes: Mutex::new(()),
        }
    }

    pub fn handle(&self) -> &QuorumHandle {
        &self.handle
    }

    /// Whether this node is the active controller (the quorum's leader).
    pub fn is_controller(&self) -> bool {
        self.handle.status().role == Role::Leader
    }

    /// Sends `request` to the active controller and waits for its answer,
    /// from synchronous code on a multi-thread runtime (see the module
    /// doc).
    pub fn forward<R: kafka_protocol::protocol::Request>(
        &self,
        request: R,
        version: i16,
    ) -> Result<R::Response, MetadataError> {
        let runtime = multi_thread_runtime()?;
        tokio::task::block_in_place(|| {
            runtime.block_on(self.client.send(request, version, COMMIT_TIMEOUT))
        })
        .map_err(MetadataError::Forward)
    }

    /// Sends `request` to the active controller from async code.
    pub async fn forward_async<R: kafka_protocol::protocol::Request>(
        &self,
        request: R,
        version: i16,
    ) -> Result<R::Response, MetadataError> {
        self.client
            .send(request, version, COMMIT_TIMEOUT)
            .await
            .map_err(MetadataError::Forward)
    }

    /// Sends a client's request body as it came to the active controller;
    /// the answer's body.
    pub async fn forward_encoded(
        &self,
        api_key: kafka_protocol::messages::ApiKey,
        version: i16,
        body: bytes::Bytes,
    ) -> Result<bytes::Bytes, MetadataError> {
        self.client
            .send_encoded(api_key, version, body, COMMIT_TIMEOUT)
            .await
            .map_err(MetadataError::Forward)
    }

    /// Waits (up to the commit timeout) until this node knows a high
    /// watermark above `before` and its image holds everything below it:
    /// after a change the controller committed while this node's high
    /// watermark was `before`, the image holds the change. Whether it did.
    pub async fn wait_applied_past(&self, before: u64) -> bool {
        let mut status = self.handle.watch_status();
        let mut applied = self.applied_end.subscribe();
        let caught_up = async {
            loop {
                let high_watermark = status.borrow_and_update().high_watermark;
                if high_watermark > before && *applied.borrow_and_update() >= high_watermark {
                    return;
                }
                tokio::select! {
                    changed = status.changed() => if changed.is_err() { return },
                    changed = applied.changed() => if changed.is_err() { return },
                }
            }
        };
        tokio::time::timeout(COMMIT_TIMEOUT, caught_up)
            .await
            .is_ok()
    }

    /// Waits until `ready` holds for the image (a change another node made
    /// has been replayed here), up to the commit timeout; whether it held.
    pub fn wait_for_image(
        &self,
        metadata: &ClusterMetadata,
        ready: impl Fn(&MetadataImage) -> bool,
    ) -> bool {
        let Ok(runtime) = multi_thread_runtime() else {
            return ready(&metadata.image());
        };
        let mut applied = self.applied_end.subscribe();
        tokio::task::block_in_place(|| {
            runtime.block_on(async {
                let waited = tokio::time::timeout(COMMIT_TIMEOUT, async {
                    loop {
                        if ready(&metadata.image()) {
                            return true;
                        }
                        if applied.changed().await.is_err() {
                            return false;
                        }
                    }
                });
                waited.await.unwrap_or(false)
            })
        })
    }

    pub fn applied_end(&self) -> u64 {
        *self.applied_end.borrow()
    }

    pub(super) fn mark_applied(&self, end: u64) {
        self.applied_end.send_if_modified(|applied| {
            let moved = end > *applied;
            *applied = (*applied).max(end);
            moved
        });
    }

    /// See the module doc. Records built by `build` are the same whether
    /// they come back here or through another node's replay.
    pub fn change<T>(
        &self,
        metadata: &ClusterMetadata,
        now_ms: i64,
        build: impl FnOnce(&MetadataImage) -> Result<(Vec<MetadataRecord>, T), ChangeError>,
    ) -> Result<(Applied, T), MetadataError> {
        let runtime = multi_thread_runtime()?;
        tokio::task::block_in_place(|| {
            let _changing = self.changes.lock().unwrap_or_else(PoisonError::into_inner);
            runtime.block_on(self.change_as_leader(metadata, now_ms, build))
        })
    }

    async fn change_as_leader<T>(
        &self,
        metadata: &ClusterMetadata,
        now_ms: i64,
        build: impl FnOnce(&MetadataImage) -> Result<(Vec<MetadataRecord>, T), ChangeError>,
    ) -> Result<(Applied, T), MetadataError> {
        let status = self.handle.status();
        if status.role != Role::Leader {
            return Err(MetadataError::NotController {
                leader: status.leader_id,
            });
        }
        // Everything in the leader's log, its own LEADER_CHANGE included,
        // is in the image before a change is built on it.
        self.wait_applied(status.log_end_offset, status.epoch)
            .await?;
        let image = metadata.image();
        let (records, extra) = build(&image).map_err(MetadataError::Refused)?;
        if records.is_empty() {
            let applied = Applied {
                image,
                local: LocalReplicaChanges::default(),
            };
            return Ok((applied, extra));
        }
        // The leader stamps the base offset and epoch.
        let batch = log_batch::encode_batch(0, kafka_epoch(status.epoch), now_ms, &records)
            .map_err(MetadataError::Encode)?;
        let proposal = Proposal {
            data: batch.into(),
            record_count: u32::try_from(records.len()).unwrap_or(u32::MAX),
        };
        let end = match self.handle.propose([proposal]).await {
            Ok(end) => end,
            Err(ProposeError::NotLeader { current }) => {
                return Err(MetadataError::NotController {
                    leader: current.leader_id,
                });
            }
            Err(err) => return Err(MetadataError::Propose(err)),
        };
        self.wait_applied(end.offset, end.epoch).await?;
        let applied = Applied {
            image: metadata.image(),
            local: LocalReplicaChanges::default(),
        };
        Ok((applied, extra))
    }

    /// Waits until the image holds every entry below `end`, while this
    /// node leads in `epoch`.
    async fn wait_applied(&self, end: u64, epoch: Epoch) -> Result<(), MetadataError> {
        let mut applied = self.applied_end.subscribe();
        let mut status = self.handle.watch_status();
        let deadline = tokio::time::Instant::now() + COMMIT_TIMEOUT;
        loop {
            if *applied.borrow_and_update() >= end {
                return Ok(());
            }
            let now = *status.borrow_and_update();
            if now.role != Role::Leader || now.epoch != epoch {
                return Err(MetadataError::NotController {
                    leader: now.leader_id,
                });
            }
            tokio::select! {
                changed = applied.changed() => changed.map_err(|_| MetadataError::QuorumStopped)?,
                changed = status.changed() => changed.map_err(|_| MetadataError::QuorumStopped)?,
                () = tokio::time::sleep_until(deadline) => {
                    return Err(MetadataError::CommitTimeout {
                        end,
                        waited_ms: COMMIT_TIMEOUT.as_millis() as u64,
                    });
                }
            }
        }
    }
}

/// Replays one run of committed entries into `metadata`'s image (see the
/// module doc).
pub fn replay_committed(
    metadata: &ClusterMetadata,
    backend: &QuorumBackend,
    entries: &[Entry],
    now_ms: i64,
) -> Result<(), MetadataError> {
    let Some(end) = entries.last().map(Entry::next_offset) else {
        return Ok(());
    };
    let mut delta = runnel_metadata::MetadataDelta::new(metadata.image());
    let mut replayed = 0usize;
    for entry in entries {
        let Payload::Data(bytes) = &entry.payload else {
            continue;
        };
        let offset = entry.offset as i64;
        let batch = log_batch::decode_batch(bytes)
            .map_err(|source| MetadataError::Decode { offset, source })?;
        if batch.is_control {
            continue;
        }
        for (i, (_, record)) in batch.records.iter().enumerate() {
            let offset = offset + i as i64;
            delta
                .replay(offset, kafka_epoch(entry.epoch), record)
                .map_err(|source| MetadataError::Replay { offset, source })?;
            replayed += 1;
        }
    }
    if replayed > 0 {
        let applied = Applied {
            local: delta.local_changes(metadata.node_id()),
            image: Arc::new(delta.apply()),
        };
        metadata.publish(&applied, now_ms);
    }
    backend.mark_applied(end);
    Ok(())
}

/// The current runtime, when it can lend a worker to a blocking wait.
fn multi_thread_runtime() -> Result<tokio::runtime::Handle, MetadataError> {
    tokio::runtime::Handle::try_current()
        .ok()
        .filter(|r| r.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread)
        .ok_or(MetadataError::NeedsMultiThreadRuntime)
}

/// A quorum epoch as Kafka's int32 partition leader epoch.
fn kafka_epoch(epoch: Epoch) -> i32 {
    i32::try_from(epoch).unwrap_or(i32::MAX)
}
