//! The one HTTP server: HTTP-FLV, HLS, `/metrics` `/healthz` `/readyz`,
//! the JSON admin API and the web page.
//!
//! | path | what |
//! |---|---|
//! | `GET /` | the web page: live streams, figures, a player each |
//! | `GET /assets/hls.min.js` | hls.js (vendored by arcly-hls) |
//! | `GET /APP/KEY.flv` | HTTP-FLV |
//! | `GET /APP/KEY/index.m3u8`, `/APP/KEY.m3u8` and segments | HLS / LL-HLS (arcly-hls) |
//! | `GET /metrics`, `/healthz`, `/readyz` | telemetry |
//! | `GET /api/streams` | every stream (JSON) |
//! | `GET /api/streams/APP/KEY` | one stream |
//! | `POST`/`DELETE /api/streams/APP/KEY/kick` | disconnect the publisher |
//! | `POST`/`DELETE /api/streams/APP/KEY/record` | start / stop recording |
//!
//! A plain `GET` of a `.flv` is served outside hyper, straight on the socket
//! ([`crate::httpflv::play_direct`]): the request head is read here first,
//! and any other request is handed to hyper with those bytes replayed.
//!
//! The API answers 401 without `Authorization: Bearer TOKEN` when an admin
//! token is set. Connections are bounded in total and per address.

use crate::body::{full, Body};
use crate::config::Settings;
use crate::monitor::Monitor;
use arcly_core::engine::Engine;
use arcly_core::ingest::{ConnectionTracker, IngestLimits};
use arcly_core::registry::{PlayRequest, PlaybackRegistry};
use arcly_core::{StreamError, StreamPath};
use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::header::{self, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;

/// How long a client may take to send its request headers.
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);

/// The web page.
const INDEX_HTML: &str = include_str!("../assets/index.html");
/// hls.js as vendored by arcly-hls from its npm release (its
/// `assets/hls.js/` holds the licence, version and refresh script).
const HLS_JS: &[u8] = include_bytes!("../../arcly-hls/assets/hls.js/hls.min.js");

/// What the HTTP handlers share.
#[derive(Clone)]
pub struct HttpState {
    /// The engine.
    pub engine: Engine,
    /// Validated settings.
    pub settings: Arc<Settings>,
    /// `/metrics`, `/healthz`, `/readyz`.
    pub metrics: arcly_metrics::MetricsService,
    /// Live figures.
    pub monitor: Monitor,
    /// HLS packaging, when on.
    pub hls: Option<crate::hls::HlsHost>,
    /// The recorder, when a directory is configured.
    pub recorder: Option<arcly_record::Recorder>,
}

impl std::fmt::Debug for HttpState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpState").finish_non_exhaustive()
    }
}

/// Serve `listener` until `shutdown`; then stop accepting, let open
/// requests finish (streams end) within `grace`.
pub async fn serve(
    listener: TcpListener,
    state: HttpState,
    shutdown: CancellationToken,
    grace: Duration,
) {
    let limits = IngestLimits {
        max_connections: state.settings.limits.max_connections,
        max_connections_per_ip: state.settings.limits.max_connections_per_ip,
        ..IngestLimits::default()
    };
    let tracker = Arc::new(ConnectionTracker::default());
    // One grid for every HTTP-FLV player of this server.
    let merge = crate::httpflv::MergeClock::new(
        tokio::time::Instant::now(),
        state.settings.http_flv_merge_writes,
    );
    let mut conns = tokio::task::JoinSet::new();
    loop {
        let (tcp, peer) = tokio::select! {
            _ = shutdown.cancelled() => break,
            Some(_) = conns.join_next(), if !conns.is_empty() => continue,
            a = listener.accept() => match a {
                Ok(x) => x,
                Err(e) => {
                    tracing::warn!(error = %e, "http accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let permit = match tracker.try_acquire(peer.ip(), &limits) {
            Ok(p) => p,
            Err(e) => {
                tracing::info!(protocol = "http", %peer, reason = %e, "connection refused");
                continue;
            }
        };
        let _ = tcp.set_nodelay(true);
        let state = state.clone();
        let shutdown = shutdown.clone();
        conns.spawn(async move {
            let _permit = permit;
            let mut head = Vec::new();
            match tokio::time::timeout(HEADER_READ_TIMEOUT, read_head(&tcp, &mut head)).await {
                Ok(Ok(true)) => {}
                // Longer than a head we look into: hyper takes it (and its limits).
                Ok(Ok(false)) if head.len() >= SNIFF_LIMIT => {}
                // Closed, failed or timed out before a whole head.
                _ => return,
            }
            if let Some(flv) = direct_flv(&state, &head) {
                drop(head);
                play_flv_direct(&state, tcp, flv, peer, merge, shutdown).await;
                return;
            }
            // Boxed: an HTTP-FLV player's task does not carry hyper's state.
            Box::pin(serve_hyper(
                Rewind::new(head, tcp),
                state,
                peer,
                merge,
                shutdown,
            ))
            .await;
        });
    }
    drop(listener);
    if tokio::time::timeout(grace, async { while conns.join_next().await.is_some() {} })
        .await
        .is_err()
    {
        conns.abort_all();
    }
}

/// Most bytes of a request head read before the connection is handed to
/// hyper as it is (which then applies its own limits).
const SNIFF_LIMIT: usize = 8 * 1024;

/// Read from `tcp` into `buf` until it holds a whole request head (`true`),
/// [`SNIFF_LIMIT`] bytes, or the client closes (`false`).
async fn read_head(tcp: &TcpStream, buf: &mut Vec<u8>) -> std::io::Result<bool> {
    let mut scanned = 0usize;
    loop {
        if buf[scanned.saturating_sub(3)..]
            .windows(4)
            .any(|w| w == b"\r\n\r\n")
        {
            return Ok(true);
        }
        scanned = buf.len();
        if buf.len() >= SNIFF_LIMIT {
            return Ok(false);
        }
        buf.reserve((SNIFF_LIMIT - buf.len()).min(1024));
        match tcp.try_read_buf(buf) {
            Ok(0) => return Ok(false),
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => tcp.readable().await?,
            Err(e) => return Err(e),
        }
    }
}

/// An HTTP-FLV play request to serve outside hyper.
#[derive(Debug)]
struct FlvRequest {
    path: StreamPath,
    query: Option<String>,
}

/// `head` as a plain `GET /APP/KEY.flv` of a served app with no request
/// body, when HTTP-FLV is on; anything else (including what hyper answers
/// with an error) is `None` and goes to hyper.
fn direct_flv(state: &HttpState, head: &[u8]) -> Option<FlvRequest> {
    if !state.settings.http_flv {
        return None;
    }
    let mut headers = [httparse::EMPTY_HEADER; 48];
    let mut req = httparse::Request::new(&mut headers);
    if !matches!(req.parse(head), Ok(httparse::Status::Complete(_))) || req.method != Some("GET") {
        return None;
    }
    for h in req.headers.iter() {
        let body = h.name.eq_ignore_ascii_case("transfer-encoding")
            || (h.name.eq_ignore_ascii_case("content-length") && h.value.trim_ascii() != b"0");
        if body || h.name.eq_ignore_ascii_case("upgrade") {
            return None;
        }
    }
    let target = req.path?;
    let (path, query) = match target.split_once('?') {
        Some((p, q)) => (p, Some(q.to_owned())),
        None => (target, None),
    };
    let (app, key) = path.strip_prefix('/')?.split_once('/')?;
    let key = key.strip_suffix(".flv").filter(|k| !k.contains('/'))?;
    state.settings.app(app)?;
    let path = StreamPath::parse(app, key).ok()?;
    Some(FlvRequest { path, query })
}

/// Subscribe and stream straight on the socket, or answer the refusal.
async fn play_flv_direct(
    state: &HttpState,
    mut tcp: TcpStream,
    flv: FlvRequest,
    peer: SocketAddr,
    merge: crate::httpflv::MergeClock,
    shutdown: CancellationToken,
) {
    let req = PlayRequest {
        path: flv.path,
        query: flv.query,
        peer: Some(peer),
        protocol: crate::httpflv::PROTOCOL,
        wait_for_publisher: false,
    };
    match state.engine.subscribe(req).await {
        Ok(sub) => crate::httpflv::play_direct(tcp, sub, peer, merge, shutdown).await,
        Err(e) => {
            let status = play_error(&e);
            let msg = format!("{e}\n");
            let resp = format!(
                "HTTP/1.1 {} {}\r\nContent-Type: text/plain; charset=utf-8\r\n\
                 Access-Control-Allow-Origin: *\r\nContent-Length: {}\r\n\
                 Connection: close\r\n\r\n{msg}",
                status.as_u16(),
                status.canonical_reason().unwrap_or(""),
                msg.len()
            );
            let _ = tokio::time::timeout(HEADER_READ_TIMEOUT, tcp.write_all(resp.as_bytes())).await;
            let _ = tcp.shutdown().await;
        }
    }
}

/// A socket whose first reads replay bytes already read from it.
struct Rewind {
    pre: Bytes,
    io: TcpStream,
}

impl Rewind {
    fn new(pre: Vec<u8>, io: TcpStream) -> Self {
        Self {
            pre: Bytes::from(pre),
            io,
        }
    }
}

impl AsyncRead for Rewind {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        if !self.pre.is_empty() {
            let n = self.pre.len().min(buf.remaining());
            let pre = self.pre.split_to(n);
            buf.put_slice(&pre);
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl AsyncWrite for Rewind {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

/// Serve one connection with hyper.
async fn serve_hyper(
    tcp: Rewind,
    state: HttpState,
    peer: SocketAddr,
    merge: crate::httpflv::MergeClock,
    shutdown: CancellationToken,
) {
    let svc = hyper::service::service_fn(move |req| {
        let state = state.clone();
        async move { Ok::<_, std::convert::Infallible>(route(&state, req, peer, merge).await) }
    });
    let conn = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT)
        .serve_connection(TokioIo::new(tcp), svc);
    tokio::pin!(conn);
    tokio::select! {
        r = conn.as_mut() => {
            if let Err(e) = r {
                tracing::debug!(%peer, error = %e, "http connection ended");
            }
        }
        _ = shutdown.cancelled() => {
            conn.as_mut().graceful_shutdown();
            let _ = conn.await;
        }
    }
}

fn text(status: StatusCode, msg: impl Into<String>) -> Response<Body> {
    let mut r = Response::new(full(Bytes::from(msg.into() + "\n")));
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r
}

pub(crate) fn json(status: StatusCode, v: &impl serde::Serialize) -> Response<Body> {
    let body = serde_json::to_vec_pretty(v).unwrap_or_default();
    let mut r = Response::new(full(Bytes::from(body)));
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    r
}

pub(crate) fn error_json(status: StatusCode, msg: impl std::fmt::Display) -> Response<Body> {
    json(status, &serde_json::json!({ "error": msg.to_string() }))
}

/// The status a refused play maps to.
fn play_error(e: &StreamError) -> StatusCode {
    match e {
        StreamError::Unauthorized { .. } => StatusCode::FORBIDDEN,
        StreamError::StreamNotFound { .. } | StreamError::UnknownApp(_) => StatusCode::NOT_FOUND,
        StreamError::InvalidName { .. } => StatusCode::BAD_REQUEST,
        StreamError::TooManySubscribers { .. } | StreamError::ShuttingDown => {
            StatusCode::SERVICE_UNAVAILABLE
        }
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

/// Route one request (HTTP-FLV players merge their writes on `merge`).
pub async fn route(
    state: &HttpState,
    req: Request<Incoming>,
    peer: SocketAddr,
    merge: crate::httpflv::MergeClock,
) -> Response<Body> {
    let mut resp = route_inner(state, req, peer, merge).await;
    resp.headers_mut().insert(
        header::ACCESS_CONTROL_ALLOW_ORIGIN,
        HeaderValue::from_static("*"),
    );
    resp
}

async fn route_inner(
    state: &HttpState,
    req: Request<Incoming>,
    peer: SocketAddr,
    merge: crate::httpflv::MergeClock,
) -> Response<Body> {
    let path = req.uri().path().to_owned();
    let query = req.uri().query().map(str::to_owned);
    if let Some(r) = state.metrics.handle(&req).await {
        return r.map(crate::body::from_bytes_body);
    }
    if req.method() == Method::OPTIONS {
        let mut r = text(StatusCode::NO_CONTENT, "");
        r.headers_mut().insert(
            header::ACCESS_CONTROL_ALLOW_HEADERS,
            HeaderValue::from_static("authorization, content-type"),
        );
        r.headers_mut().insert(
            header::ACCESS_CONTROL_ALLOW_METHODS,
            HeaderValue::from_static("GET, POST, DELETE, OPTIONS"),
        );
        return r;
    }
    if path == "/api" || path.starts_with("/api/") {
        return crate::api::handle(state, &req, &path).await;
    }
    let is_get = req.method() == Method::GET || req.method() == Method::HEAD;
    match path.as_str() {
        "/" | "/index.html" if is_get => {
            let mut r = Response::new(full(Bytes::from_static(INDEX_HTML.as_bytes())));
            r.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/html; charset=utf-8"),
            );
            return r;
        }
        "/assets/hls.min.js" if is_get => {
            let mut r = Response::new(full(Bytes::from_static(HLS_JS)));
            r.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/javascript"),
            );
            r.headers_mut().insert(
                header::CACHE_CONTROL,
                HeaderValue::from_static("max-age=86400"),
            );
            return r;
        }
        "/favicon.ico" => return text(StatusCode::NOT_FOUND, "not found"),
        _ => {}
    }
    if !is_get {
        return text(StatusCode::METHOD_NOT_ALLOWED, "method not allowed");
    }
    // /APP/KEY.flv or /APP/KEY/<hls resource>
    let rest = path.trim_start_matches('/');
    let Some((app, tail)) = rest.split_once('/') else {
        return text(StatusCode::NOT_FOUND, "not found");
    };
    if state.settings.app(app).is_none() {
        return text(StatusCode::NOT_FOUND, format!("no application {app:?}"));
    }
    if let Some(key) = tail.strip_suffix(".flv").filter(|k| !k.contains('/')) {
        if !state.settings.http_flv {
            return text(StatusCode::NOT_FOUND, "HTTP-FLV is off");
        }
        return play_flv(state, app, key, query, peer, merge).await;
    }
    if let Some(hls) = &state.hls {
        if hls.owns(&path) {
            return hls.handle(&req, peer).await;
        }
    } else if tail.ends_with(".m3u8") || tail.contains('/') {
        return text(StatusCode::NOT_FOUND, "HLS is off");
    }
    text(StatusCode::NOT_FOUND, "not found")
}

async fn play_flv(
    state: &HttpState,
    app: &str,
    key: &str,
    query: Option<String>,
    peer: SocketAddr,
    merge: crate::httpflv::MergeClock,
) -> Response<Body> {
    let path = match StreamPath::parse(app, key) {
        Ok(p) => p,
        Err(e) => return text(StatusCode::BAD_REQUEST, e.to_string()),
    };
    let req = PlayRequest {
        path,
        query,
        peer: Some(peer),
        protocol: crate::httpflv::PROTOCOL,
        wait_for_publisher: false,
    };
    match state.engine.subscribe(req).await {
        Ok(sub) => {
            let body = crate::httpflv::stream(sub, peer, merge, state.engine.shutdown_token());
            let mut r = Response::new(body.boxed());
            let h = r.headers_mut();
            h.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("video/x-flv"),
            );
            h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
            r
        }
        Err(e) => text(play_error(&e), e.to_string()),
    }
}
