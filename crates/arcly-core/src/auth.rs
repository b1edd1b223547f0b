//! Authorization: the [`StreamAuthenticator`] the engine asks before every
//! publish and play. The default, [`PermitAll`], allows everything.

use crate::identity::{AppName, StreamId};
use async_trait::async_trait;
use std::net::SocketAddr;

/// What a client asks to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AuthAction {
    /// Publish a stream.
    Publish,
    /// Play a stream.
    Play,
}

impl AuthAction {
    /// `publish` or `play`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Publish => "publish",
            Self::Play => "play",
        }
    }
}

/// Everything an authenticator may base its decision on.
#[derive(Debug, Clone)]
pub struct AuthRequest {
    /// Publish or play.
    pub action: AuthAction,
    /// The application.
    pub app: AppName,
    /// The stream name (the key with any query removed).
    pub stream: StreamId,
    /// The raw query string the client sent after the name (`token=abc&x=1`), if any.
    pub query: Option<String>,
    /// The client's address, when it came over a network.
    pub peer: Option<SocketAddr>,
    /// The protocol it came over (`rtmp`, `http-flv`, `hls`).
    pub protocol: &'static str,
}

impl AuthRequest {
    /// The value of `name` in the query string, if present, with `%XX`
    /// sequences decoded ([`percent_decode`]; a token `a+b=` may arrive as
    /// `a%2Bb%3D`).
    pub fn query_param(&self, name: &str) -> Option<std::borrow::Cow<'_, str>> {
        self.query.as_deref()?.split('&').find_map(|kv| {
            let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
            (percent_decode(k) == name).then(|| percent_decode(v))
        })
    }
}

/// `%XX` sequences decoded (RFC 3986 §2.1); a malformed sequence, or a
/// result that is not UTF-8, leaves the text as it is. `+` stays `+`: query
/// credentials are not form data, and base64 tokens contain it.
pub fn percent_decode(s: &str) -> std::borrow::Cow<'_, str> {
    if !s.contains('%') {
        return s.into();
    }
    let b = s.as_bytes();
    let hex = |c: u8| (c as char).to_digit(16);
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let pair = b
            .get(i + 1)
            .copied()
            .and_then(hex)
            .zip(b.get(i + 2).copied().and_then(hex));
        match (b[i], pair) {
            (b'%', Some((h, l))) => {
                out.push((h * 16 + l) as u8);
                i += 3;
            }
            (c, _) => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8(out).map_or_else(|_| s.into(), Into::into)
}

/// The outcome of an authorization.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthDecision {
    /// Go ahead.
    Allow,
    /// Refused, with a reason fit to show to the client.
    Deny(String),
}

/// Decides publish and play requests. Implementations may be slow (a webhook):
/// the engine calls them on the connection's task, never on the frame path.
#[async_trait]
pub trait StreamAuthenticator: Send + Sync + 'static {
    /// Decide `req`.
    async fn authorize(&self, req: &AuthRequest) -> AuthDecision;
}

/// Allows every request: the default.
#[derive(Debug, Default, Clone, Copy)]
pub struct PermitAll;

#[async_trait]
impl StreamAuthenticator for PermitAll {
    async fn authorize(&self, _req: &AuthRequest) -> AuthDecision {
        AuthDecision::Allow
    }
}

/// Plays authorized once and then remembered for a while: one decision per
/// client address, stream and credential, reused for a time-to-live, so a
/// player whose every segment or playlist request is a new HTTP request
/// (HLS, recordings played back) does not call the authenticator (which
/// may be a webhook) each time. Bounded: past `max` decisions nothing more
/// is remembered, which only costs authenticator calls. Cheap to clone.
#[derive(Clone)]
pub struct PlayAuthorizer {
    auth: std::sync::Arc<dyn StreamAuthenticator>,
    ttl: std::time::Duration,
    max: usize,
    decisions: std::sync::Arc<std::sync::Mutex<DecisionMap>>,
}

type DecisionMap = std::collections::HashMap<
    (
        std::net::IpAddr,
        crate::identity::StreamPath,
        Option<String>,
    ),
    std::time::Instant,
>;

impl std::fmt::Debug for PlayAuthorizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PlayAuthorizer")
            .field("ttl", &self.ttl)
            .field("max", &self.max)
            .finish_non_exhaustive()
    }
}

/// How a play was allowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Allowed {
    /// The authenticator was asked now (a play starts: audit it).
    Now,
    /// A remembered decision was reused.
    Remembered,
}

impl PlayAuthorizer {
    /// Ask `auth`, remembering each allowed decision for `ttl`, at most
    /// `max` of them.
    pub fn new(
        auth: std::sync::Arc<dyn StreamAuthenticator>,
        ttl: std::time::Duration,
        max: usize,
    ) -> Self {
        Self {
            auth,
            ttl,
            max,
            decisions: Default::default(),
        }
    }

    /// Authorize `peer` to play `path` with `credential` (the query
    /// parameters that carry it) and an HTTP bearer token, which reaches
    /// the authenticator as the `token` parameter like every other
    /// protocol's credential. `Err` holds the authenticator's reason.
    pub async fn authorize(
        &self,
        path: &crate::identity::StreamPath,
        credential: Option<&str>,
        bearer: Option<&str>,
        peer: SocketAddr,
        protocol: &'static str,
    ) -> Result<Allowed, String> {
        let query = match (credential.filter(|q| !q.is_empty()), bearer) {
            (Some(q), Some(b)) => Some(format!("{q}&token={b}")),
            (None, Some(b)) => Some(format!("token={b}")),
            (q, None) => q.map(str::to_owned),
        };
        let key = (peer.ip(), path.clone(), query.clone());
        let lock = || self.decisions.lock().unwrap_or_else(|e| e.into_inner());
        if lock().get(&key).is_some_and(|t| t.elapsed() < self.ttl) {
            return Ok(Allowed::Remembered);
        }
        let req = AuthRequest {
            action: AuthAction::Play,
            app: path.app.clone(),
            stream: path.stream.clone(),
            query,
            peer: Some(peer),
            protocol,
        };
        match self.auth.authorize(&req).await {
            AuthDecision::Allow => {
                let mut g = lock();
                g.retain(|_, t| t.elapsed() < self.ttl);
                if g.len() < self.max {
                    g.insert(key, std::time::Instant::now());
                }
                Ok(Allowed::Now)
            }
            AuthDecision::Deny(r) => Err(r),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_params_are_found() {
        let req = AuthRequest {
            action: AuthAction::Play,
            app: AppName::new("live").unwrap(),
            stream: StreamId::new("cam").unwrap(),
            query: Some("a=1&token=s3cret&flag".into()),
            peer: None,
            protocol: "rtmp",
        };
        assert_eq!(req.query_param("token").as_deref(), Some("s3cret"));
        assert_eq!(req.query_param("flag").as_deref(), Some(""));
        assert_eq!(req.query_param("b"), None);
        let enc = AuthRequest {
            query: Some("token=a%2Bb%3D%3d&n%61me=v".into()),
            ..req
        };
        assert_eq!(enc.query_param("token").as_deref(), Some("a+b=="));
        assert_eq!(enc.query_param("name").as_deref(), Some("v"));
    }

    #[test]
    fn percent_decoding() {
        assert_eq!(percent_decode("a%2Bb%3D%3d"), "a+b==");
        assert_eq!(percent_decode("plain+text"), "plain+text");
        assert_eq!(percent_decode("bad%zz%4"), "bad%zz%4");
        assert_eq!(percent_decode("%ff"), "%ff", "not UTF-8: kept");
    }

    struct Counting(std::sync::atomic::AtomicUsize);

    #[async_trait]
    impl StreamAuthenticator for Counting {
        async fn authorize(&self, req: &AuthRequest) -> AuthDecision {
            self.0.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            if req.query_param("token").as_deref() == Some("ok") {
                AuthDecision::Allow
            } else {
                AuthDecision::Deny("no".into())
            }
        }
    }

    #[tokio::test]
    async fn plays_are_remembered_per_address_stream_and_credential() {
        let counting = std::sync::Arc::new(Counting(Default::default()));
        let a = PlayAuthorizer::new(counting.clone(), std::time::Duration::from_secs(30), 2);
        let path = crate::identity::StreamPath::parse("live", "cam").unwrap();
        let peer: SocketAddr = "10.0.0.1:5000".parse().unwrap();
        let calls = || counting.0.load(std::sync::atomic::Ordering::Relaxed);
        assert_eq!(
            a.authorize(&path, Some("token=ok"), None, peer, "hls")
                .await,
            Ok(Allowed::Now)
        );
        assert_eq!(
            a.authorize(&path, Some("token=ok"), None, peer, "hls")
                .await,
            Ok(Allowed::Remembered)
        );
        assert_eq!(calls(), 1);
        // A bearer token is the `token` parameter (the same credential as
        // the query's: remembered), and with other parameters a new one.
        assert_eq!(
            a.authorize(&path, None, Some("ok"), peer, "hls").await,
            Ok(Allowed::Remembered)
        );
        assert_eq!(
            a.authorize(&path, Some("x=1"), Some("ok"), peer, "hls")
                .await,
            Ok(Allowed::Now)
        );
        assert!(a
            .authorize(&path, Some("token=no"), None, peer, "hls")
            .await
            .is_err());
        assert!(
            a.authorize(&path, Some("token=no"), None, peer, "hls")
                .await
                .is_err(),
            "refusals are not remembered"
        );
        assert_eq!(calls(), 4);
        // Bounded: a third decision is not remembered.
        let other: SocketAddr = "10.0.0.2:5000".parse().unwrap();
        a.authorize(&path, Some("token=ok"), None, other, "hls")
            .await
            .unwrap();
        assert_eq!(
            a.authorize(&path, Some("token=ok"), None, other, "hls")
                .await,
            Ok(Allowed::Now)
        );
    }
}
