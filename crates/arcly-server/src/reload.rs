//! Live reload: SIGHUP or `POST /api/reload` re-reads the configuration
//! (the `--config` file under the same flags) and applies what can change
//! without dropping a connection.
//!
//! | applied live | how |
//! |---|---|
//! | apps' publish and play tokens, `on_publish` / `on_play` webhooks, webhook timeout (and whatever else [`crate::engine::authenticator`] builds) | the authenticator behind a [`SwapAuth`] is replaced whole, atomically: each authorization sees the old or the new one |
//! | `on_unpublish` / `on_stop` webhooks | the notifier task is restarted with them |
//! | `admin.token` | the [`AdminGuard`] (shared by the API, `/metrics` and this reload) takes the new token |
//! | `limits.max_publishers`, `limits.max_players_per_stream` | [`Engine::set_limits`]: the next publish, streams created from now on |
//! | the certificate and key (`tls.cert`, `tls.key`, re-read even when the paths are the same) | the [`CertStore`] is replaced: new handshakes get the new certificate, open sessions keep theirs |
//!
//! Every other setting (listen addresses, the app list and each app's
//! cache and recording, HLS, recording, the connection and bitrate limits,
//! logging,
//! turning TLS on or off) needs a restart: a reload that changes one names
//! it in a log line and in the API's answer, and applies the rest.
//!
//! A reload that cannot be applied (the file does not parse, a value is
//! refused, the certificate or key cannot be used) changes nothing: the
//! running configuration stays, and the log line and the answer say why.
//! Connections already authorized (a publisher, a player) are not
//! re-checked against new tokens.

use crate::admin::AdminGuard;
use crate::api::{error_json, json};
use crate::config::{ConfigError, Settings};
use arc_swap::ArcSwap;
use arcly_core::auth::{AuthDecision, AuthRequest, StreamAuthenticator};
use arcly_core::engine::Engine;
use arcly_http::tls::{CertStore, TlsError};
use arcly_http::{HttpService, RequestBody, ResponseFuture};
use async_trait::async_trait;
use hyper::{Method, Request, StatusCode};
use serde_json::json;
use std::sync::{Arc, Mutex};
use tokio::task::JoinHandle;

/// The admin API path that reloads.
pub const RELOAD_PATH: &str = "/api/reload";

/// An authenticator that a reload replaces atomically. Cheap to clone
/// (clones share the slot).
#[derive(Clone)]
pub struct SwapAuth {
    current: Arc<ArcSwap<Arc<dyn StreamAuthenticator>>>,
}

impl std::fmt::Debug for SwapAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SwapAuth").finish_non_exhaustive()
    }
}

impl SwapAuth {
    /// Start with `auth`.
    pub fn new(auth: Arc<dyn StreamAuthenticator>) -> Self {
        Self {
            current: Arc::new(ArcSwap::from_pointee(auth)),
        }
    }

    /// Authorize with `auth` from now on (requests being decided finish
    /// with the one they started with).
    pub fn replace(&self, auth: Arc<dyn StreamAuthenticator>) {
        self.current.store(Arc::new(auth));
    }
}

#[async_trait]
impl StreamAuthenticator for SwapAuth {
    async fn authorize(&self, req: &AuthRequest) -> AuthDecision {
        // A full reference, not a guard: the decision may await a webhook.
        let auth = Arc::clone(&self.current.load());
        auth.authorize(req).await
    }
}

/// Why a reload changed nothing.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReloadError {
    /// The server was started without a way to re-read its settings
    /// ([`Reloader::set_source`] was not called).
    #[error("this server has no configuration source to reload from")]
    NoSource,
    /// The configuration was refused.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The certificate or key cannot be used.
    #[error("TLS certificate (tls.cert / tls.key): {0}")]
    Tls(#[from] TlsError),
    /// Another reload is running.
    #[error("a reload is already running")]
    Busy,
}

/// What a reload did.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct ReloadReport {
    /// What was applied (`tokens`, `webhooks`, `limits`, `admin.token`,
    /// `certificate`).
    pub applied: Vec<&'static str>,
    /// Changed settings that need a restart, as spelled in the file.
    pub restart_needed: Vec<&'static str>,
}

/// Re-reads the settings and applies them (see the [module docs](self)).
/// Cheap to clone.
#[derive(Clone)]
pub struct Reloader {
    inner: Arc<Inner>,
}

type Source = Box<dyn Fn() -> Result<Settings, ConfigError> + Send + Sync>;

struct Inner {
    started: Arc<Settings>,
    applied: Mutex<Arc<Settings>>,
    auth: SwapAuth,
    certs: Option<CertStore>,
    engine: Engine,
    notifier: Mutex<Option<JoinHandle<()>>>,
    guard: AdminGuard,
    source: Mutex<Option<Arc<Source>>>,
    running: Mutex<()>,
}

impl std::fmt::Debug for Reloader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reloader").finish_non_exhaustive()
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Reloader {
    /// A reloader for a server started with `started`, authorizing through
    /// `auth`, answering TLS handshakes from `certs`, with the notifier
    /// task `notifier` (when a notification webhook is set) and the admin
    /// API behind `guard`.
    pub fn new(
        started: Arc<Settings>,
        auth: SwapAuth,
        certs: Option<CertStore>,
        engine: Engine,
        notifier: Option<JoinHandle<()>>,
        guard: AdminGuard,
    ) -> Self {
        Self {
            inner: Arc::new(Inner {
                applied: Mutex::new(Arc::clone(&started)),
                started,
                auth,
                certs,
                engine,
                notifier: Mutex::new(notifier),
                guard,
                source: Mutex::new(None),
                running: Mutex::new(()),
            }),
        }
    }

    /// Where a reload reads the settings from (the binary: the `--config`
    /// file under the flags it started with).
    pub fn set_source(
        &self,
        source: impl Fn() -> Result<Settings, ConfigError> + Send + Sync + 'static,
    ) {
        *lock(&self.inner.source) = Some(Arc::new(Box::new(source)));
    }

    /// Read the settings from the source and [`apply`](Reloader::apply)
    /// them; logs what happened either way.
    pub fn reload(&self) -> Result<ReloadReport, ReloadError> {
        let source = lock(&self.inner.source).clone();
        let r = match source {
            None => Err(ReloadError::NoSource),
            Some(read) => read()
                .map_err(ReloadError::from)
                .and_then(|s| self.apply(s)),
        };
        match &r {
            Ok(rep) if rep.restart_needed.is_empty() => {
                tracing::info!(applied = ?rep.applied, "configuration reloaded");
            }
            Ok(rep) => tracing::warn!(
                applied = ?rep.applied,
                restart_needed = ?rep.restart_needed,
                "configuration reloaded; these changed settings need a restart and were not applied: {}",
                rep.restart_needed.join(", ")
            ),
            Err(e) => tracing::warn!(error = %e, "reload refused; the running configuration stays"),
        }
        r
    }

    /// Apply `new`: everything that can change live, or nothing when a
    /// part of it cannot be used.
    pub fn apply(&self, new: Settings) -> Result<ReloadReport, ReloadError> {
        let inner = &*self.inner;
        let Ok(_one_at_a_time) = inner.running.try_lock() else {
            return Err(ReloadError::Busy);
        };
        let started = &inner.started;
        let applied = lock(&inner.applied).clone();
        let mut report = ReloadReport {
            restart_needed: restart_needed(started, &new),
            ..ReloadReport::default()
        };
        // What can fail is read first: nothing changes when it does.
        let cert = match (&inner.certs, &new.tls) {
            (Some(_), Some(t)) => Some(crate::tls::read(t)?),
            _ => None,
        };

        // The apps are those the server started with: tokens of apps the
        // file no longer lists stay as they were (dropping them would open
        // the app); new apps wait for a restart.
        let mut effective = new.clone();
        effective.apps = started
            .apps
            .iter()
            .map(|a| {
                let from = new.app(&a.name).or(applied.app(&a.name)).unwrap_or(a);
                let mut a = a.clone();
                a.publish_token.clone_from(&from.publish_token);
                a.play_token.clone_from(&from.play_token);
                a
            })
            .collect();
        let auth_before = (
            applied.apps.clone(),
            applied.webhooks.on_publish.clone(),
            applied.webhooks.on_play.clone(),
            applied.webhooks.timeout,
        );
        inner.auth.replace(crate::engine::authenticator(&effective));
        if auth_before
            != (
                effective.apps.clone(),
                effective.webhooks.on_publish.clone(),
                effective.webhooks.on_play.clone(),
                effective.webhooks.timeout,
            )
        {
            report.applied.push("tokens");
        }
        let w = (&applied.webhooks, &effective.webhooks);
        if w.0.on_unpublish != w.1.on_unpublish
            || w.0.on_stop != w.1.on_stop
            || w.0.timeout != w.1.timeout
        {
            let mut slot = lock(&inner.notifier);
            if let Some(old) = slot.take() {
                old.abort();
            }
            *slot = crate::engine::spawn_hooks(&effective, &inner.engine);
        }
        if w.0 != w.1 {
            report.applied.push("webhooks");
        }
        let l = (&applied.limits, &effective.limits);
        if (l.0.max_publishers, l.0.max_players_per_stream)
            != (l.1.max_publishers, l.1.max_players_per_stream)
        {
            inner
                .engine
                .set_limits(l.1.max_publishers, l.1.max_players_per_stream);
            report.applied.push("limits");
        }
        if applied.admin_token != effective.admin_token {
            inner.guard.set_token(effective.admin_token.as_deref());
            report.applied.push("admin.token");
        }
        if let (Some(store), Some(cert)) = (&inner.certs, cert) {
            // Re-read every time (files are rotated in place); reported
            // when the chain differs.
            if store.current().cert != cert.cert {
                report.applied.push("certificate");
            }
            store.replace(cert);
        }
        *lock(&inner.applied) = Arc::new(effective);
        Ok(report)
    }

    /// The notifier task, for the clean stop to wait on.
    pub fn take_notifier(&self) -> Option<JoinHandle<()>> {
        lock(&self.inner.notifier).take()
    }

    /// Reload on every SIGHUP, forever (never returns where there are no
    /// signals).
    pub async fn on_sighup(self) {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{signal, SignalKind};
            if let Ok(mut hup) = signal(SignalKind::hangup()) {
                while hup.recv().await.is_some() {
                    tracing::info!("SIGHUP: reloading the configuration");
                    let _ = self.reload();
                }
            }
        }
        std::future::pending::<()>().await;
    }
}

/// The settings that differ between `old` and `new` and cannot change
/// live, as spelled in the file.
pub fn restart_needed(old: &Settings, new: &Settings) -> Vec<&'static str> {
    let mut v = Vec::new();
    let mut check = |changed: bool, name: &'static str| {
        if changed {
            v.push(name);
        }
    };
    check(old.rtmp_listen != new.rtmp_listen, "rtmp.listen");
    check(old.http_listen != new.http_listen, "http.listen");
    check(old.rtmps_listen != new.rtmps_listen, "rtmps.listen");
    check(old.https_listen != new.https_listen, "https.listen");
    check(old.admin_listen != new.admin_listen, "admin.listen");
    check(old.tls.is_some() != new.tls.is_some(), "tls");
    check(old.public_host != new.public_host, "http.public_host");
    let shape = |s: &Settings| {
        s.apps
            .iter()
            .map(|a| (a.name.clone(), a.gop_cache, a.record))
            .collect::<Vec<_>>()
    };
    check(shape(old) != shape(new), "app");
    check(old.http_flv != new.http_flv, "http.flv");
    check(
        old.http_flv_merge_writes != new.http_flv_merge_writes,
        "http.flv_merge_writes_ms",
    );
    check(
        old.rtmp_merge_writes != new.rtmp_merge_writes,
        "rtmp.merge_writes_ms",
    );
    check(old.hls != new.hls, "hls");
    check(old.record != new.record, "record");
    let l = (&old.limits, &new.limits);
    check(
        l.0.max_connections != l.1.max_connections,
        "limits.max_connections",
    );
    check(
        l.0.max_connections_per_ip != l.1.max_connections_per_ip,
        "limits.max_connections_per_ip",
    );
    check(
        l.0.max_bitrate_kbps != l.1.max_bitrate_kbps,
        "limits.max_bitrate_kbps",
    );
    check(
        old.log_level != new.log_level || old.log_format != new.log_format,
        "log",
    );
    check(
        old.shutdown_grace != new.shutdown_grace,
        "shutdown_grace_seconds",
    );
    v
}

/// `POST /api/reload`, behind the [`AdminGuard`]: 200 with the
/// [`ReloadReport`], 422 with the reason when nothing was applied.
#[derive(Debug, Clone)]
pub struct ReloadService {
    /// The reloader.
    pub reloader: Reloader,
    /// Who may call it.
    pub guard: AdminGuard,
}

impl HttpService for ReloadService {
    fn name(&self) -> &'static str {
        "reload"
    }

    fn owns(&self, _method: &Method, path: &str) -> bool {
        path == RELOAD_PATH
    }

    fn call(&self, req: Request<RequestBody>) -> ResponseFuture {
        if let Err(r) = self.guard.check(&req) {
            return Box::pin(async move { AdminGuard::refuse(&r) });
        }
        if req.method() != Method::POST {
            return Box::pin(async {
                error_json(StatusCode::METHOD_NOT_ALLOWED, "reload with POST")
            });
        }
        let reloader = self.reloader.clone();
        Box::pin(async move {
            // Reading the files is short blocking work.
            let r = tokio::task::spawn_blocking(move || reloader.reload()).await;
            match r {
                Ok(Ok(rep)) => json(StatusCode::OK, &rep),
                Ok(Err(ReloadError::Busy)) => error_json(StatusCode::CONFLICT, ReloadError::Busy),
                Ok(Err(e)) => json(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    &json!({ "error": e.to_string(), "applied": [] }),
                ),
                Err(e) => error_json(StatusCode::INTERNAL_SERVER_ERROR, e),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Cli;
    use arcly_core::auth::AuthAction;
    use arcly_core::{AppName, StreamId};
    use clap::Parser;

    fn settings(args: &[&str]) -> Settings {
        let mut v = vec!["arcly"];
        v.extend_from_slice(args);
        Settings::resolve(&Cli::parse_from(v)).unwrap()
    }

    fn publish(token: &str) -> AuthRequest {
        AuthRequest {
            action: AuthAction::Publish,
            app: AppName::new("live").unwrap(),
            stream: StreamId::new("k").unwrap(),
            query: Some(format!("token={token}")),
            peer: None,
            protocol: "rtmp",
        }
    }

    #[tokio::test]
    async fn a_reload_swaps_tokens_and_names_what_needs_a_restart() {
        let old = Arc::new(settings(&["--publish-token", "live=old"]));
        let auth = SwapAuth::new(crate::engine::authenticator(&old));
        let engine = Engine::builder().build();
        let guard = AdminGuard::default();
        let r = Reloader::new(Arc::clone(&old), auth.clone(), None, engine, None, guard);
        assert!(matches!(r.reload(), Err(ReloadError::NoSource)));
        assert_eq!(auth.authorize(&publish("old")).await, AuthDecision::Allow);

        let rep = r
            .apply(settings(&[
                "--publish-token",
                "live=new",
                "--http-listen",
                "127.0.0.1:1",
                "--max-connections",
                "5",
                "--max-connections-per-ip",
                "5",
            ]))
            .unwrap();
        assert_eq!(rep.applied, vec!["tokens"]);
        assert_eq!(
            rep.restart_needed,
            vec![
                "http.listen",
                "limits.max_connections",
                "limits.max_connections_per_ip"
            ]
        );
        assert_ne!(auth.authorize(&publish("old")).await, AuthDecision::Allow);
        assert_eq!(auth.authorize(&publish("new")).await, AuthDecision::Allow);

        // An app the file no longer lists keeps its token (not opened up).
        let rep = r.apply(settings(&["--app", "other"])).unwrap();
        assert_eq!(rep.restart_needed, vec!["app"]);
        assert_eq!(auth.authorize(&publish("new")).await, AuthDecision::Allow);
        assert_ne!(auth.authorize(&publish("old")).await, AuthDecision::Allow);
    }
}
