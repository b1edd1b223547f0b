//! HLS and LL-HLS delivery: one [`HlsStream`] segmenter per published
//! stream, fed from the bus, served at `/APP/KEY/index.m3u8` with its
//! segments, parts and init segments beside it.
//!
//! A packager starts when a stream is published and keeps its subscription
//! across a republish (the segmenter marks the discontinuity). When the
//! publisher is gone for longer than `hls.end_after_seconds`, or the server
//! stops, the playlist is ended with `EXT-X-ENDLIST` and stays readable for
//! [`ENDED_LINGER`].
//!
//! Blocking playlist reloads (`_HLS_msn`, `_HLS_part`, RFC 8216bis §6.2.5.2)
//! and delta updates (`_HLS_skip`, §6.2.5.1) are honoured in LL-HLS mode. A
//! play token is checked on the playlist request (`index.m3u8?token=…`);
//! segment requests are not checked.

use crate::body::{full, Body};
use crate::config::{HlsFormat, HlsSettings};
use arcly_core::auth::{AuthAction, AuthDecision, AuthRequest, StreamAuthenticator};
use arcly_core::engine::Engine;
use arcly_core::events::EngineEvent;
use arcly_core::registry::PlaybackRegistry;
use arcly_core::{FrameType, StreamError, StreamPath};
use arcly_hls::stream::{HlsConfig, HlsStream, SegmentFormat};
use bytes::Bytes;
use hyper::header::{self, HeaderValue};
use hyper::{Response, StatusCode};
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::broadcast::error::RecvError;
use tokio::task::JoinHandle;

/// The protocol name of the packager's subscription.
pub const PROTOCOL: &str = "hls-packager";
/// How long an ended playlist stays readable.
pub const ENDED_LINGER: Duration = Duration::from_secs(60);
/// How long a play authorization of one address for one stream is reused.
pub const AUTH_CACHE_TTL: Duration = Duration::from_secs(30);
/// Bound on the authorization cache.
pub const MAX_AUTH_CACHE: usize = 4096;
/// Longest a first playlist request waits for the first segment.
pub const MAX_FIRST_WAIT: Duration = Duration::from_secs(10);

struct Packager {
    stream: Arc<Mutex<HlsStream>>,
    task: JoinHandle<()>,
    ended_at: Arc<Mutex<Option<Instant>>>,
}

#[derive(Default)]
struct Shared {
    streams: HashMap<StreamPath, Packager>,
    auth_cache: HashMap<(IpAddr, StreamPath, Option<String>), Instant>,
}

/// HLS for every stream of an engine. Cheap to clone.
#[derive(Clone)]
pub struct HlsHost {
    engine: Engine,
    cfg: HlsSettings,
    auth: Arc<dyn StreamAuthenticator>,
    shared: Arc<Mutex<Shared>>,
}

impl std::fmt::Debug for HlsHost {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HlsHost")
            .field("cfg", &self.cfg)
            .finish_non_exhaustive()
    }
}

fn hls_config(s: &HlsSettings) -> HlsConfig {
    HlsConfig {
        segment_target: s.segment,
        part_target: s.low_latency.then_some(s.part),
        window: s.window,
        format: match s.format {
            HlsFormat::Auto => SegmentFormat::Auto,
            HlsFormat::Ts => SegmentFormat::MpegTs,
            HlsFormat::Fmp4 => SegmentFormat::Fmp4,
        },
        ..HlsConfig::default()
    }
}

impl HlsHost {
    /// Package every stream `engine` publishes, from now until it shuts down.
    pub fn start(engine: &Engine, cfg: HlsSettings, auth: Arc<dyn StreamAuthenticator>) -> Self {
        let host = Self {
            engine: engine.clone(),
            cfg,
            auth,
            shared: Arc::default(),
        };
        let mut events = engine.events().subscribe();
        let shutdown = engine.shutdown_token();
        let h = host.clone();
        tokio::spawn(async move {
            let mut sweep = tokio::time::interval(Duration::from_secs(5));
            loop {
                tokio::select! {
                    _ = shutdown.cancelled() => break,
                    _ = sweep.tick() => h.sweep(),
                    ev = events.recv() => match ev {
                        Ok(EngineEvent::Published { path, .. }) => h.ensure(&path).await,
                        Ok(_) => {}
                        Err(RecvError::Lagged(_)) => {
                            for s in h.engine.list_streams() {
                                if s.live { h.ensure(&s.path).await; }
                            }
                        }
                        Err(RecvError::Closed) => break,
                    },
                }
            }
        });
        host
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Shared> {
        self.shared.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Forget ended playlists after their linger time and stale auth entries.
    fn sweep(&self) {
        let now = Instant::now();
        let mut g = self.lock();
        g.streams.retain(|_, p| {
            let ended = *p.ended_at.lock().unwrap_or_else(|e| e.into_inner());
            !matches!(ended, Some(t) if now.duration_since(t) > ENDED_LINGER)
        });
        g.auth_cache
            .retain(|_, t| now.duration_since(*t) < AUTH_CACHE_TTL);
    }

    /// Wait until every packager has ended its playlist (after shutdown).
    pub async fn finish(&self) {
        let tasks: Vec<JoinHandle<()>> = {
            let mut g = self.lock();
            g.streams
                .values_mut()
                .map(|p| std::mem::replace(&mut p.task, tokio::spawn(async {})))
                .collect()
        };
        for t in tasks {
            let _ = t.await;
        }
    }

    async fn ensure(&self, path: &StreamPath) {
        if self
            .lock()
            .streams
            .get(path)
            .is_some_and(|p| !p.task.is_finished())
        {
            return;
        }
        // The packager is the server's own subscriber: it bypasses the
        // authenticator by subscribing to the stream handle directly.
        let sub = match self.engine.stream(path) {
            Some(h) => h.subscribe(PROTOCOL),
            None => Err(StreamError::StreamNotFound {
                app: path.app.to_string(),
                stream: path.stream.to_string(),
            }),
        };
        let mut sub = match sub {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(stream = %path, error = %e, "HLS packaging not started");
                return;
            }
        };
        let stream = Arc::new(Mutex::new(HlsStream::new(hls_config(&self.cfg))));
        let ended_at = Arc::new(Mutex::new(None));
        let (s2, e2) = (Arc::clone(&stream), Arc::clone(&ended_at));
        let shutdown = self.engine.shutdown_token();
        let grace = self.cfg.end_after;
        let p2 = path.clone();
        let task = tokio::spawn(async move {
            let mut gone_since: Option<tokio::time::Instant> = None;
            loop {
                let deadline = gone_since.map(|t| t + grace);
                let r = tokio::select! {
                    biased;
                    _ = shutdown.cancelled() => break,
                    _ = async { match deadline {
                        Some(d) => tokio::time::sleep_until(d).await,
                        None => std::future::pending().await,
                    } } => break,
                    r = sub.recv() => r,
                };
                match r {
                    Ok(f) => {
                        if f.is_end_of_stream() && f.frame_type == FrameType::Data {
                            gone_since = Some(tokio::time::Instant::now());
                        } else {
                            gone_since = None;
                        }
                        let res = s2.lock().unwrap_or_else(|e| e.into_inner()).push(&f);
                        if let Err(e) = res {
                            tracing::warn!(stream = %p2, error = %e, "HLS packaging failed");
                            break;
                        }
                    }
                    Err(e) => {
                        if !matches!(e, StreamError::StreamClosed) {
                            tracing::warn!(stream = %p2, error = %e, "HLS packager fell behind");
                        }
                        break;
                    }
                }
            }
            s2.lock().unwrap_or_else(|e| e.into_inner()).end();
            *e2.lock().unwrap_or_else(|e| e.into_inner()) = Some(Instant::now());
            tracing::debug!(stream = %p2, "HLS playlist ended");
        });
        self.lock().streams.insert(
            path.clone(),
            Packager {
                stream,
                task,
                ended_at,
            },
        );
    }

    fn stream(&self, path: &StreamPath) -> Option<Arc<Mutex<HlsStream>>> {
        self.lock().streams.get(path).map(|p| Arc::clone(&p.stream))
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
        if self
            .lock()
            .auth_cache
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
                let mut g = self.lock();
                if g.auth_cache.len() < MAX_AUTH_CACHE {
                    g.auth_cache.insert(key, Instant::now());
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

    /// Answer a request for `resource` (`index.m3u8`, a segment, a part, an
    /// init segment) of `path`.
    pub async fn handle(
        &self,
        path: &StreamPath,
        resource: &str,
        query: Option<&str>,
        peer: SocketAddr,
    ) -> Response<Body> {
        let Some(stream) = self.stream(path) else {
            return plain(StatusCode::NOT_FOUND, format!("stream {path} is not live"));
        };
        if resource == "index.m3u8" {
            if let Err(reason) = self.authorize(path, query, peer).await {
                return plain(StatusCode::FORBIDDEN, format!("not authorized: {reason}"));
            }
            return self.playlist(&stream, query).await;
        }
        // A part announced by a preload hint may be requested before it
        // exists: hold the request until it does (LL-HLS), briefly.
        let wait = if self.cfg.low_latency {
            self.cfg.part * 3 + Duration::from_secs(1)
        } else {
            Duration::ZERO
        };
        let deadline = tokio::time::Instant::now() + wait;
        let mut rx = stream.lock().unwrap_or_else(|e| e.into_inner()).subscribe();
        loop {
            let found = stream
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .resource(resource);
            if let Some((bytes, ct)) = found {
                return media(bytes, ct);
            }
            if tokio::time::timeout_at(deadline, rx.changed())
                .await
                .is_err()
                || rx.borrow().ended
            {
                return plain(
                    StatusCode::NOT_FOUND,
                    format!("{resource} is not available"),
                );
            }
        }
    }

    async fn playlist(
        &self,
        stream: &Arc<Mutex<HlsStream>>,
        query: Option<&str>,
    ) -> Response<Body> {
        let param = |name: &str| {
            query.and_then(|q| {
                q.split('&').find_map(|kv| {
                    let (k, v) = kv.split_once('=')?;
                    (k == name).then(|| v.to_owned())
                })
            })
        };
        let ll = self.cfg.low_latency;
        let msn: Option<u64> = if ll {
            param("_HLS_msn").and_then(|v| v.parse().ok())
        } else {
            None
        };
        let part: Option<u64> = if ll {
            param("_HLS_part").and_then(|v| v.parse().ok())
        } else {
            None
        };
        let skip = ll && matches!(param("_HLS_skip").as_deref(), Some("YES" | "v2"));
        let mut rx = stream.lock().unwrap_or_else(|e| e.into_inner()).subscribe();
        let seg = self.cfg.segment;
        if let Some(m) = msn {
            // §6.2.5.2: a request too far ahead is refused.
            let now = rx.borrow().msn;
            if m > now + 2 {
                return plain(StatusCode::BAD_REQUEST, "_HLS_msn is too far in the future");
            }
        }
        let deadline = tokio::time::Instant::now()
            + if msn.is_some() {
                seg * 3
            } else {
                (seg * 3).min(MAX_FIRST_WAIT)
            };
        loop {
            {
                let s = stream.lock().unwrap_or_else(|e| e.into_inner());
                let ready = match msn {
                    Some(m) => s.is_ready(m, part),
                    None => true,
                };
                if ready {
                    if let Some(text) = s.playlist(skip) {
                        let mut r = Response::new(full(Bytes::from(text)));
                        r.headers_mut().insert(
                            header::CONTENT_TYPE,
                            HeaderValue::from_static("application/vnd.apple.mpegurl"),
                        );
                        r.headers_mut()
                            .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
                        return r;
                    }
                }
            }
            if tokio::time::timeout_at(deadline, rx.changed())
                .await
                .is_err()
            {
                let s = stream.lock().unwrap_or_else(|e| e.into_inner());
                return match s.playlist(skip) {
                    Some(_) => plain(
                        StatusCode::SERVICE_UNAVAILABLE,
                        "the requested segment or part did not arrive in time",
                    ),
                    None => plain(StatusCode::NOT_FOUND, "no segment is ready yet"),
                };
            }
        }
    }
}

fn plain(status: StatusCode, msg: impl Into<String>) -> Response<Body> {
    let mut r = Response::new(full(Bytes::from(msg.into() + "\n")));
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r
}

fn media(b: Bytes, ct: &'static str) -> Response<Body> {
    let mut r = Response::new(full(b));
    r.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(ct));
    r.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("max-age=60"),
    );
    r
}
