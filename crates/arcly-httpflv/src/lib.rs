//! HTTP-FLV playback: `GET /APP/KEY.flv` streams a live stream as FLV
//! (FLV 10.1 §E.2–§E.4): the file header, the sequence headers, the cached
//! GOP, then live tags, with timestamps rebased to start near zero.
//!
//! [`HttpFlvService`] is an [`arcly_http::HttpService`]: mount it on an
//! [`arcly_http::Router`] beside the other services. A plain `GET` is served
//! straight on the player's socket (one task per player, vectored writes,
//! no chunked framing); other requests for a `.flv` (`HEAD`, …) go through
//! hyper with a bounded streaming body. Either way a player reads from the
//! bus through a [`Subscription`](arcly_core::bus::Subscription), so a slow
//! player falls behind on the bus (and skips to the next keyframe there)
//! rather than buffering here. Writes are merged on a grid shared by every
//! player of the service ([`MergeClock`]), as RTMP players' are.
//!
//! The service depends on the kernel's
//! `PlaybackRegistry` (`arcly_core::registry`), not on the
//! engine: playing is authorized by whatever the registry does (tokens in
//! the query, webhooks).
//!
//! ```
//! use arcly_core::engine::{AppSpec, Engine};
//! use arcly_http::{HttpLimits, Router};
//! use arcly_httpflv::{HttpFlvConfig, HttpFlvService};
//! use std::sync::Arc;
//!
//! # tokio::runtime::Runtime::new().unwrap().block_on(async {
//! let engine = Engine::builder().application(AppSpec::new("live")).build();
//! let flv = HttpFlvService::new(Arc::new(engine.clone()), HttpFlvConfig::default());
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
//! let addr = listener.local_addr().unwrap();
//! let stop = engine.shutdown_token();
//! let host = tokio::spawn(arcly_http::serve(listener, Router::new().mount(flv), HttpLimits::default(), stop.clone()));
//!
//! // Nobody publishes live/cam: the player is told so.
//! use tokio::io::{AsyncReadExt, AsyncWriteExt};
//! let mut c = tokio::net::TcpStream::connect(addr).await.unwrap();
//! c.write_all(b"GET /live/cam.flv HTTP/1.1\r\nHost: x\r\n\r\n").await.unwrap();
//! let mut answer = String::new();
//! c.read_to_string(&mut answer).await.unwrap();
//! assert!(answer.starts_with("HTTP/1.1 404"), "{answer}");
//! stop.cancel();
//! host.await.unwrap();
//! # });
//! ```
#![forbid(unsafe_code)]

mod play;

pub use play::{
    play_direct, play_direct_bounded, stream, Feeder, MergeClock, StopReason, TagWriter,
    BUSY_BATCH_FRAMES, BUSY_DIVISOR, CHANNEL_BATCHES, DEFAULT_WRITE_TIMEOUT, DIRECT_RESPONSE_HEAD,
    MAX_BATCH_BYTES, MAX_BATCH_FRAMES, PROTOCOL,
};

use arcly_core::registry::{PlayRequest, PlaybackRegistry};
use arcly_core::{StreamError, StreamPath};
use arcly_http::{text, ConnInfo, HttpService, RequestBody, ResponseFuture, SocketFuture};
pub use arcly_rtmp::handler::TimeJitter;
use http_body_util::BodyExt;
use hyper::header::{HeaderValue, ACCESS_CONTROL_ALLOW_ORIGIN, CACHE_CONTROL, CONTENT_TYPE};
use hyper::{Method, Request, Response, StatusCode};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

/// How long writing a refusal to a player may take.
pub const REFUSAL_WRITE_TIMEOUT: Duration = Duration::from_secs(10);

/// Settings of the HTTP-FLV service.
#[derive(Debug, Clone)]
pub struct HttpFlvConfig {
    /// Players' writes are merged over this interval (0: every frame at
    /// once). The default is RTMP's,
    /// [`arcly_rtmp::handler::DEFAULT_MERGE_WRITES`].
    pub merge_writes: Duration,
    /// A player whose write makes no progress this long is dropped
    /// ([`DEFAULT_WRITE_TIMEOUT`] by default).
    pub write_timeout: Duration,
    /// How long a player stays when the publisher leaves, waiting for the
    /// next one (its body goes on with the next publisher's first keyframe
    /// and configuration); zero ends the body at once. The default is
    /// RTMP's, [`arcly_rtmp::handler::DEFAULT_REPUBLISH_GRACE`].
    pub republish_grace: Duration,
    /// How players' timestamps are corrected (SRS's `time_jitter`); the
    /// default is RTMP's, full correction.
    pub time_jitter: TimeJitter,
}

impl Default for HttpFlvConfig {
    fn default() -> Self {
        Self {
            merge_writes: arcly_rtmp::handler::DEFAULT_MERGE_WRITES,
            write_timeout: DEFAULT_WRITE_TIMEOUT,
            republish_grace: arcly_rtmp::handler::DEFAULT_REPUBLISH_GRACE,
            time_jitter: TimeJitter::Full,
        }
    }
}

/// `GET /APP/KEY.flv` for every stream of a [`PlaybackRegistry`]. Cheap to
/// clone.
#[derive(Clone)]
pub struct HttpFlvService {
    registry: Arc<dyn PlaybackRegistry>,
    merge: MergeClock,
    write_timeout: Duration,
    republish_grace: Duration,
    time_jitter: TimeJitter,
}

impl std::fmt::Debug for HttpFlvService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpFlvService")
            .field("merge", &self.merge)
            .finish_non_exhaustive()
    }
}

/// The `(app, key)` of an HTTP-FLV path `/APP/KEY.flv`.
pub fn flv_path(path: &str) -> Option<(&str, &str)> {
    let (app, key) = path.strip_prefix('/')?.split_once('/')?;
    let key = key.strip_suffix(".flv").filter(|k| !k.contains('/'))?;
    Some((app, key))
}

/// The HTTP status a refused play maps to.
pub fn play_error_status(e: &StreamError) -> StatusCode {
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

impl HttpFlvService {
    /// Serve the streams of `registry`, players merging their writes on one
    /// grid that starts now.
    pub fn new(registry: Arc<dyn PlaybackRegistry>, cfg: HttpFlvConfig) -> Self {
        Self {
            registry,
            merge: MergeClock::new(tokio::time::Instant::now(), cfg.merge_writes),
            write_timeout: cfg.write_timeout,
            republish_grace: cfg.republish_grace,
            time_jitter: cfg.time_jitter,
        }
    }

    /// A player's feeder of `sub`, with this service's settings.
    fn feeder(&self, sub: arcly_core::bus::Subscription) -> Feeder {
        Feeder::new(sub, self.merge)
            .with_republish_grace(self.republish_grace)
            .with_time_jitter(self.time_jitter)
    }

    /// The grid players' writes are merged on.
    pub fn merge_clock(&self) -> MergeClock {
        self.merge
    }

    /// The play request for `req` from `conn`, or the refusal. The
    /// credential comes from the query (`?token=…`) or, as the `token`
    /// parameter the authenticator reads, from `Authorization: Bearer`.
    fn request<B>(
        &self,
        req: &Request<B>,
        conn: Option<&ConnInfo>,
    ) -> Result<PlayRequest, (StatusCode, String)> {
        let uri = req.uri();
        let Some((app, key)) = flv_path(uri.path()) else {
            return Err((StatusCode::NOT_FOUND, "not found".into()));
        };
        if !self.registry.has_app(app) {
            return Err((StatusCode::NOT_FOUND, format!("no application {app:?}")));
        }
        let path =
            StreamPath::parse(app, key).map_err(|e| (StatusCode::BAD_REQUEST, e.to_string()))?;
        let bearer = req
            .headers()
            .get(hyper::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "));
        let query = match (uri.query().filter(|q| !q.is_empty()), bearer) {
            (Some(q), Some(b)) => Some(format!("{q}&token={b}")),
            (None, Some(b)) => Some(format!("token={b}")),
            (q, None) => q.map(str::to_owned),
        };
        Ok(PlayRequest {
            path,
            query,
            peer: conn.map(|c| c.peer),
            protocol: PROTOCOL,
            wait_for_publisher: false,
        })
    }

    /// Answer a play request through hyper (a `HEAD`, or a `GET` the host
    /// did not hand over).
    async fn answer(&self, req: Request<RequestBody>) -> Response<arcly_http::Body> {
        let this = self;
        let conn = ConnInfo::of(&req).cloned();
        let play = match this.request(&req, conn.as_ref()) {
            Ok(p) => p,
            Err((status, msg)) => return text(status, msg),
        };
        let peer = play.peer.unwrap_or_else(|| ConnInfo::peer_of(&req));
        match this.registry.subscribe(play).await {
            Ok(sub) => {
                let shutdown = conn.map(|c| c.shutdown).unwrap_or_default();
                let body = stream(this.feeder(sub), peer, shutdown);
                let mut r = Response::new(body.boxed());
                let h = r.headers_mut();
                h.insert(CONTENT_TYPE, HeaderValue::from_static("video/x-flv"));
                h.insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
                r
            }
            Err(e) => text(play_error_status(&e), e.to_string()),
        }
    }
}

impl HttpService for HttpFlvService {
    fn name(&self) -> &'static str {
        PROTOCOL
    }

    fn owns(&self, method: &Method, path: &str) -> bool {
        (method == Method::GET || method == Method::HEAD) && flv_path(path).is_some()
    }

    fn call(&self, req: Request<RequestBody>) -> ResponseFuture {
        let this = self.clone();
        Box::pin(async move {
            let mut r = this.answer(req).await;
            // Any page may play a stream (its credential is in the URL).
            r.headers_mut()
                .insert(ACCESS_CONTROL_ALLOW_ORIGIN, HeaderValue::from_static("*"));
            r
        })
    }

    fn wants_socket(&self, head: &Request<()>) -> bool {
        head.method() == Method::GET
    }

    fn serve_socket(&self, head: Request<()>, mut tcp: TcpStream, conn: ConnInfo) -> SocketFuture {
        let this = self.clone();
        Box::pin(async move {
            let refusal = match this.request(&head, Some(&conn)) {
                Ok(play) => match this.registry.subscribe(play).await {
                    Ok(sub) => {
                        return play_direct_bounded(
                            tcp,
                            this.feeder(sub),
                            conn.peer,
                            conn.shutdown,
                            this.write_timeout,
                        )
                        .await
                    }
                    Err(e) => (play_error_status(&e), e.to_string()),
                },
                Err(refused) => refused,
            };
            let (status, msg) = refusal;
            let msg = format!("{msg}\n");
            let resp = format!(
                "HTTP/1.1 {} {}\r\nContent-Type: text/plain; charset=utf-8\r\n\
                 Access-Control-Allow-Origin: *\r\nContent-Length: {}\r\n\
                 Connection: close\r\n\r\n{msg}",
                status.as_u16(),
                status.canonical_reason().unwrap_or(""),
                msg.len()
            );
            let _ =
                tokio::time::timeout(REFUSAL_WRITE_TIMEOUT, tcp.write_all(resp.as_bytes())).await;
            let _ = tcp.shutdown().await;
        })
    }
}
