//! Who may fetch what: [`HlsAccess`] puts a
//! [`StreamAuthenticator`] in front of an [`HlsService`], for **every**
//! resource of a stream (multivariant and media playlists, segments, parts,
//! init sections), and carries the player's credential through every URI
//! the playlists it answers name.
//!
//! A player presents its credential in the query (`index.m3u8?token=…`, the
//! way hls.js, Safari and ffmpeg can) or as `Authorization: Bearer …`. A
//! playlist asked for with a query credential comes back with that query
//! (every parameter but the `_HLS_` delivery directives) appended to each
//! URI it names: segment and part lines, `EXT-X-MAP`, `EXT-X-PART`,
//! `EXT-X-PRELOAD-HINT`, `EXT-X-RENDITION-REPORT`, `EXT-X-MEDIA` and the
//! variant lines of a multivariant playlist (RFC 8216bis §4.4.4–§4.4.6:
//! each is a URI the client resolves and fetches as it is). So a player
//! that was given one URL keeps its credential on every request.
//!
//! One decision per address, stream and credential is reused for
//! [`AccessConfig::decision_ttl`], so a player's segment and reload
//! requests do not each call the authenticator (which may be a webhook).

use crate::http::{HlsService, PLAYLIST_CONTENT_TYPE};
use arcly_core::auth::{Allowed, PlayAuthorizer, StreamAuthenticator};
use arcly_core::observe::{NoopObserver, Observer};
use arcly_core::StreamPath;
use arcly_http::{Body, ConnInfo, HttpService, RequestBody, ResponseFuture};
use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::header::{HeaderValue, ACCESS_CONTROL_ALLOW_ORIGIN, AUTHORIZATION, CONTENT_TYPE};
use hyper::{Method, Request, Response, StatusCode};
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Longest credential (query or bearer token) looked at: a few KB holds any
/// signed token; more is refused before it is hashed or stored.
pub const MAX_CREDENTIAL_LEN: usize = 8 * 1024;

/// Bounds of the access layer.
#[derive(Debug, Clone)]
pub struct AccessConfig {
    /// How long one authorization of an address for a stream and
    /// credential is reused.
    pub decision_ttl: Duration,
    /// Most decisions remembered (a flood of distinct credentials only
    /// costs authenticator calls, never memory past this).
    pub max_decisions: usize,
    /// A player counts as a viewer for this long after its last playlist
    /// request.
    pub viewer_window: Duration,
    /// Most viewers tracked.
    pub max_viewers: usize,
}

impl Default for AccessConfig {
    fn default() -> Self {
        Self {
            decision_ttl: Duration::from_secs(30),
            max_decisions: 4096,
            viewer_window: Duration::from_secs(10),
            max_viewers: 65_536,
        }
    }
}

/// An [`HlsService`] behind a [`StreamAuthenticator`]. Cheap to clone.
#[derive(Clone)]
pub struct HlsAccess {
    service: HlsService,
    auth: Arc<dyn StreamAuthenticator>,
    has_app: Arc<dyn Fn(&str) -> bool + Send + Sync>,
    cfg: Arc<AccessConfig>,
    plays: PlayAuthorizer,
    viewers: Arc<Mutex<HashMap<(IpAddr, StreamPath), Instant>>>,
    observer: Arc<dyn Observer>,
}

impl std::fmt::Debug for HlsAccess {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HlsAccess")
            .field("service", &self.service)
            .field("cfg", &self.cfg)
            .finish_non_exhaustive()
    }
}

/// The `(app, stream)` an HLS path belongs to.
fn stream_of(path: &str) -> Option<(&str, &str)> {
    let mut it = path.strip_prefix('/')?.split('/');
    let app = it.next()?;
    let second = it.next()?;
    let stream = match it.next() {
        None => second.strip_suffix(".m3u8")?,
        Some(_) => second,
    };
    (!app.is_empty() && !stream.is_empty()).then_some((app, stream))
}

/// The kind of an HLS request (a bounded label) and whether it may block:
/// a playlist reload with `_HLS_msn` (RFC 8216bis §6.2.5.2), or a part
/// (asked for from a preload hint before it is complete, §6.2.6).
fn request_kind(path: &str, query: Option<&str>) -> (&'static str, bool) {
    let name = path.rsplit('/').next().unwrap_or("");
    if name.ends_with(".m3u8") {
        let blocking = query.is_some_and(|q| q.split('&').any(|kv| kv.starts_with("_HLS_msn=")));
        ("playlist", blocking)
    } else if name.contains("part") {
        ("part", true)
    } else if name.contains("init") && name.ends_with(".mp4") {
        ("init", false)
    } else if name.contains('.') {
        ("segment", false)
    } else {
        ("other", false)
    }
}

/// The query to carry on every URI: `query` without the `_HLS_`
/// directives, or `None` when nothing is left.
pub fn carried_query(query: Option<&str>) -> Option<String> {
    let kept: Vec<&str> = query?
        .split('&')
        .filter(|kv| !kv.is_empty() && !kv.starts_with("_HLS_"))
        .collect();
    (!kept.is_empty()).then(|| kept.join("&"))
}

/// `uri` with `query` appended.
fn with_query(uri: &str, query: &str) -> String {
    let sep = if uri.contains('?') { '&' } else { '?' };
    format!("{uri}{sep}{query}")
}

/// Append `query` to every URI `playlist` names: URI lines, and every
/// `URI="…"` attribute of a tag.
pub fn carry_query(playlist: &str, query: &str) -> String {
    let mut out = String::with_capacity(playlist.len() + 64 * query.len());
    for line in playlist.split_inclusive('\n') {
        let (body, eol) = match line.strip_suffix('\n') {
            Some(b) => (
                b.strip_suffix('\r').unwrap_or(b),
                &line[b.trim_end_matches('\r').len()..],
            ),
            None => (line, ""),
        };
        if body.is_empty() {
            out.push_str(line);
        } else if !body.starts_with('#') {
            out.push_str(&with_query(body, query));
            out.push_str(eol);
        } else {
            // Tags: rewrite each URI="…" attribute.
            let mut rest = body;
            while let Some(at) = rest.find("URI=\"") {
                let (before, after) = rest.split_at(at + 5);
                out.push_str(before);
                match after.find('"') {
                    Some(end) => {
                        out.push_str(&with_query(&after[..end], query));
                        rest = &after[end..];
                    }
                    None => {
                        rest = after;
                        break;
                    }
                }
            }
            out.push_str(rest);
            out.push_str(eol);
        }
    }
    out
}

fn refused(status: StatusCode, msg: String) -> Response<Body> {
    let mut r = arcly_http::text(status, msg);
    r.headers_mut()
        .insert(ACCESS_CONTROL_ALLOW_ORIGIN, HeaderValue::from_static("*"));
    r
}

impl HlsAccess {
    /// `service` behind `auth`, with the default bounds; every application
    /// is served.
    pub fn new(service: HlsService, auth: Arc<dyn StreamAuthenticator>) -> Self {
        let cfg = AccessConfig::default();
        Self {
            service,
            plays: PlayAuthorizer::new(Arc::clone(&auth), cfg.decision_ttl, cfg.max_decisions),
            auth,
            has_app: Arc::new(|_| true),
            cfg: Arc::new(cfg),
            viewers: Arc::default(),
            observer: Arc::new(NoopObserver),
        }
    }

    /// Report every answered request to `observer`
    /// ([`Observer::http_request`]: its kind, whether it could block, how
    /// long it took).
    pub fn observer(mut self, observer: Arc<dyn Observer>) -> Self {
        self.observer = observer;
        self
    }

    /// Serve only the applications `has_app` says yes to (others are not
    /// [owned](HttpService::owns), so a host's fallback answers them).
    pub fn apps(mut self, has_app: impl Fn(&str) -> bool + Send + Sync + 'static) -> Self {
        self.has_app = Arc::new(has_app);
        self
    }

    /// Other bounds.
    pub fn config(mut self, cfg: AccessConfig) -> Self {
        self.plays =
            PlayAuthorizer::new(Arc::clone(&self.auth), cfg.decision_ttl, cfg.max_decisions);
        self.cfg = Arc::new(cfg);
        self
    }

    /// The service behind.
    pub fn service(&self) -> &HlsService {
        &self.service
    }

    /// Players of `path`: addresses that asked for one of its playlists
    /// within [`AccessConfig::viewer_window`].
    pub fn viewers(&self, path: &StreamPath) -> u64 {
        let g = self.viewers.lock().unwrap_or_else(|e| e.into_inner());
        g.iter()
            .filter(|((_, p), t)| p == path && t.elapsed() < self.cfg.viewer_window)
            .count() as u64
    }

    fn seen(&self, peer: IpAddr, path: &StreamPath) {
        let mut g = self.viewers.lock().unwrap_or_else(|e| e.into_inner());
        if g.len() >= self.cfg.max_viewers {
            g.retain(|_, t| t.elapsed() < self.cfg.viewer_window);
        }
        if g.len() < self.cfg.max_viewers {
            g.insert((peer, path.clone()), Instant::now());
        }
    }

    /// Authorize `peer` to play `path` with the credential in `query` (or
    /// `bearer`); a fresh decision for the same triple is reused.
    async fn authorize(
        &self,
        path: &StreamPath,
        query: Option<&str>,
        bearer: Option<&str>,
        peer: SocketAddr,
    ) -> Result<(), String> {
        let credential = carried_query(query);
        match self
            .plays
            .authorize(path, credential.as_deref(), bearer, peer, "hls")
            .await
        {
            Ok(Allowed::Remembered) => Ok(()),
            Ok(Allowed::Now) => {
                tracing::info!(target: "arcly::audit", event = "play", app = path.app.as_str(), stream = path.stream.as_str(), peer = %peer, protocol = "hls", "play started");
                Ok(())
            }
            Err(r) => {
                tracing::warn!(target: "arcly::audit", event = "denied", action = "play", app = path.app.as_str(), stream = path.stream.as_str(), peer = %peer, protocol = "hls", reason = %r, "play denied");
                Err(r)
            }
        }
    }

    /// Answer one HLS request: authorize it, serve it, carry the
    /// credential through a playlist's URIs; report it to the observer.
    pub async fn respond<B>(&self, req: &Request<B>, peer: SocketAddr) -> Response<Body> {
        let began = Instant::now();
        let resp = self.answer(req, peer).await;
        if req.method() != Method::OPTIONS {
            let (kind, blocking) = request_kind(req.uri().path(), req.uri().query());
            let kind = match resp.status() {
                StatusCode::FORBIDDEN | StatusCode::UNAUTHORIZED => "refused",
                _ => kind,
            };
            self.observer
                .http_request("hls", kind, blocking, began.elapsed());
        }
        resp
    }

    async fn answer<B>(&self, req: &Request<B>, peer: SocketAddr) -> Response<Body> {
        let path = req.uri().path();
        if req.method() == Method::OPTIONS {
            return self
                .service
                .respond(req)
                .await
                .map(arcly_http::from_bytes_body);
        }
        let Some((app, stream)) = stream_of(path) else {
            return refused(StatusCode::NOT_FOUND, "not found".into());
        };
        let sp = match StreamPath::parse(app, stream) {
            Ok(p) => p,
            Err(e) => return refused(StatusCode::BAD_REQUEST, e.to_string()),
        };
        let query = req.uri().query();
        let bearer = req
            .headers()
            .get(AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "));
        if query.is_some_and(|q| q.len() > MAX_CREDENTIAL_LEN)
            || bearer.is_some_and(|b| b.len() > MAX_CREDENTIAL_LEN)
        {
            return refused(StatusCode::URI_TOO_LONG, "credential too long".into());
        }
        if let Err(reason) = self.authorize(&sp, query, bearer, peer).await {
            return refused(StatusCode::FORBIDDEN, format!("not authorized: {reason}"));
        }
        let playlist = path.ends_with(".m3u8");
        if playlist {
            self.seen(peer.ip(), &sp);
        }
        let resp = self.service.respond(req).await;
        let carry = carried_query(query).filter(|_| playlist);
        let is_playlist = resp
            .headers()
            .get(CONTENT_TYPE)
            .is_some_and(|c| c.as_bytes() == PLAYLIST_CONTENT_TYPE.as_bytes());
        match carry {
            Some(q) if is_playlist && resp.status() == StatusCode::OK => {
                let (parts, body) = resp.into_parts();
                let bytes = body
                    .collect()
                    .await
                    .map(|c| c.to_bytes())
                    .unwrap_or_default();
                let text = String::from_utf8_lossy(&bytes);
                let out = Bytes::from(carry_query(&text, &q));
                let mut r = Response::from_parts(parts, arcly_http::full(out));
                // The length changed with the URIs.
                r.headers_mut().remove(hyper::header::CONTENT_LENGTH);
                r
            }
            _ => resp.map(arcly_http::from_bytes_body),
        }
    }
}

impl HttpService for HlsAccess {
    fn name(&self) -> &'static str {
        "hls"
    }

    /// `GET`, `HEAD` or `OPTIONS` of an HLS path of a served application.
    fn owns(&self, method: &Method, path: &str) -> bool {
        let m = matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS);
        let app = path.trim_start_matches('/').split('/').next().unwrap_or("");
        m && self.service.owns(path) && (self.has_app)(app)
    }

    fn call(&self, req: Request<RequestBody>) -> ResponseFuture {
        let this = self.clone();
        Box::pin(async move {
            let peer = ConnInfo::peer_of(&req);
            this.respond(&req, peer).await
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_uri_carries_the_query() {
        let pl = "#EXTM3U\n#EXT-X-VERSION:9\n#EXT-X-MAP:URI=\"init-1.mp4\"\n\
                  #EXT-X-PART:DURATION=0.5,URI=\"s-part3.0.m4s\",INDEPENDENT=YES\n\
                  #EXTINF:2.0,\nseg3.m4s\n\
                  #EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"s-part4.0.m4s\"\n\
                  #EXT-X-RENDITION-REPORT:URI=\"../b/index.m3u8?x=1\",LAST-MSN=4\n";
        let out = carry_query(pl, "token=a%2Bb");
        assert_eq!(
            out,
            "#EXTM3U\n#EXT-X-VERSION:9\n#EXT-X-MAP:URI=\"init-1.mp4?token=a%2Bb\"\n\
             #EXT-X-PART:DURATION=0.5,URI=\"s-part3.0.m4s?token=a%2Bb\",INDEPENDENT=YES\n\
             #EXTINF:2.0,\nseg3.m4s?token=a%2Bb\n\
             #EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"s-part4.0.m4s?token=a%2Bb\"\n\
             #EXT-X-RENDITION-REPORT:URI=\"../b/index.m3u8?x=1&token=a%2Bb\",LAST-MSN=4\n"
        );
        let crlf = carry_query("#EXTM3U\r\ncam/index.m3u8\r\n", "t=1");
        assert_eq!(crlf, "#EXTM3U\r\ncam/index.m3u8?t=1\r\n");
    }

    #[test]
    fn delivery_directives_are_not_carried() {
        assert_eq!(
            carried_query(Some("_HLS_msn=3&token=x&_HLS_part=1&sig=y")),
            Some("token=x&sig=y".into())
        );
        assert_eq!(carried_query(Some("_HLS_msn=3&_HLS_skip=YES")), None);
        assert_eq!(carried_query(None), None);
    }

    #[test]
    fn request_kinds() {
        assert_eq!(request_kind("/a/b/index.m3u8", None), ("playlist", false));
        assert_eq!(
            request_kind("/a/b/index.m3u8", Some("_HLS_msn=3&_HLS_part=1")),
            ("playlist", true)
        );
        assert_eq!(request_kind("/a/b/s-part3.0.m4s", None), ("part", true));
        assert_eq!(request_kind("/a/b/init-1.mp4", None), ("init", false));
        assert_eq!(request_kind("/a/b/seg3.ts", None), ("segment", false));
        assert_eq!(request_kind("/a/b", None), ("other", false));
    }

    #[test]
    fn streams_of_paths() {
        assert_eq!(stream_of("/live/cam.m3u8"), Some(("live", "cam")));
        assert_eq!(stream_of("/live/cam/index.m3u8"), Some(("live", "cam")));
        assert_eq!(stream_of("/live/cam/seg-3.m4s"), Some(("live", "cam")));
        assert_eq!(stream_of("/live"), None);
        assert_eq!(stream_of("//x.m3u8"), None);
    }
}
