//! HLS and LL-HLS, mounted from arcly-hls: an
//! [`HlsRegistry`](arcly_hls::packager::HlsRegistry) packages every
//! published stream and the [`HlsService`] serves
//! `/APP/KEY/index.m3u8` (blocking reloads, delta updates), the
//! multivariant `/APP/KEY.m3u8`, segments, parts and init segments.
//!
//! What the server adds: packagers subscribe as the server's own machinery
//! (they do not pass through the play tokens or the `on_play` hook), and a
//! player's playlist request is authorized like any other play
//! (`index.m3u8?token=…`; one decision per address and stream is reused for
//! [`AUTH_CACHE_TTL`] so playlist reloads do not call the webhook each
//! time). Segment requests are not checked.

use crate::config::{HlsFormat, HlsSettings};
use arcly_core::auth::{AuthAction, AuthDecision, AuthRequest, StreamAuthenticator};
use arcly_core::bus::{StreamHandle, StreamStats, Subscription};
use arcly_core::engine::Engine;
use arcly_core::registry::{PlayRequest, PlaybackRegistry};
use arcly_core::{StreamError, StreamPath};
use arcly_hls::http::{HlsService, HttpConfig};
use arcly_hls::packager::{HlsRegistry, PackagerConfig};
use arcly_hls::stream::{HlsConfig, SegmentFormat};
use arcly_http::{from_bytes_body, full, Body, ConnInfo, HttpService, RequestBody, ResponseFuture};
use async_trait::async_trait;
use bytes::Bytes;
use hyper::{Request, Response, StatusCode};
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How long a play authorization of one address for one stream is reused.
pub const AUTH_CACHE_TTL: Duration = Duration::from_secs(30);
/// Bound on the authorization cache.
pub const MAX_AUTH_CACHE: usize = 4096;
/// A player counts as an HLS viewer for this long after its last playlist request.
pub const VIEWER_WINDOW: Duration = Duration::from_secs(10);
/// Bound on the viewers tracked.
pub const MAX_VIEWERS_TRACKED: usize = 65_536;
/// How long a clean stop waits for the playlists to be ended.
pub const FINISH_WAIT: Duration = Duration::from_secs(2);

/// The packagers' view of the engine: subscriptions straight on the stream,
/// without the player authorization.
struct OwnSubscriber(Engine);

#[async_trait]
impl PlaybackRegistry for OwnSubscriber {
    async fn subscribe(&self, req: PlayRequest) -> arcly_core::Result<Subscription> {
        match self.0.stream(&req.path) {
            Some(h) => h.subscribe(req.protocol),
            None => Err(StreamError::StreamNotFound {
                app: req.path.app.to_string(),
                stream: req.path.stream.to_string(),
            }),
        }
    }

    fn stream(&self, path: &StreamPath) -> Option<StreamHandle> {
        self.0.stream(path)
    }

    fn list_streams(&self) -> Vec<StreamStats> {
        self.0.list_streams()
    }
}

type AuthKey = (IpAddr, StreamPath, Option<String>);

/// HLS for every stream of an engine. Cheap to clone.
#[derive(Clone)]
pub struct HlsHost {
    service: HlsService,
    engine: Engine,
    registry: HlsRegistry,
    auth: Arc<dyn StreamAuthenticator>,
    auth_cache: Arc<Mutex<HashMap<AuthKey, Instant>>>,
    viewers: Arc<Mutex<HashMap<(IpAddr, StreamPath), Instant>>>,
}

impl std::fmt::Debug for HlsHost {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HlsHost")
            .field("registry", &self.registry)
            .finish_non_exhaustive()
    }
}

/// The packager settings for `s`.
pub fn packager_config(s: &HlsSettings) -> PackagerConfig {
    PackagerConfig {
        hls: HlsConfig {
            segment_target: s.segment,
            part_target: s.low_latency.then_some(s.part),
            window: s.window,
            format: match s.format {
                HlsFormat::Auto => SegmentFormat::Auto,
                HlsFormat::Ts => SegmentFormat::MpegTs,
                HlsFormat::Fmp4 => SegmentFormat::Fmp4,
            },
            ..HlsConfig::default()
        },
        unpublish_grace: s.end_after,
        ..PackagerConfig::default()
    }
}

impl HlsHost {
    /// Package every stream `engine` publishes, until it shuts down.
    pub fn start(engine: &Engine, cfg: &HlsSettings, auth: Arc<dyn StreamAuthenticator>) -> Self {
        let registry = HlsRegistry::new(
            Arc::new(OwnSubscriber(engine.clone())),
            packager_config(cfg),
        );
        let _follow = registry.follow(engine);
        Self {
            service: HlsService::new(registry.clone(), HttpConfig::default()),
            engine: engine.clone(),
            registry,
            auth,
            auth_cache: Arc::default(),
            viewers: Arc::default(),
        }
    }

    /// HLS players of `path`: addresses that requested its playlist within
    /// [`VIEWER_WINDOW`].
    pub fn viewers(&self, path: &StreamPath) -> u64 {
        let g = self.viewers.lock().unwrap_or_else(|e| e.into_inner());
        g.iter()
            .filter(|((_, p), t)| p == path && t.elapsed() < VIEWER_WINDOW)
            .count() as u64
    }

    fn seen(&self, peer: IpAddr, path: &StreamPath) {
        let mut g = self.viewers.lock().unwrap_or_else(|e| e.into_inner());
        if g.len() >= MAX_VIEWERS_TRACKED {
            g.retain(|_, t| t.elapsed() < VIEWER_WINDOW);
        }
        if g.len() < MAX_VIEWERS_TRACKED {
            g.insert((peer, path.clone()), Instant::now());
        }
    }

    /// Whether `path` is an HLS path.
    pub fn owns(&self, path: &str) -> bool {
        self.service.owns(path)
    }

    /// End every playlist with `EXT-X-ENDLIST` and wait (bounded) until
    /// they are.
    pub async fn finish(&self) {
        self.registry.shutdown();
        let packagers: Vec<_> = self
            .registry
            .paths()
            .iter()
            .filter_map(|p| self.registry.get(p))
            .collect();
        let _ = tokio::time::timeout(FINISH_WAIT, async {
            for p in packagers {
                p.finished().await;
            }
        })
        .await;
    }

    async fn authorize(
        &self,
        path: &StreamPath,
        query: Option<&str>,
        peer: SocketAddr,
    ) -> Result<(), String> {
        let token = query.and_then(|q| {
            q.split('&')
                .find_map(|kv| kv.strip_prefix("token="))
                .map(str::to_owned)
        });
        let key = (peer.ip(), path.clone(), token);
        let lock = || self.auth_cache.lock().unwrap_or_else(|e| e.into_inner());
        if lock()
            .get(&key)
            .is_some_and(|t| t.elapsed() < AUTH_CACHE_TTL)
        {
            return Ok(());
        }
        let req = AuthRequest {
            action: AuthAction::Play,
            app: path.app.clone(),
            stream: path.stream.clone(),
            query: query.map(str::to_owned),
            peer: Some(peer),
            protocol: "hls",
        };
        match self.auth.authorize(&req).await {
            AuthDecision::Allow => {
                let mut g = lock();
                g.retain(|_, t| t.elapsed() < AUTH_CACHE_TTL);
                if g.len() < MAX_AUTH_CACHE {
                    g.insert(key, Instant::now());
                }
                tracing::info!(target: "arcly::audit", event = "play", app = path.app.as_str(), stream = path.stream.as_str(), peer = %peer, protocol = "hls", "play started");
                Ok(())
            }
            AuthDecision::Deny(r) => {
                tracing::warn!(target: "arcly::audit", event = "denied", action = "play", app = path.app.as_str(), stream = path.stream.as_str(), peer = %peer, protocol = "hls", reason = %r, "play denied");
                Err(r)
            }
        }
    }

    /// Answer an HLS request (`owns` was true for its path).
    pub async fn handle<B>(&self, req: &Request<B>, peer: SocketAddr) -> Response<Body> {
        let path = req.uri().path();
        if path.ends_with(".m3u8") {
            let rest = path.trim_start_matches('/');
            let (app, tail) = rest.split_once('/').unwrap_or((rest, ""));
            let key = tail
                .split('/')
                .next()
                .unwrap_or("")
                .trim_end_matches(".m3u8");
            let sp = match StreamPath::parse(app, key) {
                Ok(p) => p,
                Err(e) => return plain(StatusCode::BAD_REQUEST, e.to_string()),
            };
            if let Err(reason) = self.authorize(&sp, req.uri().query(), peer).await {
                return plain(StatusCode::FORBIDDEN, format!("not authorized: {reason}"));
            }
            self.seen(peer.ip(), &sp);
        }
        self.service.respond(req).await.map(from_bytes_body)
    }
}

impl HttpService for HlsHost {
    fn name(&self) -> &'static str {
        "hls"
    }

    /// `GET`/`HEAD` of an HLS path of a served application.
    fn owns(&self, method: &hyper::Method, path: &str) -> bool {
        let get = method == hyper::Method::GET || method == hyper::Method::HEAD;
        let app = path.trim_start_matches('/').split('/').next().unwrap_or("");
        get && self.service.owns(path) && self.engine.has_app(app)
    }

    fn call(&self, req: Request<RequestBody>) -> ResponseFuture {
        let this = self.clone();
        Box::pin(async move {
            let peer = ConnInfo::peer_of(&req);
            this.handle(&req, peer).await
        })
    }
}

fn plain(status: StatusCode, msg: String) -> Response<Body> {
    let mut r = Response::new(full(Bytes::from(msg + "\n")));
    *r.status_mut() = status;
    r.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r
}
