//! The HTTP half of the reverse proxy: a request under a `[[proxy]]` path goes to its upstream
//! with its method, path, query, headers and body, and the upstream's status, headers and body
//! come back, streamed both ways.
//!
//! Invariants: neither body is buffered whole (each side's stream is read as the other takes
//! it, so a slow side holds the other back through TCP); redirects are the client's to follow,
//! not ours; an upstream that cannot be reached or fails before its response head gets `502`
//! with `upstream_unavailable`, its detail only in the log.

use std::time::Duration;

use actix_web::body::SizedStream;
use actix_web::http::header::{self, HeaderMap};
use actix_web::http::StatusCode;
use actix_web::{web, HttpMessage, HttpRequest, HttpResponse};

use super::connect::UpstreamConnector;
use super::headers::{self, Origin};
use crate::error::Error;
use crate::http::{error_response, RequestAuth};

/// How long an upstream may take to connect.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long an upstream may take to send its response head.
pub const RESPONSE_TIMEOUT: Duration = Duration::from_secs(60);

/// The HTTP client toward the upstreams: one per worker (awc's client is not `Send`), with no
/// cap on connections (each proxied socket holds one), no default headers and no redirects,
/// HTTP/1.1 only (WebSockets need it). Connections go through [`UpstreamConnector`]: TLS for
/// the hosts and ports of `https` upstreams (given as `secure`), whose URLs awc sees as `http`.
pub struct Upstreams(pub awc::Client);

impl Upstreams {
    pub fn new(secure: impl IntoIterator<Item = (String, u16)>) -> std::io::Result<Self> {
        let connector = awc::Connector::new()
            .connector(UpstreamConnector::new(secure)?)
            .limit(0)
            .timeout(CONNECT_TIMEOUT)
            .max_http_version(awc::http::Version::HTTP_11);
        Ok(Upstreams(
            awc::Client::builder()
                .connector(connector)
                .no_default_headers()
                .disable_redirects()
                .timeout(RESPONSE_TIMEOUT)
                .finish(),
        ))
    }
}

/// The request's body length, if it has a body at all: `Some(None)` for a chunked one.
fn body_length(headers: &HeaderMap) -> Option<Option<u64>> {
    if headers.contains_key(header::TRANSFER_ENCODING) {
        return Some(None);
    }
    let length = headers
        .get(header::CONTENT_LENGTH)?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()?;
    Some(Some(length))
}

/// Relays one HTTP request to `upstream` (`http://host:port`, no trailing slash).
pub async fn forward(
    req: HttpRequest,
    body: web::Payload,
    upstream: &str,
    client: &awc::Client,
) -> HttpResponse {
    let path = req.uri().path_and_query().map_or("/", |p| p.as_str());
    let url = format!("{upstream}{path}");
    let scheme = req.connection_info().scheme().to_owned();
    let from = Origin {
        peer: req.peer_addr().map(|a| a.ip()),
        scheme: &scheme,
    };
    let mut outgoing = client.request(req.method().clone(), url);
    for (name, value) in headers::to_upstream(req.headers(), from, false) {
        outgoing = outgoing.append_header((name, value));
    }
    if let Some(RequestAuth::User(info)) = req.extensions().get::<RequestAuth>() {
        for (name, value) in headers::identity(&info.user, &info.session) {
            outgoing = outgoing.append_header((name, value));
        }
    }
    let sent = match body_length(req.headers()) {
        None => outgoing.send().await,
        Some(Some(length)) => outgoing.send_body(SizedStream::new(length, body)).await,
        Some(None) => outgoing.send_stream(body).await,
    };
    let response = match sent {
        Ok(response) => response,
        Err(awc::error::SendRequestError::Body(e)) => {
            tracing::debug!(error = %e, "proxied request body failed");
            let err = Error::bad_request("The request body could not be read.");
            return error_response(&err, StatusCode::BAD_REQUEST);
        }
        Err(e) => {
            tracing::warn!(upstream, error = %e, "upstream unavailable");
            return error_response(&Error::UpstreamUnavailable, StatusCode::BAD_GATEWAY);
        }
    };
    let mut back = HttpResponse::build(response.status());
    for (name, value) in headers::from_upstream(response.headers()) {
        back.append_header((name.clone(), value.clone()));
    }
    if let Some(Some(length)) = body_length(response.headers()) {
        back.no_chunking(length);
    }
    back.streaming(response)
}
