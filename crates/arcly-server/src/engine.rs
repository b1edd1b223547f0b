//! The engine and its injected policies: the authenticator (static tokens,
//! webhooks), the Prometheus observer, the audit log, one application per
//! configured app.

use crate::auth::ServerAuth;
use crate::config::{ConfigError, Settings};
use crate::logging::LogAudit;
use crate::webhook::HookUrl;
use arcly_core::auth::StreamAuthenticator;
use arcly_core::engine::{AppSpec, Engine};
use arcly_metrics::MetricsService;
use std::sync::Arc;

/// A webhook URL setting, parsed (validated with the config).
pub fn hook(url: &Option<String>) -> Option<HookUrl> {
    url.as_deref().and_then(|u| HookUrl::parse(u).ok())
}

/// Static per-app tokens, then the `on_publish` / `on_play` webhooks.
pub fn authenticator(s: &Settings) -> Arc<dyn StreamAuthenticator> {
    let mut auth = ServerAuth::new(s.webhooks.timeout);
    for a in &s.apps {
        auth = auth.tokens(&a.name, a.publish_token.clone(), a.play_token.clone());
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
