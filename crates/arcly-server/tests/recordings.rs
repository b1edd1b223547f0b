//! Recordings over HTTP, over real sockets: a ~20 s recording is found
//! through `/api/recordings`, a 6 s range of it plays in ffmpeg as an HLS
//! VOD playlist (first frame and duration within one GOP of what was asked)
//! and downloads as one MPEG-TS file that decodes without errors; playback
//! needs the play token; names that are not the recorder's are refused; a
//! recording in progress cannot be deleted, a finished one can.

mod common;

use arcly_core::testing::tools;
use common::{http_get, http_request, publish, temp_dir, Arcly};
use std::process::Command;
use std::time::{Duration, Instant, UNIX_EPOCH};

/// The fixture's keyframe interval (`-g 50` at 25 fps).
const GOP: f64 = 2.0;
const TOKEN: &str = "pl4y";

/// Seconds since the epoch of an RFC 3339 UTC time as the server writes
/// it (`2024-05-01T12:00:00.123Z`).
fn epoch(t: &str) -> f64 {
    let t = arcly_record::playlist::parse_rfc3339(t).unwrap_or_else(|| panic!("time {t:?}"));
    t.duration_since(UNIX_EPOCH).unwrap().as_secs_f64()
}

fn recordings(s: &Arcly) -> serde_json::Value {
    let (st, body) = http_get(s.http, "/api/recordings?app=live", &[]);
    assert_eq!(st, 200, "{}", String::from_utf8_lossy(&body));
    serde_json::from_slice(&body).expect("recordings JSON")
}

/// Run `cmd`, bounded; (success, stderr).
fn run(mut cmd: Command, within: Duration) -> (bool, String) {
    let mut p = common::Proc::spawn({
        cmd.stdout(std::process::Stdio::null());
        cmd
    });
    let st = p.wait(within);
    (st.success(), p.stderr())
}

#[test]
fn a_recorded_range_plays_back_and_downloads() {
    let ff = tools::ffmpeg();
    let dir = temp_dir("recordings");
    let s = Arcly::start(&[
        "--record",
        "all",
        "--record-dir",
        dir.to_str().unwrap(),
        "--record-segment",
        "1",
        "--play-token",
        &format!("live={TOKEN}"),
    ]);
    let _p = publish(&ff, "h264-aac.flv", &s.rtmp_url("live/cam"), true, true);
    s.wait_stream("live", "cam", true, Duration::from_secs(15));

    // ~20 s of media recorded, found through the API.
    let deadline = Instant::now() + Duration::from_secs(45);
    let rec = loop {
        let v = recordings(&s);
        let rec = v["streams"][0]["recordings"][0].clone();
        if rec["duration"].as_f64().unwrap_or(0.0) >= 18.0 {
            break rec;
        }
        assert!(
            Instant::now() < deadline,
            "no 18 s recording: {v}\n{}",
            s.log()
        );
        std::thread::sleep(Duration::from_millis(500));
    };
    let id = rec["id"].as_str().unwrap().to_owned();
    assert_eq!(rec["active"], true, "{rec}");
    assert_eq!(rec["format"], "mpegts", "{rec}");
    let codecs: Vec<&str> = rec["codecs"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|c| c.as_str())
        .collect();
    assert!(codecs.contains(&"h264") && codecs.contains(&"aac"), "{rec}");
    let segs = rec["segments"].as_array().unwrap();
    assert!(segs.len() >= 8, "{rec}");
    assert!(epoch(rec["start"].as_str().unwrap()) < epoch(rec["end"].as_str().unwrap()));
    assert!(
        segs.iter().all(|g| g["bytes"].as_u64().unwrap() > 0),
        "{rec}"
    );

    // A 6 s range starting half a second into the third segment.
    let start = epoch(segs[2]["start"].as_str().unwrap()) + 0.5;
    let start_s = arcly_record::playlist::rfc3339(UNIX_EPOCH + Duration::from_secs_f64(start));
    let range = format!("start={start_s}&duration=6");
    let pl_path = format!("/live/cam/recordings/index.m3u8?{range}");

    // Playback is a play: the token is required.
    assert_eq!(http_get(s.http, &pl_path, &[]).0, 403);
    assert_eq!(
        http_get(s.http, &format!("{pl_path}&token=wrong"), &[]).0,
        403
    );
    let seg_path = format!(
        "/live/cam/recordings/{id}/{}",
        segs[0]["name"].as_str().unwrap()
    );
    assert_eq!(http_get(s.http, &seg_path, &[]).0, 403);
    assert_eq!(
        http_get(
            s.http,
            &format!("/live/cam/recordings/download?{range}"),
            &[]
        )
        .0,
        403
    );

    let (st, body) = http_get(s.http, &format!("{pl_path}&token={TOKEN}"), &[]);
    let playlist = String::from_utf8_lossy(&body).to_string();
    assert_eq!(st, 200, "{playlist}");
    assert!(playlist.contains("#EXT-X-PLAYLIST-TYPE:VOD"), "{playlist}");
    assert!(
        playlist.trim_end().ends_with("#EXT-X-ENDLIST"),
        "{playlist}"
    );
    let pdts: Vec<f64> = playlist
        .lines()
        .filter_map(|l| l.strip_prefix("#EXT-X-PROGRAM-DATE-TIME:"))
        .map(epoch)
        .collect();
    let uris: Vec<&str> = playlist
        .lines()
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect();
    let listed: f64 = playlist
        .lines()
        .filter_map(|l| l.strip_prefix("#EXTINF:"))
        .map(|d| d.trim_end_matches(',').parse::<f64>().unwrap())
        .sum();
    assert_eq!(pdts.len(), uris.len(), "{playlist}");
    assert!(
        uris.iter()
            .all(|u| u.starts_with(&format!("{id}/")) && u.ends_with(&format!("?token={TOKEN}"))),
        "{playlist}"
    );
    // First frame within one GOP before the start asked for, duration
    // within one GOP of 6 s (whole segments, each one GOP).
    let lead = start - pdts[0];
    assert!(
        (0.0..=GOP + 0.1).contains(&lead),
        "first segment {lead} s before start\n{playlist}"
    );
    assert!(
        (listed - 6.0).abs() <= GOP + 0.1,
        "{listed} s listed\n{playlist}"
    );

    // ffmpeg plays it without an error; its duration agrees.
    let url = s.http_url(&format!("{pl_path}&token={TOKEN}"));
    let mut cmd = Command::new(&ff);
    cmd.args([
        "-hide_banner",
        "-nostdin",
        "-v",
        "error",
        "-i",
        &url,
        "-f",
        "null",
        "-",
    ]);
    let (ok, err) = run(cmd, Duration::from_secs(30));
    assert!(
        ok && err.trim().is_empty(),
        "ffmpeg playing the range: {err}"
    );
    let mut probe = Command::new(tools::ffprobe());
    probe.args([
        "-v",
        "error",
        "-show_entries",
        "format=duration",
        "-of",
        "csv=p=0",
        &url,
    ]);
    let out = probe.output().unwrap();
    let played: f64 = String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .unwrap_or(-1.0);
    assert!(
        (played - 6.0).abs() <= GOP + 0.2,
        "ffprobe says {played} s: {}",
        String::from_utf8_lossy(&out.stderr)
    );

    eprintln!(
        "range of 6 s: {} segments, {listed:.3} s listed, {played:.3} s played, \
         first segment {lead:.3} s before the start",
        uris.len()
    );

    // The download (bearer token) is the same segments in one file.
    let bearer = format!("Bearer {TOKEN}");
    let (st, ts) = http_get(
        s.http,
        &format!("/live/cam/recordings/download?{range}"),
        &[("Authorization", &bearer)],
    );
    assert_eq!(
        st,
        200,
        "{}",
        String::from_utf8_lossy(&ts[..ts.len().min(200)])
    );
    let want: u64 = segs
        .iter()
        .filter(|g| {
            let st = epoch(g["start"].as_str().unwrap());
            let en = epoch(g["end"].as_str().unwrap());
            st < start + 6.0 && en > start
        })
        .map(|g| g["bytes"].as_u64().unwrap())
        .sum();
    assert_eq!(ts.len() as u64, want);
    assert_eq!(ts.len() % 188, 0);
    let file = dir.join("download.ts");
    std::fs::write(&file, &ts).unwrap();
    let mut cmd = Command::new(&ff);
    cmd.args(["-hide_banner", "-nostdin", "-v", "error", "-i"])
        .arg(&file)
        .args(["-f", "null", "-"]);
    let (ok, err) = run(cmd, Duration::from_secs(30));
    assert!(
        ok && err.trim().is_empty(),
        "ffmpeg decoding the download: {err}"
    );
    std::fs::remove_file(&file).unwrap();

    // Bad requests are refused before storage is touched.
    let t = format!("token={TOKEN}");
    for (path, status) in [
        (format!("/live/cam/recordings/index.m3u8?{t}"), 400),
        (
            format!("/live/cam/recordings/index.m3u8?start=yesterday&duration=6&{t}"),
            400,
        ),
        (
            format!("/live/cam/recordings/index.m3u8?start={start_s}&duration=99999&{t}"),
            400,
        ),
        (
            format!("/live/cam/recordings/index.m3u8?start={start_s}&duration=-1&{t}"),
            400,
        ),
        (
            format!("/live/cam/recordings/index.m3u8?start=2001-01-01T00:00:00Z&duration=6&{t}"),
            404,
        ),
        (format!("/live/cam/recordings/{id}/index.m3u8?{t}"), 400),
        (
            format!("/live/cam/recordings/{id}/..%2F..%2F..%2Fetc%2Fpasswd?{t}"),
            400,
        ),
        (
            format!("/live/cam/recordings/..%2F..%2Fx/000001.ts?{t}"),
            400,
        ),
        (format!("/live/cam/recordings/{id}/999999.ts?{t}"), 404),
    ] {
        assert_eq!(http_get(s.http, &path, &[]).0, status, "{path}");
    }

    // In progress: not deleted. Stopped: deleted, and gone from the API.
    let del = format!("/api/recordings/live/cam/{id}");
    assert_eq!(http_request(s.http, "DELETE", &del, &[]).0, 409);
    assert_eq!(
        http_request(s.http, "DELETE", "/api/streams/live/cam/record", &[]).0,
        200,
        "{}",
        s.log()
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    while recordings(&s)["streams"][0]["recordings"][0]["active"] != false {
        assert!(Instant::now() < deadline, "recording still active");
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(
        http_request(s.http, "DELETE", "/api/recordings/live/cam/..", &[]).0,
        400
    );
    let (st, body) = http_request(s.http, "DELETE", &del, &[]);
    assert_eq!(st, 200, "{}", String::from_utf8_lossy(&body));
    let v = recordings(&s);
    assert!(
        v["streams"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|st| st["recordings"].as_array().unwrap())
            .all(|r| r["id"] != id.as_str()),
        "{v}"
    );
    assert_eq!(
        http_get(s.http, &format!("{pl_path}&token={TOKEN}"), &[]).0,
        404
    );
    assert_eq!(http_request(s.http, "DELETE", &del, &[]).0, 404);
    let _ = std::fs::remove_dir_all(&dir);
}

/// `/api/recordings` answers what the admin API answers: with a token,
/// only with it; with an admin listener, only there.
#[test]
fn the_recordings_api_follows_the_admin_rule() {
    let dir = temp_dir("recordings-admin");
    let d = dir.to_str().unwrap();
    let s = Arcly::start(&["--record-dir", d, "--admin-token", "s3cret"]);
    assert_eq!(http_get(s.http, "/api/recordings", &[]).0, 401);
    let del = "/api/recordings/live/cam/20240501T120000.000Z";
    assert_eq!(http_request(s.http, "DELETE", del, &[]).0, 401);
    let bearer = [("Authorization", "Bearer s3cret")];
    let (st, body) = http_get(s.http, "/api/recordings", &bearer);
    assert_eq!(st, 200);
    let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(v["streams"], serde_json::json!([]), "{v}");
    assert_eq!(http_request(s.http, "DELETE", del, &bearer).0, 404);
    drop(s);

    let s = Arcly::start(&["--record-dir", d, "--admin-listen", "127.0.0.1:0"]);
    let admin = s.admin.expect("admin listener");
    assert_eq!(http_get(s.http, "/api/recordings", &[]).0, 404);
    assert_eq!(http_get(admin, "/api/recordings", &[]).0, 200);
    let _ = std::fs::remove_dir_all(&dir);
}
