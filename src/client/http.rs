//! The HTTP transport: hyper's pooled HTTP/1.1 client for `http://` (the fast path, one
//! kept-alive connection per concurrent request), reqwest for `https://` (TLS with the
//! platform's roots). Both hand the body out as raw `Bytes` reads.

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::http::{HeaderMap, Method, Request, Uri, header};
use hyper_util::client::legacy::{Client as HyperClient, connect::HttpConnector};
use hyper_util::rt::TokioExecutor;

use super::url::Scheme;

/// Why a request got no response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SendError {
    /// No connection could be made.
    Connect(String),
    /// The server closed the connection (reset, broken pipe, end of stream) before its
    /// response head could be read: while the request was still being sent, or right after.
    Closed(String),
    /// Another client error.
    Other(String),
}

/// A pooled HTTP client.
#[derive(Clone)]
pub struct Transport {
    inner: Inner,
}

#[derive(Clone)]
enum Inner {
    Hyper(Box<HyperClient<HttpConnector, Full<Bytes>>>),
    Reqwest(reqwest::Client),
}

/// A response head and its body, not yet read.
pub struct Response {
    pub status: u16,
    /// The `Content-Type` header's media type, lowercased, without parameters (`None`
    /// when absent or not text).
    pub content_type: Option<String>,
    pub body: Body,
}

/// A response body, read one network chunk at a time.
pub enum Body {
    Hyper(hyper::body::Incoming),
    Reqwest(reqwest::Response),
}

impl Transport {
    /// A client for `scheme` keeping up to `pool` idle connections to the server.
    pub fn new(scheme: Scheme, pool: usize) -> anyhow::Result<Transport> {
        let inner = match scheme {
            Scheme::Http => {
                let mut conn = HttpConnector::new();
                conn.set_nodelay(true);
                conn.enforce_http(true);
                conn.set_connect_timeout(Some(Duration::from_secs(10)));
                let client = HyperClient::builder(TokioExecutor::new())
                    .pool_max_idle_per_host(pool.max(1))
                    .pool_idle_timeout(Duration::from_secs(90))
                    .build(conn);
                Inner::Hyper(Box::new(client))
            }
            Scheme::Https => {
                let client = reqwest::Client::builder()
                    .pool_max_idle_per_host(pool.max(1))
                    .tcp_nodelay(true)
                    .connect_timeout(Duration::from_secs(10))
                    .redirect(reqwest::redirect::Policy::none())
                    .build()
                    .map_err(|e| anyhow::anyhow!("cannot set up the HTTPS client: {e}"))?;
                Inner::Reqwest(client)
            }
        };
        Ok(Transport { inner })
    }

    /// Send one request. A `body` is sent as JSON.
    pub async fn send(
        &self,
        method: Method,
        uri: &Uri,
        headers: &HeaderMap,
        body: Option<Bytes>,
    ) -> Result<Response, SendError> {
        match &self.inner {
            Inner::Hyper(client) => {
                let mut req = Request::builder().method(method).uri(uri.clone());
                if let Some(h) = req.headers_mut() {
                    h.clone_from(headers);
                    if body.is_some() {
                        h.insert(
                            header::CONTENT_TYPE,
                            header::HeaderValue::from_static("application/json"),
                        );
                    }
                }
                let req = req
                    .body(Full::new(body.unwrap_or_default()))
                    .map_err(|e| SendError::Other(format!("invalid request: {e}")))?;
                match client.request(req).await {
                    Ok(resp) => Ok(Response {
                        status: resp.status().as_u16(),
                        content_type: media_type(resp.headers()),
                        body: Body::Hyper(resp.into_body()),
                    }),
                    Err(e) if e.is_connect() => Err(SendError::Connect(chain(&e))),
                    Err(e) if closed_early(&e) => Err(SendError::Closed(chain(&e))),
                    Err(e) => Err(SendError::Other(chain(&e))),
                }
            }
            Inner::Reqwest(client) => {
                let mut req = client
                    .request(method, uri.to_string())
                    .headers(headers.clone());
                if let Some(b) = body {
                    req = req.header(header::CONTENT_TYPE, "application/json").body(b);
                }
                match req.send().await {
                    Ok(resp) => Ok(Response {
                        status: resp.status().as_u16(),
                        content_type: media_type(resp.headers()),
                        body: Body::Reqwest(resp),
                    }),
                    Err(e) if e.is_connect() => Err(SendError::Connect(chain(&e.without_url()))),
                    Err(e) if closed_early(&e) => Err(SendError::Closed(chain(&e.without_url()))),
                    Err(e) => Err(SendError::Other(chain(&e.without_url()))),
                }
            }
        }
    }
}

impl Body {
    /// The next chunk of the body; `Ok(None)` at its end; `Err` when the connection broke.
    pub async fn chunk(&mut self) -> Result<Option<Bytes>, String> {
        match self {
            Body::Hyper(b) => loop {
                match b.frame().await {
                    None => return Ok(None),
                    Some(Err(e)) => return Err(chain(&e)),
                    Some(Ok(frame)) => {
                        if let Ok(data) = frame.into_data()
                            && !data.is_empty()
                        {
                            return Ok(Some(data));
                        }
                    }
                }
            },
            Body::Reqwest(r) => r.chunk().await.map_err(|e| chain(&e.without_url())),
        }
    }
}

/// The media type of a `Content-Type` header: `text/event-stream; charset=utf-8` ->
/// `text/event-stream`.
fn media_type(h: &HeaderMap) -> Option<String> {
    let v = h.get(header::CONTENT_TYPE)?.to_str().ok()?;
    let t = v.split(';').next()?.trim().to_ascii_lowercase();
    (!t.is_empty()).then_some(t)
}

/// An error and its causes as one line (`client error (Connect): tcp connect error: ...`).
/// Whether an error means the server closed the connection before answering: an I/O error
/// of kind broken pipe, connection reset or aborted, or unexpected end of stream anywhere
/// in its chain, or hyper's "connection closed before message completed".
pub fn closed_early(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut cur = Some(e);
    while let Some(c) = cur {
        if let Some(io) = c.downcast_ref::<std::io::Error>()
            && matches!(
                io.kind(),
                std::io::ErrorKind::BrokenPipe
                    | std::io::ErrorKind::ConnectionReset
                    | std::io::ErrorKind::ConnectionAborted
                    | std::io::ErrorKind::UnexpectedEof
            )
        {
            return true;
        }
        if let Some(h) = c.downcast_ref::<hyper::Error>()
            && h.is_incomplete_message()
        {
            return true;
        }
        cur = c.source();
    }
    false
}

pub fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut parts = vec![e.to_string()];
    let mut cur = e.source();
    while let Some(c) = cur {
        let s = c.to_string();
        if !parts.iter().any(|p| p.contains(&s)) {
            parts.push(s);
        }
        cur = c.source();
    }
    parts.join(": ")
}
