//! HTTP delivery: a hyper 1.x service over an [`HlsRegistry`].
//!
//! | path | what |
//! |---|---|
//! | `/{app}/{stream}.m3u8` | multivariant playlist (one rendition for now) |
//! | `/{app}/{stream}/index.m3u8` | media playlist; `_HLS_msn`, `_HLS_part`, `_HLS_skip` |
//! | `/{app}/{stream}/{seg,part,init}…` | segments, parts, init segments from memory |
//!
//! Everything is served from memory as `Bytes` clones (a slow client holds
//! a reference to a segment, never a copy). Playlists are `no-cache`,
//! media is immutable (its URIs carry a per-session tag). Every response
//! allows any origin (CORS), and `OPTIONS` answers preflights.
//!
//! # Mounting
//! [`HlsService`] is an [`arcly_http::HttpService`]: mount it on the host's
//! [`arcly_http::Router`]. A host with its own hyper router asks it first:
//! ```no_run
//! # async fn host(hls: arcly_hls::http::HlsService,
//! #   req: hyper::Request<hyper::body::Incoming>) -> hyper::Response<arcly_hls::http::Body> {
//! if let Some(resp) = hls.handle(&req).await {
//!     return resp;
//! }
//! // … the host's own routes …
//! # unimplemented!()
//! # }
//! ```

use crate::packager::{HlsRegistry, Packager};
use crate::stream::{Position, Resource};
use arcly_core::StreamPath;
use bytes::Bytes;
use http_body_util::Full;
use hyper::header::{
    HeaderValue, ACCESS_CONTROL_ALLOW_HEADERS, ACCESS_CONTROL_ALLOW_METHODS,
    ACCESS_CONTROL_ALLOW_ORIGIN, ACCESS_CONTROL_MAX_AGE, ALLOW, CACHE_CONTROL, CONTENT_LENGTH,
    CONTENT_TYPE,
};
use hyper::{Method, Request, Response, StatusCode};
use std::sync::Arc;
use std::time::Duration;

/// Response body: one `Bytes` (a playlist or a shared segment).
pub type Body = Full<Bytes>;

/// Content type of playlists (RFC 8216bis §4).
pub const PLAYLIST_CONTENT_TYPE: &str = "application/vnd.apple.mpegurl";
/// Longest query string looked at: the delivery directives and a player's
/// credential (a signed token is a few KB).
const MAX_QUERY_LEN: usize = crate::access::MAX_CREDENTIAL_LEN;

const PLAYLIST_CACHE: &str = "no-cache";
const MEDIA_CACHE: &str = "public, max-age=86400, immutable";

/// Settings of the HTTP layer.
#[derive(Clone, Debug)]
pub struct HttpConfig {
    /// Longest a blocking playlist reload, or a request for a hinted part,
    /// waits before 503 (default: 3 × the target duration, RFC 8216bis
    /// §6.2.5.2; at most this value when set).
    pub max_block: Option<Duration>,
    /// How long a first request waits for a just-started stream's first
    /// playlist before 404 (default 8 s).
    pub first_playlist_wait: Duration,
    /// Start a packager when a player asks for a live stream that has none
    /// (default true).
    pub start_on_demand: bool,
}

impl Default for HttpConfig {
    fn default() -> Self {
        Self {
            max_block: None,
            first_playlist_wait: Duration::from_secs(8),
            start_on_demand: true,
        }
    }
}

/// The HLS HTTP service. Cheap to clone (shared). Mount it as an
/// [`arcly_http::HttpService`] on an [`arcly_http::Router`] (served by
/// [`arcly_http::serve`]), or ask it from a host's own router through
/// [`HlsService::handle`].
#[derive(Clone, Debug)]
pub struct HlsService {
    registry: HlsRegistry,
    cfg: Arc<HttpConfig>,
}

/// Which resource a path names.
#[derive(Debug, PartialEq, Eq)]
enum Route<'a> {
    Multivariant {
        app: &'a str,
        stream: &'a str,
    },
    Media {
        app: &'a str,
        stream: &'a str,
    },
    Resource {
        app: &'a str,
        stream: &'a str,
        name: &'a str,
    },
}

fn route(path: &str) -> Option<Route<'_>> {
    let rest = path.strip_prefix('/')?;
    let mut it = rest.split('/');
    let (a, b, c, d) = (it.next()?, it.next()?, it.next(), it.next());
    if a.is_empty() || b.is_empty() || d.is_some() {
        return None;
    }
    match c {
        None => {
            let stream = b.strip_suffix(".m3u8")?;
            (!stream.is_empty()).then_some(Route::Multivariant { app: a, stream })
        }
        Some("index.m3u8") => Some(Route::Media { app: a, stream: b }),
        Some(name) if name.ends_with(".ts") || name.ends_with(".m4s") || name.ends_with(".mp4") => {
            Some(Route::Resource {
                app: a,
                stream: b,
                name,
            })
        }
        Some(_) => None,
    }
}

/// Whether `path` is an HLS path this module serves (`/{app}/{stream}.m3u8`,
/// `/{app}/{stream}/index.m3u8`, `/{app}/{stream}/*.{ts,m4s,mp4}`), for a
/// host router deciding where to send a request.
pub fn is_hls_path(path: &str) -> bool {
    route(path).is_some()
}

/// The blocking-reload and delta-update parameters (RFC 8216bis §6.2.5).
#[derive(Debug, Default, PartialEq, Eq)]
struct Directives {
    msn: Option<u64>,
    part: Option<u64>,
    skip: bool,
    bad: bool,
}

fn directives(query: Option<&str>) -> Directives {
    let mut d = Directives::default();
    let Some(q) = query.filter(|q| q.len() <= MAX_QUERY_LEN) else {
        d.bad = query.is_some();
        return d;
    };
    for kv in q.split('&') {
        let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
        match k {
            "_HLS_msn" => match v.parse() {
                Ok(n) => d.msn = Some(n),
                Err(_) => d.bad = true,
            },
            "_HLS_part" => match v.parse() {
                Ok(n) => d.part = Some(n),
                Err(_) => d.bad = true,
            },
            "_HLS_skip" => d.skip = matches!(v, "YES" | "v2"),
            _ => {}
        }
    }
    // §6.2.5.2: _HLS_part without _HLS_msn is a bad request.
    if d.part.is_some() && d.msn.is_none() {
        d.bad = true;
    }
    d
}

/// A response whose whole body is `body`.
///
/// `Content-Length` is set here, in the headers, not left to the body's
/// size hint: a host that converts the body to its own type (hyper's
/// `map_frame`, boxing through a wrapper that does not forward
/// `size_hint`) would lose the exact size, and hyper then falls back to
/// `Transfer-Encoding: chunked`, which simple HLS clients (srs-bench) and
/// some caches cannot read. Every body here is whole in memory, so the
/// length is always known (RFC 9112 §6.3: it also delimits the message).
fn response(
    status: StatusCode,
    ct: &'static str,
    cache: &'static str,
    body: Bytes,
) -> Response<Body> {
    let len = body.len();
    let mut resp = Response::new(Full::new(body));
    *resp.status_mut() = status;
    let h = resp.headers_mut();
    h.insert(CONTENT_LENGTH, HeaderValue::from(len));
    h.insert(CONTENT_TYPE, HeaderValue::from_static(ct));
    h.insert(CACHE_CONTROL, HeaderValue::from_static(cache));
    h.insert(ACCESS_CONTROL_ALLOW_ORIGIN, HeaderValue::from_static("*"));
    resp
}

/// Why a request gets no packager: the status and message to answer with.
struct Refusal(StatusCode, String);

fn error(status: StatusCode, msg: &str) -> Response<Body> {
    response(
        status,
        "text/plain; charset=utf-8",
        "no-store",
        Bytes::from(format!("{msg}\n")),
    )
}

impl HlsService {
    /// Serve the playlists of `registry`'s packagers.
    pub fn new(registry: HlsRegistry, cfg: HttpConfig) -> Self {
        Self {
            registry,
            cfg: Arc::new(cfg),
        }
    }

    /// The packagers served.
    pub fn registry(&self) -> &HlsRegistry {
        &self.registry
    }

    /// Whether `path` is one of this service's (`/{app}/{stream}.m3u8`,
    /// `/{app}/{stream}/index.m3u8`, `/{app}/{stream}/*.{ts,m4s,mp4}`).
    pub fn owns(&self, path: &str) -> bool {
        is_hls_path(path)
    }

    /// The response for `req` if its path is one of this service's, `None`
    /// otherwise (so a host router can fall through). `GET`, `HEAD` and
    /// `OPTIONS` only (405 otherwise); the body is never read.
    pub async fn handle<B>(&self, req: &Request<B>) -> Option<Response<Body>> {
        let route = route(req.uri().path())?;
        let method = req.method();
        if method == Method::OPTIONS {
            let mut r = response(
                StatusCode::NO_CONTENT,
                "text/plain",
                "no-store",
                Bytes::new(),
            );
            let h = r.headers_mut();
            // RFC 9110 §8.6: no Content-Length in a 204.
            h.remove(CONTENT_LENGTH);
            h.insert(
                ACCESS_CONTROL_ALLOW_METHODS,
                HeaderValue::from_static("GET, HEAD, OPTIONS"),
            );
            h.insert(ACCESS_CONTROL_ALLOW_HEADERS, HeaderValue::from_static("*"));
            h.insert(ACCESS_CONTROL_MAX_AGE, HeaderValue::from_static("86400"));
            return Some(r);
        }
        if method != Method::GET && method != Method::HEAD {
            let mut r = error(StatusCode::METHOD_NOT_ALLOWED, "method not allowed");
            r.headers_mut()
                .insert(ALLOW, HeaderValue::from_static("GET, HEAD, OPTIONS"));
            return Some(r);
        }
        let mut resp = match route {
            Route::Multivariant { app, stream } => self.multivariant(app, stream).await,
            Route::Media { app, stream } => {
                self.media(app, stream, directives(req.uri().query())).await
            }
            Route::Resource { app, stream, name } => self.resource(app, stream, name).await,
        };
        if method == Method::HEAD {
            // Same headers as GET, length included, no body.
            let len = http_body::Body::size_hint(resp.body()).exact().unwrap_or(0);
            resp.headers_mut()
                .insert(CONTENT_LENGTH, HeaderValue::from(len));
            *resp.body_mut() = Full::new(Bytes::new());
        }
        Some(resp)
    }

    /// Like [`handle`](HlsService::handle), with a 404 for other paths.
    pub async fn respond<B>(&self, req: &Request<B>) -> Response<Body> {
        match self.handle(req).await {
            Some(r) => r,
            None => error(StatusCode::NOT_FOUND, "not found"),
        }
    }

    /// The packager of a stream, started for a live stream on demand.
    fn packager(&self, app: &str, stream: &str) -> Result<Packager, Refusal> {
        let path = StreamPath::parse(app, stream)
            .map_err(|_| Refusal(StatusCode::NOT_FOUND, "unknown stream".into()))?;
        if let Some(p) = self.registry.get(&path) {
            return Ok(p);
        }
        let live = self
            .registry
            .source()
            .stream(&path)
            .is_some_and(|s| s.is_live());
        if self.cfg.start_on_demand && live {
            return self
                .registry
                .start(&path)
                .map_err(|e| Refusal(StatusCode::SERVICE_UNAVAILABLE, e.to_string()));
        }
        Err(Refusal(StatusCode::NOT_FOUND, "unknown stream".into()))
    }

    /// Longest wait for a blocking request on `p`.
    fn max_block(&self, p: &Packager) -> Duration {
        let td = p.lock().target_duration().unwrap_or(2);
        let draft = Duration::from_secs(3 * u64::from(td));
        self.cfg.max_block.map_or(draft, |m| m.min(draft))
    }

    async fn ready_packager(&self, app: &str, stream: &str) -> Result<Packager, Refusal> {
        let p = self.packager(app, stream)?;
        if p.position().msn == 0
            && !p.position().ended
            && !p.wait_playlist(self.cfg.first_playlist_wait).await
        {
            return Err(Refusal(
                StatusCode::NOT_FOUND,
                "stream not ready yet".into(),
            ));
        }
        Ok(p)
    }

    async fn multivariant(&self, app: &str, stream: &str) -> Response<Body> {
        let p = match self.ready_packager(app, stream).await {
            Ok(p) => p,
            Err(Refusal(status, msg)) => return error(status, &msg),
        };
        let text = p.lock().multivariant(format!("{stream}/index.m3u8"));
        match text {
            Some(t) => response(
                StatusCode::OK,
                PLAYLIST_CONTENT_TYPE,
                PLAYLIST_CACHE,
                t.into(),
            ),
            None => error(StatusCode::NOT_FOUND, "stream not ready yet"),
        }
    }

    async fn media(&self, app: &str, stream: &str, d: Directives) -> Response<Body> {
        if d.bad {
            return error(StatusCode::BAD_REQUEST, "bad _HLS_msn / _HLS_part");
        }
        let p = match self.ready_packager(app, stream).await {
            Ok(p) => p,
            Err(Refusal(status, msg)) => return error(status, &msg),
        };
        if let Some(msn) = d.msn {
            let pos = p.position();
            let advance = self.advance_part_limit(&p);
            if too_far(pos, msn, d.part, advance) {
                // §6.2.5.2: far beyond the live edge.
                return error(
                    StatusCode::BAD_REQUEST,
                    "_HLS_msn / _HLS_part too far ahead",
                );
            }
            let wait = self.max_block(&p);
            if !p.wait_ready(msn, d.part, wait).await {
                return error(StatusCode::SERVICE_UNAVAILABLE, "not ready in time");
            }
        }
        let skip = d.skip
            && p.lock()
                .media_playlist()
                .is_some_and(|m| m.skippable_segments() > 0);
        match p.playlist(skip) {
            Some(t) => response(StatusCode::OK, PLAYLIST_CONTENT_TYPE, PLAYLIST_CACHE, t),
            None => error(StatusCode::NOT_FOUND, "stream not ready yet"),
        }
    }

    /// The Advance Part Limit of RFC 8216bis §6.2.5.2 in parts.
    fn advance_part_limit(&self, p: &Packager) -> u64 {
        match self.registry.config_for(p.path()).hls.part_target {
            Some(pt) if pt < Duration::from_secs(1) => {
                (3.0 / pt.as_secs_f64().max(0.001)).ceil() as u64
            }
            _ => 3,
        }
    }

    async fn resource(&self, app: &str, stream: &str, name: &str) -> Response<Body> {
        let p = match self.packager(app, stream) {
            Ok(p) => p,
            Err(Refusal(status, msg)) => return error(status, &msg),
        };
        let (found, parsed) = {
            let hls = p.lock();
            (hls.resource(name), hls.parse_resource(name))
        };
        if let Some((b, ct)) = found {
            return response(StatusCode::OK, ct, MEDIA_CACHE, b);
        }
        // A hinted part (or the segment in progress) is answered once it
        // exists (RFC 8216bis §6.2.6), within the blocking bound.
        let pos = p.position();
        let pending = match parsed {
            Some(Resource::Part(m, i)) => {
                !pos.ended
                    && (m == pos.msn || m == pos.msn + 1)
                    && !too_far(pos, m, Some(i), self.advance_part_limit(&p))
            }
            Some(Resource::Segment(m)) => !pos.ended && m == pos.msn,
            _ => false,
        };
        if pending {
            let (msn, part) = match parsed {
                Some(Resource::Part(m, i)) => (m, Some(i)),
                Some(Resource::Segment(m)) => (m, None),
                _ => (0, None),
            };
            if p.wait_ready(msn, part, self.max_block(&p)).await {
                if let Some((b, ct)) = p.lock().resource(name) {
                    return response(StatusCode::OK, ct, MEDIA_CACHE, b);
                }
            }
        }
        error(
            StatusCode::NOT_FOUND,
            "no such segment (never existed or left the window)",
        )
    }
}

/// Whether a blocking request names something too far ahead of `pos`
/// (RFC 8216bis §6.2.5.2: beyond the last segment + 2, or beyond the
/// Advance Part Limit).
fn too_far(pos: Position, msn: u64, part: Option<u64>, advance_parts: u64) -> bool {
    // The last complete segment is pos.msn - 1; the in-progress one has pos.parts parts.
    if msn > pos.msn.saturating_add(1) {
        return true;
    }
    let Some(part) = part else {
        return false;
    };
    let ahead = if msn == pos.msn {
        part.saturating_sub(pos.parts)
    } else if msn > pos.msn {
        part.saturating_add(1)
    } else {
        0
    };
    ahead > advance_parts
}

impl arcly_http::HttpService for HlsService {
    fn name(&self) -> &'static str {
        "hls"
    }

    fn owns(&self, _method: &Method, path: &str) -> bool {
        HlsService::owns(self, path)
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
    fn routes() {
        assert_eq!(
            route("/live/cam.m3u8"),
            Some(Route::Multivariant {
                app: "live",
                stream: "cam"
            })
        );
        assert_eq!(
            route("/live/cam/index.m3u8"),
            Some(Route::Media {
                app: "live",
                stream: "cam"
            })
        );
        assert!(matches!(
            route("/live/cam/x-part3.1.m4s"),
            Some(Route::Resource {
                name: "x-part3.1.m4s",
                ..
            })
        ));
        for other in [
            "/",
            "/live",
            "/live/cam.flv",
            "/live/cam/a/b.ts",
            "/live/cam/x.txt",
            "//x.m3u8",
        ] {
            assert_eq!(route(other), None, "{other}");
        }
    }

    #[test]
    fn directive_rules() {
        let d = directives(Some("_HLS_msn=5&_HLS_part=2&_HLS_skip=YES"));
        assert_eq!(
            (d.msn, d.part, d.skip, d.bad),
            (Some(5), Some(2), true, false)
        );
        assert!(directives(Some("_HLS_part=2")).bad, "part without msn");
        assert!(directives(Some("_HLS_msn=x")).bad);
        assert!(!directives(Some(&format!("token={}", "a".repeat(3000)))).bad);
        assert!(directives(Some(&"a".repeat(MAX_QUERY_LEN + 1))).bad);
        assert!(!directives(Some("_HLS_skip=v2")).bad);
    }

    #[test]
    fn far_future_requests() {
        let pos = Position {
            msn: 10,
            parts: 2,
            ended: false,
        };
        assert!(!too_far(pos, 11, None, 3));
        assert!(too_far(pos, 12, None, 3));
        assert!(!too_far(pos, 10, Some(5), 3));
        assert!(too_far(pos, 10, Some(6), 3));
        assert!(!too_far(pos, 11, Some(2), 3));
        assert!(too_far(pos, 11, Some(3), 3));
    }
}
