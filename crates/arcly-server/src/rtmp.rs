//! RTMP: the [`RtmpHandler`] behind the shared TCP accept loop, with the
//! server's connection limits, bitrate limit and merged-write interval.

use crate::config::Settings;
use arcly_core::engine::Engine;
use arcly_core::ingest::{IngestLimits, StreamAcceptor, TcpIngest};
use arcly_rtmp::{RtmpConfig, RtmpHandler};
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

/// The handler's settings from `s`.
pub fn config(s: &Settings) -> RtmpConfig {
    RtmpConfig {
        limits: limits(s),
        rate_limit: s
            .limits
            .max_bitrate_kbps
            .map(|k| arcly_rtmp::handler::RateLimit {
                bytes_per_sec: k.saturating_mul(125),
                messages_per_sec: 10_000,
                burst_secs: 2.0,
            }),
        merge_writes: s.rtmp_merge_writes,
        ping_interval: s.rtmp_ping_interval,
        max_publisher_wait: s.rtmp_max_publisher_wait,
        republish_grace: s.republish_grace,
        time_jitter: time_jitter(s.time_jitter),
        ..RtmpConfig::default()
    }
}

fn limits(s: &Settings) -> IngestLimits {
    IngestLimits {
        max_connections: s.limits.max_connections,
        max_connections_per_ip: s.limits.max_connections_per_ip,
        shutdown_grace: s.shutdown_grace,
        ..IngestLimits::default()
    }
}

/// Serve RTMP on `listener` for `engine` until it shuts down; returns the
/// bound address and the task.
pub fn spawn(
    listener: TcpListener,
    s: &Settings,
    engine: &Engine,
) -> (Option<SocketAddr>, JoinHandle<()>) {
    spawn_over(listener, s, engine, None)
}

/// [`spawn`], with `transport` (TLS, for RTMPS) layered over each
/// connection before the RTMP handshake.
pub fn spawn_over(
    listener: TcpListener,
    s: &Settings,
    engine: &Engine,
    transport: Option<Arc<dyn StreamAcceptor>>,
) -> (Option<SocketAddr>, JoinHandle<()>) {
    let addr = listener.local_addr().ok();
    let mut ingest = TcpIngest::new(
        addr.unwrap_or(s.http_listen),
        Arc::new(RtmpHandler::new(config(s))),
        limits(s),
    );
    if let Some(t) = transport {
        ingest = ingest.with_acceptor(t);
    }
    let ctx = engine.ingest_context();
    let task = tokio::spawn(async move {
        if let Err(e) = ingest.serve_listener(listener, ctx).await {
            tracing::error!(error = %e, "RTMP stopped");
        }
    });
    (addr, task)
}

/// The players' timestamp correction for the setting.
pub fn time_jitter(t: crate::config::TimeJitterArg) -> arcly_rtmp::handler::TimeJitter {
    use crate::config::TimeJitterArg as A;
    use arcly_rtmp::handler::TimeJitter as T;
    match t {
        A::Full => T::Full,
        A::Zero => T::Zero,
        A::Off => T::Off,
    }
}
