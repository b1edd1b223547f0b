//! Scrape the endpoint over real HTTP on loopback during a publish and
//! play, and check the exposition with an independent OpenMetrics parser.

use arcly_core::auth::{AuthDecision, AuthRequest, StreamAuthenticator};
use arcly_core::engine::{AppSpec, Engine};
use arcly_core::health::{FnCheck, HealthRegistry, HealthStatus};
use arcly_core::observe::Observer;
use arcly_core::registry::{PlayRequest, PlaybackRegistry, PublishRegistry, PublishRequest};
use arcly_core::testing::SyntheticStream;
use arcly_core::{StreamError, StreamPath};
use arcly_metrics::http::{OPENMETRICS_CONTENT_TYPE, PROMETHEUS_TEXT_CONTENT_TYPE};
use arcly_metrics::{MetricsOptions, MetricsService, PrometheusObserver};
use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper::{Request, StatusCode};
use hyper_util::rt::TokioIo;
use openmetrics_parser::{MetricsExposition, OpenMetricsType, OpenMetricsValue};
use prometheus_client::registry::Registry;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;

type Exposition = MetricsExposition<OpenMetricsType, OpenMetricsValue>;

/// Denies playing `live/secret`.
struct DenySecret;

#[async_trait::async_trait]
impl StreamAuthenticator for DenySecret {
    async fn authorize(&self, req: &AuthRequest) -> AuthDecision {
        if req.stream.as_str() == "secret" {
            AuthDecision::Deny("no token".into())
        } else {
            AuthDecision::Allow
        }
    }
}

struct Server {
    addr: SocketAddr,
    stop: CancellationToken,
    task: tokio::task::JoinHandle<()>,
}

impl Server {
    async fn start(service: MetricsService) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let stop = CancellationToken::new();
        let router = arcly_http::Router::new().mount(service);
        let task = tokio::spawn(arcly_http::serve(
            listener,
            router,
            arcly_http::HttpLimits::default(),
            stop.clone(),
        ));
        Self { addr, stop, task }
    }

    async fn get(&self, path: &str, accept: Option<&str>) -> (StatusCode, String, String) {
        let stream = TcpStream::connect(self.addr).await.unwrap();
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .unwrap();
        tokio::spawn(conn);
        let mut req = Request::get(path).header("host", "localhost");
        if let Some(a) = accept {
            req = req.header("accept", a);
        }
        let resp = sender
            .send_request(req.body(Empty::<Bytes>::new()).unwrap())
            .await
            .unwrap();
        let status = resp.status();
        let ctype = resp
            .headers()
            .get("content-type")
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_default();
        let body = resp.into_body().collect().await.unwrap().to_bytes();
        (status, ctype, String::from_utf8(body.to_vec()).unwrap())
    }

    /// Scrape `/metrics` as Prometheus does and parse it strictly.
    async fn scrape(&self) -> Exposition {
        let (status, ctype, body) = self
            .get(
                "/metrics",
                Some("application/openmetrics-text;version=1.0.0;q=0.5,text/plain;version=0.0.4;q=0.4,*/*;q=0.1"),
            )
            .await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(ctype, OPENMETRICS_CONTENT_TYPE);
        assert!(body.ends_with("# EOF\n"), "no EOF marker:\n{body}");
        if body == "# EOF\n" {
            // A valid exposition with no family yet (OpenMetrics §4.1:
            // `exposition = metricset HASH SP eof`); the parser refuses it.
            return Exposition::new();
        }
        openmetrics_parser::openmetrics::parse_openmetrics(&body)
            .unwrap_or_else(|e| panic!("invalid OpenMetrics ({e}):\n{body}"))
    }

    async fn stop(self) {
        self.stop.cancel();
        tokio::time::timeout(Duration::from_secs(10), self.task)
            .await
            .expect("serve did not stop")
            .unwrap();
    }
}

/// The value of the series of `family` with exactly `labels`, if present.
fn value(exp: &Exposition, family: &str, labels: &[(&str, &str)]) -> Option<f64> {
    let fam = exp.families.get(family)?;
    fam.iter_samples().find_map(|s| {
        let set = s.get_labelset().ok()?;
        let names: Vec<&String> = set.iter_names().collect();
        if names.len() != labels.len() {
            return None;
        }
        if !labels
            .iter()
            .all(|(k, v)| set.get_label_value(k).map(unescape).as_deref() == Some(*v))
        {
            return None;
        }
        Some(match &s.value {
            OpenMetricsValue::Counter(c) => c.value.as_f64(),
            OpenMetricsValue::Gauge(g) => g.as_f64(),
            OpenMetricsValue::Histogram(h) => h.count.unwrap_or(0) as f64,
            other => panic!("unexpected value {other:?}"),
        })
    })
}

/// Undo OpenMetrics label value escaping (§4.1: `\\`, `\"`, `\n`); the
/// parser hands values back as written.
fn unescape(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    let mut chars = v.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('n') => out.push('\n'),
            Some(other) => out.push(other),
            None => panic!("dangling escape in {v:?}"),
        }
    }
    out
}

fn series_count(exp: &Exposition, family: &str) -> usize {
    exp.families
        .get(family)
        .map_or(0, |f| f.iter_samples().count())
}

fn path(s: &str) -> StreamPath {
    StreamPath::parse("live", s).unwrap()
}

const LIVE: (&str, &str) = ("app", "live");

#[tokio::test]
async fn values_move_with_a_real_publish_and_play() {
    let mut registry = Registry::default();
    let observer = Arc::new(PrometheusObserver::new(&mut registry));
    let engine = Engine::builder()
        .application(AppSpec::new("live").gop_cache(120))
        .authenticator(Arc::new(DenySecret))
        .observer(observer.clone())
        .build();
    let server = Server::start(MetricsService::new(
        Arc::new(registry),
        engine.health().clone(),
    ))
    .await;

    let exp = server.scrape().await;
    assert_eq!(value(&exp, "arcly_frames_in", &[LIVE]), None);

    // Publish: frames in grow with what the bus counted itself.
    let cam = path("cam");
    let mut publisher = engine
        .publish(PublishRequest::new(cam.clone(), "rtmp"))
        .await
        .unwrap();
    let mut source = SyntheticStream::new(25);
    for f in source.by_ref().take(40) {
        publisher.push(f);
    }
    let exp = server.scrape().await;
    let stats = engine.stream_stats(&cam).unwrap();
    assert_eq!(stats.frames_in, 40);
    assert_eq!(value(&exp, "arcly_frames_in", &[LIVE]), Some(40.0));
    assert_eq!(
        value(&exp, "arcly_payload_in_bytes", &[LIVE]),
        Some(stats.bytes_in as f64)
    );
    assert_eq!(
        value(&exp, "arcly_publishers", &[LIVE, ("protocol", "rtmp")]),
        Some(1.0)
    );
    assert_eq!(value(&exp, "arcly_streams_active", &[LIVE]), Some(1.0));
    assert_eq!(
        value(&exp, "arcly_gop_cache_frames", &[LIVE]),
        Some(stats.gop_frames as f64)
    );
    assert!(stats.gop_frames > 0);

    // Players: the gauge counts them per protocol.
    let mut flv = Vec::new();
    for _ in 0..3 {
        flv.push(
            engine
                .subscribe(PlayRequest::new(cam.clone(), "http-flv"))
                .await
                .unwrap(),
        );
    }
    let mut rtmp_player = engine
        .subscribe(PlayRequest::new(cam.clone(), "rtmp"))
        .await
        .unwrap();
    let exp = server.scrape().await;
    assert_eq!(
        value(&exp, "arcly_subscribers", &[LIVE, ("protocol", "http-flv")]),
        Some(3.0)
    );
    assert_eq!(
        value(&exp, "arcly_subscribers", &[LIVE, ("protocol", "rtmp")]),
        Some(1.0)
    );
    assert_eq!(
        value(&exp, "arcly_plays", &[LIVE, ("protocol", "http-flv")]),
        Some(3.0)
    );

    // More frames; every player reads the replayed GOP and the new frames.
    for f in source.by_ref().take(100) {
        publisher.push(f);
    }
    for p in flv.iter_mut().chain(std::iter::once(&mut rtmp_player)) {
        while p.try_recv().unwrap().is_some() {}
    }
    drop(rtmp_player);
    let exp = server.scrape().await;
    assert_eq!(value(&exp, "arcly_frames_in", &[LIVE]), Some(140.0));
    assert_eq!(
        value(&exp, "arcly_subscribers", &[LIVE, ("protocol", "rtmp")]),
        Some(0.0)
    );
    // The rtmp player reported everything on leaving; the flv players in
    // batches of 64, so at least one batch each.
    let rtmp_out = value(&exp, "arcly_frames_out", &[LIVE, ("protocol", "rtmp")]).unwrap();
    assert!(rtmp_out > 100.0, "rtmp frames out {rtmp_out}");
    let flv_out = value(&exp, "arcly_frames_out", &[LIVE, ("protocol", "http-flv")]).unwrap();
    assert!(flv_out >= 3.0 * 64.0, "flv frames out {flv_out}");
    assert_eq!(
        value(
            &exp,
            "arcly_time_to_first_frame_seconds",
            &[LIVE, ("protocol", "http-flv")]
        ),
        Some(3.0)
    );
    let stats = engine.stream_stats(&cam).unwrap();
    assert_eq!(
        rtmp_out + flv_out,
        stats.frames_out as f64,
        "observer and bus disagree"
    );

    // An auth denial increments its counter.
    let denied = engine
        .subscribe(PlayRequest::new(path("secret"), "http-flv"))
        .await;
    assert!(matches!(denied, Err(StreamError::Unauthorized { .. })));
    let exp = server.scrape().await;
    assert_eq!(
        value(&exp, "arcly_auth_denials", &[LIVE, ("action", "play")]),
        Some(1.0)
    );

    // The publisher leaves: the gauge and the GOP cache go back to zero.
    publisher.close();
    let exp = server.scrape().await;
    assert_eq!(
        value(&exp, "arcly_publishers", &[LIVE, ("protocol", "rtmp")]),
        Some(0.0)
    );
    assert_eq!(value(&exp, "arcly_gop_cache_frames", &[LIVE]), Some(0.0));
    assert_eq!(value(&exp, "arcly_gop_cache_bytes", &[LIVE]), Some(0.0));

    // The Prometheus 0.0.4 text format is served to clients asking for it,
    // and parses too.
    let (status, ctype, body) = server.get("/metrics", Some("text/plain")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(ctype, PROMETHEUS_TEXT_CONTENT_TYPE);
    let prom = openmetrics_parser::prometheus::parse_prometheus(&body)
        .unwrap_or_else(|e| panic!("invalid Prometheus text ({e}):\n{body}"));
    assert!(prom.families.contains_key("arcly_frames_in_total"));

    drop(flv);
    server.stop().await;
}

#[tokio::test]
async fn ended_streams_remove_their_series() {
    let mut registry = Registry::default();
    let observer =
        PrometheusObserver::with_options(&mut registry, MetricsOptions::new().per_stream(2));
    let engine = Engine::builder()
        .application(AppSpec::new("live").gop_cache(60))
        .idle_timeout(Duration::ZERO)
        .observer(Arc::new(observer))
        .build();
    let server = Server::start(MetricsService::new(
        Arc::new(registry),
        engine.health().clone(),
    ))
    .await;

    // Three streams, one with every punctuation a name may hold (names that
    // would need escaping in a label are refused at publish); the third is
    // past the limit and lands in `_other`.
    let names = ["a", "p-._~:@+=,q", "c"];
    let mut pubs = Vec::new();
    for n in names {
        let mut p = engine
            .publish(PublishRequest::new(path(n), "rtmp"))
            .await
            .unwrap();
        for f in SyntheticStream::new(10).take(12) {
            p.push(f);
        }
        pubs.push(p);
    }
    let mut sub = engine
        .subscribe(PlayRequest::new(path("a"), "hls"))
        .await
        .unwrap();
    let mut got = 0;
    while sub.try_recv().unwrap().is_some() {
        got += 1;
    }
    assert!(got > 0);
    let exp = server.scrape().await;
    let a = [LIVE, ("stream", "a")];
    let q = [LIVE, ("stream", "p-._~:@+=,q")];
    let other = [LIVE, ("stream", "_other")];
    assert_eq!(value(&exp, "arcly_frames_in", &a), Some(12.0));
    assert_eq!(value(&exp, "arcly_frames_in", &q), Some(12.0));
    assert_eq!(value(&exp, "arcly_frames_in", &other), Some(12.0));
    assert_eq!(
        value(
            &exp,
            "arcly_subscribers",
            &[LIVE, ("stream", "a"), ("protocol", "hls")]
        ),
        Some(1.0)
    );
    assert_eq!(value(&exp, "arcly_streams_active", &[LIVE]), Some(3.0));

    // `a` ends: publisher and player leave and the kernel reaps the stream.
    drop(sub);
    let exp = server.scrape().await;
    let a_hls = [LIVE, ("stream", "a"), ("protocol", "hls")];
    assert_eq!(value(&exp, "arcly_frames_out", &a_hls), Some(got as f64));
    assert_eq!(value(&exp, "arcly_subscribers", &a_hls), Some(0.0));
    let first = pubs.remove(0);
    first.close();
    assert_eq!(engine.reap_idle(), 1);
    let exp = server.scrape().await;
    for fam in [
        "arcly_frames_in",
        "arcly_payload_in_bytes",
        "arcly_gop_cache_frames",
        "arcly_gop_cache_bytes",
        "arcly_qos_skipped_frames",
        "arcly_frames_out",
        "arcly_payload_out_bytes",
        "arcly_subscribers",
    ] {
        // A family left with no series is not exposed at all.
        let Some(f) = exp.families.get(fam) else {
            continue;
        };
        assert!(
            f.iter_samples()
                .all(|s| s.get_labelset().unwrap().get_label_value("stream") != Some("a")),
            "{fam} still has a series for the removed stream"
        );
    }
    assert_eq!(value(&exp, "arcly_frames_in", &q), Some(12.0));
    assert_eq!(series_count(&exp, "arcly_frames_in"), 2);
    assert_eq!(value(&exp, "arcly_streams_active", &[LIVE]), Some(2.0));

    drop(pubs);
    server.stop().await;
}

#[tokio::test]
async fn readiness_flips_when_a_check_fails() {
    let health = HealthRegistry::new();
    let disk_ok = Arc::new(AtomicBool::new(true));
    let flag = disk_ok.clone();
    health.register(Arc::new(FnCheck::new("disk", move || {
        if flag.load(Ordering::Relaxed) {
            HealthStatus::Healthy
        } else {
            HealthStatus::Unhealthy("disk full".into())
        }
    })));
    health.register(Arc::new(FnCheck::new("rtmp-listener", || {
        HealthStatus::Healthy
    })));
    let server = Server::start(MetricsService::new(Arc::new(Registry::default()), health)).await;

    let (status, _, body) = server.get("/readyz", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, "ready\nok disk\nok rtmp-listener\n");

    disk_ok.store(false, Ordering::Relaxed);
    let (status, ctype, body) = server.get("/readyz", None).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(ctype.starts_with("text/plain"));
    assert_eq!(
        body,
        "not ready: disk\nfail disk: disk full\nok rtmp-listener\n"
    );
    // Liveness does not depend on readiness.
    let (status, _, body) = server.get("/healthz", None).await;
    assert_eq!((status, body.as_str()), (StatusCode::OK, "ok\n"));

    disk_ok.store(true, Ordering::Relaxed);
    assert_eq!(server.get("/readyz", None).await.0, StatusCode::OK);
    assert_eq!(server.get("/nope", None).await.0, StatusCode::NOT_FOUND);
    server.stop().await;
}

#[tokio::test]
async fn engines_with_separate_registries_are_independent() {
    let (mut ra, mut rb) = (Registry::default(), Registry::default());
    let ea = Engine::builder()
        .application(AppSpec::new("live"))
        .observer(Arc::new(PrometheusObserver::new(&mut ra)))
        .build();
    let _eb = Engine::builder()
        .application(AppSpec::new("live"))
        .observer(Arc::new(PrometheusObserver::new(&mut rb)))
        .build();
    let sa = Server::start(MetricsService::new(Arc::new(ra), HealthRegistry::new())).await;
    let sb = Server::start(MetricsService::new(Arc::new(rb), HealthRegistry::new())).await;
    let mut p = ea
        .publish(PublishRequest::new(path("x"), "rtmp"))
        .await
        .unwrap();
    for f in SyntheticStream::new(5).take(7) {
        p.push(f);
    }
    assert_eq!(
        value(&sa.scrape().await, "arcly_frames_in", &[LIVE]),
        Some(7.0)
    );
    assert_eq!(value(&sb.scrape().await, "arcly_frames_in", &[LIVE]), None);
    drop(p);
    sa.stop().await;
    sb.stop().await;
}

#[tokio::test]
async fn connection_level_hooks_validate() {
    // No wire protocol lives in this crate; drive the hooks a protocol's
    // accept loop calls and check the exposition stays valid.
    let mut registry = Registry::default();
    let o = PrometheusObserver::new(&mut registry);
    let server = Server::start(MetricsService::new(
        Arc::new(registry),
        HealthRegistry::new(),
    ))
    .await;
    o.connection_opened("rtmp");
    o.connection_opened("rtmp");
    o.connection_closed("rtmp");
    o.ingest_error("rtmp", "timeout");
    o.ingest_error("rtmp", "timeout");
    o.ingest_error("srt", "limit");
    o.handshake("rtmp", Duration::from_millis(3));
    o.handshake("rtmp", Duration::from_secs(30));
    o.subscriber_dropped(
        &path("cam"),
        "rtmp",
        &arcly_core::observe::DropReason::TooSlow,
    );
    let exp = server.scrape().await;
    assert_eq!(
        value(&exp, "arcly_connections", &[("protocol", "rtmp")]),
        Some(1.0)
    );
    assert_eq!(
        value(&exp, "arcly_connections_accepted", &[("protocol", "rtmp")]),
        Some(2.0)
    );
    assert_eq!(
        value(
            &exp,
            "arcly_ingest_errors",
            &[("protocol", "rtmp"), ("reason", "timeout")]
        ),
        Some(2.0)
    );
    assert_eq!(
        value(
            &exp,
            "arcly_ingest_errors",
            &[("protocol", "srt"), ("reason", "limit")]
        ),
        Some(1.0)
    );
    assert_eq!(
        value(
            &exp,
            "arcly_handshake_duration_seconds",
            &[("protocol", "rtmp")]
        ),
        Some(2.0)
    );
    let h = exp.families["arcly_handshake_duration_seconds"]
        .iter_samples()
        .next()
        .unwrap();
    match &h.value {
        OpenMetricsValue::Histogram(h) => {
            // 3 ms falls in the 4 ms bucket; 30 s only in +Inf.
            let le = |b: f64| {
                h.buckets
                    .iter()
                    .find(|x| x.upper_bound == b)
                    .map(|x| x.count.as_f64())
            };
            assert_eq!(le(0.002), Some(0.0));
            assert_eq!(le(0.004), Some(1.0));
            assert_eq!(le(f64::INFINITY), Some(2.0));
            assert!((h.sum.unwrap().as_f64() - 30.003).abs() < 1e-9);
        }
        other => panic!("not a histogram: {other:?}"),
    }
    assert_eq!(
        value(
            &exp,
            "arcly_subscribers_dropped",
            &[LIVE, ("protocol", "rtmp"), ("reason", "too_slow")]
        ),
        Some(1.0)
    );
    server.stop().await;
}

#[tokio::test]
async fn mounts_in_a_host_hyper_server() {
    // A host server with its own routes asks the service first.
    let mut registry = Registry::default();
    let observer = PrometheusObserver::new(&mut registry);
    observer.connection_opened("rtmp");
    let telemetry = MetricsService::new(Arc::new(registry), HealthRegistry::new());
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let host = tokio::spawn(async move {
        for _ in 0..3 {
            let (tcp, _) = listener.accept().await.unwrap();
            let telemetry = telemetry.clone();
            let svc = hyper::service::service_fn(move |req: Request<hyper::body::Incoming>| {
                let telemetry = telemetry.clone();
                async move {
                    if let Some(resp) = telemetry.handle(&req).await {
                        return Ok::<_, std::convert::Infallible>(resp);
                    }
                    Ok(hyper::Response::new(http_body_util::Full::new(
                        Bytes::from_static(b"host route\n"),
                    )))
                }
            });
            hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(tcp), svc)
                .await
                .unwrap();
        }
    });
    let client = Server {
        addr,
        stop: CancellationToken::new(),
        task: tokio::spawn(async {}),
    };
    let exp = client.scrape().await;
    assert_eq!(
        value(&exp, "arcly_connections", &[("protocol", "rtmp")]),
        Some(1.0)
    );
    let (status, _, body) = client.get("/live/cam.flv", None).await;
    assert_eq!((status, body.as_str()), (StatusCode::OK, "host route\n"));
    let (status, _, body) = client.get("/healthz", None).await;
    assert_eq!((status, body.as_str()), (StatusCode::OK, "ok\n"));
    tokio::time::timeout(Duration::from_secs(5), host)
        .await
        .unwrap()
        .unwrap();
}
