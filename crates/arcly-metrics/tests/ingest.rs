//! Connection-level metrics driven by a real TCP protocol on loopback: a toy
//! line protocol run by arcly-core's ingest accept loop inside an engine.

use arcly_core::engine::{AppSpec, Engine};
use arcly_core::inbound::IngestContext;
use arcly_core::ingest::{IngestLimits, TcpIngest};
use arcly_core::registry::PublishRequest;
use arcly_core::testing::SyntheticStream;
use arcly_core::traits::{Connection, ProtocolHandler};
use arcly_core::{StreamError, StreamPath};
use arcly_metrics::{Format, MetricsService, PrometheusObserver};
use openmetrics_parser::{MetricsExposition, OpenMetricsType, OpenMetricsValue};
use prometheus_client::registry::Registry;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

/// `PUB <name>\n` publishes 30 synthetic frames to `live/<name>` and holds
/// the publish until the client closes; anything else is a protocol error.
struct Toy;

#[async_trait::async_trait]
impl ProtocolHandler for Toy {
    fn name(&self) -> &'static str {
        "toy"
    }

    async fn handle_connection(
        &self,
        conn: Box<dyn Connection>,
        _peer: SocketAddr,
        ctx: IngestContext,
    ) -> arcly_core::Result<()> {
        let started = Instant::now();
        let mut conn = BufReader::new(conn);
        let mut line = String::new();
        (&mut conn).take(64).read_line(&mut line).await?;
        let Some(name) = line.trim_end().strip_prefix("PUB ") else {
            return Err(StreamError::protocol("unknown command"));
        };
        ctx.observer.handshake("toy", started.elapsed());
        let path = StreamPath::parse("live", name)?;
        let mut session = ctx
            .registry
            .publish(PublishRequest::new(path, "toy"))
            .await?;
        for f in SyntheticStream::new(10).take(30) {
            session.push(f);
        }
        conn.get_mut().write_all(b"OK\n").await?;
        let mut rest = Vec::new();
        conn.read_to_end(&mut rest).await?;
        Ok(())
    }
}

fn parse(service: &MetricsService) -> MetricsExposition<OpenMetricsType, OpenMetricsValue> {
    let body = service.encode(Format::OpenMetrics);
    openmetrics_parser::openmetrics::parse_openmetrics(&body)
        .unwrap_or_else(|e| panic!("invalid OpenMetrics ({e}):\n{body}"))
}

fn value(service: &MetricsService, family: &str, labels: &[(&str, &str)]) -> Option<f64> {
    let exp = parse(service);
    let fam = exp.families.get(family)?;
    let found = fam.iter_samples().find_map(|s| {
        let set = s.get_labelset().ok()?;
        if set.iter_names().count() != labels.len()
            || !labels
                .iter()
                .all(|(k, v)| set.get_label_value(k) == Some(*v))
        {
            return None;
        }
        Some(match &s.value {
            OpenMetricsValue::Counter(c) => c.value.as_f64(),
            OpenMetricsValue::Gauge(g) => g.as_f64(),
            OpenMetricsValue::Histogram(h) => h.count.unwrap_or(0) as f64,
            other => panic!("unexpected {other:?}"),
        })
    });
    found
}

/// Wait (bounded) until the series reads `want`: connection tasks finish
/// asynchronously after the client sees the socket close.
async fn eventually(service: &MetricsService, family: &str, labels: &[(&str, &str)], want: f64) {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let got = value(service, family, labels);
        if got == Some(want) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{family}{labels:?} is {got:?}, want {want}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_handshakes_and_errors_of_a_real_protocol() {
    let mut registry = Registry::default();
    let observer = Arc::new(PrometheusObserver::new(&mut registry));
    let ingest = Arc::new(TcpIngest::new(
        "127.0.0.1:0".parse().unwrap(),
        Arc::new(Toy),
        IngestLimits::default(),
    ));
    let bound = ingest.local_addr_receiver();
    let engine = Engine::builder()
        .application(AppSpec::new("live").gop_cache(30))
        .observer(observer)
        .protocol(ingest)
        .shutdown_grace(Duration::from_secs(2))
        .build();
    let service = MetricsService::new(Arc::new(registry), engine.health().clone());
    let runner = {
        let engine = engine.clone();
        tokio::spawn(async move { engine.run().await })
    };
    let addr = tokio::time::timeout(Duration::from_secs(5), bound)
        .await
        .unwrap()
        .unwrap();

    let toy = [("protocol", "toy")];
    let live = [("app", "live")];
    let mut publisher = TcpStream::connect(addr).await.unwrap();
    publisher.write_all(b"PUB cam\n").await.unwrap();
    let mut ok = [0u8; 3];
    publisher.read_exact(&mut ok).await.unwrap();
    assert_eq!(&ok, b"OK\n");
    assert_eq!(value(&service, "arcly_connections", &toy), Some(1.0));
    assert_eq!(
        value(&service, "arcly_connections_accepted", &toy),
        Some(1.0)
    );
    assert_eq!(
        value(&service, "arcly_handshake_duration_seconds", &toy),
        Some(1.0)
    );
    assert_eq!(value(&service, "arcly_frames_in", &live), Some(30.0));
    assert_eq!(
        value(
            &service,
            "arcly_publishers",
            &[("app", "live"), ("protocol", "toy")]
        ),
        Some(1.0)
    );

    // A client speaking nonsense is an ingest error labelled by reason.
    let mut bad = TcpStream::connect(addr).await.unwrap();
    bad.write_all(b"HELLO\n").await.unwrap();
    let mut sink = Vec::new();
    let _ = bad.read_to_end(&mut sink).await;
    eventually(
        &service,
        "arcly_ingest_errors",
        &[("protocol", "toy"), ("reason", "protocol")],
        1.0,
    )
    .await;
    eventually(&service, "arcly_connections_accepted", &toy, 2.0).await;

    // The publisher hangs up: its connection and its publish end.
    drop(publisher);
    eventually(&service, "arcly_connections", &toy, 0.0).await;
    eventually(
        &service,
        "arcly_publishers",
        &[("app", "live"), ("protocol", "toy")],
        0.0,
    )
    .await;

    engine.shutdown();
    tokio::time::timeout(Duration::from_secs(10), runner)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    // Shutdown closed the stream.
    assert_eq!(value(&service, "arcly_streams_active", &live), Some(0.0));
}
