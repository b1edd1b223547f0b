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
}
