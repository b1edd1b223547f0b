//! The RTMP handler against real clients on loopback: an `Engine` from
//! arcly-core, `TcpIngest` on 127.0.0.1:0, ffmpeg (5.1 and 9) publishing,
//! ffmpeg, rtmpdump, GStreamer and this crate's client playing.
//!
//! The ffmpeg scenarios run concurrently inside one test (they mostly wait
//! on real time), so the whole file stays well under a minute.
#![allow(missing_docs)]

use arcly_core::auth::{AuthDecision, AuthRequest, StreamAuthenticator};
use arcly_core::engine::{AppSpec, Engine};
use arcly_core::inbound::InboundProtocol;
use arcly_core::registry::PlaybackRegistry;
use arcly_core::testing::tools;
use arcly_core::{FrameType, MediaFrame};
use arcly_rtmp::client::RtmpClient;
use arcly_rtmp::flv::{FlvReader, TagDemuxer};
use arcly_rtmp::handler::DEFAULT_PING_INTERVAL;
use arcly_rtmp::session::ClientEvent;
use arcly_rtmp::{RtmpConfig, RtmpError, RtmpHandler};
use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::process::Command;

// ---------------------------------------------------------------- harness

struct Server {
    port: u16,
    engine: Engine,
}

impl Server {
    fn url(&self, name: &str) -> String {
        format!("rtmp://127.0.0.1:{}/live/{name}", self.port)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.engine.shutdown();
    }
}

fn engine_with(auth: Option<Arc<dyn StreamAuthenticator>>) -> Engine {
    let mut b = Engine::builder().application(AppSpec::new("live").gop_cache(1000));
    if let Some(a) = auth {
        b = b.authenticator(a);
    }
    b.build()
}

async fn start(engine: Engine, cfg: RtmpConfig) -> Server {
    let ingest = Arc::new(RtmpHandler::new(cfg).into_protocol("127.0.0.1:0".parse().unwrap()));
    let bound = ingest.local_addr_receiver();
    tokio::spawn(Arc::clone(&ingest).serve(engine.ingest_context()));
    let port = bound.await.expect("listener bound").port();
    Server { port, engine }
}

async fn server() -> Server {
    start(engine_with(None), RtmpConfig::default()).await
}

/// A server that tells players at once that their publisher left.
async fn server_without_grace() -> Server {
    let cfg = RtmpConfig {
        republish_grace: Duration::ZERO,
        ..RtmpConfig::default()
    };
    start(engine_with(None), cfg).await
}

fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("arcly-rtmp-handler-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d.join(name)
}

async fn run(mut cmd: Command, what: &str) -> Output {
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    match tokio::time::timeout(Duration::from_secs(40), cmd.output()).await {
        Ok(Ok(o)) => o,
        Ok(Err(e)) => panic!("{what}: could not run: {e}"),
        Err(_) => panic!("{what}: did not finish within 40 s"),
    }
}

fn ok(o: &Output, what: &str) {
    assert!(
        o.status.success(),
        "{what} failed ({}): {}",
        o.status,
        String::from_utf8_lossy(&o.stderr)
    );
}

fn ffmpeg_cmd(ff: &Path) -> Command {
    let mut c = Command::new(ff);
    c.args(["-hide_banner", "-nostdin", "-v", "error"]);
    c
}

/// `ffmpeg -c copy` a fixture (or part of it) to `url`, in real time.
async fn publish_file(ff: &Path, file: &Path, url: &str, seconds: Option<&str>) -> Output {
    let mut c = ffmpeg_cmd(ff);
    c.arg("-re");
    if let Some(t) = seconds {
        c.args(["-t", t]);
    }
    c.arg("-i").arg(file).args(["-c", "copy", "-f", "flv", url]);
    run(c, &format!("publish {}", file.display())).await
}

/// `ffmpeg -i url -c copy out.flv`: an ffmpeg player recording what it got.
async fn ffmpeg_play(ff: &Path, url: &str, out: &Path) -> Output {
    let mut c = ffmpeg_cmd(ff);
    c.args(["-i", url, "-c", "copy", "-f", "flv", "-y"])
        .arg(out);
    run(c, &format!("ffmpeg play {url}")).await
}

/// Packet hashes of one kind (`v` or `a`) of `file`, as `-f framemd5` reports.
fn md5s(ff: &Path, file: &Path, kind: &str) -> Vec<String> {
    let lines = tools::framemd5(
        ff,
        &[],
        file.to_str().unwrap(),
        &["-map", &format!("0:{kind}"), "-c", "copy"],
    );
    tools::md5_column(&lines, 0)
}

/// `played` must be a contiguous run of `source` of at least `min` packets;
/// returns where in the source it starts.
fn assert_run(what: &str, played: &[String], source: &[String], min: usize) -> usize {
    assert!(
        played.len() >= min,
        "{what}: only {} packets played (want >= {min}, source has {})",
        played.len(),
        source.len()
    );
    let start = (0..source.len())
        .find(|&k| source.get(k..k + played.len()) == Some(played))
        .unwrap_or_else(|| {
            let first_bad = source
                .iter()
                .position(|s| *s == played[0])
                .map(|k| {
                    (0..played.len())
                        .find(|&i| source.get(k + i) != played.get(i))
                        .unwrap_or(0)
                });
            panic!(
                "{what}: the {} played packets are not a contiguous run of the {} source packets \
                 (first played packet at source {:?}, first mismatch at played index {first_bad:?})",
                played.len(),
                source.len(),
                source.iter().position(|s| *s == played[0]),
            )
        });
    start
}

/// The played file decodes without a single error.
async fn assert_decodes(ff: &Path, file: &Path) {
    let mut c = Command::new(ff);
    c.args(["-hide_banner", "-nostdin", "-v", "error", "-xerror", "-i"])
        .arg(file)
        .args(["-f", "null", "-"]);
    let o = run(c, "decode").await;
    ok(&o, &format!("decoding {}", file.display()));
    assert!(
        o.stderr.is_empty(),
        "decoding {}: {}",
        file.display(),
        String::from_utf8_lossy(&o.stderr)
    );
}

/// Per-stream packet (flags, dts in ms) of `file` via ffprobe.
async fn packets(file: &Path, kind: &str) -> Vec<(bool, f64)> {
    let mut c = Command::new(tools::ffprobe());
    c.args(["-v", "error", "-select_streams", kind])
        .args(["-show_entries", "packet=flags,dts_time", "-of", "csv=p=0"])
        .arg(file);
    let o = run(c, "ffprobe").await;
    ok(&o, "ffprobe");
    String::from_utf8_lossy(&o.stdout)
        .lines()
        .filter_map(|l| {
            let (t, f) = l.split_once(',')?;
            Some((f.starts_with('K'), t.parse().ok()?))
        })
        .collect()
}

/// The first video packet is a keyframe, timestamps start near zero and
/// never go back.
async fn assert_timeline(what: &str, file: &Path, has_video: bool) {
    for kind in if has_video { &["v", "a"][..] } else { &["a"] } {
        let p = packets(file, kind).await;
        if p.is_empty() {
            continue;
        }
        if *kind == "v" {
            assert!(p[0].0, "{what}: first video packet is not a keyframe");
        }
        assert!(
            p[0].1 < 0.3,
            "{what}: {kind} starts at {} s, not near zero",
            p[0].1
        );
        assert!(
            p.windows(2).all(|w| w[1].1 >= w[0].1),
            "{what}: {kind} timestamps go back"
        );
    }
}

/// Wait until a player subscribed to `live/{name}`, so the publisher that
/// follows is seen from its first frame.
async fn wait_for_player(srv: &Server, name: &str) {
    let path = arcly_core::StreamPath::parse("live", name).unwrap();
    let t0 = Instant::now();
    while PlaybackRegistry::stream(&srv.engine, &path).is_none_or(|s| s.subscriber_count() == 0) {
        assert!(
            t0.elapsed() < Duration::from_secs(15),
            "no player came for {name}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn fixture_frames(name: &str) -> Vec<MediaFrame> {
    let data = std::fs::read(tools::fixture(name)).unwrap();
    let mut r = FlvReader::new();
    r.push(&data);
    let mut d = TagDemuxer::new();
    let mut v = Vec::new();
    while let Some(t) = r.next_tag().unwrap() {
        d.demux(t.tag_type, t.timestamp, t.body, &mut v).unwrap();
    }
    v
}

/// Publish `frames` with this crate's client, paced by their timestamps.
async fn publish_frames(url: &str, frames: &[MediaFrame], speed: f64) -> RtmpClient {
    let mut c = RtmpClient::publish(url).await.expect("publish");
    let t0 = Instant::now();
    for f in frames {
        let due = Duration::from_secs_f64(f.dts_ms().max(0) as f64 / 1000.0 / speed);
        if let Some(wait) = due.checked_sub(t0.elapsed()) {
            tokio::time::sleep(wait).await;
        }
        c.send_frame(f).await.expect("send frame");
    }
    c
}

fn panic_text(e: tokio::task::JoinError) -> String {
    match e.try_into_panic() {
        Ok(p) => p
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| p.downcast_ref::<&str>().map(|s| (*s).to_owned()))
            .unwrap_or_else(|| "panic".into()),
        Err(e) => e.to_string(),
    }
}

// ------------------------------------------------------- ffmpeg scenarios

/// ffmpeg publishes lavfi through libx264 + AAC; an ffmpeg player that was
/// waiting before the publisher came gets every packet, bit-exact.
async fn lavfi_x264_aac(srv: Arc<Server>) {
    let url = srv.url("lavfi");
    let (src, played) = (tmp("lavfi-src.flv"), tmp("lavfi-played.flv"));
    let ff = tools::ffmpeg();
    let player = {
        let (ff, url, played) = (ff.clone(), url.clone(), played.clone());
        tokio::spawn(async move { ffmpeg_play(&ff, &url, &played).await })
    };
    wait_for_player(&srv, "lavfi").await;
    let mut c = ffmpeg_cmd(&ff);
    c.args(["-re", "-f", "lavfi", "-i", "testsrc=size=320x240:rate=25"])
        .args([
            "-re",
            "-f",
            "lavfi",
            "-i",
            "sine=frequency=440:sample_rate=44100",
        ])
        .args(["-t", "3", "-map", "0:v", "-map", "1:a"])
        .args(["-c:v", "libx264", "-preset", "ultrafast", "-g", "25"])
        .args(["-flags:v", "+global_header"])
        .args(["-pix_fmt", "yuv420p", "-c:a", "aac", "-f", "tee"])
        .arg(format!("[f=flv]{url}|[f=flv]{}", src.display()));
    ok(&run(c, "lavfi publish").await, "lavfi publish");
    ok(&player.await.unwrap(), "ffmpeg player");
    let (pv, sv) = (md5s(&ff, &played, "v"), md5s(&ff, &src, "v"));
    assert_eq!(
        assert_run("lavfi video", &pv, &sv, 70),
        0,
        "lavfi: video from the start"
    );
    assert_eq!(pv.len(), sv.len(), "lavfi: every video packet");
    let (pa, sa) = (md5s(&ff, &played, "a"), md5s(&ff, &src, "a"));
    assert_run("lavfi audio", &pa, &sa, 100);
    assert_decodes(&ff, &played).await;
    assert_timeline("lavfi", &played, true).await;
}

/// ffmpeg publishes the H.264/AAC fixture in real time with `-c copy`;
/// ffmpeg, rtmpdump, GStreamer and our client join mid-GOP.
async fn late_joiners(srv: Arc<Server>) {
    let url = srv.url("fixture");
    let ff = tools::ffmpeg();
    let fixture = tools::fixture("h264-aac.flv");
    let publisher = {
        let (ff, url, fixture) = (ff.clone(), url.clone(), fixture.clone());
        tokio::spawn(async move { publish_file(&ff, &fixture, &url, None).await })
    };
    // Keyframes are every 2 s; join 0.4 s after the second one.
    let path = arcly_core::StreamPath::parse("live", "fixture").unwrap();
    let t0 = Instant::now();
    while !PlaybackRegistry::stream(&srv.engine, &path).is_some_and(|s| s.is_live()) {
        assert!(
            t0.elapsed() < Duration::from_secs(10),
            "the publisher never came"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    tokio::time::sleep(Duration::from_millis(2400)).await;

    // Our client measures time to the first keyframe.
    let own = {
        let url = url.clone();
        tokio::spawn(async move {
            let mut p = RtmpClient::play(&url).await.expect("play");
            // From NetStream.Play.Start to the first picture.
            let t0 = Instant::now();
            let mut saw_meta = false;
            let mut saw_config = false;
            loop {
                let f = p.next_frame().await.unwrap().expect("a frame");
                if f.frame_type == FrameType::Data {
                    saw_meta = true;
                } else if f.is_video() && f.is_config() {
                    saw_config = true;
                } else if f.is_video() {
                    let ttfk = t0.elapsed();
                    assert!(f.is_keyframe(), "first video frame is not a keyframe");
                    assert!(
                        saw_meta && saw_config,
                        "metadata and sequence header come first"
                    );
                    assert!(f.dts_ms() < 100, "rebased to near zero: {}", f.dts_ms());
                    // The rest of the cached GOP arrives at once.
                    let mut burst = 0;
                    let until = Instant::now() + Duration::from_millis(150);
                    while let Ok(Ok(Some(f))) =
                        tokio::time::timeout_at(until.into(), p.next_frame()).await
                    {
                        burst += usize::from(f.is_video());
                    }
                    return (ttfk, burst);
                }
            }
        })
    };
    let ffp = {
        let (ff, url) = (ff.clone(), url.clone());
        let out = tmp("late-ffmpeg.flv");
        tokio::spawn(async move { (ffmpeg_play(&ff, &url, &out).await, out) })
    };
    let dump = {
        let out = tmp("late-rtmpdump.flv");
        let mut c = Command::new(tools::rtmpdump());
        c.args(["-q", "-v", "-r", &url, "-o"]).arg(&out);
        tokio::spawn(async move { (run(c, "rtmpdump").await, out) })
    };
    let gst = {
        let out = tmp("late-gst.flv");
        let mut c = Command::new(tools::gst_launch());
        c.args(["-q", "-e", "rtmp2src"])
            .arg(format!("location={url}"))
            .args(["!", "filesink"])
            .arg(format!("location={}", out.display()));
        tokio::spawn(async move { (run(c, "gst-launch rtmp2src").await, out) })
    };

    let (ttfk, burst) = own.await.unwrap();
    assert!(
        ttfk < Duration::from_millis(600),
        "time to first keyframe {ttfk:?}: the next GOP starts 1.6 s later"
    );
    assert!(
        burst >= 8,
        "only {burst} cached video frames arrived at once"
    );
    ok(&publisher.await.unwrap(), "fixture publish");

    let (sv, sa) = (md5s(&ff, &fixture, "v"), md5s(&ff, &fixture, "a"));
    for (name, task) in [("ffmpeg", ffp), ("rtmpdump", dump), ("gstreamer", gst)] {
        let (o, out) = task.await.unwrap();
        ok(&o, name);
        let pv = md5s(&ff, &out, "v");
        let k = assert_run(&format!("{name} video"), &pv, &sv, 70);
        assert!(
            k % 50 == 0 && k >= 50,
            "{name}: started at source packet {k} ({} played of {}), not at a cached keyframe",
            pv.len(),
            sv.len()
        );
        assert_eq!(k + pv.len(), sv.len(), "{name}: every packet to the end");
        assert_run(&format!("{name} audio"), &md5s(&ff, &out, "a"), &sa, 100);
        assert_decodes(&ff, &out).await;
        assert_timeline(name, &out, true).await;
    }
}

/// One kind of media only.
async fn single_kind(srv: Arc<Server>, fixture: &'static str, has_video: bool) {
    let name = fixture.split('.').next().unwrap();
    let url = srv.url(name);
    let ff = tools::ffmpeg();
    let played = tmp(&format!("{name}-played.flv"));
    let player = {
        let (ff, url, played) = (ff.clone(), url.clone(), played.clone());
        tokio::spawn(async move { ffmpeg_play(&ff, &url, &played).await })
    };
    wait_for_player(&srv, name).await;
    let src = tools::fixture(fixture);
    ok(&publish_file(&ff, &src, &url, Some("2.5")).await, fixture);
    ok(&player.await.unwrap(), "player");
    let kind = if has_video { "v" } else { "a" };
    let (p, s) = (md5s(&ff, &played, kind), md5s(&ff, &src, kind));
    assert_eq!(
        assert_run(fixture, &p, &s, 50),
        0,
        "{fixture}: from the start"
    );
    assert_decodes(&ff, &played).await;
    assert_timeline(fixture, &played, has_video).await;
}

/// FFmpeg 9 publishes Enhanced RTMP and plays it back bit-exact.
async fn enhanced(srv: Arc<Server>, fixture: &'static str) {
    let name = fixture.split('.').next().unwrap();
    let url = srv.url(name);
    let ff = tools::ffmpeg9();
    let played = tmp(&format!("{name}-played.flv"));
    let player = {
        let (ff, url, played) = (ff.clone(), url.clone(), played.clone());
        tokio::spawn(async move { ffmpeg_play(&ff, &url, &played).await })
    };
    wait_for_player(&srv, name).await;
    let src = tools::fixture(fixture);
    ok(&publish_file(&ff, &src, &url, Some("2.5")).await, fixture);
    ok(&player.await.unwrap(), "FFmpeg 9 player");
    for kind in ["v", "a"] {
        let (p, s) = (md5s(&ff, &played, kind), md5s(&ff, &src, kind));
        assert_eq!(
            assert_run(&format!("{fixture} {kind}"), &p, &s, 50),
            0,
            "{fixture} {kind}: from the start"
        );
    }
    assert_decodes(&ff, &played).await;
}

/// A second publisher on a live name gets BadName; the first goes on.
async fn second_publisher_bad_name(srv: Arc<Server>) {
    let url = srv.url("taken");
    let frames = fixture_frames("h264-aac.flv");
    let first = tokio::spawn({
        let url = url.clone();
        async move { publish_frames(&url, &frames[..60], 1.0).await }
    });
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut c = ffmpeg_cmd(&tools::ffmpeg());
    c.arg("-i")
        .arg(tools::fixture("h264-aac.flv"))
        .args(["-c", "copy", "-f", "flv", &url]);
    let o = run(c, "second publisher").await;
    assert!(
        !o.status.success(),
        "the second ffmpeg publisher was accepted"
    );
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("already being published"),
        "ffmpeg said: {err}"
    );
    // Our client sees the status code.
    match RtmpClient::publish(&url).await {
        Err(RtmpError::Rejected { code, .. }) => assert_eq!(code, "NetStream.Publish.BadName"),
        other => panic!("second publisher: {other:?}"),
    }
    first.await.unwrap().close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn real_clients() {
    let srv = Arc::new(server().await);
    let mut set = tokio::task::JoinSet::new();
    let s = &srv;
    set.spawn(named("lavfi x264+aac", lavfi_x264_aac(s.clone())));
    set.spawn(named("late joiners", late_joiners(s.clone())));
    set.spawn(named(
        "audio only",
        single_kind(s.clone(), "aac-audio-only.flv", false),
    ));
    set.spawn(named(
        "video only",
        single_kind(s.clone(), "h264-baseline-video-only.flv", true),
    ));
    for f in [
        "hevc-aac.enhanced.flv",
        "av1-opus.enhanced.flv",
        "vp9-opus.enhanced.flv",
    ] {
        set.spawn(named(f, enhanced(s.clone(), f)));
    }
    set.spawn(named("bad name", second_publisher_bad_name(s.clone())));
    let mut failures = Vec::new();
    while let Some(r) = set.join_next().await {
        match r {
            Ok((name, Ok(()))) => eprintln!("scenario ok: {name}"),
            Ok((name, Err(msg))) => failures.push(format!("{name}: {msg}")),
            Err(e) => failures.push(panic_text(e)),
        }
    }
    let _ = std::fs::remove_dir_all(tmp("x").parent().unwrap());
    assert!(
        failures.is_empty(),
        "failed scenarios:\n{}",
        failures.join("\n")
    );
}

async fn named(
    name: &'static str,
    f: impl std::future::Future<Output = ()> + Send + 'static,
) -> (&'static str, Result<(), String>) {
    match tokio::spawn(f).await {
        Ok(()) => (name, Ok(())),
        Err(e) => (name, Err(panic_text(e))),
    }
}

// ------------------------------------------------------ own-client tests

struct TokenAuth;

#[async_trait::async_trait]
impl StreamAuthenticator for TokenAuth {
    async fn authorize(&self, req: &AuthRequest) -> AuthDecision {
        if req.query_param("token").as_deref() == Some("s3cret") {
            AuthDecision::Allow
        } else {
            AuthDecision::Deny("a valid token is required".into())
        }
    }
}

#[tokio::test]
async fn the_authenticator_decides_with_the_query() {
    let srv = start(
        engine_with(Some(Arc::new(TokenAuth))),
        RtmpConfig::default(),
    )
    .await;
    // ffmpeg with a wrong token is refused with the reason.
    let mut c = ffmpeg_cmd(&tools::ffmpeg());
    c.args(["-t", "0.5", "-i"])
        .arg(tools::fixture("h264-aac.flv"))
        .args(["-c", "copy", "-f", "flv", &srv.url("cam?token=nope")]);
    let o = run(c, "unauthorized publisher").await;
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("a valid token is required"),
        "ffmpeg said: {err}"
    );
    match RtmpClient::publish(&srv.url("cam")).await {
        Err(RtmpError::Rejected { code, description }) => {
            assert_eq!(code, "NetStream.Publish.Unauthorized");
            assert!(description.contains("a valid token is required"));
        }
        other => panic!("{other:?}"),
    }
    match RtmpClient::play(&srv.url("cam?token=bad")).await {
        Err(RtmpError::Rejected { code, .. }) => assert_eq!(code, "NetStream.Play.Unauthorized"),
        other => panic!("{other:?}"),
    }
    // The right token goes through, for publishing and playing.
    let frames = fixture_frames("h264-aac.flv");
    let publisher = publish_frames(&srv.url("cam?token=s3cret"), &frames[..10], 100.0).await;
    let mut p = RtmpClient::play(&srv.url("cam?token=s3cret"))
        .await
        .unwrap();
    assert!(p.next_frame().await.unwrap().is_some());
    publisher.close().await.unwrap();
}

async fn next_status(p: &mut RtmpClient) -> (String, Vec<MediaFrame>) {
    let mut media = Vec::new();
    loop {
        match tokio::time::timeout(Duration::from_secs(5), p.next_event()).await {
            Ok(Ok(Some(ClientEvent::Status { code, .. }))) => return (code, media),
            Ok(Ok(Some(ClientEvent::Media(f)))) => media.push(f),
            Ok(Ok(Some(_))) => {}
            other => panic!("waiting for a status: {other:?}"),
        }
    }
}

async fn next_status_within(p: &mut RtmpClient, within: Duration) -> (String, Vec<MediaFrame>) {
    let mut media = Vec::new();
    let deadline = tokio::time::Instant::now() + within;
    loop {
        match tokio::time::timeout_at(deadline, p.next_event()).await {
            Ok(Ok(Some(ClientEvent::Status { code, .. }))) => return (code, media),
            Ok(Ok(Some(ClientEvent::Media(f)))) => media.push(f),
            Ok(Ok(Some(_))) => {}
            other => panic!("waiting for a status: {other:?}"),
        }
    }
}

/// Issue 18 #10: a publisher leaves and the next one comes within the
/// republish grace. The player is told nothing (ffmpeg ends on
/// UnpublishNotify), receives the second publisher's configuration and
/// first keyframe, on a timeline that keeps increasing; once the grace of
/// the second departure is over it is told.
#[tokio::test]
async fn players_stay_through_republish_with_a_continuous_timeline() {
    let grace = Duration::from_secs(3);
    let cfg = RtmpConfig {
        republish_grace: grace,
        ..RtmpConfig::default()
    };
    let srv = start(engine_with(None), cfg).await;
    let frames = fixture_frames("h264-aac.flv");
    // The player comes first and waits (no StreamNotFound).
    let mut p = RtmpClient::play(&srv.url("re")).await.unwrap();
    let mut all = Vec::new();
    let publisher = publish_frames(&srv.url("re"), &frames[..80], 20.0).await;
    let (code, _) = next_status(&mut p).await;
    assert_eq!(code, "NetStream.Play.PublishNotify");
    tokio::time::sleep(Duration::from_millis(200)).await;
    publisher.close().await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let publisher = publish_frames(&srv.url("re"), &frames[..80], 20.0).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    publisher.close().await.unwrap();
    let left = tokio::time::Instant::now();
    // Nothing between the two publishes: the next status is the end of
    // the second one's grace, with every frame of both before it.
    let (code, media) = next_status_within(&mut p, grace * 5).await;
    assert_eq!(code, "NetStream.Play.UnpublishNotify");
    assert!(left.elapsed() >= grace - Duration::from_millis(500));
    all.extend(media);
    let video: Vec<_> = all
        .iter()
        .filter(|f| f.is_video() && !f.is_config())
        .collect();
    let want = 2 * frames[..80]
        .iter()
        .filter(|f| f.is_video() && !f.is_config())
        .count();
    assert_eq!(video.len(), want, "every video frame of both publishers");
    assert!(video.first().unwrap().dts_ms() < 50);
    assert!(
        video.windows(2).all(|w| w[1].dts_ms() > w[0].dts_ms()),
        "video timestamps increase across the republish"
    );
    // The second publisher's sequence header arrived again.
    let configs = all.iter().filter(|f| f.is_video() && f.is_config()).count();
    assert_eq!(configs, 2);
}

/// Without a grace the player is told at once, and told again when the
/// next publisher starts.
#[tokio::test]
async fn without_grace_players_are_told_of_each_republish() {
    let srv = server_without_grace().await;
    let frames = fixture_frames("h264-aac.flv");
    let mut p = RtmpClient::play(&srv.url("re0")).await.unwrap();
    for round in 0..2 {
        let publisher = publish_frames(&srv.url("re0"), &frames[..40], 20.0).await;
        let (code, _) = next_status(&mut p).await;
        assert_eq!(code, "NetStream.Play.PublishNotify", "round {round}");
        tokio::time::sleep(Duration::from_millis(200)).await;
        publisher.close().await.unwrap();
        let (code, media) = next_status(&mut p).await;
        assert_eq!(code, "NetStream.Play.UnpublishNotify", "round {round}");
        assert!(media.iter().any(|f| f.is_video() && f.is_keyframe()));
    }
}

/// Issue 18 #9: a publisher's `onCuePoint` reaches the player as the data
/// message it sent, in order with the media; it is not kept as the
/// stream's metadata (a later player still gets `onMetaData` first).
#[tokio::test]
async fn data_events_pass_through_to_players() {
    use arcly_rtmp::amf0::{encode_all, Amf0Value};
    let srv = server_without_grace().await;
    let mut frames = fixture_frames("h264-aac.flv");
    frames.truncate(60);
    let cue = encode_all(&[
        Amf0Value::string("onCuePoint"),
        Amf0Value::object([
            ("name", Amf0Value::string("ad-break")),
            ("time", Amf0Value::Number(1.0)),
        ]),
    ]);
    let at = frames.iter().rposition(|f| f.is_video()).unwrap() / 2;
    let ts = frames[at].dts_ms();
    frames.insert(at, MediaFrame::data_event(ts, cue.clone()));
    let mut p = RtmpClient::play(&srv.url("cue")).await.unwrap();
    let publisher = publish_frames(&srv.url("cue"), &frames, 20.0).await;
    let (code, _) = next_status(&mut p).await;
    assert_eq!(code, "NetStream.Play.PublishNotify");
    // A late player, while the publisher is still there.
    let mut late = RtmpClient::play(&srv.url("cue")).await.unwrap();
    let first_data = loop {
        match tokio::time::timeout(Duration::from_secs(5), late.next_frame()).await {
            Ok(Ok(Some(f))) if f.frame_type == FrameType::Data => break f,
            Ok(Ok(Some(_))) => {}
            other => panic!("late player: {other:?}"),
        }
    };
    assert!(
        !first_data.is_data_event(),
        "the cue point replaced the metadata: {first_data:?}"
    );
    tokio::time::sleep(Duration::from_millis(200)).await;
    publisher.close().await.unwrap();
    let (code, media) = next_status(&mut p).await;
    assert_eq!(code, "NetStream.Play.UnpublishNotify");
    let events: Vec<_> = media.iter().filter(|f| f.is_data_event()).collect();
    assert_eq!(events.len(), 1, "one cue point");
    assert_eq!(events[0].payload, cue);
    // In order: after the video frames before it, before those after it.
    let pos = media.iter().position(|f| f.is_data_event()).unwrap();
    let before = media[..pos]
        .iter()
        .filter(|f| f.is_video() && !f.is_config())
        .count();
    let want = frames[..at]
        .iter()
        .filter(|f| f.is_video() && !f.is_config())
        .count();
    assert_eq!(before, want);
}

#[tokio::test]
async fn garbage_ends_only_that_connection() {
    let srv = server().await;
    let frames = fixture_frames("h264-aac.flv");
    let url = srv.url("steady");
    let publisher = tokio::spawn(async move { publish_frames(&url, &frames, 4.0).await });
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut p = RtmpClient::play(&srv.url("steady")).await.unwrap();
    // Junk instead of a handshake, junk after a good handshake, truncation.
    let mut junk_conns = Vec::new();
    for variant in 0..3u8 {
        let mut t = TcpStream::connect(("127.0.0.1", srv.port)).await.unwrap();
        match variant {
            0 => t.write_all(&[0x42; 5000]).await.unwrap(),
            1 => {
                let mut c0c1 = vec![3u8];
                c0c1.extend(std::iter::repeat_n(0u8, 1536));
                t.write_all(&c0c1).await.unwrap();
                let mut s = vec![0u8; 1 + 1536 * 2];
                t.read_exact(&mut s).await.unwrap();
                t.write_all(&s[1..1537]).await.unwrap();
                // A chunk header announcing an absurd message, then noise.
                t.write_all(&[0x03, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x14, 1, 0, 0, 0])
                    .await
                    .unwrap();
                t.write_all(&[0xee; 4000]).await.unwrap();
            }
            _ => t.write_all(&[3, 0, 0, 0]).await.unwrap(),
        }
        junk_conns.push(t);
    }
    // The first two are closed by the server; the truncated one stays open
    // (the idle/handshake timeouts take care of it).
    for t in junk_conns.iter_mut().take(2) {
        let mut b = vec![0u8; 8192];
        let closed = tokio::time::timeout(Duration::from_secs(3), async {
            loop {
                match t.read(&mut b).await {
                    Ok(0) | Err(_) => return,
                    Ok(_) => {}
                }
            }
        })
        .await;
        assert!(
            closed.is_ok(),
            "the server did not close a garbage connection"
        );
    }
    // Meanwhile the stream kept flowing to the player.
    let mut n = 0;
    while n < 100 {
        match p.next_frame().await.unwrap() {
            Some(f) if f.is_video() => n += 1,
            Some(_) => {}
            None => panic!("the player was disconnected"),
        }
    }
    publisher.await.unwrap().close().await.unwrap();
}

#[tokio::test]
async fn a_silent_client_hits_the_handshake_timeout() {
    let mut cfg = RtmpConfig::default();
    cfg.limits.handshake_timeout = Duration::from_millis(300);
    let srv = start(engine_with(None), cfg).await;
    let mut t = TcpStream::connect(("127.0.0.1", srv.port)).await.unwrap();
    t.write_all(&[3, 1, 2]).await.unwrap();
    let t0 = Instant::now();
    let mut b = [0u8; 16];
    let r = tokio::time::timeout(Duration::from_secs(3), t.read(&mut b)).await;
    assert!(matches!(r, Ok(Ok(0)) | Ok(Err(_))), "not closed: {r:?}");
    assert!(t0.elapsed() >= Duration::from_millis(250));
}

#[tokio::test]
async fn receive_video_false_leaves_audio_only() {
    let srv = server().await;
    let frames = fixture_frames("h264-aac.flv");
    let url = srv.url("sel");
    let publisher = tokio::spawn(async move { publish_frames(&url, &frames, 4.0).await });
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut p = RtmpClient::play(&srv.url("sel")).await.unwrap();
    p.receive_media(false, false).await.unwrap();
    // Skip what was in flight, then only audio may arrive.
    let settle = Instant::now() + Duration::from_millis(300);
    while Instant::now() < settle {
        let _ = tokio::time::timeout_at(settle.into(), p.next_frame()).await;
    }
    let mut audio = 0;
    for _ in 0..60 {
        let f = p.next_frame().await.unwrap().unwrap();
        assert!(!f.is_video(), "video after receiveVideo(false)");
        audio += usize::from(f.is_audio());
    }
    assert!(audio > 50);
    // Back on: video resumes at a keyframe with its sequence header first.
    p.receive_media(false, true).await.unwrap();
    loop {
        let f = p.next_frame().await.unwrap().unwrap();
        if f.is_video() {
            assert!(f.is_config(), "the sequence header comes first");
            let k = loop {
                let f = p.next_frame().await.unwrap().unwrap();
                if f.is_video() {
                    break f;
                }
            };
            assert!(k.is_keyframe());
            break;
        }
    }
    publisher.await.unwrap().close().await.unwrap();
}

#[tokio::test]
async fn bad_apps_and_names_get_clear_statuses() {
    let srv = server().await;
    let base = format!("rtmp://127.0.0.1:{}", srv.port);
    match RtmpClient::play(&format!("{base}/../x")).await {
        Err(RtmpError::Rejected { code, description }) => {
            assert_eq!(code, "NetConnection.Connect.Rejected");
            assert!(description.contains("'..'"), "{description}");
        }
        other => panic!("{other:?}"),
    }
    match RtmpClient::publish(&format!("{base}/nosuchapp/x")).await {
        Err(RtmpError::Rejected { code, description }) => {
            // An unknown application is refused at connect, as nginx-rtmp does.
            assert_eq!(code, "NetConnection.Connect.Rejected");
            assert!(description.contains("nosuchapp"), "{description}");
        }
        other => panic!("{other:?}"),
    }
    match RtmpClient::publish(&srv.url("..")).await {
        Err(RtmpError::Rejected { code, .. }) => assert_eq!(code, "NetStream.Publish.BadName"),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn a_publisher_over_the_rate_limit_is_disconnected() {
    let cfg = RtmpConfig {
        rate_limit: Some(arcly_rtmp::handler::RateLimit {
            bytes_per_sec: 50_000,
            messages_per_sec: 10_000,
            burst_secs: 1.0,
        }),
        ..RtmpConfig::default()
    };
    let srv = start(engine_with(None), cfg).await;
    let frames = fixture_frames("h264-aac.flv");
    let mut c = RtmpClient::publish(&srv.url("flood")).await.unwrap();
    let path = arcly_core::StreamPath::parse("live", "flood").unwrap();
    assert!(PlaybackRegistry::stream(&srv.engine, &path).is_some_and(|s| s.is_live()));
    // 350 KB at once: far above 50 KB/s with a one-second burst.
    for f in &frames {
        if c.send_frame(f).await.is_err() {
            break;
        }
    }
    let t0 = Instant::now();
    while PlaybackRegistry::stream(&srv.engine, &path).is_some_and(|s| s.is_live()) {
        assert!(
            t0.elapsed() < Duration::from_secs(3),
            "the flood was not cut"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn an_operator_kick_disconnects_the_publisher() {
    let srv = server().await;
    let mut publisher = RtmpClient::publish(&srv.url("kicked")).await.unwrap();
    let path = arcly_core::StreamPath::parse("live", "kicked").unwrap();
    let t0 = Instant::now();
    while !PlaybackRegistry::stream(&srv.engine, &path).is_some_and(|s| s.is_live()) {
        assert!(
            t0.elapsed() < Duration::from_secs(5),
            "the publisher never came"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let handle = PlaybackRegistry::stream(&srv.engine, &path).unwrap();
    assert!(handle.kick_publisher());
    // The server closes the connection: the stream goes offline and the
    // client's writes soon fail.
    let t0 = Instant::now();
    while handle.is_live() {
        assert!(
            t0.elapsed() < Duration::from_secs(5),
            "the kicked publisher is still live"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let frame = MediaFrame::audio(
        arcly_core::CodecId::Aac,
        0,
        bytes::Bytes::from_static(&[0; 64]),
    );
    let mut failed = false;
    for _ in 0..200 {
        if publisher.send_frame(&frame).await.is_err() {
            failed = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(failed, "the connection of a kicked publisher stays open");
}

#[tokio::test]
async fn players_are_told_when_the_server_shuts_down() {
    let srv = server().await;
    let mut player = RtmpClient::play(&srv.url("closing")).await.unwrap();
    let path = arcly_core::StreamPath::parse("live", "closing").unwrap();
    let t0 = Instant::now();
    while PlaybackRegistry::stream(&srv.engine, &path).is_none_or(|s| s.subscriber_count() == 0) {
        assert!(
            t0.elapsed() < Duration::from_secs(5),
            "the player never subscribed"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    srv.engine.shutdown();
    let (code, _) = next_status(&mut player).await;
    assert_eq!(code, "NetStream.Play.Stop");
}

/// Every connection is a task holding this future for its whole life: with
/// thousands of players, each byte of it counts thousands of times (a
/// buffer held across an await inside it once made it 5 KB).
#[tokio::test]
async fn a_connection_task_stays_small() {
    use arcly_core::traits::ProtocolHandler;
    let engine = engine_with(None);
    let (conn, _peer_end) = tokio::io::duplex(64);
    let handler = RtmpHandler::default();
    let fut = handler.handle_connection(
        Box::new(conn),
        "127.0.0.1:1".parse().unwrap(),
        engine.ingest_context(),
    );
    let size = std::mem::size_of_val(&*fut);
    eprintln!("handle_connection future: {size} bytes");
    assert!(size <= 2048, "a connection's future takes {size} bytes");
}

/// Drive a player over an in-memory connection; returns, per read that
/// carried media, when it arrived and how many frames it held.
async fn duplex_player(mut io: tokio::io::DuplexStream) -> Vec<(tokio::time::Instant, usize)> {
    use arcly_rtmp::session::{ClientSession, SessionConfig};
    use bytes::BytesMut;
    let mut c = ClientSession::new("live", "rtmp://x/live", SessionConfig::default());
    c.play("cam");
    let (mut out, mut buf, mut log) = (BytesMut::new(), vec![0u8; 1 << 16], Vec::new());
    loop {
        out.clear();
        c.poll_transmit(&mut out);
        if !out.is_empty() {
            io.write_all(&out).await.expect("player write");
        }
        let n = match tokio::time::timeout(Duration::from_secs(1), io.read(&mut buf)).await {
            Ok(Ok(n)) if n > 0 => n,
            _ => return log,
        };
        c.handle_input(&buf[..n]).expect("player input");
        let media = std::iter::from_fn(|| c.poll_event())
            .filter(|e| matches!(e, ClientEvent::Media(_)))
            .count();
        if media > 0 {
            log.push((tokio::time::Instant::now(), media));
        }
    }
}

/// Merged writes: the cached GOP goes out at once; then, while frames keep
/// coming every 10 ms, a player gets one write per merge tick, and every
/// player of the handler gets it at the same instants (one wake-up of the
/// runtime per tick for all of them). Runs on tokio's paused clock, so the
/// instants are exact.
#[tokio::test(start_paused = true)]
async fn merged_writes_go_out_once_per_tick_on_a_shared_grid() {
    use arcly_core::registry::{PublishRegistry, PublishRequest};
    use arcly_core::traits::ProtocolHandler;
    use arcly_core::{CodecId, FrameFlags, StreamPath};
    use bytes::Bytes;
    let engine = engine_with(None);
    let ctx = engine.ingest_context();
    let handler = Arc::new(RtmpHandler::default());
    let epoch = tokio::time::Instant::now();
    let tick = handler.config().merge_writes;
    assert!(
        tick >= Duration::from_millis(50),
        "a tick spans several frames"
    );
    let ticks_in_2s = (2000 / tick.as_millis()) as usize;
    let req = PublishRequest::new(StreamPath::parse("live", "cam").unwrap(), "test");
    let mut publisher = engine.publish(req).await.expect("publish");
    let frame = |i: i64| {
        let f = MediaFrame::video(
            CodecId::H264,
            i * 10,
            i * 10,
            Bytes::from(vec![i as u8; 900]),
        );
        if i % 50 == 0 {
            f.with_flags(FrameFlags::KEYFRAME)
        } else {
            f
        }
    };
    publisher.push(MediaFrame::config(
        CodecId::H264,
        0,
        Bytes::from_static(&[1, 2, 3, 4]),
    ));
    for i in 0..10 {
        publisher.push(frame(i));
    }
    // Two players join mid-GOP, 37 ms apart.
    let mut players = Vec::new();
    for k in 0..2u64 {
        tokio::time::sleep(Duration::from_millis(37 * k + 3)).await;
        let (a, b) = tokio::io::duplex(1 << 20);
        let (h, ctx) = (Arc::clone(&handler), ctx.clone());
        tokio::spawn(async move {
            let _ = h
                .handle_connection(Box::new(a), "127.0.0.1:9".parse().unwrap(), ctx)
                .await;
        });
        let joined = tokio::time::Instant::now();
        players.push((joined, tokio::spawn(duplex_player(b))));
    }
    for i in 10..210 {
        tokio::time::sleep(Duration::from_millis(10)).await;
        publisher.push(frame(i));
    }
    drop(publisher);
    for (joined, p) in players {
        let log = p.await.expect("player");
        let frames: usize = log.iter().map(|(_, n)| n).sum();
        assert!(frames >= 200, "every frame arrives ({frames})");
        // The join's batch (config + the GOP so far) is not delayed.
        let (first, n) = log[0];
        assert!(
            first - joined < Duration::from_millis(2),
            "first batch after {:?}",
            first - joined
        );
        assert!(n >= 10, "the join batch holds the cached GOP ({n} frames)");
        // Afterwards: writes land on the grid, one per tick (the first
        // tick of a play is on the finer grid, until the stream's rate is
        // known).
        let mut instants: Vec<_> = log[1..].iter().map(|(t, _)| *t).collect();
        instants.dedup();
        let fine = tick / arcly_rtmp::handler::FINE_GRID;
        for (k, t) in instants.iter().enumerate() {
            let grid = if k == 0 { fine } else { tick };
            let off = (*t - epoch).as_nanos() % grid.as_nanos();
            assert!(off < 2_000_000, "write {k} is {off} ns off the grid");
        }
        assert!(
            (ticks_in_2s - 2..=ticks_in_2s + 3).contains(&instants.len()),
            "2 s of frames every 10 ms went out in {} writes",
            instants.len()
        );
    }
}

/// A stream sent far faster than real time (2000 frames/s into a 256-frame
/// ring: 400 frames per 200 ms tick) reaches a player whole, also after a
/// pause: its ticks move to the finer grid instead of letting the ring lap
/// it.
#[tokio::test(start_paused = true)]
async fn a_fast_stream_is_not_lapped_between_merged_writes() {
    use arcly_core::registry::{PublishRegistry, PublishRequest};
    use arcly_core::traits::ProtocolHandler;
    use arcly_core::{CodecId, FrameFlags, StreamPath};
    use bytes::Bytes;
    let engine = Engine::builder()
        .application(AppSpec::new("live").gop_cache(1000).channel_capacity(256))
        .build();
    let handler = Arc::new(RtmpHandler::default());
    let req = PublishRequest::new(StreamPath::parse("live", "cam").unwrap(), "test");
    let mut publisher = engine.publish(req).await.expect("publish");
    publisher.push(MediaFrame::config(
        CodecId::H264,
        0,
        Bytes::from_static(&[1, 2, 3, 4]),
    ));
    publisher.push(
        MediaFrame::video(CodecId::H264, 0, 0, Bytes::from_static(&[5; 100]))
            .with_flags(FrameFlags::KEYFRAME),
    );
    let (a, b) = tokio::io::duplex(1 << 22);
    let ctx = engine.ingest_context();
    let h = Arc::clone(&handler);
    tokio::spawn(async move {
        let _ = h
            .handle_connection(Box::new(a), "127.0.0.1:9".parse().unwrap(), ctx)
            .await;
    });
    let player = tokio::spawn(duplex_player(b));
    tokio::time::sleep(Duration::from_millis(5)).await;
    for ms in 1..=1000i64 {
        tokio::time::sleep(Duration::from_millis(1)).await;
        if ms == 500 {
            // A pause (a publisher's loop point, a stall): the player goes
            // idle, and must not come back on coarse ticks.
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
        for k in 0..2 {
            let ts = ms * 2 + k;
            publisher.push(MediaFrame::video(
                CodecId::H264,
                ts,
                ts,
                Bytes::from_static(&[6; 100]),
            ));
        }
    }
    drop(publisher);
    let log = player.await.expect("player");
    let frames: usize = log.iter().map(|(_, n)| n).sum();
    assert!(frames >= 2002, "{frames} of 2002 frames arrived");
}

/// An Enhanced RTMP multitrack publish (the fixture's video again as track
/// 1): a player, which did not ask for multitrack, gets track 0 only.
#[tokio::test]
async fn a_player_gets_the_default_track_of_a_multitrack_publish() {
    let srv = server_without_grace().await;
    let frames = fixture_frames("h264-aac.flv");
    let mut two_tracks = Vec::new();
    for f in &frames[..120] {
        two_tracks.push(f.clone());
        if f.is_video() {
            two_tracks.push(f.clone().with_track(1));
        }
    }
    let mut p = RtmpClient::play(&srv.url("mt")).await.unwrap();
    let publisher = publish_frames(&srv.url("mt"), &two_tracks, 20.0).await;
    let (code, mut media) = next_status(&mut p).await;
    assert_eq!(code, "NetStream.Play.PublishNotify");
    tokio::time::sleep(Duration::from_millis(200)).await;
    publisher.close().await.unwrap();
    let (code, rest) = next_status(&mut p).await;
    assert_eq!(code, "NetStream.Play.UnpublishNotify");
    media.extend(rest);
    let video = media.iter().filter(|f| f.is_video()).count();
    let want = frames[..120].iter().filter(|f| f.is_video()).count();
    assert_eq!(video, want, "track 0's video, once");
    let other: Vec<_> = media.iter().filter(|f| f.track != 0).collect();
    assert!(other.is_empty(), "the player got other tracks: {other:?}");
}

// ------------------------------------------------- pipelining (issue 18 #5)

/// A hand-built client that sends what it is told at once, without waiting
/// for any answer, and reads the server's commands back.
struct Pipeliner {
    t: TcpStream,
    enc: arcly_rtmp::chunk::ChunkEncoder,
    dec: arcly_rtmp::chunk::ChunkDecoder,
    input: bytes::BytesMut,
    out: bytes::BytesMut,
}

impl Pipeliner {
    /// Connect and do a plain handshake.
    async fn connect(port: u16) -> Self {
        let mut t = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
        let mut c0c1 = vec![3u8];
        c0c1.extend(std::iter::repeat_n(0u8, 1536));
        t.write_all(&c0c1).await.unwrap();
        let mut s = vec![0u8; 1 + 1536 * 2];
        t.read_exact(&mut s).await.unwrap();
        t.write_all(&s[1..1537]).await.unwrap();
        Self {
            t,
            enc: arcly_rtmp::chunk::ChunkEncoder::new(),
            dec: arcly_rtmp::chunk::ChunkDecoder::default(),
            input: bytes::BytesMut::new(),
            out: bytes::BytesMut::new(),
        }
    }

    fn message(&mut self, csid: u32, type_id: u8, stream_id: u32, ts: u32, body: &[u8]) {
        let h = arcly_rtmp::chunk::MessageHeader {
            csid,
            timestamp: ts,
            type_id,
            stream_id,
        };
        self.enc.write(&h, body, &mut self.out);
    }

    fn command(&mut self, stream_id: u32, name: &str, txn: f64, args: Vec<Amf0Value>) {
        let obj = if name == "connect" {
            Amf0Value::object([
                ("app", Amf0Value::string("live")),
                ("tcUrl", Amf0Value::string("rtmp://127.0.0.1/live")),
            ])
        } else {
            Amf0Value::Null
        };
        let body = arcly_rtmp::message::Command::new(name, txn, obj, args).encode();
        self.message(3, 20, stream_id, 0, &body);
    }

    fn frame(&mut self, stream_id: u32, f: &MediaFrame) {
        if f.frame_type == FrameType::Data {
            let body = arcly_rtmp::flv::set_data_frame(&f.payload);
            self.message(5, 18, stream_id, 0, &body);
            return;
        }
        let tag = arcly_rtmp::flv::mux_frame(f).unwrap().unwrap();
        let body = [&tag.header[..], &tag.payload[..]].concat();
        let csid = if tag.tag_type == 9 { 6 } else { 4 };
        self.message(csid, tag.tag_type, stream_id, tag.timestamp, &body);
    }

    /// Send everything queued so far in one write.
    async fn send(&mut self) {
        let b = self.out.split();
        self.t.write_all(&b).await.unwrap();
    }

    /// The next `onStatus` code (or `_error`), reading whatever comes
    /// before it; `None` when the server closed the connection.
    async fn next_status(&mut self) -> Option<String> {
        use arcly_rtmp::message::Command;
        let mut buf = vec![0u8; 1 << 16];
        loop {
            while let Some(m) = self.dec.decode(&mut self.input).unwrap() {
                match m.type_id {
                    1 => {
                        let v = arcly_rtmp::message::parse_u32_body(&m.payload).unwrap();
                        self.dec.set_chunk_size(v).unwrap();
                    }
                    20 => {
                        let c = Command::parse(&m.payload, false).unwrap();
                        if c.name == "onStatus" || c.name == "_error" {
                            let info = c.args.first();
                            return Some(
                                info.and_then(|i| i.get_str("code"))
                                    .unwrap_or("")
                                    .to_owned(),
                            );
                        }
                    }
                    _ => {}
                }
            }
            let n = tokio::time::timeout(Duration::from_secs(10), self.t.read(&mut buf))
                .await
                .expect("the server answers within 10 s");
            match n {
                Ok(0) | Err(_) => return None,
                Ok(n) => self.input.extend_from_slice(&buf[..n]),
            }
        }
    }
}

use arcly_rtmp::amf0::Amf0Value;

/// A player that sends `connect`, `createStream` and `play` back to back
/// is served (it was disconnected with "command createStream before
/// connect was accepted" in most tries), with merged writes on and off.
#[tokio::test]
async fn a_player_that_pipelines_its_commands_is_served() {
    for merge in [Duration::ZERO, RtmpConfig::default().merge_writes] {
        let cfg = RtmpConfig {
            merge_writes: merge,
            ..RtmpConfig::default()
        };
        let srv = start(engine_with(None), cfg).await;
        for i in 0..20 {
            let mut p = Pipeliner::connect(srv.port).await;
            p.command(0, "connect", 1.0, vec![]);
            p.command(0, "createStream", 2.0, vec![]);
            p.message(2, 4, 0, 0, &[0, 3, 0, 0, 0, 1, 0, 0, 0x03, 0xe8]);
            p.command(
                1,
                "play",
                3.0,
                vec![Amf0Value::string("waiting"), Amf0Value::Number(-2.0)],
            );
            p.send().await;
            let mut codes = Vec::new();
            while let Some(code) = p.next_status().await {
                let start = code == "NetStream.Play.Start";
                codes.push(code);
                if start {
                    break;
                }
            }
            assert_eq!(
                codes,
                ["NetStream.Play.Reset", "NetStream.Play.Start"],
                "try {i} with merged writes {merge:?}"
            );
        }
    }
}

/// A publisher that sends `publish`, `@setDataFrame` and its sequence
/// headers back to back keeps them: a player joining later receives the
/// metadata and both sequence headers (they used to be dropped as media
/// on a stream whose publish was still pending).
#[tokio::test]
async fn a_publisher_that_pipelines_its_sequence_headers_keeps_them() {
    let srv = server().await;
    let frames = fixture_frames("h264-aac.flv");
    let meta = frames
        .iter()
        .find(|f| f.frame_type == FrameType::Data)
        .expect("fixture metadata")
        .clone();
    let vcfg = frames
        .iter()
        .find(|f| f.is_video() && f.is_config())
        .unwrap()
        .clone();
    let acfg = frames
        .iter()
        .find(|f| f.is_audio() && f.is_config())
        .unwrap()
        .clone();
    let key = frames
        .iter()
        .find(|f| f.is_video() && f.is_keyframe() && !f.is_config())
        .unwrap()
        .clone();
    let mut p = Pipeliner::connect(srv.port).await;
    p.command(0, "connect", 1.0, vec![]);
    p.send().await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    p.command(0, "releaseStream", 2.0, vec![Amf0Value::string("piped")]);
    p.command(0, "FCPublish", 3.0, vec![Amf0Value::string("piped")]);
    p.command(0, "createStream", 4.0, vec![]);
    // Like ffmpeg, wait for the answers to `connect` and `createStream`
    // before `publish`... (it would not matter if they were still pending:
    // the player test above pipelines those).
    p.send().await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    // ...but then send `publish`, metadata and sequence headers at once.
    p.command(
        1,
        "publish",
        5.0,
        vec![Amf0Value::string("piped"), Amf0Value::string("live")],
    );
    for f in [&meta, &vcfg, &acfg, &key] {
        p.frame(1, f);
    }
    p.send().await;
    assert_eq!(
        p.next_status().await.as_deref(),
        Some("NetStream.Publish.Start")
    );
    let mut player = RtmpClient::play(&srv.url("piped")).await.unwrap();
    let mut got = Vec::new();
    while !(got.contains(&vcfg)
        && got.contains(&acfg)
        && got.iter().any(|f: &MediaFrame| f.is_keyframe()))
    {
        match tokio::time::timeout(Duration::from_secs(10), player.next_frame()).await {
            Ok(Ok(Some(f))) => got.push(f),
            other => panic!("the player got {} frames, then {other:?}", got.len()),
        }
    }
    assert!(
        got.iter().any(|f| f.frame_type == FrameType::Data),
        "metadata reached the player"
    );
}

// ----------------------------------------- waiting players (issue 18 #11)

/// A player over an in-memory connection wrapped in the ingest layer's idle
/// timeout (as `TcpIngest` wraps its sockets), asking to play `name`. It
/// answers pings (the client session does) unless `silent`, in which case
/// it stops writing once playing. Returns, when the server closes it, how
/// long it stayed and the status codes it got.
async fn waiting_player(
    handler: Arc<RtmpHandler>,
    ctx: arcly_core::inbound::IngestContext,
    name: &str,
    silent: bool,
) -> (Duration, Vec<String>) {
    use arcly_core::ingest::IdleTimeout;
    use arcly_core::traits::ProtocolHandler;
    use arcly_rtmp::session::{ClientSession, SessionConfig};
    use bytes::BytesMut;
    let idle = handler.config().limits.idle_timeout;
    let (a, mut io) = tokio::io::duplex(1 << 16);
    tokio::spawn(async move {
        let conn = IdleTimeout::new(a, idle);
        let _ = handler
            .handle_connection(Box::new(conn), "127.0.0.1:9".parse().unwrap(), ctx)
            .await;
    });
    let t0 = tokio::time::Instant::now();
    let mut c = ClientSession::new("live", "rtmp://x/live", SessionConfig::default());
    c.play(name);
    let (mut out, mut buf, mut codes) = (BytesMut::new(), vec![0u8; 1 << 16], Vec::new());
    let mut playing = false;
    loop {
        out.clear();
        c.poll_transmit(&mut out);
        let muted = silent && playing;
        let send = !out.is_empty() && !muted;
        if send && io.write_all(&out).await.is_err() {
            break;
        }
        let n = match io.read(&mut buf).await {
            Ok(n) if n > 0 => n,
            _ => break,
        };
        if c.handle_input(&buf[..n]).is_err() {
            break;
        }
        while let Some(e) = c.poll_event() {
            match e {
                ClientEvent::PlayStarted { .. } => {
                    playing = true;
                    codes.push("NetStream.Play.Start".to_owned());
                }
                ClientEvent::Status { code, .. } => codes.push(code),
                _ => {}
            }
        }
    }
    (t0.elapsed(), codes)
}

/// A player waiting for a publisher sends nothing by itself: it used to be
/// cut by the 30 s idle timeout. It is pinged and kept while it answers;
/// one that answers nothing is closed after the idle timeout; and
/// `max_publisher_wait` ends the wait. Paused clock: the times are exact.
#[tokio::test(start_paused = true)]
async fn waiting_players_are_pinged_and_kept_while_they_answer() {
    let engine = engine_with(None);
    let idle = RtmpConfig::default().limits.idle_timeout;
    assert_eq!(idle, Duration::from_secs(30));
    let handler = Arc::new(RtmpHandler::new(RtmpConfig {
        max_publisher_wait: Some(Duration::from_secs(300)),
        ..RtmpConfig::default()
    }));
    let answering = tokio::spawn(waiting_player(
        Arc::clone(&handler),
        engine.ingest_context(),
        "nobody",
        false,
    ));
    let silent = tokio::spawn(waiting_player(
        Arc::clone(&handler),
        engine.ingest_context(),
        "nobody-either",
        true,
    ));
    let (stayed, codes) = silent.await.unwrap();
    assert!(
        stayed >= idle && stayed <= idle + DEFAULT_PING_INTERVAL + Duration::from_secs(1),
        "a waiting player that answers no ping is closed after the idle timeout (stayed {stayed:?})"
    );
    assert_eq!(codes, ["NetStream.Play.Reset", "NetStream.Play.Start"]);
    let (stayed, codes) = answering.await.unwrap();
    assert!(
        stayed >= Duration::from_secs(300) && stayed <= Duration::from_secs(311),
        "an answering player waits until max_publisher_wait (stayed {stayed:?})"
    );
    assert_eq!(
        codes,
        [
            "NetStream.Play.Reset",
            "NetStream.Play.Start",
            "NetStream.Play.Stop"
        ]
    );
}

/// The next video frame of `p` (within 10 s).
async fn next_video(p: &mut RtmpClient) -> MediaFrame {
    let fut = async {
        loop {
            match p.next_frame().await {
                Ok(Some(f)) if f.is_video() => return f,
                Ok(Some(_)) => {}
                other => panic!("the play ended: {other:?}"),
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(10), fut)
        .await
        .expect("video within 10 s")
}

/// Issue 18 item 12: `pause` is answered, no media comes while paused, and
/// the play resumes at the live edge from a keyframe with its sequence
/// header first.
#[tokio::test]
async fn pause_stops_media_and_unpause_resumes_from_a_keyframe() {
    let srv = server().await;
    let frames = fixture_frames("h264-aac.flv");
    let url = srv.url("pz");
    // In real time: the clip (6 s) outlasts the pause.
    let publisher = tokio::spawn(async move { publish_frames(&url, &frames, 1.0).await });
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut p = RtmpClient::play(&srv.url("pz")).await.unwrap();
    next_video(&mut p).await;
    p.pause(true).await.unwrap();
    let (code, _) = next_status(&mut p).await;
    assert_eq!(code, "NetStream.Pause.Notify");
    // What was in flight may still arrive; then nothing while paused.
    let settle = Instant::now() + Duration::from_millis(300);
    while Instant::now() < settle {
        let _ = tokio::time::timeout_at(settle.into(), p.next_frame()).await;
    }
    let quiet = tokio::time::timeout(Duration::from_millis(700), p.next_frame()).await;
    assert!(quiet.is_err(), "media while paused: {quiet:?}");
    p.pause(false).await.unwrap();
    let (code, _) = next_status(&mut p).await;
    assert_eq!(code, "NetStream.Unpause.Notify");
    let first = next_video(&mut p).await;
    assert!(first.is_config(), "the sequence header comes first");
    let k = next_video(&mut p).await;
    assert!(k.is_keyframe(), "resumes from a keyframe");
    drop(p);
    publisher.abort();
}

/// Issue 18 item 6 over a socket: a malformed tag in the middle of a
/// publish is dropped and the stream goes on; the player receives every
/// frame sent after it.
#[tokio::test]
async fn a_malformed_tag_does_not_end_the_publish() {
    let srv = server().await;
    let frames: Vec<_> = fixture_frames("h264-aac.flv")
        .into_iter()
        .filter(|f| f.dts_ms() < 2000)
        .collect();
    let last_video = frames.iter().rfind(|f| f.is_video()).unwrap().clone();
    let player = {
        let url = srv.url("bt");
        tokio::spawn(async move {
            let mut p = RtmpClient::play(&url).await.unwrap();
            loop {
                let f = tokio::time::timeout(Duration::from_secs(10), p.next_frame())
                    .await
                    .expect("frames keep coming")
                    .expect("play")
                    .expect("the stream goes on");
                if f.is_video() && f.payload == last_video.payload {
                    return;
                }
            }
        })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut p = Pipeliner::connect(srv.port).await;
    p.command(0, "connect", 1.0, vec![]);
    p.command(0, "createStream", 2.0, vec![]);
    p.command(
        1,
        "publish",
        3.0,
        vec![Amf0Value::string("bt"), Amf0Value::string("live")],
    );
    for (i, f) in frames.iter().enumerate() {
        if i == frames.len() / 2 {
            // AVCPacketType 5 does not exist (FLV 10.1 §E.4.3.1).
            p.message(6, 9, 1, f.dts_ms() as u32, &[0x27, 0x05, 0, 0, 0, 1, 2]);
        }
        p.frame(1, f);
    }
    p.send().await;
    assert_eq!(
        p.next_status().await.as_deref(),
        Some("NetStream.Publish.Start")
    );
    player.await.expect("the player got the last frame");
}
