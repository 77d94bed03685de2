//! ApiVersions: the APIs and versions this broker serves. A version above
//! the ones served is answered with UNSUPPORTED_VERSION in v0 terms, so the
//! client retries with one it finds in the list.

use runnel_protocol::{response, versions};

use super::{HandlerError, Reply};
use runnel_protocol::request::Request;

pub fn handle(request: &Request) -> Result<Reply, HandlerError> {
    let (version, body) = versions::api_versions_response(request.api_version);
    Ok(Reply::Frame(response::encode(
        request.api_key,
        version,
        request.header.correlation_id,
        &body,
    )?))
}
