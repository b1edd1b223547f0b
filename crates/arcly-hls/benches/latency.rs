//! Glass-to-fetch delay over loopback: a publisher pushes the h264-aac.ts
//! fixture into an Engine in real time; an LL-HLS client asks for each
//! preload-hinted part (the request blocks until the part exists) and the
//! bench reports, per part:
//! - `close`: from the push of the frame that closed the part (the first
//!   frame of the next one) to the part's response: the packaging + HTTP
//!   pipeline's own delay;
//! - `first`: from the push of the part's first frame to its response: what
//!   a frame waits at most (a part duration plus the pipeline).
//!
//! Reference measured in the same run: a plain engine subscriber's delay
//! from push to `recv` (the bus alone).
//!
//! Run: `cargo bench -p arcly-hls --bench latency`.
#![allow(missing_docs)]

use arcly_core::engine::{AppSpec, Engine};
use arcly_core::registry::{PlayRequest, PlaybackRegistry, PublishRegistry, PublishRequest};
use arcly_core::testing::tools;
use arcly_core::{MediaFrame, StreamPath, TimeBase};
use arcly_hls::http::{HlsService, HttpConfig};
use arcly_hls::packager::{HlsRegistry, PackagerConfig};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
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

async fn get(addr: SocketAddr, path: &str) -> (u16, Vec<u8>) {
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.set_nodelay(true).unwrap();
    let req = format!("GET {path} HTTP/1.1\r\nHost: b\r\nConnection: close\r\n\r\n");
    s.write_all(req.as_bytes()).await.unwrap();
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).await.unwrap();
    let end = buf.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    let status = std::str::from_utf8(&buf[9..12]).unwrap().parse().unwrap();
    (status, buf[end + 4..].to_vec())
}

fn stats(name: &str, mut v: Vec<Duration>) {
    if v.is_empty() {
        println!("{name}: no samples");
        return;
    }
    v.sort();
    let q = |p: f64| v[((v.len() - 1) as f64 * p).round() as usize];
    println!(
        "{name:<44} n={:<4} p50={:>8.2?} p90={:>8.2?} max={:>8.2?}",
        v.len(),
        q(0.5),
        q(0.9),
        v[v.len() - 1]
    );
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return; // cargo bench --list
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(run(Duration::from_millis(500)));
    rt.block_on(run(Duration::from_millis(200)));
}

async fn run(part: Duration) {
    let engine = Engine::builder()
        .application(AppSpec::new("live").channel_capacity(4096))
        .build();
    let hls = HlsRegistry::new(
        Arc::new(engine.clone()),
        PackagerConfig::low_latency(Duration::from_secs(2), part),
    );
    hls.follow(&engine);
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(arcly_http::serve(
        listener,
        arcly_http::Router::new().mount(HlsService::new(hls.clone(), HttpConfig::default())),
        arcly_http::HttpLimits::default(),
        engine.shutdown_token(),
    ));
    let path = StreamPath::parse("live", "lat").unwrap();
    let pushes: Arc<Mutex<Vec<(Instant, u64)>>> = Arc::default();
    let bus_delays: Arc<Mutex<Vec<Duration>>> = Arc::default();

    // The publisher, in real time; records when each video frame went in.
    let frames = fixture_frames();
    let t0 = frames
        .iter()
        .filter(|f| !f.is_config())
        .map(|f| f.dts_in(TimeBase::MICROS))
        .min()
        .unwrap();
    let mut publisher = engine
        .publish(PublishRequest::new(path.clone(), "bench"))
        .await
        .unwrap();
    // Reference: a plain subscriber.
    let mut sub = engine
        .subscribe(PlayRequest::new(path.clone(), "bench"))
        .await
        .unwrap();
    let (p2, b2) = (Arc::clone(&pushes), Arc::clone(&bus_delays));
    tokio::spawn(async move {
        while let Ok(f) = sub.recv().await {
            if f.is_video() && !f.is_config() {
                let at = Instant::now();
                let pushed = p2
                    .lock()
                    .unwrap()
                    .iter()
                    .rev()
                    .find(|(_, dts)| *dts as i64 == f.dts_in(TimeBase::MICROS))
                    .map(|(t, _)| *t);
                if let Some(t) = pushed {
                    b2.lock().unwrap().push(at - t);
                }
            }
        }
    });
    let p1 = Arc::clone(&pushes);
    let publishing = tokio::spawn(async move {
        let start = tokio::time::Instant::now();
        for f in frames {
            let at = (f.dts_in(TimeBase::MICROS) - t0).max(0) as u64;
            tokio::time::sleep_until(start + Duration::from_micros(at)).await;
            let video = f.is_video() && !f.is_config();
            let dts = f.dts_in(TimeBase::MICROS) as u64;
            if video {
                p1.lock().unwrap().push((Instant::now(), dts));
            }
            publisher.push(f);
        }
        publisher.close();
    });

    // The LL-HLS client.
    let mut close = Vec::new();
    let mut first = Vec::new();
    let mut prev_closing: Option<Instant> = None;
    let mut prev_part: Option<(u64, u64)> = None;
    loop {
        if publishing.is_finished() {
            break;
        }
        let (status, body) = get(addr, "/live/lat/index.m3u8").await;
        if status != 200 {
            tokio::time::sleep(Duration::from_millis(20)).await;
            continue;
        }
        let text = String::from_utf8_lossy(&body);
        let Some(uri) = text
            .lines()
            .find(|l| l.starts_with("#EXT-X-PRELOAD-HINT:"))
            .and_then(|l| l.split("URI=\"").nth(1))
            .and_then(|r| r.split('"').next())
            .map(str::to_owned)
        else {
            break;
        };
        let stem = &uri[uri.find("part").unwrap() + 4..];
        let mut it = stem.split('.');
        let key: (u64, u64) = (
            it.next().unwrap().parse().unwrap(),
            it.next().unwrap().parse().unwrap(),
        );
        let (status, _) = get(addr, &format!("/live/lat/{uri}")).await;
        let answered = Instant::now();
        if status != 200 {
            continue;
        }
        // The part was closed by the latest video frame pushed before the answer.
        let closing = pushes
            .lock()
            .unwrap()
            .iter()
            .rev()
            .find(|(t, _)| *t <= answered)
            .map(|(t, _)| *t);
        if let Some(c) = closing {
            close.push(answered - c);
            // Its first frame closed the previous part (when we saw that one).
            let consecutive = prev_part.is_some_and(|(m, i)| {
                (key.0 == m && key.1 == i + 1) || (key.0 == m + 1 && key.1 == 0)
            });
            if let (Some(p), true) = (prev_closing, consecutive) {
                first.push(answered - p);
            }
            prev_closing = Some(c);
        }
        prev_part = Some(key);
    }
    let _ = publishing.await;
    println!("LL-HLS parts of {part:?} (segments 2 s), loopback:");
    stats("  part fetchable after its closing frame", close);
    stats("  part fetchable after its first frame", first);
    stats(
        "  reference: bus push -> subscriber recv",
        bus_delays.lock().unwrap().clone(),
    );
    hls.shutdown();
    engine.shutdown();
}
