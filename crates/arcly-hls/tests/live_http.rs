//! Real players against an Engine + HlsRegistry + HlsService on loopback,
//! fed from the media fixtures:
//! - ffmpeg reads live playlists over HTTP (TS/H.264 and fMP4/H.265 with
//!   LL-HLS) and decodes with `-v error` silent, frame-exact to the source;
//! - LL-HLS blocking reloads answer within the part target of the part's
//!   arrival, and preload hints name the part that comes next;
//! - hls.js in headless Chromium plays a TS and an LL-HLS fMP4 variant.
//!
//! The service is mounted in a test host router (as the `arcly` server
//! would), which runs the checker on every playlist it serves.

mod common;

use arcly_core::engine::{AppSpec, Engine};
use arcly_core::registry::{PublishRegistry, PublishRequest};
use arcly_core::testing::tools;
use arcly_core::{MediaFrame, StreamPath, TimeBase};
use arcly_hls::checker;
use arcly_hls::http::{Body, HlsService, HttpConfig};
use arcly_hls::packager::{HlsRegistry, PackagerConfig};
use arcly_hls::stream::SegmentFormat;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{Request, Response, StatusCode};
use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const PART: Duration = Duration::from_millis(500);

#[derive(Default)]
struct Seen {
    playlists: AtomicUsize,
    /// Playlist requests with `_HLS_msn` (blocking reloads) and `_HLS_skip`.
    blocking: AtomicUsize,
    skips: AtomicUsize,
    failures: Mutex<Vec<String>>,
    reports: Mutex<HashMap<String, Vec<HashMap<String, String>>>>,
}

struct Host {
    engine: Engine,
    hls: HlsRegistry,
    addr: SocketAddr,
    seen: Arc<Seen>,
}

impl Host {
    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Every playlist served so far passed the checker.
    fn assert_checked(&self, at_least: usize) {
        let failures = self.seen.failures.lock().unwrap();
        assert!(
            failures.is_empty(),
            "checker failures:\n{}",
            failures.join("\n---\n")
        );
        let n = self.seen.playlists.load(Ordering::Relaxed);
        assert!(n >= at_least, "only {n} playlists served");
    }
}

/// An engine with apps `live` (TS, 2 s segments), `ll` (fMP4, LL-HLS with
/// 0.5 s parts) and `hevc` (auto format, LL-HLS), packaged on demand and
/// served by a host router on a loopback port.
async fn host() -> Host {
    let engine = Engine::builder()
        .application(AppSpec::new("live").channel_capacity(4096))
        .application(AppSpec::new("ll").channel_capacity(4096))
        .application(AppSpec::new("hevc").channel_capacity(4096))
        .build();
    let mut base = PackagerConfig::default();
    base.hls.window = 100;
    let mut ll = PackagerConfig::low_latency(Duration::from_secs(2), PART);
    ll.hls.window = 100;
    let mut ll_fmp4 = ll.clone();
    ll_fmp4.hls.format = SegmentFormat::Fmp4;
    let hls = HlsRegistry::new(Arc::new(engine.clone()), base)
        .with_app("ll", ll_fmp4)
        .with_app("hevc", ll);
    hls.follow(&engine);
    let svc = HlsService::new(hls.clone(), HttpConfig::default());
    let seen = Arc::new(Seen::default());
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let seen2 = Arc::clone(&seen);
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            let svc = svc.clone();
            let seen = Arc::clone(&seen2);
            tokio::spawn(async move {
                let f = hyper::service::service_fn(move |req| {
                    let svc = svc.clone();
                    let seen = Arc::clone(&seen);
                    async move { Ok::<_, Infallible>(host_route(req, &svc, &seen).await) }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(stream), f)
                    .await;
            });
        }
    });
    Host {
        engine,
        hls,
        addr,
        seen,
    }
}

fn asset(path: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(path)
}

async fn host_route(
    req: Request<hyper::body::Incoming>,
    svc: &HlsService,
    seen: &Seen,
) -> Response<Body> {
    match req.uri().path() {
        "/report" => {
            let q: HashMap<String, String> = req
                .uri()
                .query()
                .unwrap_or("")
                .split('&')
                .filter_map(|kv| kv.split_once('='))
                .map(|(k, v)| (k.to_owned(), urldecode(v)))
                .collect();
            let tag = q.get("tag").cloned().unwrap_or_default();
            seen.reports.lock().unwrap().entry(tag).or_default().push(q);
            return Response::new(Full::new(Bytes::new()));
        }
        "/page.html" => {
            let b = std::fs::read(asset("tests/fixtures/hlsjs.html")).unwrap();
            return Response::new(Full::new(b.into()));
        }
        "/assets/hls.min.js" => {
            let b = std::fs::read(asset("assets/hls.js/hls.min.js")).unwrap();
            return Response::new(Full::new(b.into()));
        }
        _ => {}
    }
    let Some(resp) = svc.handle(&req).await else {
        let mut r = Response::new(Full::new(Bytes::from_static(b"not found")));
        *r.status_mut() = StatusCode::NOT_FOUND;
        return r;
    };
    let is_playlist = resp
        .headers()
        .get("content-type")
        .is_some_and(|v| v == "application/vnd.apple.mpegurl");
    if !is_playlist || resp.status() != StatusCode::OK {
        return resp;
    }
    let (parts, body) = resp.into_parts();
    let bytes = body.collect().await.unwrap().to_bytes();
    let text = String::from_utf8_lossy(&bytes);
    seen.playlists.fetch_add(1, Ordering::Relaxed);
    let query = req.uri().query().unwrap_or("");
    if query.contains("_HLS_msn=") {
        seen.blocking.fetch_add(1, Ordering::Relaxed);
    }
    if query.contains("_HLS_skip=") {
        seen.skips.fetch_add(1, Ordering::Relaxed);
    }
    if let Err(e) = checker::check(&text) {
        seen.failures
            .lock()
            .unwrap()
            .push(format!("{} {e:?}\n{text}", req.uri()));
    }
    Response::from_parts(parts, Full::new(bytes))
}

fn urldecode(s: &str) -> String {
    let mut out = Vec::new();
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' if i + 2 < b.len() => {
                let h = std::str::from_utf8(&b[i + 1..i + 3]).unwrap_or("3f");
                out.push(u8::from_str_radix(h, 16).unwrap_or(b'?'));
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Publish `frames` to `path`, `loops` times back to back (timestamps
/// continue), at `speed` × real time; unpublishes at the end.
async fn publish(
    engine: Engine,
    path: StreamPath,
    frames: Vec<MediaFrame>,
    speed: f64,
    loops: u32,
) {
    let mut p = engine
        .publish(PublishRequest::new(path, "test"))
        .await
        .unwrap();
    let span = common::span_us(&frames) + 40_000;
    let t0 = frames
        .iter()
        .filter(|f| !f.is_config())
        .map(|f| f.dts_in(TimeBase::MICROS))
        .min()
        .unwrap();
    let start = tokio::time::Instant::now();
    for l in 0..loops {
        for f in &frames {
            if l > 0 && f.is_config() {
                continue;
            }
            let mut f = f.clone();
            let shift = TimeBase::MICROS.rescale(span * i64::from(l), f.time_base);
            f.dts += shift;
            f.pts += shift;
            let at = (f.dts_in(TimeBase::MICROS) - t0).max(0) as f64 / speed;
            tokio::time::sleep_until(start + Duration::from_micros(at as u64)).await;
            p.push(f);
        }
    }
    p.close();
}

/// A minimal HTTP/1.1 GET: (status, headers lower-cased, body, when the
/// response was complete).
async fn get(addr: SocketAddr, path: &str) -> (u16, HashMap<String, String>, Bytes, Instant) {
    let mut s = TcpStream::connect(addr).await.unwrap();
    let req = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    s.write_all(req.as_bytes()).await.unwrap();
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).await.unwrap();
    let done = Instant::now();
    let split = buf.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    let head = String::from_utf8_lossy(&buf[..split]).into_owned();
    let mut lines = head.lines();
    let status = lines
        .next()
        .unwrap()
        .split(' ')
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    (
        status,
        headers,
        Bytes::from(buf[split + 4..].to_vec()),
        done,
    )
}

async fn wait_for_playlist(h: &Host, path: &StreamPath) -> arcly_hls::packager::Packager {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(p) = h.hls.get(path) {
            if p.wait_playlist(Duration::from_millis(100)).await {
                return p;
            }
        }
        assert!(Instant::now() < deadline, "no playlist for {path}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn md5s(ffmpeg: &std::path::Path, input: &str, map: &str) -> Vec<String> {
    let args: &[&str] = if input.starts_with("http") {
        &["-live_start_index", "0"]
    } else {
        &[]
    };
    let lines = tools::framemd5(ffmpeg, args, input, &["-map", map]);
    tools::md5_column(&lines, 0)
}

/// ffmpeg reads the live playlist at `url` while it grows; `-v error` is
/// silent and the frames equal the source's.
fn ffmpeg_live(url: &str, source: &std::path::Path, audio: bool) {
    let ff = tools::ffmpeg9();
    let out = std::process::Command::new(&ff)
        .args([
            "-hide_banner",
            "-nostdin",
            "-v",
            "error",
            "-live_start_index",
            "0",
            "-i",
        ])
        .arg(url)
        .args(["-map", "0:v:0", "-f", "framemd5", "-"])
        .output()
        .expect("run ffmpeg");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && err.trim().is_empty(),
        "ffmpeg on {url}: {err}"
    );
    let got: Vec<String> = tools::md5_column(
        &String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter(|l| !l.starts_with('#'))
            .map(str::to_owned)
            .collect::<Vec<_>>(),
        0,
    );
    let want = md5s(&ff, source.to_str().unwrap(), "0:v:0");
    assert!(want.len() >= 150, "{} source frames", want.len());
    assert_eq!(want, got, "{url}: video frames differ from the source");
    if audio {
        // Audio before the first video keyframe is not packaged.
        let want = md5s(&ff, source.to_str().unwrap(), "0:a:0");
        let got = md5s(&ff, url, "0:a:0");
        let skipped = want.len() - got.len();
        assert!(skipped <= 4, "{skipped} audio frames lost");
        assert_eq!(&want[skipped..], &got[..], "{url}: audio differs");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ffmpeg_reads_live_ts_and_hevc_fmp4_frame_exact() {
    let h = host().await;
    let ts = StreamPath::parse("live", "h264").unwrap();
    let hevc = StreamPath::parse("hevc", "cam").unwrap();
    let ts_frames = common::read_ts(&tools::fixture("h264-aac.ts"));
    let hevc_frames = common::read_flv(&tools::fixture("hevc-aac.enhanced.flv"));
    let p1 = tokio::spawn(publish(h.engine.clone(), ts.clone(), ts_frames, 3.0, 1));
    let p2 = tokio::spawn(publish(h.engine.clone(), hevc.clone(), hevc_frames, 3.0, 1));
    let pk1 = wait_for_playlist(&h, &ts).await;
    let pk2 = wait_for_playlist(&h, &hevc).await;
    // Readers start while the streams are live; the playlists end when
    // the publishers are done.
    let u1 = h.url("/live/h264/index.m3u8");
    let u2 = h.url("/hevc/cam/index.m3u8");
    let r1 =
        tokio::task::spawn_blocking(move || ffmpeg_live(&u1, &tools::fixture("h264-aac.ts"), true));
    let r2 = tokio::task::spawn_blocking(move || {
        ffmpeg_live(&u2, &tools::fixture("hevc-aac.enhanced.flv"), false)
    });
    p1.await.unwrap();
    p2.await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    h.hls.stop(&ts);
    h.hls.stop(&hevc);
    r1.await.unwrap();
    r2.await.unwrap();
    assert_eq!(
        pk1.lock().format(),
        arcly_core::traits::ContainerFormat::MpegTs
    );
    assert_eq!(
        pk2.lock().format(),
        arcly_core::traits::ContainerFormat::Fmp4
    );
    // The multivariant playlist names the rendition with its codecs.
    let (status, headers, body, _) = get(h.addr, "/hevc/cam.m3u8").await;
    assert_eq!(status, 200);
    assert_eq!(headers["content-type"], "application/vnd.apple.mpegurl");
    let text = String::from_utf8_lossy(&body);
    assert!(
        text.contains("CODECS=\"hvc1.1.") && text.contains("\ncam/index.m3u8\n"),
        "{text}"
    );
    h.assert_checked(6);
}

/// Parse `#EXT-X-PRELOAD-HINT:TYPE=PART,URI="…part{msn}.{i}.ext"`.
fn preload_hint(text: &str) -> (String, u64, u64) {
    let line = text
        .lines()
        .find(|l| l.starts_with("#EXT-X-PRELOAD-HINT:"))
        .unwrap_or_else(|| panic!("no preload hint:\n{text}"));
    assert!(line.contains("TYPE=PART"), "{line}");
    let uri = line
        .split("URI=\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap();
    let part = &uri[uri.find("part").unwrap() + 4..];
    let mut it = part.split('.');
    let msn = it.next().unwrap().parse().unwrap();
    let i = it.next().unwrap().parse().unwrap();
    (uri.to_owned(), msn, i)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ll_hls_blocking_reload_answers_within_a_part_target() {
    let h = host().await;
    let path = StreamPath::parse("ll", "cam").unwrap();
    let frames = common::read_ts(&tools::fixture("h264-aac.ts"));
    let publisher = tokio::spawn(publish(h.engine.clone(), path.clone(), frames, 1.0, 2));
    let pk = wait_for_playlist(&h, &path).await;
    let mut checked = 0;
    for round in 0..6 {
        let (status, headers, body, _) = get(h.addr, "/ll/cam/index.m3u8").await;
        assert_eq!(status, 200);
        assert_eq!(headers["cache-control"], "no-cache");
        assert_eq!(headers["access-control-allow-origin"], "*");
        let text = String::from_utf8_lossy(&body).into_owned();
        let (uri, msn, part) = preload_hint(&text);
        // Note when the hinted part arrives, in process.
        let mut rx = pk.subscribe();
        let arrival = tokio::spawn(async move {
            rx.wait_for(|p| p.msn > msn || (p.msn == msn && p.parts > part))
                .await
                .unwrap();
            Instant::now()
        });
        let (status, _, body, answered) = if round % 2 == 0 {
            get(
                h.addr,
                &format!("/ll/cam/index.m3u8?_HLS_msn={msn}&_HLS_part={part}"),
            )
            .await
        } else {
            // The hinted part itself: answered once it exists.
            get(h.addr, &format!("/ll/cam/{uri}")).await
        };
        let arrived = arrival.await.unwrap();
        assert_eq!(status, 200, "round {round}");
        let late = answered.saturating_duration_since(arrived);
        assert!(
            late < PART,
            "round {round}: answered {late:?} after the part arrived"
        );
        assert!(
            answered + Duration::from_millis(5) >= arrived,
            "answered before the part existed"
        );
        if round % 2 == 0 {
            let text = String::from_utf8_lossy(&body).into_owned();
            assert!(
                text.contains("#EXT-X-PART:DURATION=") && text.contains(&format!("URI=\"{uri}\"")),
                "the blocking reload lists the hinted part:\n{text}"
            );
            // The new hint names the part that comes next.
            let (_, m2, p2) = preload_hint(&text);
            let next_part = (m2, p2) == (msn, part + 1);
            let next_segment = m2 == msn + 1 && p2 == 0;
            assert!(
                next_part || next_segment,
                "hint {m2}.{p2} after {msn}.{part}"
            );
        } else {
            assert_eq!(Some(body), pk.lock().resource(&uri).map(|r| r.0));
        }
        checked += 1;
    }
    assert_eq!(checked, 6);
    // Far ahead: 400 at once; _HLS_part without _HLS_msn: 400.
    let pos = pk.position();
    let (status, _, _, _) = get(
        h.addr,
        &format!("/ll/cam/index.m3u8?_HLS_msn={}", pos.msn + 5),
    )
    .await;
    assert_eq!(status, 400);
    let (status, _, _, _) = get(h.addr, "/ll/cam/index.m3u8?_HLS_part=1").await;
    assert_eq!(status, 400);
    // Delta update.
    let (status, _, body, _) = get(h.addr, "/ll/cam/index.m3u8?_HLS_skip=YES").await;
    assert_eq!(status, 200);
    assert!(body.starts_with(b"#EXTM3U\n"));
    // Unknown things are clear 404s; CORS preflight works.
    let (status, _, body, _) = get(h.addr, "/ll/nobody/index.m3u8").await;
    assert_eq!((status, &body[..]), (404, &b"unknown stream\n"[..]));
    let (status, _, _, _) = get(h.addr, "/ll/cam/seg99999.m4s").await;
    assert_eq!(status, 404);
    publisher.await.unwrap();
    h.assert_checked(10);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hls_js_in_chromium_plays_ts_and_ll_fmp4() {
    let h = host().await;
    let frames = common::read_ts(&tools::fixture("h264-aac.ts"));
    let ts = StreamPath::parse("live", "web").unwrap();
    let ll = StreamPath::parse("ll", "web").unwrap();
    let p1 = tokio::spawn(publish(
        h.engine.clone(),
        ts.clone(),
        frames.clone(),
        1.0,
        4,
    ));
    let p2 = tokio::spawn(publish(h.engine.clone(), ll.clone(), frames, 1.0, 4));
    wait_for_playlist(&h, &ts).await;
    wait_for_playlist(&h, &ll).await;
    let page = h.url(&format!(
        "/page.html?s=ts,{}&s=ll,{}",
        h.url("/live/web/index.m3u8"),
        h.url("/ll/web/index.m3u8")
    ));
    let profile = tempdir();
    let chromium = std::env::var_os("CHROMIUM")
        .map_or_else(|| PathBuf::from("/usr/bin/chromium"), PathBuf::from);
    assert!(
        chromium.exists(),
        "Chromium not found at {} (apt-get install chromium, or set CHROMIUM)",
        chromium.display()
    );
    let mut child = std::process::Command::new(&chromium)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            "--mute-audio",
            "--autoplay-policy=no-user-gesture-required",
            "--remote-debugging-port=0",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg(&page)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("start chromium");
    // Wait until both videos are past 5 s of media, or 30 s pass.
    let deadline = Instant::now() + Duration::from_secs(30);
    let latest = |tag: &str| -> Option<HashMap<String, String>> {
        h.seen
            .reports
            .lock()
            .unwrap()
            .get(tag)
            .and_then(|r| r.last().cloned())
    };
    let time = |r: &Option<HashMap<String, String>>| -> f64 {
        r.as_ref()
            .and_then(|r| r.get("t"))
            .and_then(|t| t.parse().ok())
            .unwrap_or(0.0)
    };
    let mut start_times: HashMap<&str, f64> = HashMap::new();
    loop {
        tokio::time::sleep(Duration::from_millis(250)).await;
        let (a, b) = (latest("ts"), latest("ll"));
        for (tag, r) in [("ts", &a), ("ll", &b)] {
            if let Some(r) = r {
                assert_eq!(
                    r.get("supported").map(String::as_str),
                    Some("true"),
                    "{tag}: MSE unsupported"
                );
                let fatal = r.get("fatal").cloned().unwrap_or_default();
                assert!(fatal.is_empty(), "{tag}: hls.js fatal error {fatal}");
            }
            if time(r) > 0.0 {
                start_times.entry(tag).or_insert_with(|| time(r));
            }
        }
        let advanced = |tag: &str, r: &Option<HashMap<String, String>>| {
            start_times.get(tag).is_some_and(|s| time(r) - s >= 4.0)
        };
        if advanced("ts", &a) && advanced("ll", &b) {
            break;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("playback did not advance 4 s: ts {a:?} ll {b:?}");
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    let _ = std::fs::remove_dir_all(&profile);
    h.hls.shutdown();
    p1.abort();
    p2.abort();
    h.assert_checked(4);
    // hls.js followed the LL-HLS variant with blocking reloads.
    let blocking = h.seen.blocking.load(Ordering::Relaxed);
    assert!(blocking >= 3, "{blocking} blocking reloads");
    eprintln!(
        "hls.js: {} playlists, {blocking} blocking reloads, {} delta requests",
        h.seen.playlists.load(Ordering::Relaxed),
        h.seen.skips.load(Ordering::Relaxed)
    );
}

fn tempdir() -> PathBuf {
    let d = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!(
        "chromium-{}-{}",
        std::process::id(),
        Instant::now().elapsed().as_nanos()
    ));
    std::fs::create_dir_all(&d).unwrap();
    d
}
