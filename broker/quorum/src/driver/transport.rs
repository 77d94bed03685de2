//! The quorum's transport over TCP with Kafka framing.
//!
//! - Outbound ([`run_peer`]): one connection per peer, on which our
//!   requests go out pipelined, each with a fresh correlation id, and their
//!   responses come back matched by it ([`InFlight`]). A connection that
//!   fails is dropped with every request waiting on it; the task reconnects
//!   with a doubling backoff. Requests for a peer that is down (queued
//!   while a connect fails, or past [`super::in_flight::MAX_IN_FLIGHT`])
//!   are dropped: the core resends on its own timers.
//! - Inbound ([`Listener::serve_connection`]): a peer's connection to our listener.
//!   Requests are read one at a time, handed to the driver with a reply
//!   slot, and the core's answer is written back on the same connection
//!   with the request's correlation id and version. One at a time keeps
//!   answers in request order, as Kafka's clients expect. A request the
//!   wire layer refuses (another cluster, another recipient) is answered
//!   with its top-level error without reaching the core.
//! - Other APIs on the listener: Kafka's
//!   controller listener also serves brokers and admin clients. With the
//!   broker's hook set, such a request goes to it as a
//!   [`ControllerRequest`] and its answer is framed with the response
//!   header version of its API and version, in order with the rest. Without
//!   the hook, ApiVersions is answered here with the quorum's APIs
//!   ([`crate::wire::api_versions_response`]) and anything else closes the
//!   connection, as does a frame whose header can't be read (an unknown
//!   API key) or whose hook answer never comes.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use kafka_protocol::messages::ApiKey;
use runnel_protocol::request::Request;
use runnel_raft::{Message, NodeId};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio::net::tcp::OwnedReadHalf;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinSet;

use super::frames::{
    FrameError, decode_response, encode_body, encode_request, encode_response, read_frame,
    response_correlation_id, response_frame,
};
use super::hooks::ControllerRequest;
use super::in_flight::{InFlight, Sent};
use crate::wire::{
    KafkaRequest, KafkaResponse, WireContext, WireError, api_versions_response, request_from_kafka,
    request_to_kafka, response_to_kafka, version_of,
};

/// The first wait before reconnecting to a peer; it doubles per failure.
const RECONNECT_BACKOFF_MIN: Duration = Duration::from_millis(50);
const RECONNECT_BACKOFF_MAX: Duration = Duration::from_secs(1);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);

/// What the transport hands the driver.
#[derive(Debug)]
pub enum Inbound {
    /// A peer's request; the core's answer goes into `reply`.
    Request {
        from: NodeId,
        message: Message,
        reply: oneshot::Sender<Message>,
    },
    /// A peer's answer to one of our requests.
    Response { from: NodeId, message: Message },
    /// Our connection to `peer` was lost or refused: its process is
    /// likely gone (see `RaftNode::peer_unreachable`).
    Unreachable { peer: NodeId },
}

/// Whether a peer task should go on.
enum Next {
    Reconnect,
    Stop,
}

/// Keeps one outbound connection to `peer` at `addr` and sends it the
/// requests from `requests` (see the module doc). Ends when the driver
/// drops `requests` or `inbound`.
pub async fn run_peer(
    peer: NodeId,
    addr: SocketAddr,
    ctx: Arc<WireContext>,
    mut requests: mpsc::Receiver<Message>,
    inbound: mpsc::Sender<Inbound>,
) {
    let client_id = format!("raft-client-{}", ctx.local_id);
    let mut backoff = RECONNECT_BACKOFF_MIN;
    loop {
        match tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(addr)).await {
            Ok(Ok(stream)) => {
                backoff = RECONNECT_BACKOFF_MIN;
                let _ = stream.set_nodelay(true);
                let connection = PeerConnection {
                    peer,
                    ctx: &ctx,
                    client_id: &client_id,
                    in_flight: InFlight::default(),
                };
                match connection.serve(stream, &mut requests, &inbound).await {
                    Next::Stop => return,
                    Next::Reconnect => {
                        tracing::debug!(peer, %addr, "quorum connection lost");
                        let _ = inbound.send(Inbound::Unreachable { peer }).await;
                    }
                }
            }
            Ok(Err(error)) => {
                tracing::debug!(peer, %addr, %error, "quorum connect failed");
                // Refused: nothing listens there. A timeout says less (a
                // slow network), and is left to the core's timers.
                if error.kind() == std::io::ErrorKind::ConnectionRefused {
                    let _ = inbound.send(Inbound::Unreachable { peer }).await;
                }
            }
            Err(_) => tracing::debug!(peer, %addr, "quorum connect timed out"),
        }
        // The peer is down: what waits for it is dropped.
        while requests.try_recv().is_ok() {}
        if requests.is_closed() || inbound.is_closed() {
            return;
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(RECONNECT_BACKOFF_MAX);
    }
}

/// One live outbound connection.
struct PeerConnection<'a> {
    peer: NodeId,
    ctx: &'a WireContext,
    client_id: &'a str,
    in_flight: InFlight,
}

impl PeerConnection<'_> {
    async fn serve(
        mut self,
        stream: TcpStream,
        requests: &mut mpsc::Receiver<Message>,
        inbound: &mpsc::Sender<Inbound>,
    ) -> Next {
        let (reader, mut writer) = stream.into_split();
        // Reading a frame is not cancel-safe, so a task of its own reads
        // them whole and this loop selects on the channel.
        let mut reader_task = JoinSet::new();
        let (frames_tx, mut frames) = mpsc::channel(16);
        reader_task.spawn(read_frames(reader, frames_tx));
        loop {
            tokio::select! {
                request = requests.recv() => {
                    let Some(request) = request else { return Next::Stop };
                    let Some(frame) = self.encode(request) else { continue };
                    if let Err(error) = writer.write_all(&frame).await {
                        tracing::debug!(peer = self.peer, %error, "quorum request not sent");
                        return Next::Reconnect;
                    }
                }
                frame = frames.recv() => {
                    let Some(frame) = frame else { return Next::Reconnect };
                    match self.decode(frame) {
                        Ok(message) => {
                            let response = Inbound::Response { from: self.peer, message };
                            if inbound.send(response).await.is_err() {
                                return Next::Stop;
                            }
                        }
                        Err(error) => {
                            tracing::warn!(peer = self.peer, %error, "bad quorum response");
                            return Next::Reconnect;
                        }
                    }
                }
            }
        }
    }

    /// The frame for `request`, registered as in flight; `None` (the
    /// request dropped) if it can't be encoded or too many wait.
    fn encode(&mut self, request: Message) -> Option<Bytes> {
        let kafka = match request_to_kafka(self.ctx, self.peer, &request) {
            Ok(kafka) => kafka,
            Err(error) => {
                tracing::warn!(peer = self.peer, %error, "quorum request not encodable");
                return None;
            }
        };
        let api_key = kafka.api_key();
        let version = version_of(api_key)?;
        let sent = Sent {
            api_key,
            version,
            request,
        };
        let Some(correlation_id) = self.in_flight.register(sent) else {
            tracing::debug!(
                peer = self.peer,
                "too many quorum requests waiting; dropped"
            );
            return None;
        };
        match encode_request(correlation_id, self.client_id, &kafka, version) {
            Ok(frame) => Some(frame),
            Err(error) => {
                self.in_flight.take(correlation_id);
                tracing::warn!(peer = self.peer, %error, "quorum request not encodable");
                None
            }
        }
    }

    fn decode(&mut self, frame: Bytes) -> Result<Message, FrameError> {
        let correlation_id = response_correlation_id(&frame)?;
        let sent = self
            .in_flight
            .take(correlation_id)
            .ok_or(FrameError::UnknownCorrelationId { correlation_id })?;
        decode_response(frame, &sent)
    }
}

async fn read_frames(mut reader: OwnedReadHalf, frames: mpsc::Sender<Bytes>) {
    loop {
        match read_frame(&mut reader).await {
            Ok(Some(frame)) => {
                if frames.send(frame).await.is_err() {
                    return;
                }
            }
            Ok(None) => return,
            Err(error) => {
                tracing::debug!(%error, "quorum connection read failed");
                return;
            }
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConnectionError {
    #[error("the quorum frame")]
    Frame(#[from] FrameError),
    #[error("the request header")]
    Header(#[from] runnel_protocol::RequestError),
    #[error("writing the answer")]
    Write(#[source] std::io::Error),
    #[error("the driver stopped")]
    DriverStopped,
    #[error("the quorum core gave no answer to a {api} request")]
    NoAnswer { api: &'static str },
    #[error("{api_key:?} is not served here without the broker")]
    NotServed { api_key: ApiKey },
    #[error("the broker no longer takes controller requests ({api_key:?})")]
    BrokerGone { api_key: ApiKey },
    #[error("the broker gave no answer to a {api_key:?} request")]
    NoBrokerAnswer { api_key: ApiKey },
}

/// What the listener's connections are served with.
#[derive(Debug, Clone)]
pub struct Listener {
    pub ctx: Arc<WireContext>,
    /// The driver's inputs.
    pub inbound: mpsc::Sender<Inbound>,
    /// The broker's hook for other APIs.
    pub controller_requests: Option<mpsc::Sender<ControllerRequest>>,
}

impl Listener {
    /// Serves one inbound connection (see the module doc) until the peer
    /// closes it or it fails.
    pub async fn serve_connection(&self, stream: TcpStream) -> Result<(), ConnectionError> {
        let _ = stream.set_nodelay(true);
        let (mut reader, mut writer) = stream.into_split();
        while let Some(frame) = read_frame(&mut reader).await? {
            let request = runnel_protocol::request::parse(frame)?;
            let frame = if version_of(request.api_key).is_some() {
                self.answer_quorum(request).await?
            } else if let Some(hook) = &self.controller_requests {
                hand_over(hook, request).await?
            } else if request.api_key == ApiKey::ApiVersions {
                own_api_versions(&request)?
            } else {
                return Err(ConnectionError::NotServed {
                    api_key: request.api_key,
                });
            };
            writer
                .write_all(&frame)
                .await
                .map_err(ConnectionError::Write)?;
        }
        Ok(())
    }

    /// The answer frame to a quorum request: the core's, or a refusal.
    async fn answer_quorum(&self, request: Request) -> Result<Bytes, ConnectionError> {
        let correlation_id = request.correlation_id();
        let version = request.api_version;
        let mut body = request.body.clone();
        let kafka = KafkaRequest::decode(request.api_key as i16, version, &mut body)
            .map_err(FrameError::Wire)?;
        let response = match request_from_kafka(&self.ctx, &kafka) {
            Ok((from, message)) => {
                let api = message.api_name();
                let (reply, answer) = oneshot::channel();
                let request = Inbound::Request {
                    from,
                    message,
                    reply,
                };
                self.inbound
                    .send(request)
                    .await
                    .map_err(|_| ConnectionError::DriverStopped)?;
                let answer = answer
                    .await
                    .map_err(|_| ConnectionError::NoAnswer { api })?;
                response_to_kafka(&self.ctx, &answer).map_err(FrameError::Wire)?
            }
            Err(refused) => refusal(&kafka, &refused)?,
        };
        Ok(encode_response(correlation_id, &response, version)?)
    }
}

/// Hands a request of another API to the broker and frames its answer.
async fn hand_over(
    hook: &mpsc::Sender<ControllerRequest>,
    request: Request,
) -> Result<Bytes, ConnectionError> {
    let (api_key, version) = (request.api_key, request.api_version);
    let correlation_id = request.correlation_id();
    let (reply, answer) = oneshot::channel();
    let handed = ControllerRequest {
        header: request.header,
        body: request.body,
        reply,
    };
    hook.send(handed)
        .await
        .map_err(|_| ConnectionError::BrokerGone { api_key })?;
    let body = answer
        .await
        .map_err(|_| ConnectionError::NoBrokerAnswer { api_key })?;
    let header_version = api_key.response_header_version(version);
    Ok(response_frame(correlation_id, header_version, |buf| {
        buf.extend_from_slice(&body);
        Ok(())
    })?)
}

/// The answer to ApiVersions when no broker is hooked in: the quorum's
/// APIs.
fn own_api_versions(request: &Request) -> Result<Bytes, ConnectionError> {
    let (version, response) = api_versions_response(request.api_version);
    let header_version = ApiKey::ApiVersions.response_header_version(version);
    Ok(response_frame(
        request.correlation_id(),
        header_version,
        |buf| encode_body(&response, ApiKey::ApiVersions, version, buf),
    )?)
}

/// The answer to a request the wire layer refused.
fn refusal(request: &KafkaRequest, refused: &WireError) -> Result<KafkaResponse, FrameError> {
    tracing::debug!(error = %refused, "quorum request refused");
    let code = refused.error_code();
    KafkaResponse::error(request.api_key(), code).ok_or_else(|| {
        FrameError::Wire(WireError::NotAQuorumApi {
            api_key: request.api_key() as i16,
        })
    })
}

#[cfg(test)]
mod tests {
    use kafka_protocol::messages::{
        ApiKey, ApiVersionsRequest, ApiVersionsResponse, BrokerHeartbeatRequest,
        BrokerHeartbeatResponse, BrokerId, ResponseHeader,
    };
    use kafka_protocol::protocol::{Decodable, Encodable};
    use runnel_raft::message::{BeginQuorumEpochRequest, BeginQuorumEpochResponse};
    use runnel_raft::{LeaderAndEpoch, Message};
    use tokio::net::TcpListener;

    use super::*;
    use crate::driver::frames::{decode_response_as, request_frame};
    use crate::wire::BEGIN_QUORUM_EPOCH_VERSION;

    type TestResult = Result<(), Box<dyn std::error::Error>>;

    fn ctx(local_id: i32, cluster_id: &str) -> WireContext {
        WireContext {
            cluster_id: cluster_id.to_owned(),
            local_id,
            voters: vec![1, 2],
            endpoints: Vec::new(),
        }
    }

    /// Node 2's listener, serving one connection into the returned channel.
    async fn node_2() -> Result<(SocketAddr, mpsc::Receiver<Inbound>), std::io::Error> {
        node_2_with(None).await
    }

    /// Node 2's listener, with the broker's hook if given.
    async fn node_2_with(
        controller_requests: Option<mpsc::Sender<ControllerRequest>>,
    ) -> Result<(SocketAddr, mpsc::Receiver<Inbound>), std::io::Error> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let (inbound_tx, inbound) = mpsc::channel(4);
        tokio::spawn(async move {
            if let Ok((stream, _)) = listener.accept().await {
                let listener = Listener {
                    ctx: Arc::new(ctx(2, "ours")),
                    inbound: inbound_tx,
                    controller_requests,
                };
                let _ = listener.serve_connection(stream).await;
            }
        });
        Ok((addr, inbound))
    }

    fn frame_of(
        correlation_id: i32,
        api_key: ApiKey,
        version: i16,
        body: &impl kafka_protocol::protocol::Encodable,
    ) -> Result<Bytes, FrameError> {
        request_frame(correlation_id, "test", api_key, version, |buf| {
            encode_body(body, api_key, version, buf)
        })
    }

    fn heartbeat(broker_id: i32) -> BrokerHeartbeatRequest {
        BrokerHeartbeatRequest::default()
            .with_broker_id(BrokerId(broker_id))
            .with_broker_epoch(5)
    }

    fn begin_epoch(from: &WireContext, correlation_id: i32) -> Result<Bytes, FrameError> {
        let message = Message::BeginQuorumEpochRequest(BeginQuorumEpochRequest { leader_epoch: 3 });
        let kafka = request_to_kafka(from, 2, &message)?;
        encode_request(correlation_id, "test", &kafka, BEGIN_QUORUM_EPOCH_VERSION)
    }

    async fn answer(
        stream: &mut TcpStream,
    ) -> Result<(i32, KafkaResponse), Box<dyn std::error::Error>> {
        let mut frame = read_frame(stream).await?.ok_or("closed")?;
        let header_version =
            ApiKey::BeginQuorumEpoch.response_header_version(BEGIN_QUORUM_EPOCH_VERSION);
        let header = ResponseHeader::decode(&mut frame, header_version)?;
        let response = KafkaResponse::decode(
            ApiKey::BeginQuorumEpoch as i16,
            BEGIN_QUORUM_EPOCH_VERSION,
            &mut frame,
        )?;
        Ok((header.correlation_id, response))
    }

    #[tokio::test]
    async fn a_request_reaches_the_core_and_its_answer_returns_on_the_connection() -> TestResult {
        let (addr, mut inbound) = node_2().await?;
        let mut stream = TcpStream::connect(addr).await?;
        stream.write_all(&begin_epoch(&ctx(1, "ours"), 77)?).await?;
        let Some(Inbound::Request {
            from,
            message,
            reply,
        }) = inbound.recv().await
        else {
            return Err("no request reached the driver".into());
        };
        assert_eq!(from, 1);
        assert_eq!(message.api_name(), "BeginQuorumEpoch");
        let core_answer = Message::BeginQuorumEpochResponse(BeginQuorumEpochResponse {
            error: None,
            current_leader: LeaderAndEpoch {
                leader_id: Some(1),
                epoch: 3,
            },
        });
        reply.send(core_answer).map_err(|_| "connection gone")?;
        let (correlation_id, response) = answer(&mut stream).await?;
        assert_eq!(correlation_id, 77);
        let KafkaResponse::BeginQuorumEpoch(response) = response else {
            return Err("not a BeginQuorumEpoch answer".into());
        };
        assert_eq!(response.error_code, 0);
        Ok(())
    }

    #[tokio::test]
    async fn a_request_from_another_cluster_is_refused_without_the_core() -> TestResult {
        let (addr, mut inbound) = node_2().await?;
        let mut stream = TcpStream::connect(addr).await?;
        stream
            .write_all(&begin_epoch(&ctx(1, "theirs"), 5)?)
            .await?;
        let (correlation_id, response) = answer(&mut stream).await?;
        assert_eq!(correlation_id, 5);
        let KafkaResponse::BeginQuorumEpoch(response) = response else {
            return Err("not a BeginQuorumEpoch answer".into());
        };
        assert_eq!(response.error_code, 104, "INCONSISTENT_CLUSTER_ID");
        assert!(inbound.try_recv().is_err());
        Ok(())
    }

    #[tokio::test]
    async fn without_the_broker_api_versions_lists_the_quorum_apis() -> TestResult {
        let (addr, _inbound) = node_2().await?;
        let mut stream = TcpStream::connect(addr).await?;
        let request = ApiVersionsRequest::default();
        stream
            .write_all(&frame_of(3, ApiKey::ApiVersions, 3, &request)?)
            .await?;
        let frame = read_frame(&mut stream).await?.ok_or("closed")?;
        let response: ApiVersionsResponse = decode_response_as(frame, 3, ApiKey::ApiVersions, 3)?;
        assert_eq!(response.error_code, 0);
        let listed: Vec<(i16, i16, i16)> = response
            .api_keys
            .iter()
            .map(|v| (v.api_key, v.min_version, v.max_version))
            .collect();
        assert!(listed.contains(&(ApiKey::Vote as i16, 0, 2)), "{listed:?}");
        assert!(
            listed.contains(&(ApiKey::Fetch as i16, 4, 18)),
            "{listed:?}"
        );
        assert!(listed.contains(&(ApiKey::ApiVersions as i16, 0, 3)));
        assert_eq!(listed.len(), 6);

        // Too new a version: UNSUPPORTED_VERSION, as v0, on the same
        // connection.
        stream
            .write_all(&frame_of(4, ApiKey::ApiVersions, 4, &request)?)
            .await?;
        let frame = read_frame(&mut stream).await?.ok_or("closed")?;
        let response: ApiVersionsResponse = decode_response_as(frame, 4, ApiKey::ApiVersions, 0)?;
        assert_eq!(response.error_code, 35, "UNSUPPORTED_VERSION");
        assert_eq!(response.api_keys.len(), 6);
        Ok(())
    }

    #[tokio::test]
    async fn without_the_broker_another_api_closes_the_connection() -> TestResult {
        let (addr, _inbound) = node_2().await?;
        let mut stream = TcpStream::connect(addr).await?;
        stream
            .write_all(&frame_of(1, ApiKey::BrokerHeartbeat, 1, &heartbeat(7))?)
            .await?;
        assert!(matches!(read_frame(&mut stream).await, Ok(None) | Err(_)));
        Ok(())
    }

    #[tokio::test]
    async fn other_apis_go_to_the_broker_in_order_and_its_answers_return() -> TestResult {
        let (hook, mut requests) = mpsc::channel(4);
        let (addr, _inbound) = node_2_with(Some(hook)).await?;
        let mut stream = TcpStream::connect(addr).await?;
        // Two pipelined requests: the second is handed over once the first
        // is answered.
        let mut both = frame_of(10, ApiKey::BrokerHeartbeat, 1, &heartbeat(7))?.to_vec();
        both.extend_from_slice(&frame_of(11, ApiKey::BrokerHeartbeat, 1, &heartbeat(8))?);
        stream.write_all(&both).await?;
        for (correlation_id, broker_id) in [(10, 7), (11, 8)] {
            let request = requests.recv().await.ok_or("no request reached the hook")?;
            assert_eq!(
                request.header.request_api_key,
                ApiKey::BrokerHeartbeat as i16
            );
            assert_eq!(request.header.request_api_version, 1);
            assert_eq!(request.header.correlation_id, correlation_id);
            let mut body = request.body.clone();
            let decoded = BrokerHeartbeatRequest::decode(&mut body, 1)?;
            assert_eq!(decoded.broker_id, BrokerId(broker_id));
            let mut answer = bytes::BytesMut::new();
            BrokerHeartbeatResponse::default()
                .with_is_fenced(broker_id == 8)
                .encode(&mut answer, 1)?;
            request
                .reply
                .send(answer.freeze())
                .map_err(|_| "connection gone")?;
        }
        for (correlation_id, fenced) in [(10, false), (11, true)] {
            let frame = read_frame(&mut stream).await?.ok_or("closed")?;
            // Flexible v1: response header v1, with its tagged fields.
            let response: BrokerHeartbeatResponse =
                decode_response_as(frame, correlation_id, ApiKey::BrokerHeartbeat, 1)?;
            assert_eq!(response.is_fenced, fenced);
        }

        // A request the broker drops closes the connection.
        stream
            .write_all(&frame_of(12, ApiKey::BrokerHeartbeat, 1, &heartbeat(9))?)
            .await?;
        drop(requests.recv().await.ok_or("no request reached the hook")?);
        assert!(matches!(read_frame(&mut stream).await, Ok(None) | Err(_)));
        Ok(())
    }
}
