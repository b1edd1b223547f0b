//! Publishers and players on several threads at once: the observer's totals
//! must equal what the bus counted itself.

use arcly_core::engine::{AppSpec, Engine};
use arcly_core::registry::{PlayRequest, PlaybackRegistry, PublishRegistry, PublishRequest};
use arcly_core::testing::SyntheticStream;
use arcly_core::StreamPath;
use arcly_metrics::{Format, MetricsOptions, MetricsService, PrometheusObserver};
use openmetrics_parser::OpenMetricsValue;
use prometheus_client::registry::Registry;
use std::sync::Arc;

const STREAMS: usize = 4;
const PLAYERS: usize = 3;
const FRAMES: usize = 500;

/// Sum of every sample of `family` (counters and gauges).
fn total(service: &MetricsService, family: &str) -> f64 {
    let body = service.encode(Format::OpenMetrics);
    let exp = openmetrics_parser::openmetrics::parse_openmetrics(&body)
        .unwrap_or_else(|e| panic!("invalid OpenMetrics ({e}):\n{body}"));
    let Some(fam) = exp.families.get(family) else {
        return 0.0;
    };
    let sum = fam
        .iter_samples()
        .map(|s| match &s.value {
            OpenMetricsValue::Counter(c) => c.value.as_f64(),
            OpenMetricsValue::Gauge(g) => g.as_f64(),
            other => panic!("unexpected {other:?}"),
        })
        .sum();
    sum
}

async fn run(opts: MetricsOptions) {
    let mut registry = Registry::default();
    let observer = PrometheusObserver::with_options(&mut registry, opts);
    let engine = Engine::builder()
        .application(AppSpec::new("live").gop_cache(50).channel_capacity(4096))
        .observer(Arc::new(observer))
        .build();
    let service = MetricsService::new(Arc::new(registry), engine.health().clone());

    let mut tasks = Vec::new();
    let mut players = Vec::new();
    for i in 0..STREAMS {
        let path = StreamPath::parse("live", &format!("s{i}")).unwrap();
        let mut session = engine
            .publish(PublishRequest::new(path.clone(), "rtmp"))
            .await
            .unwrap();
        for p in 0..PLAYERS {
            let protocol = if p % 2 == 0 { "http-flv" } else { "hls" };
            let mut sub = engine
                .subscribe(PlayRequest::new(path.clone(), protocol))
                .await
                .unwrap();
            players.push(tokio::spawn(async move {
                let mut n = 0usize;
                loop {
                    let f = sub.recv().await.unwrap();
                    if f.is_end_of_stream() {
                        return n;
                    }
                    n += 1;
                }
            }));
        }
        tasks.push(tokio::spawn(async move {
            for (k, f) in SyntheticStream::new(25).take(FRAMES).enumerate() {
                session.push(f);
                if k % 50 == 0 {
                    tokio::task::yield_now().await;
                }
            }
            session.close();
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let mut delivered = 0;
    for p in players {
        delivered += p.await.unwrap();
    }
    // Every player got every frame plus the end-of-stream marker.
    assert_eq!(delivered, STREAMS * PLAYERS * FRAMES);

    let stats = engine.list_streams();
    let frames_in: u64 = stats.iter().map(|s| s.frames_in).sum();
    let bytes_in: u64 = stats.iter().map(|s| s.bytes_in).sum();
    let frames_out: u64 = stats.iter().map(|s| s.frames_out).sum();
    let bytes_out: u64 = stats.iter().map(|s| s.bytes_out).sum();
    assert_eq!(frames_in, (STREAMS * FRAMES) as u64);
    assert_eq!(total(&service, "arcly_frames_in"), frames_in as f64);
    assert_eq!(total(&service, "arcly_payload_in_bytes"), bytes_in as f64);
    // Players were dropped inside their tasks, reporting their last batch.
    assert_eq!(total(&service, "arcly_frames_out"), frames_out as f64);
    assert_eq!(total(&service, "arcly_payload_out_bytes"), bytes_out as f64);
    assert_eq!(total(&service, "arcly_subscribers"), 0.0);
    assert_eq!(total(&service, "arcly_publishers"), 0.0);
    assert_eq!(total(&service, "arcly_gop_cache_frames"), 0.0);
    assert_eq!(total(&service, "arcly_plays"), (STREAMS * PLAYERS) as f64);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn totals_match_the_bus_per_app() {
    run(MetricsOptions::new()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn totals_match_the_bus_per_stream() {
    // Two named series and an `_other` one.
    run(MetricsOptions::new().per_stream(2)).await;
}
