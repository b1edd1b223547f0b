//! End-to-end tests against the built `arcly` binary with real ffmpeg,
//! FFmpeg 9, rtmpdump and headless Chromium. Each test starts its own
//! server on loopback port 0, so they run in parallel.

mod common;

use arcly_core::testing::tools;
use common::*;
use std::process::Command;
use std::time::Duration;

const SECS: fn(u64) -> Duration = Duration::from_secs;

/// ffmpeg publishes H.264/AAC; ffmpeg and rtmpdump play RTMP (waiting
/// before the publish, so they see every frame), ffmpeg plays HTTP-FLV and
/// HLS; each decodes with no error and the video hashes equal the source.
#[test]
fn h264_publish_plays_bit_exact_over_rtmp_flv_and_hls() {
    let ff = tools::ffmpeg();
    let src = source_video_md5(&ff, "h264-aac.flv");
    let s = Arcly::start(&["--hls-end-after", "0.5", "--hls-segment", "1"]);
    let url = s.rtmp_url("live/cam");

    // Players waiting for the publisher.
    let mut rtmpdump = {
        let out = temp_dir("rtmpdump").join("dump.flv");
        let mut c = Command::new(tools::rtmpdump());
        c.args(["-q", "-v", "-r", &url, "-o"]).arg(&out);
        (Proc::spawn(c), out)
    };
    let (ff2, url2) = (ff.clone(), url.clone());
    let rtmp_play =
        std::thread::spawn(move || framemd5_timeout(&ff2, &[], &url2, &["-map", "0:v"], SECS(40)));
    std::thread::sleep(Duration::from_millis(1500));

    let mut publisher = publish(&ff, "h264-aac.flv", &url, true, false);
    let view = s.wait_stream("live", "cam", true, SECS(10));
    // HTTP-FLV joins within the first GOP: the GOP cache replays it all.
    let flv = s.http_url("/live/cam.flv");
    let ff3 = ff.clone();
    let flv_play =
        std::thread::spawn(move || framemd5_timeout(&ff3, &[], &flv, &["-map", "0:v"], SECS(40)));
    assert!(
        publisher.wait(SECS(30)).success(),
        "publish failed: {}",
        publisher.stderr()
    );
    assert_eq!(view["video_codec"], "h264");
    assert_eq!(view["audio_codec"], "aac");
    assert_eq!(view["width"], 640);
    assert_eq!(view["height"], 360);
    assert_eq!(view["video_profile"], "High", "{view}");
    assert_eq!(view["audio_sample_rate"], 48000, "{view}");
    assert!(
        view["codec_strings"][0]
            .as_str()
            .unwrap()
            .starts_with("avc1.64"),
        "{view}"
    );

    let got = tools::md5_column(&rtmp_play.join().unwrap(), 0);
    assert_same_frames("ffmpeg over RTMP", &src, &got, true);
    let got = tools::md5_column(&flv_play.join().unwrap(), 0);
    assert_same_frames("ffmpeg over HTTP-FLV", &src, &got, true);

    // rtmpdump ends when the publisher leaves; its file decodes the same.
    let st = rtmpdump.0.wait(SECS(20));
    let dump = rtmpdump.1.to_str().unwrap().to_owned();
    assert!(
        std::fs::metadata(&dump)
            .map(|m| m.len() > 100_000)
            .unwrap_or(false),
        "rtmpdump wrote too little ({st}): {}",
        rtmpdump.0.stderr()
    );
    let got = tools::md5_column(
        &framemd5_timeout(&ff, &[], &dump, &["-map", "0:v"], SECS(30)),
        0,
    );
    assert_same_frames("rtmpdump", &src, &got, true);

    // HLS: the playlist ends after the publisher left; ffmpeg reads it all.
    s.wait_stream("live", "cam", false, SECS(10));
    std::thread::sleep(Duration::from_millis(1500));
    let (code, body) = http_get(s.http, "/live/cam/index.m3u8", &[]);
    let text = String::from_utf8_lossy(&body);
    assert_eq!(code, 200, "{text}");
    assert!(text.contains("#EXT-X-ENDLIST"), "{text}");
    assert!(text.contains(".ts"), "H.264/AAC is packaged as TS: {text}");
    let got = tools::md5_column(
        &framemd5_timeout(
            &ff,
            &[],
            &s.http_url("/live/cam/index.m3u8"),
            &["-map", "0:v"],
            SECS(30),
        ),
        0,
    );
    assert_same_frames("ffmpeg over HLS", &src, &got, true);
    let log = s.log();
    assert!(
        log.contains("publish started") && log.contains("cam"),
        "{log}"
    );
}

/// FFmpeg 9 publishes HEVC and AV1 over Enhanced RTMP; both play back over
/// RTMP, HTTP-FLV and HLS with fMP4 segments, frame-exact.
#[test]
fn enhanced_rtmp_hevc_and_av1_play_everywhere() {
    let ff9 = tools::ffmpeg9();
    let s = Arcly::start(&["--hls-end-after", "0.5", "--hls-segment", "1"]);
    let runs: Vec<_> = [
        ("hevc-aac.enhanced.flv", "hevc", "h265"),
        ("av1-opus.enhanced.flv", "av1", "av1"),
    ]
    .into_iter()
    .map(|(fixture, key, codec)| {
        let ff9 = ff9.clone();
        let url = s.rtmp_url(&format!("live/{key}"));
        let flv = s.http_url(&format!("/live/{key}.flv"));
        let hls = s.http_url(&format!("/live/{key}/index.m3u8"));
        let http = s.http;
        std::thread::spawn(move || {
            let src = source_video_md5(&ff9, fixture);
            let (f2, u2) = (ff9.clone(), url.clone());
            let rtmp_play = std::thread::spawn(move || {
                framemd5_timeout(&f2, &[], &u2, &["-map", "0:v"], SECS(40))
            });
            std::thread::sleep(Duration::from_millis(1500));
            let mut p = publish(&ff9, fixture, &url, true, false);
            // Wait until live, then join HTTP-FLV in the first GOP.
            let deadline = std::time::Instant::now() + SECS(10);
            let view = loop {
                let (_, b) = http_get(http, &format!("/api/streams/live/{key}"), &[]);
                let v: serde_json::Value = serde_json::from_slice(&b).unwrap_or_default();
                if v["live"] == true && v["video_codec"].is_string() {
                    break v;
                }
                assert!(
                    std::time::Instant::now() < deadline,
                    "{key} never went live"
                );
                std::thread::sleep(Duration::from_millis(50));
            };
            assert_eq!(view["video_codec"], codec);
            assert_eq!(view["width"], 640, "{view}");
            assert_eq!(view["height"], 360, "{view}");
            let f3 = ff9.clone();
            let flv_play = std::thread::spawn(move || {
                framemd5_timeout(&f3, &[], &flv, &["-map", "0:v"], SECS(40))
            });
            assert!(p.wait(SECS(30)).success(), "{key} publish: {}", p.stderr());
            let got = tools::md5_column(&rtmp_play.join().unwrap(), 0);
            assert_same_frames(&format!("{key} over RTMP"), &src, &got, true);
            let got = tools::md5_column(&flv_play.join().unwrap(), 0);
            assert_same_frames(&format!("{key} over HTTP-FLV"), &src, &got, true);
            std::thread::sleep(SECS(2));
            let (code, body) = http_get(http, &format!("/live/{key}/index.m3u8"), &[]);
            let text = String::from_utf8_lossy(&body).to_string();
            assert_eq!(code, 200, "{text}");
            assert!(
                text.contains("#EXT-X-MAP") && text.contains(".m4s"),
                "{key} must be fMP4: {text}"
            );
            assert!(text.contains("#EXT-X-ENDLIST"), "{text}");
            let got = tools::md5_column(
                &framemd5_timeout(&ff9, &[], &hls, &["-map", "0:v"], SECS(30)),
                0,
            );
            assert_same_frames(&format!("{key} over HLS/fMP4"), &src, &got, true);
        })
    })
    .collect();
    for r in runs {
        if let Err(e) = r.join() {
            panic!("{:?}\nserver log:\n{}", e.downcast_ref::<String>(), s.log());
        }
    }
}

fn metric(text: &str, name: &str) -> f64 {
    text.lines()
        .filter(|l| l.starts_with(name))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// Metrics scraped during a run move; health endpoints answer.
#[test]
fn metrics_move_during_a_run() {
    let ff = tools::ffmpeg();
    let s = Arcly::start(&[]);
    assert_eq!(http_get(s.http, "/healthz", &[]).0, 200);
    assert_eq!(http_get(s.http, "/readyz", &[]).0, 200);
    let (_, before) = http_get(s.http, "/metrics", &[]);
    let before = String::from_utf8_lossy(&before).to_string();
    let mut p = publish(&ff, "h264-aac.flv", &s.rtmp_url("live/m"), true, false);
    s.wait_stream("live", "m", true, SECS(10));
    std::thread::sleep(SECS(2));
    let (_, during) = http_get(s.http, "/metrics", &[]);
    let during = String::from_utf8_lossy(&during).to_string();
    assert!(
        metric(&during, "arcly_publishes_total") > metric(&before, "arcly_publishes_total"),
        "{during}"
    );
    let f1 = metric(&during, "arcly_frames_in_total");
    assert!(f1 > 0.0, "{during}");
    std::thread::sleep(SECS(1));
    let (_, later) = http_get(s.http, "/metrics", &[]);
    let later = String::from_utf8_lossy(&later).to_string();
    assert!(
        metric(&later, "arcly_frames_in_total") > f1,
        "frames_in did not move: {later}"
    );
    let (_, one) = http_get(s.http, "/api/streams/live/m", &[]);
    let v: serde_json::Value = serde_json::from_slice(&one).unwrap();
    assert!(v["kbps_in"].as_f64().unwrap() > 100.0, "{v}");
    assert_eq!(v["frame_rate"], 25.0);
    assert!(v["publisher_addr"]
        .as_str()
        .unwrap()
        .starts_with("127.0.0.1:"));
    assert_eq!(v["publisher_protocol"], "rtmp");
    drop(p.0.kill());
}

/// A token-protected app refuses a publish without the token and accepts
/// one with it; HTTP play needs its token too; the admin API its bearer.
#[test]
fn tokens_guard_publish_play_and_admin() {
    let ff = tools::ffmpeg();
    let s = Arcly::start(&[
        "--app",
        "live",
        "--app",
        "secure",
        "--publish-token",
        "secure=pub123",
        "--play-token",
        "secure=play456",
        "--admin-token",
        "adm",
    ]);
    let bearer = [("Authorization", "Bearer adm")];
    assert_eq!(http_get(s.http, "/api/streams", &[]).0, 401);
    assert_eq!(http_get(s.http, "/api/streams", &bearer).0, 200);

    let mut bad = publish(&ff, "h264-aac.flv", &s.rtmp_url("secure/cam"), false, false);
    assert!(
        !bad.wait(SECS(20)).success(),
        "publish without a token was accepted"
    );
    let mut wrong = publish(
        &ff,
        "h264-aac.flv",
        &s.rtmp_url("secure/cam?token=nope"),
        false,
        false,
    );
    assert!(
        !wrong.wait(SECS(20)).success(),
        "publish with a wrong token was accepted"
    );

    let mut good = publish(
        &ff,
        "h264-aac.flv",
        &s.rtmp_url("secure/cam?token=pub123"),
        true,
        false,
    );
    let deadline = std::time::Instant::now() + SECS(10);
    loop {
        let (_, b) = http_get(s.http, "/api/streams/secure/cam", &bearer);
        let v: serde_json::Value = serde_json::from_slice(&b).unwrap_or_default();
        if v["live"] == true {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "token publish not live: {}",
            s.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let (code, _) = http_get(s.http, "/secure/cam.flv", &[]);
    assert_eq!(code, 403);
    let (code, _) = http_get(s.http, "/secure/cam/index.m3u8", &[]);
    assert_eq!(code, 403);
    let (code, body) = http_get(s.http, "/secure/cam/index.m3u8?token=play456", &[]);
    assert_eq!(code, 200, "{}", String::from_utf8_lossy(&body));
    assert!(good.wait(SECS(30)).success(), "{}", good.stderr());
    let log = s.log();
    assert!(
        log.contains("publish denied") && log.contains("token is required"),
        "{log}"
    );
}

/// on_publish allows one stream and denies another; the hook's reason
/// reaches the log (audit trail); on_unpublish is told afterwards.
#[test]
fn webhooks_allow_one_stream_and_deny_another() {
    use std::io::{Read, Write};
    let ff = tools::ffmpeg();
    let hook = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let hook_addr = hook.local_addr().unwrap();
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let seen2 = std::sync::Arc::clone(&seen);
    std::thread::spawn(move || {
        for conn in hook.incoming() {
            let Ok(mut c) = conn else { continue };
            let seen = std::sync::Arc::clone(&seen2);
            std::thread::spawn(move || {
                c.set_read_timeout(Some(SECS(5))).unwrap();
                let mut buf = Vec::new();
                let mut tmp = [0u8; 4096];
                // Read the head, then Content-Length bytes of body.
                loop {
                    let n = c.read(&mut tmp).unwrap_or(0);
                    if n == 0 {
                        break;
                    }
                    buf.extend_from_slice(&tmp[..n]);
                    if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                        let head = String::from_utf8_lossy(&buf[..i]).to_lowercase();
                        let len: usize = head
                            .lines()
                            .find_map(|l| l.strip_prefix("content-length:"))
                            .and_then(|v| v.trim().parse().ok())
                            .unwrap_or(0);
                        if buf.len() >= i + 4 + len {
                            break;
                        }
                    }
                }
                let text = String::from_utf8_lossy(&buf).to_string();
                let body = text.split("\r\n\r\n").nth(1).unwrap_or("").to_owned();
                seen.lock().unwrap().push(body.clone());
                let deny = body.contains("\"stream\":\"banned\"");
                let resp = if deny {
                    "HTTP/1.1 403 Forbidden\r\nContent-Length: 20\r\nConnection: close\r\n\r\nbanned by test hook!"
                } else {
                    "HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                };
                let _ = c.write_all(resp.as_bytes());
            });
        }
    });
    let hook_url = format!("http://{hook_addr}/hook");
    let s = Arcly::start(&["--on-publish", &hook_url, "--on-unpublish", &hook_url]);
    let mut denied = publish(
        &ff,
        "h264-aac.flv",
        &s.rtmp_url("live/banned"),
        false,
        false,
    );
    assert!(
        !denied.wait(SECS(20)).success(),
        "the hook's denial was ignored"
    );
    let mut allowed = publish(
        &ff,
        "h264-aac.flv",
        &s.rtmp_url("live/fine?k=v"),
        true,
        false,
    );
    s.wait_stream("live", "fine", true, SECS(10));
    allowed.0.kill().unwrap();
    s.wait_stream("live", "fine", false, SECS(10));
    let deadline = std::time::Instant::now() + SECS(5);
    while !seen
        .lock()
        .unwrap()
        .iter()
        .any(|b| b.contains("on_unpublish"))
    {
        assert!(
            std::time::Instant::now() < deadline,
            "no on_unpublish: {:?}",
            seen.lock().unwrap()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let seen = seen.lock().unwrap().clone();
    let fine = seen
        .iter()
        .find(|b| b.contains("\"stream\":\"fine\""))
        .unwrap();
    assert!(
        fine.contains("\"action\":\"on_publish\"") && fine.contains("\"param\":\"k=v\""),
        "{fine}"
    );
    assert!(fine.contains("\"client_addr\":\"127.0.0.1:"), "{fine}");
    let log = s.log();
    assert!(
        log.contains("banned by test hook!"),
        "reason missing from the audit log:\n{log}"
    );
}

/// SIGTERM while recording: the process exits in bounded time with status
/// 0, and the recording is complete: its index ends with ENDLIST and
/// decodes to the frames published so far.
#[test]
fn sigterm_during_recording_leaves_a_complete_recording() {
    let ff = tools::ffmpeg();
    let dir = temp_dir("record");
    let mut s = Arcly::start(&[
        "--record",
        "all",
        "--record-dir",
        dir.to_str().unwrap(),
        "--record-segment",
        "1",
        "--shutdown-grace",
        "3",
    ]);
    let mut p = publish(&ff, "h264-aac.flv", &s.rtmp_url("live/rec"), true, false);
    s.wait_stream("live", "rec", true, SECS(10));
    std::thread::sleep(Duration::from_millis(3500));
    let t = std::time::Instant::now();
    let st = s.terminate(SECS(8));
    assert!(st.success(), "exit status {st}; log:\n{}", s.log());
    assert!(t.elapsed() < SECS(6), "stop took {:?}", t.elapsed());
    let _ = p.wait(SECS(10));
    let index = find(&dir, "index.m3u8")
        .unwrap_or_else(|| panic!("no index.m3u8 under {dir:?}; log:\n{}", s.log()));
    let text = std::fs::read_to_string(&index).unwrap();
    assert!(text.trim_end().ends_with("#EXT-X-ENDLIST"), "{text}");
    let got = tools::md5_column(
        &framemd5_timeout(
            &ff,
            &[],
            index.to_str().unwrap(),
            &["-map", "0:v"],
            SECS(30),
        ),
        0,
    );
    let src = source_video_md5(&ff, "h264-aac.flv");
    assert!(got.len() >= 50, "only {} frames recorded", got.len());
    // The last frames in presentation order may reference pictures after
    // the cut (B-frames): compare up to them.
    let n = got.len() - 3;
    let start = src.iter().position(|h| *h == got[0]);
    let diverge = start.and_then(|st| (0..n).find(|&i| src.get(st + i) != got.get(i)));
    assert!(
        start == Some(0) && diverge.is_none(),
        "the recording is not the published frames: starts at source frame {start:?}, \
         diverges at recorded frame {diverge:?} of {}; log:\n{}",
        got.len(),
        s.log()
    );
    let _ = std::fs::remove_dir_all(&dir);
}

fn find(dir: &std::path::Path, name: &str) -> Option<std::path::PathBuf> {
    for e in std::fs::read_dir(dir).ok()?.flatten() {
        let p = e.path();
        if p.is_dir() {
            if let Some(f) = find(&p, name) {
                return Some(f);
            }
        } else if p.file_name().is_some_and(|n| n == name) {
            return Some(p);
        }
    }
    None
}

/// Start-up failures stop with a clear message and a non-zero status.
#[test]
fn bad_settings_and_unusable_resources_stop_start_up() {
    let run = |args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_arcly"))
            .args(["--rtmp-listen", "127.0.0.1:0"])
            .args(args)
            .output()
            .unwrap();
        (out.status, String::from_utf8_lossy(&out.stderr).to_string())
    };
    let (st, err) = run(&["--http-listen", "127.0.0.1:0", "--hls-segment", "0"]);
    assert_eq!(st.code(), Some(2));
    assert!(
        err.contains("hls.segment_seconds") && err.contains("--hls-segment"),
        "{err}"
    );
    let (st, err) = run(&[
        "--http-listen",
        "127.0.0.1:0",
        "--record",
        "all",
        "--record-dir",
        "/nonexistent/arcly",
    ]);
    assert_eq!(st.code(), Some(1));
    assert!(err.contains("does not exist"), "{err}");
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let (st, err) = run(&["--http-listen", &addr]);
    assert_eq!(st.code(), Some(1));
    assert!(
        err.contains("cannot listen for HTTP") && err.contains(&addr),
        "{err}"
    );
    assert!(!err.contains("panicked"), "{err}");
    let cfg = temp_dir("cfg").join("bad.toml");
    std::fs::write(&cfg, "[hls]\nwindow = \"six\"\n").unwrap();
    let (st, err) = run(&[
        "--http-listen",
        "127.0.0.1:0",
        "--config",
        cfg.to_str().unwrap(),
    ]);
    assert_eq!(st.code(), Some(2));
    assert!(err.contains("window") && err.contains("line 2"), "{err}");
}

/// The web page, in real headless Chromium, lists a stream ffmpeg publishes
/// and its hls.js player's video advances.
#[test]
fn web_page_lists_the_stream_and_its_player_advances() {
    page_player_advances(&["--hls-segment", "1"], "/");
}

/// hls.js in Chromium plays a token-protected LL-HLS stream: the page is
/// opened with the play token, and every playlist, part, segment and init
/// section it fetches must carry it (the server refuses them otherwise).
#[test]
fn hls_js_plays_a_token_protected_ll_hls_stream() {
    page_player_advances(
        &[
            "--hls-segment",
            "1",
            "--ll-hls",
            "--play-token",
            "live=pt+7/x",
        ],
        "/?token=pt%2B7%2Fx",
    );
}

fn page_player_advances(args: &[&str], page: &str) {
    use std::io::{BufRead, BufReader};
    let ff = tools::ffmpeg();
    let chromium = chromium();
    let s = Arcly::start(args);
    let _p = publish(&ff, "h264-aac.flv", &s.rtmp_url("live/webtest"), true, true);
    s.wait_stream("live", "webtest", true, SECS(10));
    let profile = temp_dir("chromium");
    let mut browser = Command::new(&chromium)
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
            "--remote-allow-origins=*",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg(s.http_url(page))
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("start chromium");
    let stderr = browser.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if let Some(i) = line.find("ws://") {
                let _ = tx.send(line[i..].trim().to_owned());
            }
        }
    });
    let guard = KillOnDrop(browser);
    let ws = rx
        .recv_timeout(SECS(30))
        .expect("chromium printed no DevTools address");
    let devtools: std::net::SocketAddr = ws
        .trim_start_matches("ws://")
        .split('/')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    // The page target.
    let deadline = std::time::Instant::now() + SECS(20);
    let page_ws = loop {
        let (_, body) = http_get(devtools, "/json/list", &[]);
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
        if let Some(t) = v.as_array().into_iter().flatten().find(|t| {
            t["type"] == "page" && t["url"].as_str().is_some_and(|u| u.starts_with("http://"))
        }) {
            break t["webSocketDebuggerUrl"].as_str().unwrap().to_owned();
        }
        assert!(std::time::Instant::now() < deadline, "no page target: {v}");
        std::thread::sleep(Duration::from_millis(200));
    };
    let (mut sock, _) = tungstenite::connect(page_ws.as_str()).expect("connect DevTools");
    let mut id = 0;
    let mut eval = |expr: &str| -> serde_json::Value {
        id += 1;
        let msg = serde_json::json!({
            "id": id, "method": "Runtime.evaluate",
            "params": { "expression": expr, "returnByValue": true }
        });
        sock.send(tungstenite::Message::text(msg.to_string()))
            .unwrap();
        loop {
            let m = sock.read().expect("DevTools read");
            let Ok(t) = m.to_text() else { continue };
            let v: serde_json::Value = serde_json::from_str(t).unwrap_or_default();
            if v["id"] == id {
                return v["result"]["result"]["value"].clone();
            }
        }
    };
    let probe = "JSON.stringify([...document.querySelectorAll('.card')].map(c => ({stream: c.dataset.stream, played: parseFloat(c.dataset.played || '0'), error: c.querySelector('video').dataset.error || '', rows: c.querySelector('table').innerText})))";
    let deadline = std::time::Instant::now() + SECS(45);
    let mut first_played = None;
    loop {
        let v = eval(probe);
        let cards: serde_json::Value =
            serde_json::from_str(v.as_str().unwrap_or("[]")).unwrap_or_default();
        let card = cards
            .as_array()
            .into_iter()
            .flatten()
            .find(|c| c["stream"] == "live/webtest")
            .cloned();
        if let Some(c) = &card {
            let played = c["played"].as_f64().unwrap_or(0.0);
            let rows = c["rows"].as_str().unwrap_or("");
            if played > 0.5 && first_played.is_none() {
                assert!(rows.contains("h264") && rows.contains("640×360"), "{rows}");
                first_played = Some(played);
            }
            if let Some(f) = first_played {
                if played > f + 2.0 {
                    break;
                }
            }
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the page's player did not advance: {cards}; server log:\n{}",
            s.log()
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    let (_, b) = http_get(s.http, "/api/streams/live/webtest", &[]);
    let v: serde_json::Value = serde_json::from_slice(&b).unwrap();
    assert_eq!(
        v["viewers"]["hls"], 1,
        "the page's player is not counted: {v}"
    );
    drop(guard);
    let _ = std::fs::remove_dir_all(&profile);
}

struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Debian's chromium, or `$ARCLY_CHROMIUM`.
fn chromium() -> std::path::PathBuf {
    if let Some(p) = std::env::var_os("ARCLY_CHROMIUM") {
        return p.into();
    }
    for c in [
        "/usr/bin/chromium",
        "/usr/bin/chromium-browser",
        "/usr/bin/google-chrome",
    ] {
        if std::path::Path::new(c).is_file() {
            return c.into();
        }
    }
    panic!("Chromium not found: `apt-get install chromium` (Debian) or set ARCLY_CHROMIUM")
}

/// An HTTP-FLV client that never reads does not grow the server's memory:
/// its feeder waits on the bounded channel, the subscription lags on the
/// bus and skips (or is dropped), and a well-behaved player beside it keeps
/// receiving.
#[test]
fn a_stalled_http_flv_client_does_not_grow_memory() {
    use std::io::{Read, Write};
    let ff = tools::ffmpeg();
    let s = Arcly::start(&["--hls", "false"]);
    // 50x real time, looped: about 4 MB/s of media, far more than the
    // socket buffers of a client that never reads absorb in 12 s.
    let mut cmd = Command::new(&ff);
    cmd.args([
        "-hide_banner",
        "-nostdin",
        "-v",
        "error",
        "-readrate",
        "50",
        "-stream_loop",
        "-1",
        "-i",
    ])
    .arg(tools::fixture("h264-aac.flv"))
    .args(["-c", "copy", "-f", "flv", &s.rtmp_url("live/fast")]);
    let _p = Proc::spawn(cmd);
    s.wait_stream("live", "fast", true, SECS(10));
    let mut stalled = std::net::TcpStream::connect(s.http).unwrap();
    write!(stalled, "GET /live/fast.flv HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    let mut healthy = std::net::TcpStream::connect(s.http).unwrap();
    write!(healthy, "GET /live/fast.flv HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    healthy.set_read_timeout(Some(SECS(5))).unwrap();
    std::thread::sleep(SECS(1));
    let base = rss_kib(s.child.id());
    let mut got = 0usize;
    let mut buf = vec![0u8; 1 << 16];
    let t = std::time::Instant::now();
    while t.elapsed() < SECS(12) {
        got += healthy
            .read(&mut buf)
            .expect("the healthy player kept receiving");
    }
    let grown = rss_kib(s.child.id()).saturating_sub(base);
    eprintln!(
        "stalled client: server RSS grew {grown} KiB while {got} bytes went to the healthy player"
    );
    assert!(got > 10 << 20, "the healthy player got only {got} bytes");
    assert!(
        grown < 16 * 1024,
        "server memory grew by {grown} KiB with a stalled client"
    );
    // The stalled client resumes: its subscription finds it fell behind on
    // the bus and skips ahead to a keyframe (or is dropped as too slow).
    stalled.set_read_timeout(Some(SECS(2))).unwrap();
    let t = std::time::Instant::now();
    while t.elapsed() < SECS(3) {
        if matches!(stalled.read(&mut buf), Ok(0) | Err(_)) {
            break;
        }
    }
    let (_, b) = http_get(s.http, "/api/streams/live/fast", &[]);
    let v: serde_json::Value = serde_json::from_slice(&b).unwrap();
    assert!(
        v["qos_skipped"].as_u64().unwrap_or(0) > 0,
        "the stalled client did not skip on the bus: {v}"
    );
    drop(stalled);
}

/// With `--ll-hls` the playlist has parts and server control, and a
/// blocking reload for the next segment is answered when it exists.
#[test]
fn ll_hls_serves_parts_and_blocking_reloads() {
    let ff = tools::ffmpeg();
    let s = Arcly::start(&["--ll-hls", "--hls-segment", "1", "--hls-part", "0.2"]);
    let _p = publish(&ff, "h264-aac.flv", &s.rtmp_url("live/ll"), true, true);
    s.wait_stream("live", "ll", true, SECS(10));
    let (code, body) = http_get(s.http, "/live/ll/index.m3u8", &[]);
    let text = String::from_utf8_lossy(&body).to_string();
    assert_eq!(code, 200, "{text}");
    assert!(text.contains("#EXT-X-PART-INF:PART-TARGET=0.2"), "{text}");
    assert!(
        text.contains("#EXT-X-SERVER-CONTROL:") && text.contains("CAN-BLOCK-RELOAD=YES"),
        "{text}"
    );
    assert!(text.contains("#EXT-X-PART:"), "{text}");
    let msn: u64 = text
        .lines()
        .find_map(|l| l.strip_prefix("#EXT-X-MEDIA-SEQUENCE:"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let segments = text.lines().filter(|l| l.starts_with("#EXTINF")).count() as u64;
    // The segment in progress (segments are cut at the 2 s keyframes).
    let next = msn + segments;
    let t = std::time::Instant::now();
    let (code, body) = http_get(s.http, &format!("/live/ll/index.m3u8?_HLS_msn={next}"), &[]);
    let text = String::from_utf8_lossy(&body).to_string();
    assert_eq!(code, 200, "{text}");
    assert!(
        t.elapsed() < SECS(4),
        "blocking reload took {:?}",
        t.elapsed()
    );
    assert!(
        text.lines().filter(|l| l.starts_with("#EXTINF")).count() as u64
            + text
                .lines()
                .find_map(|l| l.strip_prefix("#EXT-X-MEDIA-SEQUENCE:"))
                .and_then(|v| v.trim().parse::<u64>().ok())
                .unwrap_or(0)
            > next,
        "the reload did not wait for segment {next}: {text}"
    );
}

/// `--max-bitrate-kbps` disconnects a publisher that sends faster.
#[test]
fn a_publisher_over_the_bitrate_limit_is_disconnected() {
    let ff = tools::ffmpeg();
    let s = Arcly::start(&["--max-bitrate-kbps", "200"]);
    // As fast as ffmpeg can: far above 200 kbit/s.
    let mut p = publish(&ff, "h264-aac.flv", &s.rtmp_url("live/greedy"), false, true);
    let st = p.wait(SECS(20));
    assert!(
        !st.success(),
        "a publisher above the limit was not disconnected"
    );
    let log = s.log();
    assert!(log.contains("limit"), "{log}");
}

/// The admin API's kick disconnects the publisher: ffmpeg exits and the
/// stream goes offline.
#[test]
fn the_admin_api_kicks_a_publisher() {
    let ff = tools::ffmpeg();
    let s = Arcly::start(&[]);
    let mut p = publish(&ff, "h264-aac.flv", &s.rtmp_url("live/kickme"), true, true);
    s.wait_stream("live", "kickme", true, SECS(15));
    let (status, body) = http_request(s.http, "POST", "/api/streams/live/kickme/kick", &[]);
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    let st = p.wait(SECS(15));
    assert!(
        !st.success(),
        "the kicked ffmpeg should see its connection end"
    );
    s.wait_stream("live", "kickme", false, SECS(10));
    let (status, _) = http_request(s.http, "POST", "/api/streams/live/kickme/kick", &[]);
    assert_eq!(status, 409, "the stream has no publisher left to kick");
}
