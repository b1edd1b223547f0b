//! Logging: a `tracing` subscriber (pretty or JSON lines) and [`LogAudit`],
//! the audit sink that writes one line per publish, play, unpublish and
//! denial with the app, stream, peer and protocol.

use crate::config::LogFormat;
use arcly_core::audit::{AuditEvent, AuditOutcome, AuditSink};
use async_trait::async_trait;

/// The kernel's own per-event lines that [`LogAudit`] replaces (it logs the
/// same events with the peer address); silenced below `warn` when the level
/// is a plain level name.
const QUIET_DUPLICATES: &str = "arcly_core::engine=warn,arcly_core::inbound=warn";

/// The filter directive used for `level`: a plain level (`info`) also
/// silences the kernel's duplicate event lines; a full directive is taken as
/// written.
pub fn directive(level: &str) -> String {
    if level.contains(['=', ',']) {
        level.to_owned()
    } else {
        format!("{level},{QUIET_DUPLICATES}")
    }
}

/// Install the global subscriber. `level` was validated with the config.
pub fn init(level: &str, format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::builder()
        .parse(directive(level))
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()));
    let _ = match format {
        LogFormat::Pretty => builder.with_target(false).try_init(),
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
    };
}

/// Writes each audit event as one log line.
#[derive(Debug, Default, Clone, Copy)]
pub struct LogAudit;

#[async_trait]
impl AuditSink for LogAudit {
    async fn record(&self, e: AuditEvent) {
        if crate::auth::INTERNAL_PROTOCOLS.contains(&e.protocol) {
            return;
        }
        let app = e.path.app.as_str();
        let stream = e.path.stream.as_str();
        let peer = e.peer.map(|p| p.to_string()).unwrap_or_else(|| "-".into());
        let action = e.action.as_str();
        match &e.outcome {
            AuditOutcome::Started => {
                let event = if action == "publish" {
                    "publish"
                } else {
                    "play"
                };
                tracing::info!(target: "arcly::audit", event, app, stream, peer, protocol = e.protocol, "{event} started");
            }
            AuditOutcome::Ended => {
                let event = if action == "publish" {
                    "unpublish"
                } else {
                    "stop"
                };
                tracing::info!(target: "arcly::audit", event, app, stream, peer, protocol = e.protocol, "{event}");
            }
            AuditOutcome::Denied(reason) => {
                tracing::warn!(target: "arcly::audit", event = "denied", action, app, stream, peer, protocol = e.protocol, reason = %reason, "{action} denied");
            }
            AuditOutcome::Failed(reason) => {
                tracing::warn!(target: "arcly::audit", event = "error", action, app, stream, peer, protocol = e.protocol, reason = %reason, "{action} failed");
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn plain_levels_quiet_duplicates() {
        assert!(super::directive("debug").starts_with("debug,arcly_core::engine=warn"));
        assert_eq!(super::directive("info,hyper=warn"), "info,hyper=warn");
    }
}
