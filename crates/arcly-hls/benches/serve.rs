//! Packaging cost per second of media (TS, fMP4, LL-HLS fMP4) against a
//! memcpy of the same bytes, and playlist request throughput over loopback
//! against a static-body hyper service on the same connections (the HTTP
//! floor). The media is the h264-aac.ts fixture (6 s, 640x360 25 fps + AAC).
#![allow(missing_docs)] // criterion_group! fn

use arcly_core::engine::{AppSpec, Engine};
use arcly_core::registry::{PublishRegistry, PublishRequest};
use arcly_core::testing::tools;
use arcly_core::{MediaFrame, StreamPath, TimeBase};
use arcly_hls::http::{Body, HlsService, HttpConfig};
use arcly_hls::packager::{HlsRegistry, PackagerConfig};
use arcly_hls::stream::{HlsConfig, HlsStream, SegmentFormat};
use bytes::Bytes;
use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use http_body_util::Full;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

fn fixture_frames() -> Vec<MediaFrame> {
    let data = std::fs::read(tools::fixture("h264-aac.ts")).unwrap();
    let mut d = arcly_mpegts::TsDemuxer::new();
    d.push(&data).unwrap();
    d.finish().unwrap();
    std::iter::from_fn(|| d.next_frame()).collect()
}

fn media_seconds(frames: &[MediaFrame]) -> f64 {
    let ts: Vec<i64> = frames
        .iter()
        .filter(|f| !f.is_config())
        .map(|f| f.dts_in(TimeBase::MICROS))
        .collect();
    (ts.iter().max().unwrap() - ts.iter().min().unwrap()) as f64 / 1e6 + 0.04
}

fn bench_packaging(c: &mut Criterion) {
    let frames = fixture_frames();
    let secs = media_seconds(&frames);
    let bytes: usize = frames.iter().map(|f| f.payload.len()).sum();
    let mut g = c.benchmark_group("package_6s_h264_aac");
    g.throughput(Throughput::Bytes(bytes as u64));
    let cases = [
        ("ts", SegmentFormat::MpegTs, None),
        ("fmp4", SegmentFormat::Fmp4, None),
        (
            "fmp4_ll_500ms_parts",
            SegmentFormat::Fmp4,
            Some(Duration::from_millis(500)),
        ),
        (
            "ts_ll_500ms_parts",
            SegmentFormat::MpegTs,
            Some(Duration::from_millis(500)),
        ),
    ];
    for (name, format, part_target) in cases {
        g.bench_function(name, |b| {
            b.iter(|| {
                let mut hls = HlsStream::new(HlsConfig {
                    format,
                    part_target,
                    ..HlsConfig::default()
                });
                for f in &frames {
                    hls.push(f).unwrap();
                }
                hls.end();
                black_box(hls.position())
            })
        });
    }
    // Reference: copying the same payload bytes once.
    g.bench_function("memcpy_reference", |b| {
        let mut out = Vec::with_capacity(bytes);
        b.iter(|| {
            out.clear();
            for f in &frames {
                out.extend_from_slice(&f.payload);
            }
            black_box(out.len())
        })
    });
    g.finish();
    eprintln!("(media span of the fixture: {secs:.2} s; CPU per media second = time / {secs:.2})");
}

/// One keep-alive HTTP/1.1 client issuing `n` GETs of `path`.
async fn client(addr: SocketAddr, path: &'static str, n: u64) {
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.set_nodelay(true).unwrap();
    let req = format!("GET {path} HTTP/1.1\r\nHost: bench\r\n\r\n");
    let mut buf = vec![0u8; 64 * 1024];
    for _ in 0..n {
        s.write_all(req.as_bytes()).await.unwrap();
        let mut have = 0;
        loop {
            let r = s.read(&mut buf[have..]).await.unwrap();
            assert!(r > 0, "server closed");
            have += r;
            let Some(end) = buf[..have].windows(4).position(|w| w == b"\r\n\r\n") else {
                continue;
            };
            let head = std::str::from_utf8(&buf[..end]).unwrap();
            assert!(head.starts_with("HTTP/1.1 200"), "{head}");
            let len: usize = head
                .lines()
                .find_map(|l| {
                    let (k, v) = l.split_once(':')?;
                    k.eq_ignore_ascii_case("content-length")
                        .then(|| v.trim().parse().ok())?
                })
                .unwrap();
            while have < end + 4 + len {
                let r = s.read(&mut buf[have..]).await.unwrap();
                assert!(r > 0);
                have += r;
            }
            break;
        }
    }
}

async fn serve_static(listener: TcpListener, body: Bytes) {
    loop {
        let (stream, _) = listener.accept().await.unwrap();
        let body = body.clone();
        tokio::spawn(async move {
            let svc = hyper::service::service_fn(move |_req| {
                let mut r = hyper::Response::new(Full::new(body.clone()));
                r.headers_mut().insert(
                    "content-type",
                    hyper::header::HeaderValue::from_static("application/vnd.apple.mpegurl"),
                );
                async move { Ok::<hyper::Response<Body>, Infallible>(r) }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(hyper_util::rt::TokioIo::new(stream), svc)
                .await;
        });
    }
}

fn bench_http(c: &mut Criterion) {
    const CONNS: u64 = 8;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let (hls_addr, static_addr) = rt.block_on(async {
        let engine = Engine::builder()
            .application(AppSpec::new("live").channel_capacity(4096))
            .build();
        let mut cfg =
            PackagerConfig::low_latency(Duration::from_secs(2), Duration::from_millis(500));
        cfg.hls.window = 6;
        let hls = HlsRegistry::new(Arc::new(engine.clone()), cfg);
        let path = StreamPath::parse("live", "bench").unwrap();
        let packager = hls.start(&path).unwrap();
        // Publish once the packager has subscribed (it sees every frame).
        while engine
            .stream_stats(&path)
            .is_none_or(|s| s.subscribers == 0)
        {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        let mut p = engine
            .publish(PublishRequest::new(path.clone(), "bench"))
            .await
            .unwrap();
        for f in fixture_frames() {
            p.push(f);
            tokio::task::yield_now().await;
        }
        assert!(packager.wait_playlist(Duration::from_secs(5)).await);
        // Keep the publisher (the playlist stays live with parts).
        std::mem::forget(p);
        let body = packager.playlist(false).unwrap();
        let l1 = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let l2 = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let (a1, a2) = (l1.local_addr().unwrap(), l2.local_addr().unwrap());
        let svc = HlsService::new(hls, HttpConfig::default());
        tokio::spawn(arcly_http::serve(
            l1,
            arcly_http::Router::new().mount(svc),
            arcly_http::HttpLimits::default(),
            engine.shutdown_token(),
        ));
        tokio::spawn(serve_static(l2, body));
        (a1, a2)
    });
    let mut g = c.benchmark_group("playlist_requests_8_conns");
    g.throughput(Throughput::Elements(1));
    for (name, addr, path) in [
        ("hls_service_index_m3u8", hls_addr, "/live/bench/index.m3u8"),
        ("static_body_floor", static_addr, "/x"),
    ] {
        g.bench_function(name, |b| {
            b.iter_custom(|iters| {
                let per = iters.div_ceil(CONNS).max(1);
                rt.block_on(async {
                    let t = Instant::now();
                    let tasks: Vec<_> = (0..CONNS)
                        .map(|_| tokio::spawn(client(addr, path, per)))
                        .collect();
                    for t in tasks {
                        t.await.unwrap();
                    }
                    t.elapsed().mul_f64(iters as f64 / (per * CONNS) as f64)
                })
            })
        });
    }
    g.finish();
}

criterion_group!(benches, bench_packaging, bench_http);
criterion_main!(benches);
