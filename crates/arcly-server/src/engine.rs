//! The engine and its injected policies: the authenticator (static tokens,
//! JWTs, webhooks), the Prometheus observer, the audit log, one application per
//! configured app.

use crate::auth::ServerAuth;
use crate::config::{ConfigError, JwtSettings, Settings};
use crate::jwt::{JwtVerifier, KeySet};
use crate::logging::LogAudit;
use crate::webhook::HookUrl;
use arcly_core::auth::StreamAuthenticator;
use arcly_core::engine::{AppSpec, Engine};
use arcly_metrics::MetricsService;
use std::sync::Arc;
use tokio::task::JoinHandle;

/// A webhook URL setting, parsed (validated with the config).
pub fn hook(url: &Option<String>) -> Option<HookUrl> {
    url.as_deref().and_then(|u| HookUrl::parse(u).ok())
}

/// Static per-app tokens and JWTs, then the `on_publish` / `on_play`
/// webhooks. A JWKS URL is fetched on a task of the current runtime.
pub fn authenticator(s: &Settings) -> Arc<dyn StreamAuthenticator> {
    let mut auth = ServerAuth::new(s.webhooks.timeout);
    for a in &s.apps {
        auth = auth.tokens(&a.name, a.publish_token.clone(), a.play_token.clone());
    }
    if s.jwt.enabled() {
        auth = auth.jwt(jwt_verifier(&s.jwt), &s.jwt.required_actions());
    }
    Arc::new(auth.hooks(hook(&s.webhooks.on_publish), hook(&s.webhooks.on_play)))
}

/// The engine with `auth`, the limits and apps of `s`, and the metrics
/// service that reads its observer and health.
pub fn build(
    s: &Settings,
    auth: Arc<dyn StreamAuthenticator>,
) -> Result<(Engine, MetricsService), ConfigError> {
    let mut registry = prometheus_client::registry::Registry::default();
    let observer = arcly_metrics::PrometheusObserver::new(&mut registry);
    registry.register_collector(Box::new(arcly_metrics::ProcessCollector));
    let mut builder = Engine::builder()
        .max_publishers(s.limits.max_publishers)
        .max_subscribers_per_stream(s.limits.max_players_per_stream)
        .observer(Arc::new(observer))
        .authenticator(auth)
        .audit_sink(Arc::new(LogAudit), 4096)
        .shutdown_grace(s.shutdown_grace);
    for a in &s.apps {
        // Names were validated with the config.
        let spec = AppSpec::try_new(&a.name)
            .map_err(|e| ConfigError {
                setting: "app.name".into(),
                flag: Some("--app"),
                reason: e.to_string(),
            })?
            .gop_cache(a.gop_cache);
        builder = builder.application(spec);
    }
    let engine = builder.build();
    let metrics = MetricsService::new(Arc::new(registry), engine.health().clone());
    Ok((engine, metrics))
}

/// The JWT verifier of `s` (secret, JWKS file or URL, leeway).
pub fn jwt_verifier(s: &JwtSettings) -> JwtVerifier {
    let mut v = JwtVerifier::new().leeway(s.leeway);
    if let Some(secret) = &s.secret {
        v = v.secret(secret.expose().as_bytes());
    }
    if let Some(path) = &s.jwks {
        // Checked with the config; read again here, and a failure leaves
        // the verifier without keys (tokens refused), logged.
        match std::fs::read(path)
            .map_err(|e| e.to_string())
            .and_then(|b| KeySet::parse(&b))
        {
            Ok(keys) => v = v.key_set(keys),
            Err(e) => {
                tracing::error!(target: "arcly::auth", path = %path.display(), error = %e, "cannot load the JWKS file")
            }
        }
    }
    if let Some(url) = s.jwks_url.as_deref().and_then(|u| HookUrl::parse(u).ok()) {
        v = v.key_url(url, s.jwks_refresh);
    }
    v
}

/// The `on_unpublish` / `on_stop` notifier, when either hook is set.
pub fn spawn_hooks(s: &Settings, engine: &Engine) -> Option<JoinHandle<()>> {
    let w = &s.webhooks;
    (w.on_unpublish.is_some() || w.on_stop.is_some()).then(|| {
        crate::auth::spawn_notifier(engine, hook(&w.on_unpublish), hook(&w.on_stop), w.timeout)
    })
}
