//! Print the exposition after a synthetic publish and play, for checking it
//! with other tools: `cargo run -p arcly-metrics --example dump [--text] |
//! promtool check metrics` (`--text` prints Prometheus text 0.0.4 instead of
//! OpenMetrics).

use arcly_core::engine::{AppSpec, Engine};
use arcly_core::observe::{DropReason, Observer};
use arcly_core::registry::{PlayRequest, PlaybackRegistry, PublishRegistry, PublishRequest};
use arcly_core::testing::SyntheticStream;
use arcly_core::StreamPath;
use arcly_metrics::{Format, MetricsOptions, MetricsService, PrometheusObserver};
use prometheus_client::registry::Registry;
use std::sync::Arc;
use std::time::Duration;

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let text = std::env::args().any(|a| a == "--text");
    let mut registry = Registry::default();
    let observer = Arc::new(PrometheusObserver::with_options(
        &mut registry,
        MetricsOptions::new().per_stream(100),
    ));
    let engine = Engine::builder()
        .application(AppSpec::new("live").gop_cache(120))
        .observer(observer.clone())
        .build();
    let service = MetricsService::new(Arc::new(registry), engine.health().clone());

    let path = StreamPath::parse("live", "cam \"1\"").expect("valid name");
    let mut publisher = engine
        .publish(PublishRequest::new(path.clone(), "rtmp"))
        .await
        .expect("publish");
    let mut player = engine
        .subscribe(PlayRequest::new(path.clone(), "http-flv"))
        .await
        .expect("play");
    for f in SyntheticStream::new(25).take(200) {
        publisher.push(f);
    }
    while let Ok(Some(_)) = player.try_recv() {}
    drop(player);
    observer.connection_opened("rtmp");
    observer.ingest_error("rtmp", "timeout");
    observer.handshake("rtmp", Duration::from_millis(7));
    observer.subscriber_dropped(&path, "http-flv", &DropReason::TooSlow);
    let format = if text {
        Format::PrometheusText
    } else {
        Format::OpenMetrics
    };
    print!("{}", service.encode(format));
}
