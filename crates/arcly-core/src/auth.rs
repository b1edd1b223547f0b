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
    /// The value of `name` in the query string, if present (no percent-decoding
    /// beyond `+`-free tokens; tokens are compared as sent).
    pub fn query_param(&self, name: &str) -> Option<&str> {
        self.query.as_deref()?.split('&').find_map(|kv| {
            let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
            (k == name).then_some(v)
        })
    }
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
        assert_eq!(req.query_param("token"), Some("s3cret"));
        assert_eq!(req.query_param("flag"), Some(""));
        assert_eq!(req.query_param("b"), None);
    }
}
