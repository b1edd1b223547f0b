//! The JSON admin API under `/api` (see [`crate::http`] for the paths), an
//! [`HttpService`].

use crate::admin::AdminGuard;
use crate::config::Settings;
use crate::hls::HlsHost;
use crate::monitor::Monitor;
use arcly_core::engine::Engine;
use arcly_core::StreamPath;
use arcly_http::{full, Body, ConnInfo, HttpService, RequestBody, ResponseFuture};
use bytes::Bytes;
use hyper::header::{self, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use serde_json::json;
use std::sync::Arc;

/// What the API reads and acts on. Cheap to clone.
#[derive(Clone)]
pub struct ApiService {
    /// The engine.
    pub engine: Engine,
    /// Validated settings.
    pub settings: Arc<Settings>,
    /// Live figures.
    pub monitor: Monitor,
    /// HLS packaging, when on (its viewers count in the figures).
    pub hls: Option<HlsHost>,
    /// The recorder, when a directory is configured.
    pub recorder: Option<arcly_record::Recorder>,
    /// Who may call it.
    pub guard: AdminGuard,
}

impl std::fmt::Debug for ApiService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiService").finish_non_exhaustive()
    }
}

impl ApiService {
    /// Whether `path` is under `/api`.
    pub fn is_api_path(path: &str) -> bool {
        path == "/api" || path.starts_with("/api/")
    }
}

impl HttpService for ApiService {
    fn name(&self) -> &'static str {
        "api"
    }

    fn owns(&self, _method: &Method, path: &str) -> bool {
        Self::is_api_path(path)
    }

    fn call(&self, req: Request<RequestBody>) -> ResponseFuture {
        let this = self.clone();
        Box::pin(async move {
            let path = req.uri().path().to_owned();
            handle(&this, &req, &path).await
        })
    }
}

/// A JSON response.
pub fn json(status: StatusCode, v: &impl serde::Serialize) -> Response<Body> {
    let body = serde_json::to_vec_pretty(v).unwrap_or_default();
    let mut r = Response::new(full(Bytes::from(body)));
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    r
}

/// `{"error": msg}` with `status`.
pub fn error_json(status: StatusCode, msg: impl std::fmt::Display) -> Response<Body> {
    json(status, &serde_json::json!({ "error": msg.to_string() }))
}

/// Answer one `/api/...` request.
async fn handle<B>(state: &ApiService, req: &Request<B>, path: &str) -> Response<Body> {
    if let Err(refusal) = state.guard.check(req) {
        tracing::info!(peer = %ConnInfo::peer_of(req), method = %req.method(), path, reason = refusal.message(), "admin API request refused");
        return AdminGuard::refuse(&refusal);
    }
    let parts: Vec<&str> = path
        .trim_start_matches("/api")
        .split('/')
        .filter(|s| !s.is_empty())
        .collect();
    let m = req.method();
    match parts.as_slice() {
        ["streams"] if m == Method::GET => {
            let list: Vec<_> = state
                .engine
                .list_streams()
                .iter()
                .filter(|s| s.live)
                .map(|s| view(state, s))
                .collect();
            json(StatusCode::OK, &json!({ "streams": list }))
        }
        ["server"] if m == Method::GET => json(
            StatusCode::OK,
            &json!({
                "version": env!("CARGO_PKG_VERSION"),
                "apps": state.settings.apps.iter().map(|a| &a.name).collect::<Vec<_>>(),
                "publishers": state.engine.publisher_count(),
                "streams": state.engine.stream_count(),
                "http_flv": state.settings.http_flv,
                "hls": state.settings.hls.enabled,
                "low_latency_hls": state.settings.hls.low_latency,
            }),
        ),
        ["streams", app, key, rest @ ..] => {
            let path = match StreamPath::parse(app, key) {
                Ok(p) => p,
                Err(e) => return error_json(StatusCode::BAD_REQUEST, e),
            };
            match (rest, m) {
                ([], &Method::GET) => match state.engine.stream_stats(&path) {
                    Some(s) => json(StatusCode::OK, &view(state, &s)),
                    None => error_json(StatusCode::NOT_FOUND, format!("stream {path} not found")),
                },
                (["kick"], &Method::POST | &Method::DELETE) => kick(state, &path),
                (["record"], &Method::POST) => record(state, &path, true).await,
                (["record"], &Method::DELETE) => record(state, &path, false).await,
                _ => error_json(StatusCode::NOT_FOUND, "no such API endpoint"),
            }
        }
        _ => error_json(StatusCode::NOT_FOUND, "no such API endpoint"),
    }
}

/// The monitor's view plus the HLS players, who do not subscribe to the bus.
fn view(state: &ApiService, s: &arcly_core::bus::StreamStats) -> crate::monitor::StreamView {
    let mut v = state.monitor.view(s);
    if let Some(hls) = &state.hls {
        let n = hls.viewers(&s.path);
        if n > 0 {
            v.viewers.insert("hls".into(), n);
            v.viewers_total += n;
        }
    }
    v
}

fn kick(state: &ApiService, path: &StreamPath) -> Response<Body> {
    use arcly_core::registry::PlaybackRegistry;
    let Some(stream) = PlaybackRegistry::stream(&state.engine, path) else {
        return error_json(StatusCode::NOT_FOUND, format!("stream {path} not found"));
    };
    let peer = stream.publisher().and_then(|p| p.peer);
    if !stream.kick_publisher() {
        return error_json(
            StatusCode::CONFLICT,
            format!("stream {path} has no publisher"),
        );
    }
    tracing::info!(stream = %path, peer = ?peer, "publisher kicked by the admin API");
    json(
        StatusCode::OK,
        &json!({ "kicked": true, "stream": path.to_string(), "publisher": peer.map(|p| p.to_string()) }),
    )
}

async fn record(state: &ApiService, path: &StreamPath, start: bool) -> Response<Body> {
    let Some(rec) = &state.recorder else {
        return error_json(
            StatusCode::CONFLICT,
            "recording is not configured (set --record-dir)",
        );
    };
    if start {
        match rec.start(path).await {
            Ok(started) => json(
                StatusCode::OK,
                &json!({ "recording": true, "already": !started }),
            ),
            Err(e) => error_json(StatusCode::FORBIDDEN, e),
        }
    } else {
        match rec.stop(path).await {
            Some(summary) => json(
                StatusCode::OK,
                &json!({
                    "recording": false,
                    "prefix": summary.prefix,
                    "segments": summary.stats.segments,
                    "bytes": summary.stats.bytes_written,
                }),
            ),
            None => error_json(
                StatusCode::NOT_FOUND,
                format!("{path} is not being recorded"),
            ),
        }
    }
}
