//! [`ControllerClient`]: the broker's client to the active controller (the
//! quorum's leader), for BrokerRegistration, BrokerHeartbeat and admin
//! requests forwarded to it, as Kafka's `NodeToControllerChannelManager`.
//!
//! - The leader is read off a [`QuorumStatus`] watch (a voter's own
//!   driver); its address off the voters' controller listeners.
//! - One connection, to the leader last sent to, is kept and reused; a
//!   request whose leader is another node drops it and connects anew.
//!   Requests go one at a time: the connection is locked (a tokio mutex)
//!   for the length of one request's send and answer, so concurrent
//!   callers queue, in turn, and answers never cross.
//! - A request is sent again on a connection failure (after a backoff, or
//!   at once when the leader changes) and when the leader changes while
//!   its answer is awaited, until the caller's timeout. So a request may
//!   reach two controllers; the old one answers NOT_CONTROLLER or the
//!   new one sees the repeat, as with Kafka's own channel.
//! - The connection is taken out of its slot during an exchange and put
//!   back only after a whole answer was read: a cancelled or failed
//!   exchange drops it, so no later request reads a stale answer.
//! - Errors in the response body (NOT_CONTROLLER...) are the caller's to
//!   read; bad bytes are a [`ControllerClientError::Decode`], never a
//!   panic.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::ApiKey;
use kafka_protocol::protocol::Request;
use runnel_raft::NodeId;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio::sync::{Mutex, watch};
use tokio::time::Instant;

use crate::driver::QuorumStatus;
use crate::driver::frames::{
    FrameError, decode_response_as, decode_response_header, encode_body, read_frame, request_frame,
};

/// The first wait before sending again to a leader that failed; it
/// doubles per failure.
const RETRY_BACKOFF_MIN: Duration = Duration::from_millis(50);
const RETRY_BACKOFF_MAX: Duration = Duration::from_secs(1);

#[derive(Debug, thiserror::Error)]
pub enum ControllerClientError {
    #[error("API key {api_key} is not one kafka-protocol names")]
    UnknownApi { api_key: i16 },
    #[error("encoding the request")]
    Encode(#[source] FrameError),
    #[error("no active controller known after {waited_ms} ms")]
    NoLeader { waited_ms: u64 },
    #[error("the active controller {node} is not among the voters' addresses")]
    NoAddress { node: NodeId },
    #[error("connecting to controller {node} at {addr}")]
    Connect {
        node: NodeId,
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("the exchange with controller {node} at {addr} failed")]
    Io {
        node: NodeId,
        addr: SocketAddr,
        #[source]
        source: FrameError,
    },
    #[error("decoding controller {node}'s answer")]
    Decode {
        node: NodeId,
        #[source]
        source: FrameError,
    },
    #[error("controller {node} did not answer within {waited_ms} ms")]
    TimedOut { node: NodeId, waited_ms: u64 },
}

impl ControllerClientError {
    /// Whether sending again (to the same or a new leader) may succeed.
    fn is_connection_failure(&self) -> bool {
        matches!(
            self,
            ControllerClientError::Connect { .. } | ControllerClientError::Io { .. }
        )
    }
}

/// A connection to one controller.
#[derive(Debug)]
struct Connection {
    node: NodeId,
    addr: SocketAddr,
    stream: TcpStream,
    next_correlation_id: i32,
}

/// See the module doc.
#[derive(Debug)]
pub struct ControllerClient {
    client_id: String,
    voters: BTreeMap<NodeId, SocketAddr>,
    status: watch::Receiver<QuorumStatus>,
    /// The connection to the leader last sent to, if it is open and idle.
    connection: Mutex<Option<Connection>>,
}

/// One request, encoded once.
struct Outgoing {
    api_key: ApiKey,
    version: i16,
    body: Bytes,
}

impl ControllerClient {
    /// A client sending as `client_id` to whichever of `voters` (their
    /// controller listeners) `status` names the leader.
    pub fn new(
        client_id: String,
        voters: BTreeMap<NodeId, SocketAddr>,
        status: watch::Receiver<QuorumStatus>,
    ) -> Self {
        ControllerClient {
            client_id,
            voters,
            status,
            connection: Mutex::new(None),
        }
    }

    /// Sends `request` at `version` to the active controller and returns
    /// its response. Waits (up to `timeout`) until a leader is known; on a
    /// connection failure, or when the leader changes while waiting, sends
    /// again to the new leader (see the module doc). Errors in the
    /// response body (NOT_CONTROLLER...) are the caller's to read. At the
    /// timeout the last connection failure is returned, if there was one.
    pub async fn send<R: Request>(
        &self,
        request: R,
        version: i16,
        timeout: Duration,
    ) -> Result<R::Response, ControllerClientError> {
        let api_key = ApiKey::try_from(R::KEY)
            .map_err(|()| ControllerClientError::UnknownApi { api_key: R::KEY })?;
        let mut body = BytesMut::new();
        encode_body(&request, api_key, version, &mut body)
            .map_err(ControllerClientError::Encode)?;
        let (leader, frame) = self
            .exchange_with_leader(api_key, version, body.freeze(), timeout)
            .await?;
        decode_response_as(frame.bytes, frame.correlation_id, api_key, version).map_err(|source| {
            ControllerClientError::Decode {
                node: leader,
                source,
            }
        })
    }

    /// As [`ControllerClient::send`] for a request body already encoded
    /// (a broker forwarding a client's request as it came): the response
    /// body, its header taken off.
    pub async fn send_encoded(
        &self,
        api_key: ApiKey,
        version: i16,
        body: Bytes,
        timeout: Duration,
    ) -> Result<Bytes, ControllerClientError> {
        let (leader, frame) = self
            .exchange_with_leader(api_key, version, body, timeout)
            .await?;
        let mut bytes = frame.bytes;
        let found = decode_response_header(&mut bytes, api_key, version).map_err(|source| {
            ControllerClientError::Decode {
                node: leader,
                source,
            }
        })?;
        if found != frame.correlation_id {
            return Err(ControllerClientError::Decode {
                node: leader,
                source: FrameError::CorrelationMismatch {
                    expected: frame.correlation_id,
                    found,
                },
            });
        }
        Ok(bytes)
    }

    /// Sends one request to the leader, again on failures and leader
    /// changes (see [`ControllerClient::send`]); the leader that answered
    /// and its answer frame.
    async fn exchange_with_leader(
        &self,
        api_key: ApiKey,
        version: i16,
        body: Bytes,
        timeout: Duration,
    ) -> Result<(NodeId, AnswerFrame), ControllerClientError> {
        let started = Instant::now();
        let deadline = started + timeout;
        let waited_ms = || u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
        let outgoing = Outgoing {
            api_key,
            version,
            body,
        };
        let mut status = self.status.clone();
        let mut backoff = RETRY_BACKOFF_MIN;
        let mut last_failure = None;
        loop {
            let Some(leader) = wait_for_leader(&mut status, deadline).await else {
                return Err(last_failure.unwrap_or(ControllerClientError::NoLeader {
                    waited_ms: waited_ms(),
                }));
            };
            let answer = tokio::select! {
                answer = self.attempt(leader, &outgoing) => answer,
                () = leader_moved(&mut status, leader) => {
                    tracing::debug!(leader, "the active controller changed; sending again");
                    continue;
                }
                () = tokio::time::sleep_until(deadline) => {
                    return Err(ControllerClientError::TimedOut { node: leader, waited_ms: waited_ms() });
                }
            };
            let failure = match answer {
                Ok(frame) => return Ok((leader, frame)),
                Err(failure) if failure.is_connection_failure() => failure,
                Err(other) => return Err(other),
            };
            tracing::debug!(leader, error = %failure, "controller request failed; sending again");
            last_failure = Some(failure);
            tokio::select! {
                () = leader_moved(&mut status, leader) => {}
                () = tokio::time::sleep(backoff) => {}
                () = tokio::time::sleep_until(deadline) => {
                    return Err(last_failure.unwrap_or(ControllerClientError::TimedOut {
                        node: leader,
                        waited_ms: waited_ms(),
                    }));
                }
            }
            backoff = (backoff * 2).min(RETRY_BACKOFF_MAX);
        }
    }

    /// Sends `outgoing` to `leader` once, on the kept connection if it is
    /// to `leader`, and reads the answer frame.
    async fn attempt(
        &self,
        leader: NodeId,
        outgoing: &Outgoing,
    ) -> Result<AnswerFrame, ControllerClientError> {
        let mut slot = self.connection.lock().await;
        // Taken out: a failed or cancelled exchange drops it.
        let mut connection = match slot.take() {
            Some(connection) if connection.node == leader => connection,
            _ => self.connect(leader).await?,
        };
        let answer = connection.exchange(&self.client_id, outgoing).await?;
        *slot = Some(connection);
        Ok(answer)
    }

    async fn connect(&self, node: NodeId) -> Result<Connection, ControllerClientError> {
        let addr = *self
            .voters
            .get(&node)
            .ok_or(ControllerClientError::NoAddress { node })?;
        let stream = TcpStream::connect(addr)
            .await
            .map_err(|source| ControllerClientError::Connect { node, addr, source })?;
        let _ = stream.set_nodelay(true);
        Ok(Connection {
            node,
            addr,
            stream,
            next_correlation_id: 0,
        })
    }
}

/// An answer frame (without its size prefix) and the request it answers.
struct AnswerFrame {
    correlation_id: i32,
    bytes: Bytes,
}

impl Connection {
    async fn exchange(
        &mut self,
        client_id: &str,
        outgoing: &Outgoing,
    ) -> Result<AnswerFrame, ControllerClientError> {
        let correlation_id = self.next_correlation_id;
        self.next_correlation_id = correlation_id.checked_add(1).unwrap_or(0);
        let frame = request_frame(
            correlation_id,
            client_id,
            outgoing.api_key,
            outgoing.version,
            |buf| {
                buf.extend_from_slice(&outgoing.body);
                Ok(())
            },
        )
        .map_err(ControllerClientError::Encode)?;
        let (node, addr) = (self.node, self.addr);
        let failed = |source| ControllerClientError::Io { node, addr, source };
        self.stream
            .write_all(&frame)
            .await
            .map_err(|e| failed(FrameError::Write(e)))?;
        let closed = || {
            let eof = std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "the controller closed the connection",
            );
            failed(FrameError::Read(eof))
        };
        let bytes = read_frame(&mut self.stream)
            .await
            .map_err(failed)?
            .ok_or_else(closed)?;
        Ok(AnswerFrame {
            correlation_id,
            bytes,
        })
    }
}

/// The leader `status` names, once it names one; `None` at `deadline` or
/// if the status will never change again.
/// The active controller `status` names: none while this node is
/// resigned (a former leader back from a restart names itself in its old
/// epoch until it learns the new leader).
fn active_leader(status: &QuorumStatus) -> Option<NodeId> {
    if status.role == runnel_raft::Role::Resigned {
        return None;
    }
    status.leader_id
}

async fn wait_for_leader(
    status: &mut watch::Receiver<QuorumStatus>,
    deadline: Instant,
) -> Option<NodeId> {
    loop {
        if let Some(leader) = active_leader(&status.borrow_and_update()) {
            return Some(leader);
        }
        match tokio::time::timeout_at(deadline, status.changed()).await {
            Ok(Ok(())) => {}
            Ok(Err(_)) | Err(_) => return None,
        }
    }
}

/// Resolves when `status` names a leader other than `leader`; never if it
/// will not change again.
async fn leader_moved(status: &mut watch::Receiver<QuorumStatus>, leader: NodeId) {
    loop {
        if active_leader(&status.borrow_and_update()) != Some(leader) {
            return;
        }
        if status.changed().await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}

#[cfg(test)]
mod tests {
    use kafka_protocol::messages::{ApiVersionsRequest, BrokerHeartbeatRequest};
    use runnel_raft::Role;
    use tokio::io::AsyncReadExt;
    use tokio::net::TcpListener;

    use super::*;

    type TestResult = Result<(), Box<dyn std::error::Error>>;

    fn status(leader_id: Option<NodeId>) -> QuorumStatus {
        QuorumStatus {
            role: Role::Follower,
            epoch: 1,
            leader_id,
            high_watermark: 0,
            log_end_offset: 0,
        }
    }

    fn client_of(
        leader_id: Option<NodeId>,
        voters: BTreeMap<NodeId, SocketAddr>,
    ) -> (ControllerClient, watch::Sender<QuorumStatus>) {
        let (sender, receiver) = watch::channel(status(leader_id));
        let client = ControllerClient::new("test".to_owned(), voters, receiver);
        (client, sender)
    }

    /// A controller that answers each request frame with `answer`.
    async fn answering(answer: &'static [u8]) -> Result<SocketAddr, std::io::Error> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        tokio::spawn(async move {
            let Ok((mut stream, _)) = listener.accept().await else {
                return;
            };
            while let Ok(Some(_)) = read_frame(&mut stream).await {
                if stream.write_all(answer).await.is_err() {
                    return;
                }
            }
            let _ = stream.read_u8().await;
        });
        Ok(addr)
    }

    #[tokio::test]
    async fn without_a_leader_the_send_gives_up_at_its_timeout() {
        let (client, _status) = client_of(None, BTreeMap::new());
        let sent = client
            .send(ApiVersionsRequest::default(), 3, Duration::from_millis(50))
            .await;
        assert!(
            matches!(sent, Err(ControllerClientError::NoLeader { waited_ms }) if waited_ms >= 50),
            "{sent:?}"
        );
    }

    #[tokio::test]
    async fn a_leader_without_an_address_is_an_error() {
        let (client, _status) = client_of(Some(4), BTreeMap::new());
        let sent = client
            .send(ApiVersionsRequest::default(), 3, Duration::from_secs(5))
            .await;
        assert!(
            matches!(sent, Err(ControllerClientError::NoAddress { node: 4 })),
            "{sent:?}"
        );
    }

    #[tokio::test]
    async fn bad_answers_are_decode_errors() -> TestResult {
        // Correlation id 0, then a body too short for the response.
        let addr = answering(&[0, 0, 0, 6, 0, 0, 0, 0, 0, 1]).await?;
        let (client, _status) = client_of(Some(1), BTreeMap::from([(1, addr)]));
        let sent = client
            .send(ApiVersionsRequest::default(), 3, Duration::from_secs(5))
            .await;
        assert!(
            matches!(sent, Err(ControllerClientError::Decode { node: 1, .. })),
            "{sent:?}"
        );
        // Another request's correlation id (header v1: no tagged fields).
        let addr = answering(&[0, 0, 0, 5, 0, 0, 0, 9, 0]).await?;
        let (client, _status) = client_of(Some(1), BTreeMap::from([(1, addr)]));
        let sent = client
            .send(BrokerHeartbeatRequest::default(), 1, Duration::from_secs(5))
            .await;
        assert!(
            matches!(
                sent,
                Err(ControllerClientError::Decode {
                    source: FrameError::CorrelationMismatch {
                        expected: 0,
                        found: 9
                    },
                    ..
                })
            ),
            "{sent:?}"
        );
        Ok(())
    }

    #[tokio::test]
    async fn a_leader_that_refuses_connections_fails_at_the_timeout_with_the_cause() -> TestResult {
        // A port nothing listens on any more.
        let addr = TcpListener::bind("127.0.0.1:0").await?.local_addr()?;
        let (client, _status) = client_of(Some(1), BTreeMap::from([(1, addr)]));
        let sent = client
            .send(ApiVersionsRequest::default(), 3, Duration::from_millis(200))
            .await;
        assert!(
            matches!(sent, Err(ControllerClientError::Connect { node: 1, .. })),
            "{sent:?}"
        );
        Ok(())
    }
}
