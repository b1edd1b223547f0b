//! Encoder restarts and timestamps as encoders send them, against the built
//! `arcly` binary with real ffmpeg players (issue 18, items 10 and 7).

mod common;

use arcly_core::testing::tools;
use common::*;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

const SECS: fn(u64) -> Duration = Duration::from_secs;

/// `ffmpeg -i url -c copy -t secs out.flv`: a player that records what it
/// receives until its output holds `secs` seconds.
fn record(ff: &Path, url: &str, out: &Path, secs: u32) -> Proc {
    let mut c = Command::new(ff);
    c.args(["-hide_banner", "-nostdin", "-v", "error", "-i", url])
        .args(["-c", "copy", "-t", &secs.to_string(), "-f", "flv", "-y"])
        .arg(out);
    Proc::spawn(c)
}

/// Decode `file` completely: the video hashes, and whatever ffmpeg printed
/// at `-v error` (nothing when everything decodes).
fn decode(ff: &Path, file: &Path) -> (Vec<String>, String) {
    let out = Command::new(ff)
        .args(["-hide_banner", "-nostdin", "-v", "error", "-i"])
        .arg(file)
        .args(["-map", "0:v", "-f", "framemd5", "-"])
        .stdin(Stdio::null())
        .output()
        .expect("run ffmpeg");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let lines: Vec<String> = text
        .lines()
        .filter(|l| !l.starts_with('#'))
        .map(str::to_owned)
        .collect();
    (
        tools::md5_column(&lines, 0),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Whether `got` holds `src[..n]` in order starting at some index after the
/// first frame: the second publish, from its first frame.
fn second_publish_start(src: &[String], got: &[String], n: usize) -> Option<usize> {
    (1..got.len()).find(|&i| got.len() >= i + n && got[i..i + n] == src[..n])
}

/// One ffmpeg player per protocol joins the first publish, stays while
/// the encoder goes away and a new one publishes the same stream, and
/// records both publishes: what it wrote decodes without a single error
/// and holds the second publish from its first frame on, for seconds.
#[test]
fn players_stay_through_an_encoder_restart() {
    let ff = tools::ffmpeg();
    let src = source_video_md5(&ff, "h264-aac.flv");
    let s = Arcly::start(&["--hls-segment", "1"]);
    let url = s.rtmp_url("live/cam");
    let dir = temp_dir("restart");

    let mut first = publish(&ff, "h264-aac.flv", &url, true, false);
    s.wait_stream("live", "cam", true, SECS(10));
    // About 6 s of the first publish at most (the GOP cache replays from
    // the keyframe before the join), then at least 5 s of the second.
    let (rtmp_out, flv_out) = (dir.join("rtmp.flv"), dir.join("http.flv"));
    let mut rtmp = record(&ff, &url, &rtmp_out, 11);
    let mut flv = record(&ff, &s.http_url("/live/cam.flv"), &flv_out, 11);
    assert!(
        first.wait(SECS(30)).success(),
        "first publish failed: {}",
        first.stderr()
    );
    std::thread::sleep(Duration::from_millis(1500));
    let _second = publish(&ff, "h264-aac.flv", &url, true, true);
    s.wait_stream("live", "cam", true, SECS(10));

    for (what, p, out) in [
        ("RTMP", &mut rtmp, &rtmp_out),
        ("HTTP-FLV", &mut flv, &flv_out),
    ] {
        let st = p.wait(SECS(60));
        assert!(st.success(), "{what} player failed ({st}): {}", p.stderr());
        assert_eq!(p.stderr().trim(), "", "{what} player printed errors");
        let (got, errors) = decode(&ff, out);
        assert_eq!(
            errors.trim(),
            "",
            "{what}: the recording does not decode cleanly"
        );
        // The second publish starts at its first keyframe, the source's
        // first frame: after it, 4 s of the source frame for frame.
        let at = second_publish_start(&src, &got, 100).unwrap_or_else(|| {
            panic!(
                "{what}: no second publish in {} frames; log:\n{}",
                got.len(),
                s.log()
            )
        });
        assert!(at >= 25, "{what}: only {at} frames of the first publish");
        assert_same_frames(
            &format!("{what}, first publish"),
            &src[src.len() - at..],
            &got[..at],
            true,
        );
    }
    // HLS marks the republish in its playlist.
    let (code, body) = http_get(s.http, "/live/cam/index.m3u8", &[]);
    let text = String::from_utf8_lossy(&body);
    assert_eq!(code, 200, "{text}");
    assert!(text.contains("#EXT-X-DISCONTINUITY\n"), "{text}");
}

/// The decode timestamps (ms) of the video packets of `file`.
fn video_dts(file: &Path) -> Vec<i64> {
    let out = Command::new(tools::ffprobe())
        .args(["-v", "error", "-select_streams", "v"])
        .args(["-show_entries", "packet=dts", "-of", "csv=p=0"])
        .arg(file)
        .output()
        .expect("run ffprobe");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.trim().trim_end_matches(',').parse().ok())
        .collect()
}

/// Issue 18 #7: ffmpeg publishes (in real time, `-copyts`) two copies of
/// an MPEG-TS clip joined byte for byte, the second four seconds ahead:
/// the timestamps the server receives jump mid-stream. Late-join players
/// over RTMP and HTTP-FLV get a timeline without the jump (the step is
/// the last frame's delta, as SRS's `time_jitter full`), and what they
/// record decodes without errors.
#[test]
fn a_timestamp_jump_mid_stream_is_smoothed_for_late_joiners() {
    let ff = tools::ffmpeg();
    let dir = temp_dir("jump");
    let ahead = dir.join("ahead.ts");
    let st = Command::new(&ff)
        .args(["-hide_banner", "-nostdin", "-v", "error", "-i"])
        .arg(tools::fixture("h264-aac.ts"))
        .args([
            "-c",
            "copy",
            "-output_ts_offset",
            "10",
            "-f",
            "mpegts",
            "-y",
        ])
        .arg(&ahead)
        .status()
        .unwrap();
    assert!(st.success());
    let joined = format!(
        "concat:{}|{}",
        tools::fixture("h264-aac.ts").display(),
        ahead.display()
    );
    let s = Arcly::start(&[]);
    let url = s.rtmp_url("live/jump");
    let mut c = Command::new(&ff);
    c.args(["-hide_banner", "-nostdin", "-v", "error", "-re", "-copyts"])
        .args(["-i", &joined, "-c", "copy", "-f", "flv", &url]);
    let mut publisher = Proc::spawn(c);
    s.wait_stream("live", "jump", true, SECS(10));
    std::thread::sleep(Duration::from_secs(1));
    // The players record to the end: the publisher's departure, told to
    // them after the republish grace.
    let (rtmp_out, flv_out) = (dir.join("rtmp.flv"), dir.join("http.flv"));
    let mut rtmp = record(&ff, &url, &rtmp_out, 3600);
    let mut flv = record(&ff, &s.http_url("/live/jump.flv"), &flv_out, 3600);
    for (what, p, out) in [
        ("RTMP", &mut rtmp, &rtmp_out),
        ("HTTP-FLV", &mut flv, &flv_out),
    ] {
        let st = p.wait(SECS(60));
        assert!(st.success(), "{what} player failed ({st}): {}", p.stderr());
        let (got, errors) = decode(&ff, out);
        assert_eq!(
            errors.trim(),
            "",
            "{what}: the recording does not decode cleanly"
        );
        let dts = video_dts(out);
        let steps: Vec<i64> = dts.windows(2).map(|w| w[1] - w[0]).collect();
        let max = steps.iter().copied().max().unwrap_or(0);
        assert!(
            steps.iter().all(|&d| d >= 0) && max <= 200,
            "{what}: video steps up to {max} ms: {steps:?}"
        );
        // All of the second copy, and some of the first.
        assert!(got.len() > 150, "{what}: {} frames", got.len());
    }
    assert!(publisher.wait(SECS(60)).success(), "{}", publisher.stderr());
}
