//! One connection to a broker: requests pipelined over a single socket,
//! responses matched to them in order (Kafka answers a connection's
//! requests in the order they came).
//!
//! A task owns the socket: callers hand it an encoded frame and a channel
//! for the response body, and await the channel; nothing is locked across
//! an await. A request that expects no response (Produce with acks=0) is
//! written and forgotten.

use std::collections::VecDeque;
use std::net::SocketAddr;

use bytes::{Buf, Bytes, BytesMut};
use kafka_protocol::messages::{ApiKey, RequestHeader, ResponseHeader};
use kafka_protocol::protocol::{Decodable, Encodable, HeaderVersion, Request, StrBytes};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::sync::{mpsc, oneshot};

use crate::error::{ClientError, Result, error_chain};

/// Anything larger is a stream out of step, not a response.
const MAX_RESPONSE_BYTES: usize = 256 << 20;
/// Requests queued for the socket before `send` waits.
const QUEUE: usize = 256;

/// A frame to write and, unless none is expected, where its response goes.
#[derive(Debug)]
struct Outgoing {
    frame: Vec<u8>,
    correlation_id: i32,
    reply: Option<oneshot::Sender<Result<Bytes>>>,
}

/// A handle to one broker connection; cheap to clone.
#[derive(Debug, Clone)]
pub struct Connection {
    peer: SocketAddr,
    client_id: StrBytes,
    queue: mpsc::Sender<Outgoing>,
    next_correlation_id: std::sync::Arc<std::sync::atomic::AtomicI32>,
}

impl Connection {
    /// Connects to `address` (`host:port`).
    pub async fn open(address: &str, client_id: &str) -> Result<Self> {
        let stream = TcpStream::connect(address)
            .await
            .map_err(|source| ClientError::Connect {
                address: address.to_string(),
                source,
            })?;
        let peer = stream.peer_addr().map_err(|source| ClientError::Connect {
            address: address.to_string(),
            source,
        })?;
        let _ = stream.set_nodelay(true);
        let (reader, writer) = stream.into_split();
        let (queue, rx) = mpsc::channel(QUEUE);
        tokio::spawn(run(peer, reader, writer, rx));
        Ok(Self {
            peer,
            client_id: StrBytes::from_string(client_id.to_string()),
            queue,
            next_correlation_id: Default::default(),
        })
    }

    pub fn peer(&self) -> SocketAddr {
        self.peer
    }

    /// Whether the connection's task has stopped (the socket failed).
    pub fn is_closed(&self) -> bool {
        self.queue.is_closed()
    }

    /// Sends `request` at `version` and waits for its response.
    pub async fn call<R: Request>(&self, version: i16, request: &R) -> Result<R::Response> {
        self.send::<R>(version, request).await?.response().await
    }

    /// Queues `request` at `version` for the socket and returns at once;
    /// the response comes by [`Pending::response`]. Requests sent one
    /// after another on a connection are answered in that order.
    pub async fn send<R: Request>(&self, version: i16, request: &R) -> Result<Pending<R>> {
        let reply = self.submit(version, request, true).await?;
        Ok(Pending {
            reply,
            version,
            peer: self.peer,
            request: std::marker::PhantomData,
        })
    }

    /// Sends `request` without waiting for a response (Produce with acks=0).
    pub async fn send_only<R: Request>(&self, version: i16, request: &R) -> Result<()> {
        self.submit(version, request, false).await.map(|_| ())
    }

    /// Encodes and queues a request; the receiver yields the response body
    /// after its header.
    async fn submit<R: Request>(
        &self,
        version: i16,
        request: &R,
        expect_response: bool,
    ) -> Result<Option<oneshot::Receiver<Result<Bytes>>>> {
        let correlation_id = self
            .next_correlation_id
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let frame = encode(&self.client_id, version, correlation_id, request)?;
        let (reply, rx) = if expect_response {
            let (tx, rx) = oneshot::channel();
            (Some(tx), Some(rx))
        } else {
            (None, None)
        };
        let outgoing = Outgoing {
            frame,
            correlation_id: if expect_response { correlation_id } else { -1 },
            reply,
        };
        self.queue
            .send(outgoing)
            .await
            .map_err(|_| ClientError::Closed { peer: self.peer })?;
        Ok(rx)
    }
}

/// A request on its way: [`response`](Self::response) waits for its answer.
#[derive(Debug)]
pub struct Pending<R> {
    reply: Option<oneshot::Receiver<Result<Bytes>>>,
    version: i16,
    peer: SocketAddr,
    request: std::marker::PhantomData<fn() -> R>,
}

impl<R: Request> Pending<R> {
    pub async fn response(self) -> Result<R::Response> {
        let mut body = match self.reply {
            Some(rx) => rx
                .await
                .map_err(|_| ClientError::Closed { peer: self.peer })??,
            None => Bytes::new(),
        };
        let decode_error = || ClientError::Decode {
            api: api_name(R::KEY),
            version: self.version,
            peer: self.peer,
        };
        ResponseHeader::decode(&mut body, R::Response::header_version(self.version))
            .map_err(|_| decode_error())?;
        R::Response::decode(&mut body, self.version).map_err(|_| decode_error())
    }
}

fn encode<R: Request>(
    client_id: &StrBytes,
    version: i16,
    correlation_id: i32,
    request: &R,
) -> Result<Vec<u8>> {
    let error = || ClientError::Encode {
        api: api_name(R::KEY),
        version,
    };
    let header = RequestHeader::default()
        .with_request_api_key(R::KEY)
        .with_request_api_version(version)
        .with_correlation_id(correlation_id)
        .with_client_id(Some(client_id.clone()));
    let mut frame = BytesMut::with_capacity(64);
    frame.extend_from_slice(&[0; 4]);
    header
        .encode(&mut frame, R::header_version(version))
        .map_err(|_| error())?;
    request.encode(&mut frame, version).map_err(|_| error())?;
    let size = i32::try_from(frame.len() - 4).map_err(|_| error())?;
    frame[..4].copy_from_slice(&size.to_be_bytes());
    Ok(frame.to_vec())
}

/// Kafka's name of an API key, for errors.
pub(crate) fn api_name(key: i16) -> &'static str {
    ApiKey::try_from(key).map_or("unknown API", runnel_protocol::versions::name)
}

/// The connection's task: writes queued frames, reads responses in order
/// and hands each to the request it answers. Once every handle is gone it
/// writes what is still queued (acks=0 produce requests among it) and
/// waits for the responses owed, then ends. On a socket error every
/// waiting request gets it, and the task ends.
async fn run(
    peer: SocketAddr,
    mut reader: OwnedReadHalf,
    mut writer: OwnedWriteHalf,
    mut queue: mpsc::Receiver<Outgoing>,
) {
    let mut waiting: VecDeque<(i32, oneshot::Sender<Result<Bytes>>)> = VecDeque::new();
    let mut buf = BytesMut::with_capacity(64 << 10);
    // False once the queue is closed and drained: `recv` then answers
    // `None` at once, so polling it would spin.
    let mut queue_open = true;
    let failure = loop {
        tokio::select! {
            outgoing = queue.recv(), if queue_open => {
                let Some(outgoing) = outgoing else {
                    // Every handle is gone and every queued frame written:
                    // wait for the responses owed, then stop.
                    if waiting.is_empty() { return; }
                    queue_open = false;
                    continue;
                };
                if let Err(source) = writer.write_all(&outgoing.frame).await {
                    break ClientError::Io { peer, source };
                }
                if let Some(reply) = outgoing.reply {
                    waiting.push_back((outgoing.correlation_id, reply));
                }
            }
            read = reader.read_buf(&mut buf) => {
                match read {
                    Ok(0) => break ClientError::Closed { peer },
                    Ok(_) => {}
                    Err(source) => break ClientError::Io { peer, source },
                }
                match answer(peer, &mut buf, &mut waiting) {
                    Ok(()) => {}
                    Err(err) => break err,
                }
                if !queue_open && waiting.is_empty() {
                    return;
                }
            }
        }
    };
    tracing::debug!(%peer, error = %error_chain(&failure), "broker connection failed");
    for (_, reply) in waiting {
        let _ = reply.send(Err(failure_copy(&failure, peer)));
    }
}

/// Answers every whole response frame in `buf`.
fn answer(
    peer: SocketAddr,
    buf: &mut BytesMut,
    waiting: &mut VecDeque<(i32, oneshot::Sender<Result<Bytes>>)>,
) -> Result<()> {
    loop {
        if buf.len() < 4 {
            return Ok(());
        }
        let size = i32::from_be_bytes([buf[0], buf[1], buf[2], buf[3]]);
        let Ok(len) = usize::try_from(size) else {
            return Err(ClientError::FrameSize {
                size: size.into(),
                peer,
            });
        };
        if !(4..=MAX_RESPONSE_BYTES).contains(&len) {
            return Err(ClientError::FrameSize {
                size: size.into(),
                peer,
            });
        }
        if buf.len() < 4 + len {
            buf.reserve(4 + len - buf.len());
            return Ok(());
        }
        let mut frame = buf.split_to(4 + len).freeze();
        frame.advance(4);
        let correlation_id = i32::from_be_bytes([frame[0], frame[1], frame[2], frame[3]]);
        let Some((expected, reply)) = waiting.pop_front() else {
            return Err(ClientError::OutOfStep {
                got: correlation_id,
                expected: -1,
                peer,
            });
        };
        if correlation_id != expected {
            return Err(ClientError::OutOfStep {
                got: correlation_id,
                expected,
                peer,
            });
        }
        let _ = reply.send(Ok(frame));
    }
}

/// The error for each waiting request (errors are not `Clone`: io errors).
fn failure_copy(failure: &ClientError, peer: SocketAddr) -> ClientError {
    match failure {
        ClientError::Io { source, .. } => ClientError::Io {
            peer,
            source: std::io::Error::new(source.kind(), source.to_string()),
        },
        _ => ClientError::Closed { peer },
    }
}

#[cfg(test)]
mod tests {
    use std::io::{Read, Write};
    use std::sync::mpsc as std_mpsc;
    use std::time::Duration;

    use kafka_protocol::messages::ApiVersionsRequest;

    use super::*;

    /// A broker stand-in that answers the first request with a bare
    /// response header (saying so on `answered`) and counts the frames that
    /// come until EOF.
    fn counting_peer() -> (
        std::net::SocketAddr,
        std_mpsc::Receiver<()>,
        std::thread::JoinHandle<usize>,
    ) {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let address = listener.local_addr().expect("address");
        let (answered, answered_rx) = std_mpsc::channel();
        let peer = std::thread::spawn(move || {
            let (mut stream, _) = listener.accept().expect("accept");
            let mut frames = 0;
            let mut size = [0u8; 4];
            while stream.read_exact(&mut size).is_ok() {
                let mut frame = vec![0; i32::from_be_bytes(size) as usize];
                stream.read_exact(&mut frame).expect("frame");
                if frames == 0 {
                    // Size 4, then the request's correlation id (bytes 4..8
                    // of a request header: api key, version, correlation id).
                    let mut response = 4i32.to_be_bytes().to_vec();
                    response.extend_from_slice(&frame[4..8]);
                    stream.write_all(&response).expect("respond");
                    let _ = answered.send(());
                }
                frames += 1;
            }
            frames
        });
        (address, answered_rx, peer)
    }

    #[test]
    fn frames_queued_when_the_last_handle_drops_are_all_written() {
        // One thread runs both this test and the connection's task, so the
        // task only runs when the test awaits. The task writes the first
        // request; its answer is in the socket before the rest are queued
        // and the handle dropped; the task must then write them all, not
        // stop at the answer because no handle is left (acks=0 produce
        // requests were lost that way when a producer closed).
        // Which of the task's branches goes first is random: twenty rounds.
        for _ in 0..20 {
            queue_answer_and_drop();
        }
    }

    fn queue_answer_and_drop() {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let (address, answered, peer) = counting_peer();
        let queued = runtime.block_on(async {
            let connection = Connection::open(&address.to_string(), "test")
                .await
                .expect("open");
            let pending = connection
                .send(3, &ApiVersionsRequest::default())
                .await
                .expect("send");
            // Let the task write it, then hold this thread (and the task)
            // until the answer has been sent.
            while answered.try_recv().is_err() {
                tokio::task::yield_now().await;
                assert!(!peer.is_finished(), "the peer stopped early");
            }
            // Large enough that the socket's buffers fill and the task
            // waits between writes, with the answer ready to be read.
            let large = ApiVersionsRequest::default()
                .with_client_software_name(StrBytes::from_string("x".repeat(64 << 10)));
            // Unconstrained: no cooperative yield lets the task run (and
            // read the answer) before the handle is gone.
            let queued = tokio::task::unconstrained(async {
                let mut queued = 1;
                for _ in 0..QUEUE - 1 {
                    connection.send_only(3, &large).await.expect("send_only");
                    queued += 1;
                }
                queued
            })
            .await;
            drop(connection);
            let _ = pending.reply.expect("a response is owed").await;
            queued
        });
        // Once every frame is written and the answer read, the task lets
        // the socket go and the peer sees EOF.
        runtime.block_on(async {
            tokio::time::timeout(Duration::from_secs(30), async {
                while !peer.is_finished() {
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
            })
            .await
            .expect("the connection closed within 30 s");
        });
        assert_eq!(peer.join().expect("peer"), queued);
    }
}
