//! The HTTP side: [`MetricsService`] answers `/metrics`, `/healthz` and
//! `/readyz`. It is an [`arcly_http::HttpService`]: mount it on an
//! [`arcly_http::Router`] (alone, or beside a host's other services) and
//! serve that with [`arcly_http::serve`].
//!
//! # Mounting in another hyper server
//! A host with its own hyper 1.x server asks the service first and falls
//! through to its own routes when it answers `None`:
//!
//! ```no_run
//! # use arcly_metrics::MetricsService;
//! # use bytes::Bytes;
//! # use http_body_util::Full;
//! # use hyper::{Request, Response};
//! async fn route(
//!     telemetry: &MetricsService,
//!     req: Request<hyper::body::Incoming>,
//! ) -> Response<Full<Bytes>> {
//!     if let Some(resp) = telemetry.handle(&req).await {
//!         return resp;
//!     }
//!     // ... the host's own routes (HTTP-FLV, HLS, API) ...
//!     Response::new(Full::new(Bytes::from_static(b"not mine")))
//! }
//! ```
//!
//! The service never reads the request body, so it works with any body
//! type; responses are `Full<Bytes>` (map them with `http_body_util`'s
//! `BodyExt::boxed` if the host's body type differs).

use arcly_core::health::{HealthRegistry, HealthStatus, Readiness};
use bytes::Bytes;
use http_body_util::Full;
use hyper::header::{HeaderValue, ACCEPT, ALLOW, CACHE_CONTROL, CONTENT_TYPE};
use hyper::{Method, Request, Response, StatusCode};
use prometheus_client::registry::Registry;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

/// Content type of the OpenMetrics text exposition (OpenMetrics 1.0 §3.2
/// "Protocol Negotiation").
pub const OPENMETRICS_CONTENT_TYPE: &str =
    "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Content type of the classic Prometheus text format 0.0.4, served to
/// clients that accept `text/plain` but not OpenMetrics.
pub const PROMETHEUS_TEXT_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// The scrape path.
pub const METRICS_PATH: &str = "/metrics";
/// The liveness path: 200 while the process serves HTTP.
pub const HEALTHZ_PATH: &str = "/healthz";
/// The readiness path: 200 when every health check passes, 503 otherwise.
pub const READYZ_PATH: &str = "/readyz";

/// The response body type.
pub type Body = Full<Bytes>;

/// The telemetry endpoints: `/metrics`, `/healthz`, `/readyz`.
///
/// Cheap to clone (shared). Mount it as an [`arcly_http::HttpService`], or
/// ask it from a host's own router through [`handle`](MetricsService::handle).
#[derive(Clone)]
pub struct MetricsService {
    inner: Arc<ServiceInner>,
}

struct ServiceInner {
    registry: Arc<Registry>,
    health: HealthRegistry,
    /// When cancelled, `/readyz` answers 503 so load balancers drain first.
    draining: Option<CancellationToken>,
    /// Size of the last exposition, to size the next buffer.
    last_len: AtomicUsize,
}

impl std::fmt::Debug for MetricsService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MetricsService")
            .field("health", &self.inner.health)
            .finish_non_exhaustive()
    }
}

/// Which exposition format a scrape asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// OpenMetrics 1.0 text (the default).
    OpenMetrics,
    /// Prometheus text 0.0.4.
    PrometheusText,
}

impl Format {
    /// Choose from an `Accept` header: OpenMetrics unless the client names
    /// `text/plain` and not `application/openmetrics-text`.
    pub fn negotiate(accept: Option<&HeaderValue>) -> Self {
        let Some(accept) = accept.and_then(|v| v.to_str().ok()) else {
            return Self::OpenMetrics;
        };
        let accept = accept.to_ascii_lowercase();
        if !accept.contains("application/openmetrics-text") && accept.contains("text/plain") {
            Self::PrometheusText
        } else {
            Self::OpenMetrics
        }
    }

    /// The `Content-Type` of this format.
    pub fn content_type(self) -> &'static str {
        match self {
            Self::OpenMetrics => OPENMETRICS_CONTENT_TYPE,
            Self::PrometheusText => PROMETHEUS_TEXT_CONTENT_TYPE,
        }
    }
}

impl MetricsService {
    /// Serve `registry` on `/metrics` and `health`'s aggregate on `/readyz`
    /// (pass `engine.health().clone()`). Register every metric before
    /// wrapping the registry in the `Arc`.
    pub fn new(registry: Arc<Registry>, health: HealthRegistry) -> Self {
        Self {
            inner: Arc::new(ServiceInner {
                registry,
                health,
                draining: None,
                last_len: AtomicUsize::new(4096),
            }),
        }
    }

    /// Report not ready once `token` is cancelled (pass the engine's
    /// `shutdown_token()`), whatever the checks say, so traffic drains away
    /// while the engine finishes. Call before cloning the service.
    #[must_use]
    pub fn draining_on(self, token: CancellationToken) -> Self {
        let inner = match Arc::try_unwrap(self.inner) {
            Ok(mut inner) => {
                inner.draining = Some(token);
                inner
            }
            Err(shared) => ServiceInner {
                registry: Arc::clone(&shared.registry),
                health: shared.health.clone(),
                draining: Some(token),
                last_len: AtomicUsize::new(shared.last_len.load(Ordering::Relaxed)),
            },
        };
        Self {
            inner: Arc::new(inner),
        }
    }

    /// Whether `path` is one of this service's endpoints.
    pub fn owns(&self, path: &str) -> bool {
        matches!(path, METRICS_PATH | HEALTHZ_PATH | READYZ_PATH)
    }

    /// The response for `req` if its path is one of this service's, `None`
    /// otherwise (so a host router can fall through). Only `GET` and `HEAD`
    /// are allowed (405 otherwise); the body is never read.
    pub async fn handle<B>(&self, req: &Request<B>) -> Option<Response<Body>> {
        let path = req.uri().path();
        if !self.owns(path) {
            return None;
        }
        if req.method() != Method::GET && req.method() != Method::HEAD {
            let mut resp = text(
                StatusCode::METHOD_NOT_ALLOWED,
                "method not allowed\n".into(),
            );
            resp.headers_mut()
                .insert(ALLOW, HeaderValue::from_static("GET, HEAD"));
            return Some(resp);
        }
        Some(match path {
            METRICS_PATH => self.metrics(Format::negotiate(req.headers().get(ACCEPT))),
            HEALTHZ_PATH => text(StatusCode::OK, "ok\n".into()),
            _ => self.readyz().await,
        })
    }

    /// Like [`handle`](MetricsService::handle), with a 404 for other paths.
    pub async fn respond<B>(&self, req: &Request<B>) -> Response<Body> {
        match self.handle(req).await {
            Some(r) => r,
            None => text(StatusCode::NOT_FOUND, "not found\n".into()),
        }
    }

    /// The exposition of the registry in `format`.
    pub fn encode(&self, format: Format) -> String {
        let mut out = String::with_capacity(self.inner.last_len.load(Ordering::Relaxed) + 1024);
        let done = match format {
            Format::OpenMetrics => {
                prometheus_client::encoding::text::encode(&mut out, &self.inner.registry)
            }
            Format::PrometheusText => {
                prometheus_client::encoding::prometheus_text::encode(&mut out, &self.inner.registry)
            }
        };
        if let Err(e) = done {
            // Writing to a String cannot fail; a metric's own encoder could.
            tracing::error!(error = %e, "encoding the metrics failed");
        }
        self.inner.last_len.store(out.len(), Ordering::Relaxed);
        out
    }

    fn metrics(&self, format: Format) -> Response<Body> {
        let body = self.encode(format);
        let mut resp = Response::new(Full::new(Bytes::from(body)));
        let h = resp.headers_mut();
        h.insert(
            CONTENT_TYPE,
            HeaderValue::from_static(format.content_type()),
        );
        h.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
        resp
    }

    async fn readyz(&self) -> Response<Body> {
        if self
            .inner
            .draining
            .as_ref()
            .is_some_and(CancellationToken::is_cancelled)
        {
            return text(
                StatusCode::SERVICE_UNAVAILABLE,
                "not ready: shutting down\n".into(),
            );
        }
        let r = self.inner.health.readiness().await;
        let status = if r.ready {
            StatusCode::OK
        } else {
            StatusCode::SERVICE_UNAVAILABLE
        };
        text(status, readiness_report(&r))
    }
}

/// The `/readyz` body: a first line `ready` or `not ready: a, b` naming the
/// failing checks, then one line per check (`ok NAME` / `fail NAME: why`).
pub fn readiness_report(r: &Readiness) -> String {
    let mut s = String::new();
    if r.ready {
        s.push_str("ready\n");
    } else {
        let failing: Vec<&str> = r.failing().map(|c| c.name.as_str()).collect();
        let _ = writeln!(s, "not ready: {}", failing.join(", "));
    }
    for c in &r.checks {
        // One line per check whatever the reason holds.
        let name = c.name.replace(['\r', '\n'], " ");
        match &c.status {
            HealthStatus::Healthy => {
                let _ = writeln!(s, "ok {name}");
            }
            HealthStatus::Unhealthy(why) => {
                let _ = writeln!(s, "fail {name}: {}", why.replace(['\r', '\n'], " "));
            }
        }
    }
    s
}

fn text(status: StatusCode, body: String) -> Response<Body> {
    let mut resp = Response::new(Full::new(Bytes::from(body)));
    *resp.status_mut() = status;
    let h = resp.headers_mut();
    h.insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    h.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}

impl arcly_http::HttpService for MetricsService {
    fn name(&self) -> &'static str {
        "metrics"
    }

    fn owns(&self, _method: &Method, path: &str) -> bool {
        MetricsService::owns(self, path)
    }

    fn call(&self, req: Request<arcly_http::RequestBody>) -> arcly_http::ResponseFuture {
        let svc = self.clone();
        Box::pin(async move { svc.respond(&req).await.map(arcly_http::from_bytes_body) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn negotiation() {
        let om = HeaderValue::from_static(
            "application/openmetrics-text;version=1.0.0;q=0.5,text/plain;version=0.0.4;q=0.4,*/*;q=0.1",
        );
        assert_eq!(Format::negotiate(Some(&om)), Format::OpenMetrics);
        let plain = HeaderValue::from_static("text/plain");
        assert_eq!(Format::negotiate(Some(&plain)), Format::PrometheusText);
        assert_eq!(Format::negotiate(None), Format::OpenMetrics);
        let any = HeaderValue::from_static("*/*");
        assert_eq!(Format::negotiate(Some(&any)), Format::OpenMetrics);
    }

    #[tokio::test]
    async fn foreign_paths_fall_through() {
        let svc = MetricsService::new(Arc::new(Registry::default()), HealthRegistry::new());
        let req = Request::get("/live/cam.flv").body(()).unwrap();
        assert!(svc.handle(&req).await.is_none());
        assert_eq!(svc.respond(&req).await.status(), StatusCode::NOT_FOUND);
        let stop = CancellationToken::new();
        let svc = svc.draining_on(stop.clone());
        let ready = Request::get("/readyz").body(()).unwrap();
        assert_eq!(svc.respond(&ready).await.status(), StatusCode::OK);
        stop.cancel();
        assert_eq!(
            svc.respond(&ready).await.status(),
            StatusCode::SERVICE_UNAVAILABLE
        );
        let post = Request::post("/metrics").body(()).unwrap();
        let resp = svc.handle(&post).await.unwrap();
        assert_eq!(resp.status(), StatusCode::METHOD_NOT_ALLOWED);
        assert_eq!(resp.headers()[ALLOW], "GET, HEAD");
    }
}
