//! Authorization: per-app static tokens, signed expiring tokens
//! ([JWTs](crate::jwt)) and the `on_publish` / `on_play` webhooks as one
//! [`StreamAuthenticator`], and the `on_unpublish` / `on_stop`
//! notifications driven by [`EngineEvent`]s.
//!
//! The credential is the `token` query parameter (the RTMP stream-name or
//! tcUrl query, the HTTP query; HLS maps `Authorization: Bearer` onto it);
//! a JWT may also come as `jwt` (MediaMTX's name).
//! When JWT verification is configured, a token with the shape of a JWT
//! (three base64url parts) is verified as one: it must verify, be
//! unexpired and cover the app, stream and action, or the request is denied
//! with the reason; a valid one stands in for the app's static token.
//! Actions listed in `auth.jwt_required_for` then need a credential (a JWT,
//! or the app's static token) on every app. The webhooks are asked after.
//!
//! ```
//! use arcly_core::auth::{AuthAction, AuthDecision, AuthRequest, StreamAuthenticator};
//! use arcly_core::{AppName, StreamId};
//! use arcly_server::auth::ServerAuth;
//! # tokio::runtime::Runtime::new().unwrap().block_on(async {
//! let auth = ServerAuth::new(std::time::Duration::from_secs(1))
//!     .tokens("live", Some("s3cret".into()), None);
//! let mut req = AuthRequest {
//!     action: AuthAction::Publish,
//!     app: AppName::new("live").unwrap(),
//!     stream: StreamId::new("cam").unwrap(),
//!     query: None,
//!     peer: None,
//!     protocol: "rtmp",
//! };
//! assert!(matches!(auth.authorize(&req).await, AuthDecision::Deny(_)));
//! req.query = Some("token=s3cret".into());
//! assert_eq!(auth.authorize(&req).await, AuthDecision::Allow);
//! # });
//! ```

use crate::jwt::{looks_like_jwt, JwtVerifier};
use crate::webhook::{self, HookAnswer, HookEvent, HookUrl};
use arcly_core::auth::{AuthAction, AuthDecision, AuthRequest, StreamAuthenticator};
use arcly_core::engine::Engine;
use arcly_core::events::EngineEvent;
use async_trait::async_trait;
use std::collections::HashMap;
use std::time::Duration;
use tokio::sync::broadcast::error::RecvError;
use tokio::task::JoinHandle;

/// Subscribers that are the server's own machinery, not players: no
/// `on_stop` for them, and they are not counted as viewers.
pub const INTERNAL_PROTOCOLS: &[&str] = &["record", "sink", "hls-packager", "hls"];

#[derive(Debug, Clone, Default)]
struct AppTokens {
    publish: Option<String>,
    play: Option<String>,
}

/// Static tokens, then webhooks. See the [module docs](self).
#[derive(Debug, Clone)]
pub struct ServerAuth {
    tokens: HashMap<String, AppTokens>,
    on_publish: Option<HookUrl>,
    on_play: Option<HookUrl>,
    timeout: Duration,
    jwt: Option<JwtVerifier>,
    jwt_required: Vec<AuthAction>,
}

impl ServerAuth {
    /// No tokens, no hooks: allows everything. Webhook calls are bounded by `timeout`.
    pub fn new(timeout: Duration) -> Self {
        Self {
            tokens: HashMap::new(),
            on_publish: None,
            on_play: None,
            timeout,
            jwt: None,
            jwt_required: Vec::new(),
        }
    }

    /// Verify JWT-shaped tokens with `verifier`; `required` actions then
    /// need a credential (a valid JWT or the app's static token) on every
    /// app, except for the server's own subscribers.
    #[must_use]
    pub fn jwt(mut self, verifier: JwtVerifier, required: &[AuthAction]) -> Self {
        // Kept even with no secret or key (a JWKS that could not be read):
        // tokens are then refused, never waved through.
        self.jwt = Some(verifier);
        self.jwt_required = required.to_vec();
        self
    }

    /// Require `publish` / `play` tokens for `app` (`None`: no token needed).
    #[must_use]
    pub fn tokens(mut self, app: &str, publish: Option<String>, play: Option<String>) -> Self {
        self.tokens
            .insert(app.to_owned(), AppTokens { publish, play });
        self
    }

    /// Ask `on_publish` before each publish and `on_play` before each play.
    #[must_use]
    pub fn hooks(mut self, on_publish: Option<HookUrl>, on_play: Option<HookUrl>) -> Self {
        self.on_publish = on_publish;
        self.on_play = on_play;
        self
    }
}

impl ServerAuth {
    /// The token checks (JWT, static): `Some(reason)` denies.
    async fn check_credential(&self, req: &AuthRequest) -> Option<String> {
        let want = self
            .tokens
            .get(req.app.as_str())
            .and_then(|t| match req.action {
                AuthAction::Publish => t.publish.as_ref(),
                AuthAction::Play => t.play.as_ref(),
            });
        let got = req.query_param("token");
        // MediaMTX's clients send a JWT as `?jwt=`.
        let jwt_param = got.clone().or_else(|| req.query_param("jwt"));
        if let (Some(jwt), Some(token)) = (&self.jwt, jwt_param.as_deref()) {
            if looks_like_jwt(token) {
                let verdict = jwt
                    .verify(token, req.action, req.app.as_str(), req.stream.as_str())
                    .await;
                return match verdict {
                    Ok(_) => None,
                    // A static token may happen to have the shape of a JWT.
                    Err(_) if want.is_some_and(|w| same(token, w)) => None,
                    Err(why) => {
                        tracing::warn!(target: "arcly::auth", app = req.app.as_str(), stream = req.stream.as_str(), action = req.action.as_str(), protocol = req.protocol, peer = ?req.peer, %why, "JWT refused");
                        Some(format!("JWT refused: {why}"))
                    }
                };
            }
        }
        if let Some(want) = want {
            return match got {
                None => Some(format!(
                    "a {} token is required (add ?token=… to the stream key)",
                    req.action.as_str()
                )),
                Some(got) if !same(&got, want) => {
                    Some(format!("wrong {} token", req.action.as_str()))
                }
                Some(_) => None,
            };
        }
        let internal = req.peer.is_none() && INTERNAL_PROTOCOLS.contains(&req.protocol);
        if self.jwt.is_some() && self.jwt_required.contains(&req.action) && !internal {
            return Some(match got {
                None => format!(
                    "a signed {} token (JWT) is required (add ?token=… to the stream key)",
                    req.action.as_str()
                ),
                Some(_) => format!("the {} token is not a JWT", req.action.as_str()),
            });
        }
        None
    }
}

/// Compare in constant time (`subtle`): how long the comparison takes does
/// not tell how much of a guess was right.
fn same(a: &str, b: &str) -> bool {
    use subtle::ConstantTimeEq;
    bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

#[async_trait]
impl StreamAuthenticator for ServerAuth {
    async fn authorize(&self, req: &AuthRequest) -> AuthDecision {
        if let Some(reason) = self.check_credential(req).await {
            return AuthDecision::Deny(reason);
        }
        let (hook, action) = match req.action {
            AuthAction::Publish => (&self.on_publish, "on_publish"),
            AuthAction::Play => (&self.on_play, "on_play"),
        };
        let Some(url) = hook else {
            return AuthDecision::Allow;
        };
        let ev = HookEvent {
            action,
            app: req.app.to_string(),
            stream: req.stream.to_string(),
            param: req.query.clone(),
            client_addr: req.peer.map(|p| p.to_string()),
            protocol: req.protocol,
            server_id: "arcly",
        };
        match webhook::call(url, &ev, self.timeout).await {
            HookAnswer::Allowed => AuthDecision::Allow,
            HookAnswer::Denied(reason) => AuthDecision::Deny(reason),
        }
    }
}

/// Post `on_unpublish` and `on_stop` for the engine's events until it shuts
/// down. Calls run on their own tasks, each bounded by `timeout`.
pub fn spawn_notifier(
    engine: &Engine,
    on_unpublish: Option<HookUrl>,
    on_stop: Option<HookUrl>,
    timeout: Duration,
) -> JoinHandle<()> {
    let mut events = engine.events().subscribe();
    let shutdown = engine.shutdown_token();
    tokio::spawn(async move {
        loop {
            let ev = tokio::select! {
                _ = shutdown.cancelled() => return,
                e = events.recv() => e,
            };
            let (url, action, path, protocol) = match ev {
                Ok(EngineEvent::Unpublished { path, protocol }) => {
                    (&on_unpublish, "on_unpublish", path, protocol)
                }
                Ok(EngineEvent::SubscriberLeft { path, protocol })
                    if !INTERNAL_PROTOCOLS.contains(&protocol) =>
                {
                    (&on_stop, "on_stop", path, protocol)
                }
                Ok(_) => continue,
                Err(RecvError::Lagged(n)) => {
                    tracing::warn!(missed = n, "webhook notifier missed engine events");
                    continue;
                }
                Err(RecvError::Closed) => return,
            };
            let Some(url) = url.clone() else { continue };
            let ev = HookEvent {
                action,
                app: path.app.to_string(),
                stream: path.stream.to_string(),
                param: None,
                client_addr: None,
                protocol,
                server_id: "arcly",
            };
            tokio::spawn(async move {
                if let HookAnswer::Denied(r) = webhook::call(&url, &ev, timeout).await {
                    tracing::warn!(app = %ev.app, stream = %ev.stream, hook = action, reason = %r, "webhook notification failed");
                }
            });
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use arcly_core::{AppName, StreamId};

    fn req(action: AuthAction, app: &str, q: Option<&str>) -> AuthRequest {
        AuthRequest {
            action,
            app: AppName::new(app).unwrap(),
            stream: StreamId::new("k").unwrap(),
            query: q.map(str::to_owned),
            peer: None,
            protocol: "rtmp",
        }
    }

    #[tokio::test]
    async fn tokens_per_app_and_action() {
        let a = ServerAuth::new(Duration::from_secs(1)).tokens(
            "secure",
            Some("pub".into()),
            Some("play".into()),
        );
        let allow = AuthDecision::Allow;
        assert_eq!(
            a.authorize(&req(AuthAction::Publish, "live", None)).await,
            allow
        );
        assert_ne!(
            a.authorize(&req(AuthAction::Publish, "secure", None)).await,
            allow
        );
        assert_ne!(
            a.authorize(&req(AuthAction::Publish, "secure", Some("token=play")))
                .await,
            allow
        );
        assert_eq!(
            a.authorize(&req(AuthAction::Publish, "secure", Some("a=1&token=pub")))
                .await,
            allow
        );
        assert_eq!(
            a.authorize(&req(AuthAction::Play, "secure", Some("token=play")))
                .await,
            allow
        );
        assert!(same("abc", "abc") && !same("abc", "abd") && !same("abc", "ab"));
    }

    const SECRET: &[u8] = b"0123456789abcdef0123456789abcdef";

    fn jwt(app: &str, stream: &str, action: AuthAction, ttl: u64) -> String {
        crate::jwt::issue_hs256(SECRET, app, stream, &[action], Duration::from_secs(ttl)).unwrap()
    }

    fn with_stream(mut r: AuthRequest, stream: &str) -> AuthRequest {
        r.stream = StreamId::new(stream).unwrap();
        r
    }

    #[tokio::test]
    async fn a_jwt_stands_in_for_tokens_and_says_why_it_is_refused() {
        let a = ServerAuth::new(Duration::from_secs(1))
            .tokens("secure", Some("pub".into()), None)
            .jwt(JwtVerifier::new().secret(SECRET), &[AuthAction::Publish]);
        let ok = jwt("secure", "k", AuthAction::Publish, 60);
        let q = format!("token={ok}");
        assert_eq!(
            a.authorize(&req(AuthAction::Publish, "secure", Some(&q)))
                .await,
            AuthDecision::Allow
        );
        // The static token keeps working beside it.
        assert_eq!(
            a.authorize(&req(AuthAction::Publish, "secure", Some("token=pub")))
                .await,
            AuthDecision::Allow
        );
        let deny = |d: AuthDecision, why: &str| match d {
            AuthDecision::Deny(r) => assert!(r.contains(why), "{r} lacks {why}"),
            AuthDecision::Allow => panic!("allowed; expected {why}"),
        };
        let other = with_stream(req(AuthAction::Publish, "secure", Some(&q)), "other");
        deny(a.authorize(&other).await, "wrong stream");
        let q_app = format!("token={}", jwt("live", "k", AuthAction::Publish, 60));
        deny(
            a.authorize(&req(AuthAction::Publish, "secure", Some(&q_app)))
                .await,
            "wrong app",
        );
        let q_play = format!("token={}", jwt("secure", "k", AuthAction::Play, 60));
        deny(
            a.authorize(&req(AuthAction::Publish, "secure", Some(&q_play)))
                .await,
            "wrong action",
        );
        // The first signature character changed (every bit of it counts).
        let at = ok.rfind('.').unwrap() + 1;
        let mut tampered = ok.clone();
        let c = if ok[at..].starts_with('A') { "B" } else { "A" };
        tampered.replace_range(at..at + 1, c);
        deny(
            a.authorize(&req(
                AuthAction::Publish,
                "secure",
                Some(&format!("token={tampered}")),
            ))
            .await,
            "bad signature",
        );
        // Publishing needs a credential on every app now; playing does not.
        deny(
            a.authorize(&req(AuthAction::Publish, "live", None)).await,
            "JWT) is required",
        );
        deny(
            a.authorize(&req(AuthAction::Publish, "live", Some("token=plain")))
                .await,
            "not a JWT",
        );
        assert_eq!(
            a.authorize(&req(AuthAction::Play, "live", None)).await,
            AuthDecision::Allow
        );
        let q_jwt = format!("jwt={ok}");
        assert_eq!(
            a.authorize(&req(AuthAction::Publish, "secure", Some(&q_jwt)))
                .await,
            AuthDecision::Allow,
            "MediaMTX's parameter name"
        );
        // The server's own subscribers (on-request recording) pass.
        let mut own = req(AuthAction::Publish, "live", None);
        own.protocol = "record";
        assert_eq!(a.authorize(&own).await, AuthDecision::Allow);
    }

    #[tokio::test]
    async fn a_verifier_without_keys_refuses_rather_than_allows() {
        let a =
            ServerAuth::new(Duration::from_secs(1)).jwt(JwtVerifier::new(), &[AuthAction::Play]);
        let q = format!("token={}", jwt("live", "k", AuthAction::Play, 60));
        assert!(matches!(
            a.authorize(&req(AuthAction::Play, "live", Some(&q))).await,
            AuthDecision::Deny(r) if r.contains("wrong algorithm")
        ));
        assert_ne!(
            a.authorize(&req(AuthAction::Play, "live", None)).await,
            AuthDecision::Allow
        );
    }
}
