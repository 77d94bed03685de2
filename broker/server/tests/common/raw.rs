//! Raw Kafka frames over a blocking `TcpStream`, for tests that send what no
//! client library would. Every read has a deadline, and a connection the
//! broker closes (EOF or reset) is an answer of its own, not an error.
//!
//! Request frame (see `runnel_protocol::request`): size (i32), api key
//! (i16), api version (i16), correlation id (i32), client id (i16 length and
//! bytes, -1 for null), one tagged-field count byte for header v2, body.

use std::io::{self, Read, Write};
use std::net::TcpStream;

use runnel_protocol::versions::advertised;

use super::DEADLINE;

pub const API_VERSIONS: i16 = 18;
/// Kafka's UNSUPPORTED_VERSION error code.
pub const UNSUPPORTED_VERSION: i16 = 35;
/// Responses to the small requests these tests send are far below this; a
/// larger size prefix means the stream is out of step.
const MAX_RESPONSE_BYTES: usize = 1 << 20;

/// Opens a connection whose reads and writes give up after [`DEADLINE`].
pub fn connect(bootstrap: &str) -> io::Result<TcpStream> {
    let stream = TcpStream::connect(bootstrap)?;
    stream.set_read_timeout(Some(DEADLINE))?;
    stream.set_write_timeout(Some(DEADLINE))?;
    stream.set_nodelay(true)?;
    Ok(stream)
}

/// The bytes after the size prefix: header v1 (v2 when `flexible`), body.
pub fn request_payload(
    api_key: i16,
    api_version: i16,
    correlation_id: i32,
    flexible: bool,
    body: &[u8],
) -> Vec<u8> {
    let client_id = b"bad-input";
    let mut out = Vec::with_capacity(12 + client_id.len() + body.len());
    out.extend_from_slice(&api_key.to_be_bytes());
    out.extend_from_slice(&api_version.to_be_bytes());
    out.extend_from_slice(&correlation_id.to_be_bytes());
    out.extend_from_slice(&(client_id.len() as i16).to_be_bytes());
    out.extend_from_slice(client_id);
    if flexible {
        out.push(0); // no tagged fields
    }
    out.extend_from_slice(body);
    out
}

/// `payload` behind its size prefix.
pub fn framed(payload: &[u8]) -> Vec<u8> {
    let mut out = (payload.len() as i32).to_be_bytes().to_vec();
    out.extend_from_slice(payload);
    out
}

/// An ApiVersions v0 request frame, built byte by byte.
pub fn api_versions_v0(correlation_id: i32) -> Vec<u8> {
    framed(&request_payload(
        API_VERSIONS,
        0,
        correlation_id,
        false,
        &[],
    ))
}

/// What came back where a response frame may start.
#[derive(Debug, PartialEq, Eq)]
pub enum Reply {
    /// A whole response frame, without its size prefix.
    Frame(Vec<u8>),
    /// The broker closed the connection (EOF or reset) before a frame began.
    Closed,
}

/// Reads one response frame. A connection closed before its first byte is
/// [`Reply::Closed`]; a timeout, or a close inside a frame, is an error.
pub fn read_reply(stream: &mut TcpStream) -> io::Result<Reply> {
    let mut prefix = [0u8; 4];
    let mut filled = 0;
    while filled < prefix.len() {
        match stream.read(&mut prefix[filled..]) {
            Ok(0) if filled == 0 => return Ok(Reply::Closed),
            Ok(0) => {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "connection closed inside a size prefix",
                ));
            }
            Ok(n) => filled += n,
            Err(err) if filled == 0 && is_reset(&err) => return Ok(Reply::Closed),
            Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
            Err(err) => return Err(err),
        }
    }
    let size = i32::from_be_bytes(prefix);
    let size = usize::try_from(size)
        .ok()
        .filter(|&size| size <= MAX_RESPONSE_BYTES)
        .ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("response size prefix {size} is out of range"),
            )
        })?;
    let mut frame = vec![0u8; size];
    stream.read_exact(&mut frame)?;
    Ok(Reply::Frame(frame))
}

fn is_reset(err: &io::Error) -> bool {
    matches!(
        err.kind(),
        io::ErrorKind::ConnectionReset | io::ErrorKind::ConnectionAborted
    )
}

/// Sends `bytes`; a connection the broker already closed is not an error,
/// since the read that follows tells.
pub fn send(stream: &mut TcpStream, bytes: &[u8]) -> io::Result<()> {
    match stream.write_all(bytes) {
        Err(err) if is_reset(&err) || err.kind() == io::ErrorKind::BrokenPipe => Ok(()),
        other => other,
    }
}

/// Waits for the broker to close `stream` without answering: anything but
/// EOF or a reset within [`DEADLINE`] is an error naming what came instead.
pub fn expect_closed(stream: &mut TcpStream) -> Result<(), String> {
    match read_reply(stream) {
        Ok(Reply::Closed) => Ok(()),
        Ok(Reply::Frame(frame)) => Err(format!(
            "expected the connection to close, got a {}-byte response",
            frame.len()
        )),
        Err(err) => Err(format!(
            "expected the connection to close within {DEADLINE:?}: {err}"
        )),
    }
}

/// An ApiVersions response in v0 layout (the response header is always v0
/// for ApiVersions): correlation id, error code, `(key, min, max)` array.
#[derive(Debug, PartialEq, Eq)]
pub struct ApiVersionsV0 {
    pub correlation_id: i32,
    pub error_code: i16,
    pub api_keys: Vec<(i16, i16, i16)>,
}

impl ApiVersionsV0 {
    /// Parses a whole frame; bytes left over are an error, since v0 has no
    /// fields after the array.
    pub fn parse(frame: &[u8]) -> Result<Self, String> {
        let mut rest = frame;
        let mut take = |n: usize| -> Result<&[u8], String> {
            if rest.len() < n {
                return Err(format!("ApiVersions v0 response cut short: {frame:02x?}"));
            }
            let (head, tail) = rest.split_at(n);
            rest = tail;
            Ok(head)
        };
        let correlation_id = be_i32(take(4)?);
        let error_code = be_i16(take(2)?);
        let count = be_i32(take(4)?);
        let count = usize::try_from(count).map_err(|_| format!("api count {count}"))?;
        let mut api_keys = Vec::new();
        for _ in 0..count {
            let entry = take(6)?;
            api_keys.push((be_i16(entry), be_i16(&entry[2..]), be_i16(&entry[4..])));
        }
        if !rest.is_empty() {
            return Err(format!(
                "{} bytes after the ApiVersions v0 response",
                rest.len()
            ));
        }
        Ok(Self {
            correlation_id,
            error_code,
            api_keys,
        })
    }

    /// Checks the list is the broker's table of served APIs.
    pub fn check_api_keys(&self) -> Result<(), String> {
        let expected: Vec<_> = advertised()
            .map(|(key, min, max)| (key as i16, min, max))
            .collect();
        if self.api_keys == expected {
            Ok(())
        } else {
            Err(format!(
                "api list {:?}, expected {expected:?}",
                self.api_keys
            ))
        }
    }
}

/// The correlation id every response frame starts with.
pub fn correlation_id(frame: &[u8]) -> Option<i32> {
    frame.first_chunk::<4>().map(|id| i32::from_be_bytes(*id))
}

fn be_i16(bytes: &[u8]) -> i16 {
    i16::from_be_bytes([bytes[0], bytes[1]])
}

fn be_i32(bytes: &[u8]) -> i32 {
    i32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]])
}

/// Sends ApiVersions v0 on `stream` and checks the answer: the correlation
/// id, no error, and the served APIs.
pub fn probe(stream: &mut TcpStream, correlation_id: i32) -> Result<(), String> {
    stream
        .write_all(&api_versions_v0(correlation_id))
        .map_err(|err| format!("cannot send ApiVersions v0: {err}"))?;
    check_probe_reply(read_reply(stream), correlation_id)
}

/// Checks what came back for an ApiVersions v0 probe.
pub fn check_probe_reply(reply: io::Result<Reply>, correlation_id: i32) -> Result<(), String> {
    let frame = match reply {
        Ok(Reply::Frame(frame)) => frame,
        Ok(Reply::Closed) => return Err("connection closed instead of answering".into()),
        Err(err) => return Err(format!("no ApiVersions v0 response: {err}")),
    };
    let response = ApiVersionsV0::parse(&frame)?;
    if response.correlation_id != correlation_id {
        return Err(format!(
            "response with correlation id {}, expected {correlation_id}",
            response.correlation_id
        ));
    }
    if response.error_code != 0 {
        return Err(format!("error code {}", response.error_code));
    }
    response.check_api_keys()
}
