//! Hostile and malformed bytes sent to the real binary over raw sockets:
//! short frames, size prefixes that are too large or negative, unknown APIs
//! and versions, garbage bodies, element counts that ask for gigabytes, and
//! thousands of random frames. DESIGN.md: "no input may panic the broker".
//! After every case the process must still answer ApiVersions on a fresh
//! connection and on one opened before the bad input.

#[allow(dead_code)] // each test binary uses a part of the helpers
mod common;

use std::net::{Shutdown, TcpStream};

use common::Broker;
use common::raw::{self, ApiVersionsV0, Reply};
use kafka_protocol::messages::ApiKey;
use runnel_protocol::versions::{self, SUPPORTED};
use tempfile::TempDir;

/// `socket.request.max.bytes` when nothing sets it, as in Kafka.
const DEFAULT_MAX_REQUEST_BYTES: i32 = 104_857_600;

/// A broker and a connection opened before any bad input.
struct Target {
    broker: Broker,
    bystander: TcpStream,
    next_correlation_id: i32,
    _dir: TempDir,
}

impl Target {
    fn start() -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut broker = Broker::serve(dir.path());
        broker.wait_ready();
        let bystander = raw::connect(&broker.bootstrap).expect("connect");
        let mut target = Self {
            broker,
            bystander,
            next_correlation_id: 1,
            _dir: dir,
        };
        target.assert_alive("startup");
        target
    }

    fn connect(&self) -> TcpStream {
        raw::connect(&self.broker.bootstrap).expect("connect")
    }

    fn correlation_id(&mut self) -> i32 {
        self.next_correlation_id += 1;
        self.next_correlation_id
    }

    /// A fresh connection and the bystander both answer ApiVersions v0.
    fn assert_alive(&mut self, after: &str) {
        let id = self.correlation_id();
        if let Err(err) = raw::connect(&self.broker.bootstrap)
            .map_err(|err| format!("cannot connect: {err}"))
            .and_then(|mut fresh| raw::probe(&mut fresh, id))
        {
            self.fail(&format!("after {after}: a fresh connection: {err}"));
        }
        let id = self.correlation_id();
        if let Err(err) = raw::probe(&mut self.bystander, id) {
            self.fail(&format!(
                "after {after}: the connection opened before it: {err}"
            ));
        }
    }

    /// Panics with `reason`, and with the exit status and stderr when the
    /// broker no longer takes connections (a crash is the likely cause).
    fn fail(&mut self, reason: &str) -> ! {
        let id = self.correlation_id();
        let serving = raw::connect(&self.broker.bootstrap)
            .map_err(|err| err.to_string())
            .and_then(|mut fresh| raw::probe(&mut fresh, id));
        if serving.is_ok() {
            panic!("{reason}");
        }
        eprintln!("{reason}; the broker does not answer, waiting for it to exit");
        let exit = self.broker.wait_exit();
        panic!(
            "{reason}; the broker exited with {}; stderr:\n{}",
            exit.status, exit.stderr
        );
    }

    /// Sends `bytes` on a new connection and expects the broker to close it
    /// without an answer.
    fn expect_closed_after(&mut self, what: &str, bytes: &[u8]) {
        let mut stream = self.connect();
        raw::send(&mut stream, bytes).expect("send");
        if let Err(err) = raw::expect_closed(&mut stream) {
            self.fail(&format!("{what}: {err}"));
        }
        self.assert_alive(what);
    }
}

/// xorshift64: deterministic garbage without a dependency.
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn bytes(&mut self, len: usize) -> Vec<u8> {
        (0..len).map(|_| self.next() as u8).collect()
    }
}

fn is_flexible(api_key: ApiKey, version: i16) -> bool {
    api_key.request_header_version(version) >= 2
}

#[test]
fn short_frames_close_the_connection() {
    let mut target = Target::start();
    let cut_short: [(&str, Vec<u8>); 3] = [
        ("half a size prefix", vec![0, 0]),
        ("a size prefix alone", 16i32.to_be_bytes().to_vec()),
        ("a frame cut short", {
            let mut bytes = 100i32.to_be_bytes().to_vec();
            bytes.extend_from_slice(&[0, 18, 0, 0, 0, 0, 0, 1, 0xff, 0xff]);
            bytes
        }),
    ];
    for (what, bytes) in cut_short {
        // The client goes away mid-frame: the broker must drop its half.
        let mut stream = target.connect();
        raw::send(&mut stream, &bytes).expect("send");
        stream.shutdown(Shutdown::Write).expect("shutdown");
        if let Err(err) = raw::expect_closed(&mut stream) {
            target.fail(&format!("{what}: {err}"));
        }
        target.assert_alive(what);
    }
    // Whole frames too short to hold the 8 bytes every header starts with.
    target.expect_closed_after("an empty frame", &raw::framed(&[]));
    target.expect_closed_after("a 5-byte frame", &raw::framed(&[0, 18, 0, 0, 0]));
    // The fixed header is whole but the client id length is cut off.
    target.expect_closed_after(
        "a header without its client id",
        &raw::framed(&[0, 18, 0, 0, 0, 0, 0, 1, 0]),
    );
}

#[test]
fn oversized_and_negative_size_prefixes_close_without_waiting_for_the_body() {
    let mut target = Target::start();
    // Only the prefix is sent: a broker that allocated and waited for the
    // body would time out here, one that allocated and died fails the check.
    for size in [
        i32::MAX,
        DEFAULT_MAX_REQUEST_BYTES + 1,
        0x7fff_0000,
        -1,
        -2,
        i32::MIN,
    ] {
        target.expect_closed_after(
            &format!("size prefix {size} ({size:#010x})"),
            &size.to_be_bytes(),
        );
    }
}

#[test]
fn unknown_api_keys_close_the_connection() {
    let mut target = Target::start();
    for key in [999, -1, i16::MAX, i16::MIN] {
        let id = target.correlation_id();
        target.expect_closed_after(
            &format!("api key {key}"),
            &raw::framed(&raw::request_payload(key, 0, id, false, &[0; 8])),
        );
    }
}

#[test]
fn unsupported_versions_of_known_apis_close_the_connection() {
    let mut target = Target::start();
    for api_key in [ApiKey::Produce, ApiKey::Metadata, ApiKey::Fetch] {
        let (min, max) = versions::range(api_key).expect("served");
        for version in [max + 1, 99, i16::MAX, min - 1, -1] {
            let id = target.correlation_id();
            let flexible = is_flexible(api_key, version);
            target.expect_closed_after(
                &format!("{api_key:?} v{version}"),
                &raw::framed(&raw::request_payload(
                    api_key as i16,
                    version,
                    id,
                    flexible,
                    &[0; 16],
                )),
            );
        }
    }
}

#[test]
fn api_versions_above_the_range_gets_unsupported_version_and_the_list() {
    let mut target = Target::start();
    let (_, max) = versions::range(ApiKey::ApiVersions).expect("served");
    let mut stream = target.connect();
    for version in [max + 1, 99, i16::MAX] {
        // What a newer client sends: header v2 and a body of its version
        // (client software name and version, no tagged fields).
        let mut body = vec![12];
        body.extend_from_slice(b"bad-input-1");
        body.push(4);
        body.extend_from_slice(b"9.9");
        body.push(0);
        let id = target.correlation_id();
        let request = raw::request_payload(raw::API_VERSIONS, version, id, true, &body);
        raw::send(&mut stream, &raw::framed(&request)).expect("send");
        let frame = match raw::read_reply(&mut stream) {
            Ok(Reply::Frame(frame)) => frame,
            other => target.fail(&format!("ApiVersions v{version}: {other:?}")),
        };
        let response = ApiVersionsV0::parse(&frame)
            .unwrap_or_else(|err| target.fail(&format!("ApiVersions v{version}: {err}")));
        assert_eq!(response.correlation_id, id, "ApiVersions v{version}");
        assert_eq!(
            response.error_code,
            raw::UNSUPPORTED_VERSION,
            "ApiVersions v{version}"
        );
        if let Err(err) = response.check_api_keys() {
            target.fail(&format!("ApiVersions v{version}: {err}"));
        }
        // The client retries with a version from the list on the same
        // connection, so it stays open.
        let id = target.correlation_id();
        if let Err(err) = raw::probe(&mut stream, id) {
            target.fail(&format!("retry after ApiVersions v{version}: {err}"));
        }
        target.assert_alive(&format!("ApiVersions v{version}"));
    }
}

#[test]
fn garbage_body_for_a_valid_header_closes_the_connection() {
    let mut target = Target::start();
    let mut rng = XorShift(0x5EED_0000_0000_0001);
    // Metadata v1: the body starts with the topic count, which is random.
    let garbage = rng.bytes(64);
    let id = target.correlation_id();
    let request = raw::request_payload(ApiKey::Metadata as i16, 1, id, false, &garbage);
    target.expect_closed_after("Metadata v1 with a garbage body", &raw::framed(&request));
}

#[test]
fn element_counts_larger_than_the_frame_close_the_connection() {
    let mut target = Target::start();
    // Metadata v0, correlation id 1, null client id, then a topic count of
    // i32::MAX and nothing after it. kafka-protocol 0.17 reserved the whole
    // count up front (~154 GB) and the allocator aborted the process.
    let metadata_v0: [u8; 14] = [
        0x00, 0x03, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0xff, 0xff, 0x7f, 0xff, 0xff, 0xff,
    ];
    target.expect_closed_after(
        "Metadata v0 with a topic count of i32::MAX",
        &raw::framed(&metadata_v0),
    );
    // The same through the compact (flexible) array decoder: Metadata v12,
    // header v2, topic count as the unsigned varint 0xffff_ffff.
    let metadata_v12: [u8; 16] = [
        0x00, 0x03, 0x00, 0x0c, 0x00, 0x00, 0x00, 0x02, 0xff, 0xff, 0x00, 0xff, 0xff, 0xff, 0xff,
        0x0f,
    ];
    target.expect_closed_after(
        "Metadata v12 with a compact topic count of u32::MAX",
        &raw::framed(&metadata_v12),
    );
    // Produce v3: null transactional id, acks 1, timeout, then a topic
    // count of i32::MAX.
    let mut produce_v3 = raw::request_payload(ApiKey::Produce as i16, 3, 3, false, &[]);
    produce_v3.extend_from_slice(&[0xff, 0xff, 0x00, 0x01, 0x00, 0x00, 0x03, 0xe8]);
    produce_v3.extend_from_slice(&i32::MAX.to_be_bytes());
    target.expect_closed_after(
        "Produce v3 with a topic count of i32::MAX",
        &raw::framed(&produce_v3),
    );
}

/// Counts of what the broker did with the random frames.
#[derive(Debug, Default)]
struct Outcomes {
    answered: usize,
    closed: usize,
    silent: usize,
}

/// One random frame: mostly a request header a client could send (a served
/// API at a version in or next to its range) followed by garbage, so the
/// body decoders see it; otherwise garbage from the first byte, or a size
/// prefix the broker must refuse.
fn random_frame(rng: &mut XorShift) -> Vec<u8> {
    if rng.below(32) == 0 {
        let size = if rng.below(2) == 0 {
            (rng.next() as u32 | 0x8000_0000) as i32
        } else {
            (rng.next() as u32 | 0x7f00_0000) as i32 & i32::MAX
        };
        return size.to_be_bytes().to_vec();
    }
    let len = rng.below(200) as usize;
    let mut payload = rng.bytes(len);
    if rng.below(4) != 0 {
        let (api_key, min, max) = SUPPORTED[rng.below(SUPPORTED.len() as u64) as usize];
        let version = min - 1 + rng.below((max - min + 3) as u64) as i16;
        let header = raw::request_payload(
            api_key as i16,
            version,
            rng.next() as i32,
            is_flexible(api_key, version),
            &[],
        );
        let n = header.len().min(len);
        payload[..n].copy_from_slice(&header[..n]);
    }
    raw::framed(&payload)
}

/// Sends `count` random frames, each followed by an ApiVersions v0 probe on
/// the same connection. Responses come in request order, so the probe's
/// answer tells when the broker is done with the frame: an answer to the
/// frame may come first; a close means the frame was refused, and the next
/// frame goes on a new connection.
fn send_random_frames(bootstrap: &str, seed: u64, count: usize) -> Result<Outcomes, String> {
    let mut rng = XorShift(seed);
    let mut outcomes = Outcomes::default();
    let mut connection: Option<TcpStream> = None;
    for index in 0..count {
        let mut bytes = random_frame(&mut rng);
        let frame_id = bytes
            .get(8..12)
            .map(|id| i32::from_be_bytes([id[0], id[1], id[2], id[3]]));
        // Never the frame's own correlation id, so the two answers differ.
        let probe_id = frame_id.map_or(0, |id| !id);
        bytes.extend_from_slice(&raw::api_versions_v0(probe_id));
        let context =
            |err: String| format!("random frame {index} (seed {seed:#x}, {bytes:02x?}): {err}");
        let stream = match &mut connection {
            Some(stream) => stream,
            None => connection.insert(
                raw::connect(bootstrap).map_err(|err| context(format!("cannot connect: {err}")))?,
            ),
        };
        raw::send(stream, &bytes).map_err(|err| context(format!("cannot send: {err}")))?;
        let mut reply = raw::read_reply(stream);
        if let Ok(Reply::Frame(frame)) = &reply
            && frame_id.is_some()
            && raw::correlation_id(frame) == frame_id
        {
            outcomes.answered += 1;
            reply = raw::read_reply(stream);
            raw::check_probe_reply(reply, probe_id)
                .map_err(|err| context(format!("after answering the frame: {err}")))?;
            continue;
        }
        if matches!(reply, Ok(Reply::Closed)) {
            outcomes.closed += 1;
            connection = None;
            continue;
        }
        raw::check_probe_reply(reply, probe_id).map_err(context)?;
        outcomes.silent += 1;
    }
    Ok(outcomes)
}

#[test]
fn random_frames_never_take_the_broker_down() {
    const CONNECTIONS: u64 = 4;
    const FRAMES: usize = 2_000;
    let mut target = Target::start();
    let bootstrap = target.broker.bootstrap.clone();
    let results: Vec<_> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..CONNECTIONS)
            .map(|worker| {
                let bootstrap = &bootstrap;
                let seed = 0x9E37_79B9_7F4A_7C15 ^ worker;
                scope.spawn(move || {
                    send_random_frames(bootstrap, seed, FRAMES / CONNECTIONS as usize)
                })
            })
            .collect();
        workers
            .into_iter()
            .map(|worker| worker.join().expect("worker thread"))
            .collect()
    });
    let mut total = Outcomes::default();
    for result in results {
        match result {
            Ok(outcomes) => {
                total.answered += outcomes.answered;
                total.closed += outcomes.closed;
                total.silent += outcomes.silent;
            }
            Err(err) => target.fail(&err),
        }
    }
    target.assert_alive(&format!("{FRAMES} random frames"));
    eprintln!("{FRAMES} random frames: {total:?}");
    assert_eq!(total.answered + total.closed + total.silent, FRAMES);
    // The generator reaches both the handlers and the refusals.
    assert!(total.answered > 0, "{total:?}");
    assert!(total.closed > 0, "{total:?}");
}
