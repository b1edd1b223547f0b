//! The one HTTP listener and what is mounted on it, in this order:
//!
//! | path | what | service |
//! |---|---|---|
//! | `GET /metrics`, `/healthz`, `/readyz` | telemetry | [`arcly_metrics::MetricsService`] |
//! | `OPTIONS` anything | CORS preflight | [`Preflight`] |
//! | `GET /api/streams` | every stream (JSON) | [`ApiService`] |
//! | `GET /api/streams/APP/KEY` | one stream | |
//! | `POST`/`DELETE /api/streams/APP/KEY/kick` | disconnect the publisher | |
//! | `POST`/`DELETE /api/streams/APP/KEY/record` | start / stop recording | |
//! | `POST /api/reload` | reload the configuration | [`crate::reload::ReloadService`] |
//! | `GET /api/recordings`, `DELETE /api/recordings/APP/KEY/ID`, `GET /APP/KEY/recordings/…` | recordings: list, delete, play back, download | [`arcly_record::http::RecordingsService`] |
//! | `GET /` | the web page: live streams, figures, a player each | [`PageService`] |
//! | `GET /assets/hls.min.js` | hls.js (vendored by arcly-hls) | |
//! | `GET /APP/KEY.flv` | HTTP-FLV | [`arcly_httpflv::HttpFlvService`] |
//! | `GET /APP/KEY/index.m3u8`, `/APP/KEY.m3u8` and segments | HLS / LL-HLS | [`crate::hls::HlsHost`] |
//! | anything else | 404 / 405 saying why | [`Fallback`] |
//!
//! The listener loop is [`arcly_http::serve`]: connections bounded in total
//! and per address, a header read timeout, a graceful stop. A plain `GET`
//! of a `.flv` is served outside hyper, straight on the socket.
//!
//! The API and `/metrics` answer only this machine unless an admin token
//! is set, and then only with `Authorization: Bearer TOKEN`
//! ([`AdminGuard`]); with `admin.listen` the API moves to a listener of its
//! own ([`admin_router`]). Media paths allow any origin (CORS); the API
//! sends no CORS headers.

use crate::admin::AdminGuard;
use crate::api::ApiService;
use crate::config::Settings;
use crate::hls::HlsHost;
use crate::page::PageService;
use arcly_core::registry::PlaybackRegistry;
use arcly_http::{text, HttpLimits, HttpService, RequestBody, ResponseFuture, Router};
use arcly_httpflv::{HttpFlvConfig, HttpFlvService};
use hyper::header::{self, HeaderValue};
use hyper::{Method, Request, StatusCode};
use std::sync::Arc;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// What the HTTP listener serves.
#[derive(Debug)]
pub struct Mounts {
    /// `/metrics`, `/healthz`, `/readyz`.
    pub metrics: arcly_metrics::MetricsService,
    /// The admin API.
    pub api: ApiService,
    /// HLS, when on.
    pub hls: Option<HlsHost>,
    /// `POST /api/reload`.
    pub reload: crate::reload::ReloadService,
    /// Recordings over HTTP, when a recording directory is configured.
    pub recordings: Option<arcly_record::http::RecordingsService>,
}

/// The router of the admin listener (`admin.listen`): the API (with
/// `/api/recordings` when recording, and `/api/reload`) and the telemetry,
/// behind the same [`AdminGuard`].
pub fn admin_router(
    metrics: arcly_metrics::MetricsService,
    api: ApiService,
    reload: crate::reload::ReloadService,
    recordings: Option<arcly_record::http::RecordingsService>,
) -> Router {
    let guard = api.guard.clone();
    let mut r = Router::new().mount(Guarded {
        inner: metrics,
        guard,
    });
    if let Some(rec) = recordings {
        r = r.mount(rec.api(true));
    }
    r.mount(reload).mount(api)
}

/// The router of the server's HTTP listener (see the module docs for the
/// order). The API is mounted here unless `admin.listen` sets it apart.
pub fn router(settings: &Settings, mounts: Mounts) -> Router {
    let registry: Arc<dyn PlaybackRegistry> = Arc::new(mounts.api.engine.clone());
    let guard = mounts.api.guard.clone();
    let mut r = Router::new()
        .mount(Guarded {
            inner: mounts.metrics,
            guard,
        })
        .mount(Preflight);
    if let Some(rec) = mounts.recordings {
        r = r.mount(rec);
    }
    if settings.admin_listen.is_none() {
        r = r.mount(mounts.reload).mount(mounts.api);
    }
    r = r.mount(PageService);
    if settings.http_flv {
        r = r.mount(HttpFlvService::new(
            registry,
            HttpFlvConfig {
                merge_writes: settings.http_flv_merge_writes,
                write_timeout: settings.http_write_timeout,
                republish_grace: settings.republish_grace,
                time_jitter: crate::rtmp::time_jitter(settings.time_jitter),
            },
        ));
    }
    if let Some(hls) = mounts.hls {
        r = r.mount(hls);
    }
    r.mount(Fallback {
        apps: settings.apps.iter().map(|a| a.name.clone()).collect(),
        http_flv: settings.http_flv,
        hls: settings.hls.enabled,
        admin_apart: settings.admin_listen.is_some(),
    })
}

/// A service whose `/metrics` answers only what the [`AdminGuard`] lets
/// through (its series name every stream); `/healthz` and `/readyz` stay
/// open for load balancers.
#[derive(Debug, Clone)]
pub struct Guarded {
    inner: arcly_metrics::MetricsService,
    guard: AdminGuard,
}

impl HttpService for Guarded {
    fn name(&self) -> &'static str {
        "metrics"
    }

    fn owns(&self, method: &Method, path: &str) -> bool {
        HttpService::owns(&self.inner, method, path)
    }

    fn call(&self, req: Request<RequestBody>) -> ResponseFuture {
        if req.uri().path() == arcly_metrics::http::METRICS_PATH {
            if let Err(r) = self.guard.check(&req) {
                return Box::pin(async move { AdminGuard::refuse(&r) });
            }
        }
        HttpService::call(&self.inner, req)
    }
}

/// The bounds of every HTTP(S) listener, from the settings.
pub fn limits(settings: &Settings) -> HttpLimits {
    HttpLimits {
        max_connections: settings.limits.max_connections,
        max_connections_per_ip: settings.limits.max_connections_per_ip,
        shutdown_grace: settings.shutdown_grace,
        header_read_timeout: settings.http_header_timeout,
        write_timeout: settings.http_write_timeout,
        ..HttpLimits::default()
    }
}

/// Serve `router` on `listener` until `stop` is cancelled.
pub fn spawn(
    listener: TcpListener,
    router: Router,
    settings: &Settings,
    stop: CancellationToken,
) -> JoinHandle<()> {
    tokio::spawn(arcly_http::serve(listener, router, limits(settings), stop))
}

/// Answers `OPTIONS` (CORS preflight) for the media paths: any origin may
/// play. Not for `/api`, which no other site's page may call.
#[derive(Debug, Clone, Copy)]
pub struct Preflight;

impl HttpService for Preflight {
    fn name(&self) -> &'static str {
        "preflight"
    }

    fn owns(&self, method: &Method, path: &str) -> bool {
        method == Method::OPTIONS && !ApiService::is_api_path(path)
    }

    fn call(&self, _req: Request<RequestBody>) -> ResponseFuture {
        Box::pin(async {
            let mut r = text(StatusCode::NO_CONTENT, "");
            r.headers_mut().insert(
                header::ACCESS_CONTROL_ALLOW_ORIGIN,
                HeaderValue::from_static("*"),
            );
            r.headers_mut().insert(
                header::ACCESS_CONTROL_ALLOW_HEADERS,
                HeaderValue::from_static("authorization, content-type"),
            );
            r.headers_mut().insert(
                header::ACCESS_CONTROL_ALLOW_METHODS,
                HeaderValue::from_static("GET, HEAD, OPTIONS"),
            );
            r
        })
    }
}

/// What no other service owns: 405 for other methods, 404 saying what is
/// missing (the application, HTTP-FLV, HLS) for the rest.
#[derive(Debug, Clone)]
pub struct Fallback {
    apps: Vec<String>,
    http_flv: bool,
    hls: bool,
    admin_apart: bool,
}

impl Fallback {
    fn answer(&self, method: &Method, path: &str) -> (StatusCode, String) {
        if self.admin_apart && ApiService::is_api_path(path) {
            return (
                StatusCode::NOT_FOUND,
                "the admin API is served on the admin listener (admin.listen)".into(),
            );
        }
        if method != Method::GET && method != Method::HEAD {
            return (StatusCode::METHOD_NOT_ALLOWED, "method not allowed".into());
        }
        let rest = path.trim_start_matches('/');
        let Some((app, tail)) = rest.split_once('/') else {
            return (StatusCode::NOT_FOUND, "not found".into());
        };
        if !self.apps.iter().any(|a| a == app) {
            return (StatusCode::NOT_FOUND, format!("no application {app:?}"));
        }
        if !self.http_flv && tail.ends_with(".flv") && !tail.contains('/') {
            return (StatusCode::NOT_FOUND, "HTTP-FLV is off".into());
        }
        if !self.hls && (tail.ends_with(".m3u8") || tail.contains('/')) {
            return (StatusCode::NOT_FOUND, "HLS is off".into());
        }
        (StatusCode::NOT_FOUND, "not found".into())
    }
}

impl HttpService for Fallback {
    fn name(&self) -> &'static str {
        "fallback"
    }

    fn owns(&self, _method: &Method, _path: &str) -> bool {
        true
    }

    fn call(&self, req: Request<RequestBody>) -> ResponseFuture {
        let (status, msg) = self.answer(req.method(), req.uri().path());
        Box::pin(async move { text(status, msg) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fallback_says_what_is_missing() {
        let f = Fallback {
            apps: vec!["live".into()],
            http_flv: false,
            hls: false,
            admin_apart: true,
        };
        let get = Method::GET;
        assert_eq!(
            f.answer(&Method::POST, "/live/a.flv").0,
            StatusCode::METHOD_NOT_ALLOWED
        );
        assert_eq!(f.answer(&get, "/x/a.flv").1, "no application \"x\"");
        assert_eq!(f.answer(&get, "/live/a.flv").1, "HTTP-FLV is off");
        assert_eq!(f.answer(&get, "/live/a/index.m3u8").1, "HLS is off");
        assert_eq!(f.answer(&get, "/nothing").1, "not found");
        assert_eq!(f.answer(&get, "/api/streams").0, StatusCode::NOT_FOUND);
    }
}
