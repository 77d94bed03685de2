//! The metrics port of the broker and the operator: a minimal HTTP/1.1
//! server for Prometheus and the Kubernetes probes.
//!
//! | Route          | Answer                                              |
//! |----------------|-----------------------------------------------------|
//! | `GET /metrics` | 200, OpenMetrics text                               |
//! | `GET /healthz` | 200 `ok` while the process serves                   |
//! | `GET /readyz`  | 200 `ready` once the Kafka listener accepts, else 503 |
//!
//! Anything else is 404, a method other than GET or HEAD 405. Three routes
//! do not need an HTTP library: each connection gets one task that reads a
//! request head (capped in size and time), answers it with
//! `Connection: close` and closes.
//!
//! - [`error_chain`]: an error and its causes on one line, for the logs of
//!   the broker and the operator.

mod error_chain;

pub use error_chain::error_chain;

use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;
use tokio::time::timeout;

/// A request head larger than this is refused with 431.
const MAX_HEAD_BYTES: usize = 8 * 1024;
/// Time a client has to send its whole request head.
const READ_TIMEOUT: Duration = Duration::from_secs(5);
/// Time a client has to take the response.
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);
/// After the response, unread request bytes are drained for this long so
/// that closing does not reset the connection before the client reads.
const LINGER_TIMEOUT: Duration = Duration::from_secs(1);
const LINGER_MAX_BYTES: usize = 64 * 1024;
/// Connections served at once; further ones wait in the accept backlog.
const MAX_CONNECTIONS: usize = 64;
/// How long shutdown waits for requests in flight before cutting them off.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(3);
/// Pause after a failed accept (e.g. out of file descriptors).
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";
const TEXT: &str = "text/plain; charset=utf-8";

/// What `/metrics` serves: a registry encoded as OpenMetrics text.
pub trait EncodeMetrics: Send + Sync + 'static {
    /// The whole exposition; called off the async workers, so it may lock.
    fn encode(&self) -> String;
}

/// What the metrics port serves.
pub struct HttpState {
    pub metrics: Arc<dyn EncodeMetrics>,
    ready: AtomicBool,
    /// Why the process cannot serve although it runs (a log dir that
    /// takes no writes); `/readyz` is 503 with them while there are any.
    not_ready_because: Mutex<Vec<String>>,
}

impl std::fmt::Debug for HttpState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpState")
            .field("ready", &self.is_ready())
            .finish_non_exhaustive()
    }
}

impl HttpState {
    /// Not ready until [`set_ready`](Self::set_ready).
    pub fn new(metrics: Arc<dyn EncodeMetrics>) -> Self {
        Self {
            metrics,
            ready: AtomicBool::new(false),
            not_ready_because: Mutex::new(Vec::new()),
        }
    }

    /// `/readyz` follows it: the broker sets it while its Kafka listener
    /// accepts, the operator once its controllers run.
    pub fn set_ready(&self, ready: bool) {
        self.ready.store(ready, Ordering::Release);
    }

    /// Sets what keeps the process from serving although it runs (empty:
    /// nothing); `/readyz` answers 503 with them while there are any.
    pub fn set_not_ready_because(&self, reasons: Vec<String>) {
        *self.reasons() = reasons;
    }

    fn reasons(&self) -> std::sync::MutexGuard<'_, Vec<String>> {
        self.not_ready_because
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Acquire) && self.reasons().is_empty()
    }

    /// The `/readyz` answer: `Ok(())` when ready, else the body to send.
    fn readiness(&self) -> Result<(), String> {
        let reasons = self.reasons();
        match (self.ready.load(Ordering::Acquire), reasons.is_empty()) {
            (true, true) => Ok(()),
            (false, _) => Err("not ready".into()),
            (true, false) => Err(format!("not ready: {}", reasons.join("; "))),
        }
    }
}

/// Serves `listener` until `shutdown` completes, then gives requests in
/// flight [`DRAIN_TIMEOUT`] to finish.
pub async fn serve(
    listener: TcpListener,
    state: Arc<HttpState>,
    shutdown: impl Future<Output = ()>,
) {
    serve_with(listener, state, shutdown, READ_TIMEOUT).await;
}

/// [`serve`] with the read timeout as a parameter, for the tests.
async fn serve_with(
    listener: TcpListener,
    state: Arc<HttpState>,
    shutdown: impl Future<Output = ()>,
    read_timeout: Duration,
) {
    let mut connections = JoinSet::new();
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            () = &mut shutdown => break,
            Some(done) = connections.join_next() => report_panic(done),
            accepted = listener.accept(), if connections.len() < MAX_CONNECTIONS => {
                match accepted {
                    Ok((stream, _peer)) => {
                        let state = Arc::clone(&state);
                        connections.spawn(handle_connection(stream, state, read_timeout));
                    }
                    Err(err) => {
                        tracing::warn!(error = %err, "metrics port: accept failed");
                        tokio::time::sleep(ACCEPT_BACKOFF).await;
                    }
                }
            }
        }
    }
    let drained = timeout(DRAIN_TIMEOUT, async {
        while let Some(done) = connections.join_next().await {
            report_panic(done);
        }
    })
    .await;
    if drained.is_err() {
        tracing::debug!(
            left = connections.len(),
            "metrics port: closing slow connections"
        );
        connections.shutdown().await;
    }
}

fn report_panic(done: Result<(), tokio::task::JoinError>) {
    if let Err(err) = done
        && err.is_panic()
    {
        tracing::error!(error = %err, "metrics port: a connection task panicked");
    }
}

async fn handle_connection(mut stream: TcpStream, state: Arc<HttpState>, read_timeout: Duration) {
    let response = match timeout(read_timeout, read_head(&mut stream)).await {
        Err(_) => Response::text(408, "Request Timeout", "request timeout"),
        Ok(Err(HeadError::Io(err))) => {
            tracing::debug!(error = %err, "metrics port: reading a request failed");
            return;
        }
        Ok(Err(HeadError::Closed)) => return,
        Ok(Err(HeadError::Truncated)) => Response::bad_request(),
        Ok(Err(HeadError::TooLarge)) => Response::text(
            431,
            "Request Header Fields Too Large",
            "request head too large",
        ),
        Ok(Ok(head)) => match parse_request_line(&head) {
            Ok(request) => respond(request, &state).await,
            Err(refusal) => refusal,
        },
    };
    let bytes = response.to_bytes();
    let written = timeout(WRITE_TIMEOUT, async {
        stream.write_all(&bytes).await?;
        stream.shutdown().await
    })
    .await;
    match written {
        Ok(Ok(())) => linger(&mut stream).await,
        Ok(Err(err)) => tracing::debug!(error = %err, "metrics port: writing a response failed"),
        Err(_) => tracing::debug!("metrics port: client too slow to take a response"),
    }
}

/// Reads what the client still sends, up to a bound, so that the close is
/// a FIN and not a reset that could destroy the response in flight.
async fn linger(stream: &mut TcpStream) {
    let _ = timeout(LINGER_TIMEOUT, async {
        let mut sink = [0u8; 4096];
        let mut drained = 0;
        while drained < LINGER_MAX_BYTES {
            match stream.read(&mut sink).await {
                Ok(0) | Err(_) => break,
                Ok(n) => drained += n,
            }
        }
    })
    .await;
}

#[derive(Debug)]
enum HeadError {
    /// The client closed before sending anything: nothing to answer.
    Closed,
    /// The client closed in the middle of the head.
    Truncated,
    TooLarge,
    Io(std::io::Error),
}

/// Reads up to the blank line that ends a request head; returns the head
/// without it.
async fn read_head(stream: &mut TcpStream) -> Result<Vec<u8>, HeadError> {
    let mut head = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    loop {
        let n = stream.read(&mut chunk).await.map_err(HeadError::Io)?;
        if n == 0 {
            return Err(if head.is_empty() {
                HeadError::Closed
            } else {
                HeadError::Truncated
            });
        }
        let searched_to = head.len().saturating_sub(3);
        head.extend_from_slice(&chunk[..n]);
        if let Some(end) = head_end(&head, searched_to) {
            if end > MAX_HEAD_BYTES {
                return Err(HeadError::TooLarge);
            }
            head.truncate(end);
            return Ok(head);
        }
        if head.len() > MAX_HEAD_BYTES {
            return Err(HeadError::TooLarge);
        }
    }
}

/// Where the blank line ending the head starts, looking from `from` on.
/// Bare `\n` line ends are accepted, as RFC 9112 allows.
fn head_end(buf: &[u8], from: usize) -> Option<usize> {
    let tail = &buf[from..];
    let crlf = tail.windows(4).position(|w| w == b"\r\n\r\n");
    let lf = tail.windows(2).position(|w| w == b"\n\n");
    match (crlf, lf) {
        (Some(a), Some(b)) => Some(from + a.min(b)),
        (a, b) => a.or(b).map(|i| from + i),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Method {
    Get,
    Head,
}

#[derive(Debug, PartialEq, Eq)]
struct Request<'a> {
    method: Method,
    path: &'a str,
}

/// Parses `METHOD SP target SP HTTP/1.x` from the head's first line; the
/// header fields are not needed by any route. The `Err` is the response.
fn parse_request_line(head: &[u8]) -> Result<Request<'_>, Response> {
    let line_end = head.iter().position(|b| *b == b'\n').unwrap_or(head.len());
    let line = &head[..line_end];
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let line = std::str::from_utf8(line).map_err(|_| Response::bad_request())?;
    let mut parts = line.split(' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(Response::bad_request());
    };
    let Some(http_version) = version.strip_prefix("HTTP/") else {
        return Err(Response::bad_request());
    };
    if !http_version.starts_with("1.") {
        return Err(Response::text(
            505,
            "HTTP Version Not Supported",
            "only HTTP/1.x is served",
        ));
    }
    if method.is_empty() || !target.starts_with('/') {
        return Err(Response::bad_request());
    }
    let method = match method {
        "GET" => Method::Get,
        "HEAD" => Method::Head,
        _ => {
            return Err(Response::text(
                405,
                "Method Not Allowed",
                "method not allowed",
            ));
        }
    };
    let path = target.split_once('?').map_or(target, |(path, _query)| path);
    Ok(Request { method, path })
}

async fn respond(request: Request<'_>, state: &Arc<HttpState>) -> Response {
    let mut response = match request.path {
        "/metrics" => {
            // The broker's encoding locks every partition log in turn;
            // keep that off the async workers.
            let state = Arc::clone(state);
            match tokio::task::spawn_blocking(move || state.metrics.encode()).await {
                Ok(body) => Response::new(200, "OK", OPENMETRICS, body),
                Err(err) => {
                    tracing::error!(error = %err, "metrics port: encoding the metrics failed");
                    Response::text(500, "Internal Server Error", "internal error")
                }
            }
        }
        "/healthz" => Response::text(200, "OK", "ok"),
        "/readyz" => match state.readiness() {
            Ok(()) => Response::text(200, "OK", "ready"),
            Err(body) => Response::text(503, "Service Unavailable", &body),
        },
        _ => Response::text(404, "Not Found", "not found"),
    };
    response.head_only = request.method == Method::Head;
    response
}

#[derive(Debug)]
struct Response {
    status: u16,
    reason: &'static str,
    content_type: &'static str,
    body: String,
    /// A HEAD request: the headers describe the body, which is not sent.
    head_only: bool,
}

impl Response {
    fn new(status: u16, reason: &'static str, content_type: &'static str, body: String) -> Self {
        Self {
            status,
            reason,
            content_type,
            body,
            head_only: false,
        }
    }

    fn text(status: u16, reason: &'static str, body: &str) -> Self {
        Self::new(status, reason, TEXT, body.to_owned())
    }

    fn bad_request() -> Self {
        Self::text(400, "Bad Request", "bad request")
    }

    fn to_bytes(&self) -> Vec<u8> {
        let allow = if self.status == 405 {
            "Allow: GET, HEAD\r\n"
        } else {
            ""
        };
        let mut out = format!(
            "HTTP/1.1 {} {}\r\nContent-Type: {}\r\nContent-Length: {}\r\n{allow}Connection: close\r\n\r\n",
            self.status,
            self.reason,
            self.content_type,
            self.body.len(),
        )
        .into_bytes();
        if !self.head_only {
            out.extend_from_slice(self.body.as_bytes());
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::SocketAddr;
    use tokio::sync::oneshot;
    use tokio::task::JoinHandle;

    /// Counts the scrapes it answers.
    #[derive(Default)]
    struct Scrapes(std::sync::atomic::AtomicU64);

    impl EncodeMetrics for Scrapes {
        fn encode(&self) -> String {
            let n = self.0.fetch_add(1, Ordering::Relaxed) + 1;
            format!("requests_total {n}\n# EOF\n")
        }
    }

    struct Server {
        addr: SocketAddr,
        state: Arc<HttpState>,
        stop: oneshot::Sender<()>,
        task: JoinHandle<()>,
    }

    async fn start() -> Server {
        start_with(None).await
    }

    /// A server on a free port; `read_timeout` replaces [`READ_TIMEOUT`].
    async fn start_with(read_timeout: Option<Duration>) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("local addr");
        let state = Arc::new(HttpState::new(Arc::new(Scrapes::default())));
        let (stop, stopped) = oneshot::channel::<()>();
        let shutdown = async {
            let _ = stopped.await;
        };
        let served = Arc::clone(&state);
        let task = match read_timeout {
            None => tokio::spawn(serve(listener, served, shutdown)),
            Some(limit) => tokio::spawn(serve_with(listener, served, shutdown, limit)),
        };
        Server {
            addr,
            state,
            stop,
            task,
        }
    }

    /// Sends `raw` and returns everything the server sends before closing.
    async fn exchange(addr: SocketAddr, raw: &[u8]) -> String {
        let mut stream = TcpStream::connect(addr).await.expect("connect");
        stream.write_all(raw).await.expect("send");
        stream.shutdown().await.expect("half-close");
        read_all(stream).await
    }

    async fn read_all(mut stream: TcpStream) -> String {
        let mut out = Vec::new();
        timeout(Duration::from_secs(10), stream.read_to_end(&mut out))
            .await
            .expect("the server closes the connection")
            .expect("read");
        String::from_utf8_lossy(&out).into_owned()
    }

    async fn get(addr: SocketAddr, path: &str) -> String {
        exchange(
            addr,
            format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes(),
        )
        .await
    }

    fn status_line(response: &str) -> &str {
        response.lines().next().unwrap_or("")
    }

    fn body(response: &str) -> &str {
        response.split_once("\r\n\r\n").map_or("", |(_, body)| body)
    }

    #[tokio::test]
    async fn probes_follow_liveness_and_readiness() {
        let server = start().await;
        let health = get(server.addr, "/healthz").await;
        assert_eq!(status_line(&health), "HTTP/1.1 200 OK");
        assert!(health.contains("\r\nConnection: close\r\n"), "{health}");
        assert_eq!(body(&health), "ok");

        let not_ready = get(server.addr, "/readyz").await;
        assert_eq!(status_line(&not_ready), "HTTP/1.1 503 Service Unavailable");
        assert_eq!(body(&not_ready), "not ready");
        server.state.set_ready(true);
        let ready = get(server.addr, "/readyz?verbose").await;
        assert_eq!(status_line(&ready), "HTTP/1.1 200 OK");
        assert_eq!(body(&ready), "ready");
        server
            .state
            .set_not_ready_because(vec!["log dir /d cannot take writes".into()]);
        let failing = get(server.addr, "/readyz").await;
        assert_eq!(status_line(&failing), "HTTP/1.1 503 Service Unavailable");
        assert_eq!(body(&failing), "not ready: log dir /d cannot take writes");
        server.state.set_not_ready_because(Vec::new());
        let ready = get(server.addr, "/readyz").await;
        assert_eq!(status_line(&ready), "HTTP/1.1 200 OK");

        server.stop.send(()).expect("server running");
        timeout(Duration::from_secs(5), server.task)
            .await
            .expect("serve returns after shutdown")
            .expect("serve does not panic");
    }

    #[tokio::test]
    async fn metrics_are_served_as_openmetrics() {
        let server = start().await;
        let response = get(server.addr, "/metrics").await;
        assert_eq!(status_line(&response), "HTTP/1.1 200 OK");
        assert!(
            response.contains(&format!("\r\nContent-Type: {OPENMETRICS}\r\n")),
            "{response}"
        );
        let text = body(&response);
        assert_eq!(text, "requests_total 1\n# EOF\n");
        // Encoded afresh for every request.
        let again = get(server.addr, "/metrics").await;
        assert_eq!(body(&again), "requests_total 2\n# EOF\n");
        let length = format!("\r\nContent-Length: {}\r\n", text.len());
        assert!(response.contains(&length), "{response}");
    }

    #[tokio::test]
    async fn other_paths_and_methods_are_refused() {
        let server = start().await;
        assert_eq!(
            status_line(&get(server.addr, "/nope").await),
            "HTTP/1.1 404 Not Found"
        );
        let post = exchange(
            server.addr,
            b"POST /metrics HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello",
        )
        .await;
        assert_eq!(status_line(&post), "HTTP/1.1 405 Method Not Allowed");
        assert!(post.contains("\r\nAllow: GET, HEAD\r\n"), "{post}");
        let head = exchange(server.addr, b"HEAD /healthz HTTP/1.0\n\n").await;
        assert_eq!(status_line(&head), "HTTP/1.1 200 OK");
        assert!(head.contains("Content-Length: 2\r\n"), "{head}");
        assert_eq!(body(&head), "");
    }

    #[tokio::test]
    async fn garbage_and_oversized_heads_are_refused() {
        let server = start().await;
        for garbage in [
            &b"\x00\x01\xff\xfe\r\n\r\n"[..],
            b"GET\r\n\r\n",
            b"GET /metrics\r\n\r\n",
            b"GET metrics HTTP/1.1\r\n\r\n",
            b"GET  /metrics HTTP/1.1\r\n\r\n",
            b"GET /metrics FTP/1.1\r\n\r\n",
            b"GET /metrics HTTP/1.1\r\nHost: x",
        ] {
            let response = exchange(server.addr, garbage).await;
            assert_eq!(
                status_line(&response),
                "HTTP/1.1 400 Bad Request",
                "{garbage:?}"
            );
        }
        let http2 = exchange(server.addr, b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n").await;
        assert_eq!(
            status_line(&http2),
            "HTTP/1.1 505 HTTP Version Not Supported"
        );
        assert_eq!(exchange(server.addr, b"").await, "");

        let mut oversized = b"GET /metrics HTTP/1.1\r\nX-Filler: ".to_vec();
        oversized.resize(MAX_HEAD_BYTES + 2048, b'a');
        let response = exchange(server.addr, &oversized).await;
        assert_eq!(
            status_line(&response),
            "HTTP/1.1 431 Request Header Fields Too Large"
        );
        // Still serving.
        assert_eq!(
            status_line(&get(server.addr, "/healthz").await),
            "HTTP/1.1 200 OK"
        );
    }

    #[tokio::test]
    async fn a_client_too_slow_to_send_its_head_gets_408() {
        let server = start_with(Some(Duration::from_millis(200))).await;
        let mut stream = TcpStream::connect(server.addr).await.expect("connect");
        stream
            .write_all(b"GET /healthz HTTP/1.1\r\n")
            .await
            .expect("send");
        let response = read_all(stream).await;
        assert_eq!(status_line(&response), "HTTP/1.1 408 Request Timeout");
    }

    #[test]
    fn the_request_line_parser_takes_any_bytes() {
        assert_eq!(
            parse_request_line(b"GET /metrics?x=1 HTTP/1.1\r\nHost: a").ok(),
            Some(Request {
                method: Method::Get,
                path: "/metrics"
            })
        );
        // A small deterministic fuzz: random bytes and mutated request
        // lines must give a response, never a panic.
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        let alphabet = b"GET HEAD /?HTTP/1.0\r\n \x00\xff\xc3";
        for _ in 0..20_000 {
            let len = (next() % 40) as usize;
            let input: Vec<u8> = (0..len)
                .map(|_| alphabet[(next() % alphabet.len() as u64) as usize])
                .collect();
            let _ = parse_request_line(&input);
            let _ = head_end(&input, (next() % (len as u64 + 1)) as usize);
        }
    }
}
