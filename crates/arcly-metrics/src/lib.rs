//! Prometheus telemetry and health endpoints for arcly-stream.
//!
//! - [`PrometheusObserver`]: an [`Observer`](arcly_core::observe::Observer)
//!   recording what the kernel reports into a prometheus-client
//!   [`Registry`](prometheus_client::registry::Registry) the host owns (never
//!   a global one). A frame in costs a relaxed load and store on the
//!   stream's own cache line (summed at scrape time); deliveries are counted
//!   with two atomic adds per batch the kernel reports.
//! - [`MetricsService`]: `/metrics` (OpenMetrics text), `/healthz`
//!   (liveness) and `/readyz` (the engine's
//!   [`HealthRegistry`](arcly_core::health::HealthRegistry) aggregate, 503
//!   naming the failing checks): an [`arcly_http::HttpService`] to mount on
//!   the host's [`arcly_http::Router`], or asked from a host's own router
//!   through [`MetricsService::handle`].
//!
//! # Metrics
//! Every name starts with `arcly_`; counters end in `_total`, units are in
//! the name (`_bytes`, `_seconds`). `{app}` is the application; stream-scoped
//! families (marked †) also carry `stream` when the host opts in with
//! [`MetricsOptions::per_stream`], and those series are removed when the
//! kernel removes the stream.
//!
//! | name | type | labels |
//! |---|---|---|
//! | `arcly_streams_active` | gauge | app |
//! | `arcly_publishers` | gauge | app, protocol |
//! | `arcly_publishes_total` | counter | app, protocol |
//! | `arcly_subscribers` † | gauge | app, protocol |
//! | `arcly_plays_total` | counter | app, protocol |
//! | `arcly_frames_in_total` † | counter | app |
//! | `arcly_payload_in_bytes_total` † | counter | app |
//! | `arcly_frames_out_total` † | counter | app, protocol |
//! | `arcly_payload_out_bytes_total` † | counter | app, protocol |
//! | `arcly_gop_cache_frames` † | gauge | app |
//! | `arcly_gop_cache_bytes` † | gauge | app |
//! | `arcly_qos_skipped_frames_total` † | counter | app |
//! | `arcly_subscribers_dropped_total` | counter | app, protocol, reason |
//! | `arcly_auth_denials_total` | counter | app, action |
//! | `arcly_ingest_errors_total` | counter | protocol, reason |
//! | `arcly_connections` | gauge | protocol |
//! | `arcly_connections_accepted_total` | counter | protocol |
//! | `arcly_handshake_duration_seconds` | histogram | protocol |
//! | `arcly_time_to_first_frame_seconds` | histogram | app, protocol |
//! | `arcly_http_requests_total` | counter | protocol, kind |
//! | `arcly_blocking_request_duration_seconds` | histogram | protocol, kind |
//!
//! A host may add [`ProcessCollector`] at its registry's root for
//! `process_cpu_seconds_total` and `process_resident_memory_bytes`.
//!
//! # Example
//! ```
//! use arcly_core::engine::{AppSpec, Engine};
//! use arcly_core::registry::{PlayRequest, PlaybackRegistry, PublishRegistry, PublishRequest};
//! use arcly_core::testing::SyntheticStream;
//! use arcly_core::StreamPath;
//! use arcly_metrics::{Format, MetricsService, PrometheusObserver};
//! use prometheus_client::registry::Registry;
//! use std::sync::Arc;
//!
//! # tokio::runtime::Runtime::new().unwrap().block_on(async {
//! let mut registry = Registry::default();
//! let observer = PrometheusObserver::new(&mut registry);
//! let engine = Engine::builder()
//!     .application(AppSpec::new("live").gop_cache(120))
//!     .observer(Arc::new(observer))
//!     .build();
//! let service = MetricsService::new(Arc::new(registry), engine.health().clone());
//!
//! let path = StreamPath::parse("live", "cam").unwrap();
//! let mut publisher = engine.publish(PublishRequest::new(path.clone(), "rtmp")).await.unwrap();
//! let _player = engine.subscribe(PlayRequest::new(path, "http-flv")).await.unwrap();
//! for frame in SyntheticStream::new(25).take(10) {
//!     publisher.push(frame);
//! }
//! let text = service.encode(Format::OpenMetrics);
//! assert!(text.contains(r#"arcly_subscribers{app="live",protocol="http-flv"} 1"#));
//! assert!(text.ends_with("# EOF\n"));
//! // On a socket: arcly_http::serve(listener, arcly_http::Router::new().mount(service), limits, shutdown_token).await
//! # });
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod http;
mod labels;
pub mod observer;
pub mod process;

pub use http::{Format, MetricsService};
pub use labels::OTHER_STREAMS;
pub use observer::{MetricsOptions, PrometheusObserver, StreamLabels, PREFIX};
pub use process::ProcessCollector;
pub use prometheus_client;
