//! Authorization: per-app static tokens and the `on_publish` / `on_play`
//! webhooks as one [`StreamAuthenticator`], and the `on_unpublish` /
//! `on_stop` notifications driven by [`EngineEvent`]s.
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
}

impl ServerAuth {
    /// No tokens, no hooks: allows everything. Webhook calls are bounded by `timeout`.
    pub fn new(timeout: Duration) -> Self {
        Self {
            tokens: HashMap::new(),
            on_publish: None,
            on_play: None,
            timeout,
        }
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

/// Compare in constant time (`subtle`): how long the comparison takes does
/// not tell how much of a guess was right.
fn same(a: &str, b: &str) -> bool {
    use subtle::ConstantTimeEq;
    bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

#[async_trait]
impl StreamAuthenticator for ServerAuth {
    async fn authorize(&self, req: &AuthRequest) -> AuthDecision {
        if let Some(t) = self.tokens.get(req.app.as_str()) {
            let want = match req.action {
                AuthAction::Publish => &t.publish,
                AuthAction::Play => &t.play,
            };
            if let Some(want) = want {
                match req.query_param("token") {
                    None => {
                        return AuthDecision::Deny(format!(
                            "a {} token is required (add ?token=… to the stream key)",
                            req.action.as_str()
                        ))
                    }
                    Some(got) if !same(&got, want) => {
                        return AuthDecision::Deny(format!("wrong {} token", req.action.as_str()))
                    }
                    Some(_) => {}
                }
            }
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
}
