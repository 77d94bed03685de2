//! A blocking Kafka client for tests: one connection, requests encoded with
//! kafka-protocol's client side, responses decoded at the same version.

use std::io::{Read, Write};
use std::net::TcpStream;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use kafka_protocol::messages::{ApiKey, RequestHeader, ResponseHeader};
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};

pub struct Client {
    stream: TcpStream,
    correlation_id: i32,
}

impl Client {
    pub fn connect(bootstrap: &str) -> Self {
        let stream = TcpStream::connect(bootstrap).expect("connect");
        stream
            .set_read_timeout(Some(super::DEADLINE))
            .expect("timeout");
        Self {
            stream,
            correlation_id: 0,
        }
    }

    /// Sends `request` and reads nothing back (a produce with `acks=0`).
    pub fn send_only<Req: Encodable>(&mut self, api: ApiKey, version: i16, request: &Req) {
        self.correlation_id += 1;
        let frame = self.frame(api, version, request);
        self.stream.write_all(&frame).expect("send");
    }

    /// Whether the broker closed the connection: a read sees EOF or a
    /// reset before the deadline (a response instead is a failure).
    pub fn closed(&mut self) -> bool {
        let mut byte = [0u8; 1];
        match self.stream.read(&mut byte) {
            Ok(0) => true,
            Ok(_) => panic!("expected the connection to close, got a response"),
            Err(err) => matches!(
                err.kind(),
                std::io::ErrorKind::ConnectionReset | std::io::ErrorKind::ConnectionAborted
            ),
        }
    }

    fn frame<Req: Encodable>(&self, api: ApiKey, version: i16, request: &Req) -> BytesMut {
        let mut header = RequestHeader::default();
        header.request_api_key = api as i16;
        header.request_api_version = version;
        header.correlation_id = self.correlation_id;
        header.client_id = Some(StrBytes::from_static_str("version-sweep"));
        let mut frame = BytesMut::new();
        frame.put_i32(0);
        header
            .encode(&mut frame, api.request_header_version(version))
            .expect("encode header");
        request
            .encode(&mut frame, version)
            .unwrap_or_else(|e| panic!("encode {api:?} v{version}: {e}"));
        let size = (frame.len() - 4) as i32;
        frame[..4].copy_from_slice(&size.to_be_bytes());
        frame
    }

    pub fn call<Req: Encodable, Resp: Decodable>(
        &mut self,
        api: ApiKey,
        version: i16,
        request: &Req,
    ) -> Resp {
        self.correlation_id += 1;
        let frame = self.frame(api, version, request);
        self.stream.write_all(&frame).expect("send");

        let mut size = [0u8; 4];
        self.stream
            .read_exact(&mut size)
            .unwrap_or_else(|e| panic!("{api:?} v{version}: no response ({e})"));
        let mut body = vec![0u8; i32::from_be_bytes(size) as usize];
        self.stream.read_exact(&mut body).expect("response body");
        let mut body = Bytes::from(body);
        let response_header =
            ResponseHeader::decode(&mut body, api.response_header_version(version))
                .expect("response header");
        assert_eq!(response_header.correlation_id, self.correlation_id);
        let response = Resp::decode(&mut body, version)
            .unwrap_or_else(|e| panic!("decode {api:?} v{version} response: {e}"));
        assert_eq!(
            body.remaining(),
            0,
            "{api:?} v{version}: bytes left after the response"
        );
        response
    }
    /// Creates `topic` with one partition (CreateTopics v7), or fails.
    pub fn create_topic(&mut self, topic: &str) {
        use kafka_protocol::messages::{
            CreateTopicsRequest, CreateTopicsResponse, TopicName, create_topics_request,
        };
        let mut t = create_topics_request::CreatableTopic::default();
        t.name = TopicName(StrBytes::from_string(topic.to_string()));
        t.num_partitions = 1;
        t.replication_factor = 1;
        let mut request = CreateTopicsRequest::default();
        request.topics = vec![t];
        let response: CreateTopicsResponse = self.call(ApiKey::CreateTopics, 7, &request);
        assert_eq!(response.topics[0].error_code, 0, "create {topic}");
    }
}
