//! A Kubernetes API server mocked at the HTTP level, as kube-rs's
//! controller-rs tests do: the kube `Client` under test sends its requests
//! to a `tower-test` handle, and the test answers each one after checking
//! its method, path and body. Anything the code under test sends that the
//! test does not expect fails the test.

#![allow(dead_code)]

use std::time::Duration;

use futures::FutureExt;
use http::{Request, Response};
use kube::Client;
use kube::client::Body;
use serde_json::Value;
use tower_test::mock::{self, Handle, SendResponse};

/// The test's side of the mocked API server.
pub struct ApiServer {
    handle: Handle<Request<Body>, Response<Body>>,
}

/// A kube client talking to the mocked server, and the server.
pub fn client() -> (Client, ApiServer) {
    let (service, handle) = mock::pair::<Request<Body>, Response<Body>>();
    (Client::new(service, "default"), ApiServer { handle })
}

/// One request received: what was asked, and the way to answer it.
pub struct Exchange {
    pub method: String,
    pub path: String,
    pub query: String,
    /// The body as JSON (`Value::Null` when empty).
    pub body: Value,
    respond: SendResponse<Response<Body>>,
}

impl Exchange {
    /// Answers with `status` and the JSON `body`.
    pub fn respond(self, status: u16, body: &Value) {
        let bytes = serde_json::to_vec(body).expect("JSON");
        let response = Response::builder()
            .status(status)
            .header("content-type", "application/json")
            .body(Body::from(bytes))
            .expect("response");
        self.respond.send_response(response);
    }

    /// Answers 200 with the request's own body (what an apply returns,
    /// near enough).
    pub fn echo(self) {
        let body = self.body.clone();
        self.respond(200, &body);
    }

    /// Answers with a Kubernetes `Status` error.
    pub fn fail(self, code: u16, reason: &str) {
        let status = serde_json::json!({
            "kind": "Status", "apiVersion": "v1", "metadata": {},
            "status": "Failure", "message": reason, "reason": reason, "code": code,
        });
        self.respond(code, &status);
    }
}

impl ApiServer {
    /// The next request, which must be `method` on `path` (without the
    /// query); fails after 30 s without one.
    pub async fn expect(&mut self, method: &str, path: &str) -> Exchange {
        let next = tokio::time::timeout(Duration::from_secs(30), self.handle.next_request())
            .await
            .unwrap_or_else(|_| panic!("no request within 30 s; expected {method} {path}"))
            .unwrap_or_else(|| panic!("client gone; expected {method} {path}"));
        let (request, respond) = next;
        let exchange = exchange(request, respond).await;
        assert_eq!(
            (exchange.method.as_str(), exchange.path.as_str()),
            (method, path),
            "unexpected request (query {:?}, body {})",
            exchange.query,
            exchange.body
        );
        exchange
    }

    /// The next request, whatever it is; `None` when the client is gone.
    pub async fn next(&mut self) -> Option<Exchange> {
        let (request, respond) =
            tokio::time::timeout(Duration::from_secs(30), self.handle.next_request())
                .await
                .expect("a request within 30 s")?;
        Some(exchange(request, respond).await)
    }

    /// Fails if a request is waiting (call it once the code under test
    /// has returned: everything it sent is queued by then).
    pub fn expect_nothing_more(&mut self) {
        if let Some(Some((request, _))) = self.handle.next_request().now_or_never() {
            panic!("unexpected request {} {}", request.method(), request.uri());
        }
    }
}

async fn exchange(request: Request<Body>, respond: SendResponse<Response<Body>>) -> Exchange {
    let method = request.method().to_string();
    let path = request.uri().path().to_string();
    let query = request.uri().query().unwrap_or("").to_string();
    let bytes = request
        .into_body()
        .collect_bytes()
        .await
        .expect("request body");
    let body = if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&bytes).expect("request body is JSON")
    };
    Exchange {
        method,
        path,
        query,
        body,
        respond,
    }
}
