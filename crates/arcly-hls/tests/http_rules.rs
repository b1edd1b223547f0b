//! HTTP behaviour of HlsService called directly (as a host router would):
//! methods, CORS, HEAD, content types and caching, clear 404s, blocking
//! reloads bounded in time, and paths that are not its own.

mod common;

use arcly_core::engine::{AppSpec, Engine};
use arcly_core::registry::{PublishRegistry, PublishRequest};
use arcly_core::testing::tools;
use arcly_core::StreamPath;
use arcly_hls::http::{HlsService, HttpConfig};
use arcly_hls::packager::{HlsRegistry, PackagerConfig};
use http_body_util::BodyExt;
use hyper::{Method, Request, StatusCode};
use std::sync::Arc;
use std::time::{Duration, Instant};

fn req(method: Method, uri: &str) -> Request<()> {
    Request::builder().method(method).uri(uri).body(()).unwrap()
}

async fn body(r: hyper::Response<arcly_hls::http::Body>) -> bytes::Bytes {
    r.into_body().collect().await.unwrap().to_bytes()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn methods_headers_and_bounded_blocking() {
    let engine = Engine::builder()
        .application(AppSpec::new("live").channel_capacity(4096))
        .build();
    let mut cfg = PackagerConfig::low_latency(Duration::from_secs(2), Duration::from_millis(500));
    cfg.hls.window = 3;
    let hls = HlsRegistry::new(Arc::new(engine.clone()), cfg);
    let svc = HlsService::new(
        hls.clone(),
        HttpConfig {
            max_block: Some(Duration::from_millis(300)),
            ..HttpConfig::default()
        },
    );
    let path = StreamPath::parse("live", "k").unwrap();
    // Nobody publishes: a clear 404, and no packager is started for it.
    let r = svc.respond(&req(Method::GET, "/live/k/index.m3u8")).await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    assert_eq!(&body(r).await[..], b"unknown stream\n");
    assert!(hls.get(&path).is_none());
    // Not its paths: None, so a host can route them elsewhere.
    assert!(svc.handle(&req(Method::GET, "/live/k.flv")).await.is_none());
    assert!(svc.handle(&req(Method::GET, "/metrics")).await.is_none());

    // A publisher: the first request starts the packager on demand.
    let frames = common::read_ts(&tools::fixture("h264-aac.ts"));
    let mut p = engine
        .publish(PublishRequest::new(path.clone(), "test"))
        .await
        .unwrap();
    let first = tokio::spawn({
        let svc = svc.clone();
        async move { svc.respond(&req(Method::GET, "/live/k/index.m3u8")).await }
    });
    while hls.get(&path).is_none() {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    while engine
        .stream_stats(&path)
        .is_none_or(|s| s.subscribers == 0)
    {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    for f in &frames {
        p.push(f.clone());
    }
    let r = first.await.unwrap();
    assert_eq!(r.status(), StatusCode::OK, "waited for the first playlist");
    let h = r.headers();
    assert_eq!(h["content-type"], "application/vnd.apple.mpegurl");
    assert_eq!(h["cache-control"], "no-cache");
    assert_eq!(h["access-control-allow-origin"], "*");
    let text = String::from_utf8(body(r).await.to_vec()).unwrap();
    arcly_hls::checker::check(&text).unwrap();
    let packager = hls.get(&path).unwrap();
    assert!(packager.wait_ready(1, None, Duration::from_secs(5)).await);

    // Segments: MPEG-TS, long-lived, CORS; HEAD has the length and no body.
    let seg = packager.lock().segment_uri(1);
    let r = svc
        .respond(&req(Method::GET, &format!("/live/k/{seg}")))
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()["content-type"], "video/mp2t");
    assert!(r.headers()["cache-control"]
        .to_str()
        .unwrap()
        .contains("max-age=86400"));
    let len = body(r).await.len();
    assert!(len > 1000 && len % 188 == 0, "{len}");
    let r = svc
        .respond(&req(Method::HEAD, &format!("/live/k/{seg}")))
        .await;
    assert_eq!(r.headers()["content-length"], len.to_string().as_str());
    assert!(body(r).await.is_empty());
    // Gone or never there: 404.
    let r = svc.respond(&req(Method::GET, "/live/k/nope-seg1.ts")).await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    // CORS preflight and other methods.
    let r = svc
        .respond(&req(Method::OPTIONS, "/live/k/index.m3u8"))
        .await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    assert_eq!(r.headers()["access-control-allow-origin"], "*");
    assert!(r.headers()["access-control-allow-methods"]
        .to_str()
        .unwrap()
        .contains("GET"));
    let r = svc.respond(&req(Method::POST, "/live/k/index.m3u8")).await;
    assert_eq!(r.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(r.headers()["allow"], "GET, HEAD, OPTIONS");

    // The publisher stalls (still connected): a blocking reload for the next
    // segment gives up after max_block with 503, not later.
    let next = packager.position().msn + 1;
    let t = Instant::now();
    let r = svc
        .respond(&req(
            Method::GET,
            &format!("/live/k/index.m3u8?_HLS_msn={next}"),
        ))
        .await;
    let waited = t.elapsed();
    assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(
        waited >= Duration::from_millis(290) && waited < Duration::from_millis(1000),
        "{waited:?}"
    );
    // Multivariant.
    let r = svc.respond(&req(Method::GET, "/live/k.m3u8")).await;
    assert_eq!(r.status(), StatusCode::OK);
    let text = String::from_utf8(body(r).await.to_vec()).unwrap();
    assert!(
        text.contains("#EXT-X-STREAM-INF:") && text.contains("\nk/index.m3u8\n"),
        "{text}"
    );
    // Shutdown ends the playlist.
    hls.shutdown();
    packager.finished().await;
    let r = svc.respond(&req(Method::GET, "/live/k/index.m3u8")).await;
    assert!(body(r).await.ends_with(b"#EXT-X-ENDLIST\n"));
    drop(p);
}
