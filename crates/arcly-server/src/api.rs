//! The JSON admin API (see [`crate::http`] for the paths).

use crate::body::Body;
use crate::http::{error_json, json, HttpState};
use arcly_core::StreamPath;
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};
use serde_json::json;

fn authorized(state: &HttpState, req: &Request<Incoming>) -> bool {
    let Some(want) = &state.settings.admin_token else {
        return true;
    };
    let got = req
        .headers()
        .get(hyper::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("");
    got.len() == want.len()
        && got
            .bytes()
            .zip(want.bytes())
            .fold(0u8, |a, (x, y)| a | (x ^ y))
            == 0
}

/// Answer one `/api/...` request.
pub async fn handle(state: &HttpState, req: &Request<Incoming>, path: &str) -> Response<Body> {
    if !authorized(state, req) {
        let mut r = error_json(StatusCode::UNAUTHORIZED, "admin token required");
        r.headers_mut().insert(
            hyper::header::WWW_AUTHENTICATE,
            hyper::header::HeaderValue::from_static("Bearer"),
        );
        return r;
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
fn view(state: &HttpState, s: &arcly_core::bus::StreamStats) -> crate::monitor::StreamView {
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

fn kick(state: &HttpState, path: &StreamPath) -> Response<Body> {
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

async fn record(state: &HttpState, path: &StreamPath, start: bool) -> Response<Body> {
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
