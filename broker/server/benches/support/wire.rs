//! Kafka frames over tokio sockets: whole request frames, responses read
//! into a reused buffer and decoded without copying record bytes, and a
//! connection with one request in flight at a time.

use std::net::SocketAddr;

use anyhow::{Context, Result, bail, ensure};
use bytes::{Buf, BytesMut};
use kafka_protocol::messages::create_topics_request::{
    CreatableTopic, CreatableTopicConfig, CreateTopicsRequest,
};
use kafka_protocol::messages::{ApiKey, RequestHeader, ResponseHeader, TopicName};
use kafka_protocol::protocol::{Decodable, Encodable, HeaderVersion, Request, StrBytes};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Anything larger is a stream out of step, not a response.
const MAX_RESPONSE_BYTES: usize = 256 << 20;
const CREATE_TOPICS_VERSION: i16 = 7;
const NONE: i16 = 0;

pub async fn connect(addr: SocketAddr) -> Result<TcpStream> {
    let stream = TcpStream::connect(addr)
        .await
        .with_context(|| format!("cannot connect to the broker at {addr}"))?;
    stream.set_nodelay(true)?;
    Ok(stream)
}

/// A whole request frame: size prefix, header, body.
pub fn request_frame<R: Request>(
    client_id: &'static str,
    version: i16,
    correlation_id: i32,
    body: &R,
) -> Result<Vec<u8>> {
    let header = RequestHeader::default()
        .with_request_api_key(R::KEY)
        .with_request_api_version(version)
        .with_correlation_id(correlation_id)
        .with_client_id(Some(StrBytes::from_static_str(client_id)));
    let mut frame = vec![0u8; 4];
    header.encode(&mut frame, R::header_version(version))?;
    body.encode(&mut frame, version)?;
    let size = i32::try_from(frame.len() - 4).context("request too large")?;
    frame[..4].copy_from_slice(&size.to_be_bytes());
    Ok(frame)
}

/// Reads one response frame into `buf` (reused: once the previous response
/// is dropped its allocation is reclaimed) and decodes it without copying
/// record bytes.
pub async fn read_response<R: Decodable + HeaderVersion>(
    reader: &mut (impl AsyncRead + Unpin),
    buf: &mut BytesMut,
    version: i16,
    correlation_id: i32,
) -> Result<R> {
    fill(reader, buf, 4).await?;
    let size = u32::from_be_bytes([buf[0], buf[1], buf[2], buf[3]]) as usize;
    ensure!(
        size <= MAX_RESPONSE_BYTES,
        "response size prefix {size} is out of range"
    );
    fill(reader, buf, 4 + size).await?;
    let mut frame = buf.split_to(4 + size).freeze();
    frame.advance(4);
    let header = ResponseHeader::decode(&mut frame, R::header_version(version))?;
    ensure!(
        header.correlation_id == correlation_id,
        "response to correlation id {}, expected {correlation_id}",
        header.correlation_id
    );
    R::decode(&mut frame, version)
}

async fn fill(reader: &mut (impl AsyncRead + Unpin), buf: &mut BytesMut, len: usize) -> Result<()> {
    if buf.len() < len {
        buf.reserve(len - buf.len());
    }
    while buf.len() < len {
        if reader.read_buf(buf).await? == 0 {
            bail!("the broker closed the connection");
        }
    }
    Ok(())
}

/// One client connection, one request in flight at a time.
#[derive(Debug)]
pub struct Connection {
    stream: TcpStream,
    buf: BytesMut,
    next_correlation_id: i32,
    client_id: &'static str,
}

impl Connection {
    pub async fn open(addr: SocketAddr, client_id: &'static str) -> Result<Self> {
        Ok(Self {
            stream: connect(addr).await?,
            buf: BytesMut::with_capacity(4096),
            next_correlation_id: 0,
            client_id,
        })
    }

    /// Sends a request and reads its response.
    pub async fn call<R: Request>(&mut self, version: i16, request: &R) -> Result<R::Response> {
        // Only formatted for an error: the commit figures count this CPU.
        let request_name = || {
            let api = ApiKey::try_from(R::KEY)
                .map_or_else(|()| format!("API key {}", R::KEY), |key| format!("{key:?}"));
            format!("{api} v{version}")
        };
        let correlation_id = self.next_correlation_id;
        self.next_correlation_id = self.next_correlation_id.wrapping_add(1);
        let frame = request_frame(self.client_id, version, correlation_id, request)
            .with_context(|| format!("encoding {}", request_name()))?;
        self.stream
            .write_all(&frame)
            .await
            .with_context(|| format!("sending {}", request_name()))?;
        read_response(&mut self.stream, &mut self.buf, version, correlation_id)
            .await
            .with_context(|| format!("reading the {} response", request_name()))
    }
}

/// Creates `topic` with `partitions` partitions (replication factor 1).
pub async fn create_topic(
    connection: &mut Connection,
    topic: &'static str,
    partitions: i32,
) -> Result<()> {
    create_replicated_topic(connection, topic, partitions, 1, &[]).await
}

/// Creates `topic` with `partitions` partitions of `replication_factor`
/// replicas each and the topic configs `configs` (`key`, `value`).
pub async fn create_replicated_topic(
    connection: &mut Connection,
    topic: &'static str,
    partitions: i32,
    replication_factor: i16,
    configs: &[(&'static str, &'static str)],
) -> Result<()> {
    let configs = configs
        .iter()
        .map(|(key, value)| {
            CreatableTopicConfig::default()
                .with_name(StrBytes::from_static_str(key))
                .with_value(Some(StrBytes::from_static_str(value)))
        })
        .collect();
    let request = CreateTopicsRequest::default()
        .with_topics(vec![
            CreatableTopic::default()
                .with_name(TopicName(StrBytes::from_static_str(topic)))
                .with_num_partitions(partitions)
                .with_replication_factor(replication_factor)
                .with_configs(configs),
        ])
        .with_timeout_ms(30_000);
    let response = connection.call(CREATE_TOPICS_VERSION, &request).await?;
    ensure!(
        response.topics.len() == 1 && response.topics.iter().all(|t| t.error_code == NONE),
        "cannot create topic {topic}: {response:?}"
    );
    Ok(())
}
