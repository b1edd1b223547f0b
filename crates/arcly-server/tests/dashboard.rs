//! The Grafana dashboard (`docs/grafana/arcly.json`) is a well-formed
//! dashboard on a Prometheus data source variable, and every metric its
//! queries name exists in `/metrics` once a stream was published, played
//! (HTTP-FLV, and LL-HLS with a blocking reload), refused a play and lapped
//! a slow player.

mod common;

use arcly_core::testing::tools;
use common::{http_get, publish, Arcly};
use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::time::{Duration, Instant};

fn dashboard() -> serde_json::Value {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/grafana/arcly.json");
    let text = std::fs::read_to_string(path).expect("docs/grafana/arcly.json");
    serde_json::from_str(&text).expect("the dashboard is JSON")
}

/// Every `expr` of every panel target.
fn exprs(d: &serde_json::Value) -> Vec<String> {
    let mut out = Vec::new();
    for p in d["panels"].as_array().unwrap() {
        for t in p["targets"].as_array().into_iter().flatten() {
            out.push(
                t["expr"]
                    .as_str()
                    .expect("a target without expr")
                    .to_owned(),
            );
        }
    }
    out
}

/// The metric names of a PromQL expression: every identifier followed by a
/// selector (`name{…}`); the dashboard filters every query by label.
fn metric_names(expr: &str) -> BTreeSet<String> {
    let b = expr.as_bytes();
    let ident = |c: u8| c.is_ascii_alphanumeric() || c == b'_' || c == b':';
    let mut out = BTreeSet::new();
    for (i, _) in expr.match_indices('{') {
        let mut s = i;
        while s > 0 && ident(b[s - 1]) {
            s -= 1;
        }
        if s < i {
            out.insert(expr[s..i].to_owned());
        }
    }
    out
}

#[test]
fn the_dashboard_is_well_formed() {
    let d = dashboard();
    assert_eq!(d["uid"], "arcly-stream");
    assert!(d["title"].is_string() && d["schemaVersion"].as_u64().unwrap() >= 30);
    let vars = d["templating"]["list"].as_array().unwrap();
    assert!(
        vars.iter().any(|v| v["name"] == "datasource"
            && v["type"] == "datasource"
            && v["query"] == "prometheus"),
        "no Prometheus data source variable"
    );
    let mut ids = BTreeSet::new();
    for p in d["panels"].as_array().unwrap() {
        assert!(
            ids.insert(p["id"].as_u64().unwrap()),
            "duplicate panel id {p}"
        );
        for k in ["x", "y", "w", "h"] {
            assert!(p["gridPos"][k].is_u64(), "{p}");
        }
        if p["type"] != "row" {
            assert_eq!(p["datasource"]["uid"], "${datasource}", "{p}");
            assert!(!p["targets"].as_array().unwrap().is_empty(), "{p}");
        }
    }
    // Every query names a metric and filters it.
    for e in exprs(&d) {
        assert!(!metric_names(&e).is_empty(), "{e}");
        assert!(e.contains("job=~\"$job\""), "{e}");
    }
    assert_eq!(
        metric_names("histogram_quantile(0.5, sum by (le) (rate(a_b_bucket{x=\"1\"}[5m]))) + c{}"),
        ["a_b_bucket".to_owned(), "c".to_owned()].into()
    );
}

#[test]
fn every_metric_the_dashboard_queries_exists() {
    let d = dashboard();
    let wanted: BTreeSet<String> = exprs(&d).iter().flat_map(|e| metric_names(e)).collect();
    assert!(wanted.len() >= 15, "{wanted:?}");

    let ff = tools::ffmpeg();
    let s = Arcly::start(&["--play-token", "live=pl4y", "--ll-hls"]);
    // Faster than real time, so a slow player is lapped and dropped.
    let _p = publish(&ff, "h264-aac.flv", &s.rtmp_url("live/cam"), false, true);
    // In real time, for an LL-HLS player.
    let _q = publish(&ff, "h264-aac.flv", &s.rtmp_url("live/hls"), true, true);
    s.wait_stream("live", "cam", true, Duration::from_secs(15));
    s.wait_stream("live", "hls", true, Duration::from_secs(15));
    // An HLS play: the playlist, then a blocking reload for the next segment.
    let deadline = Instant::now() + Duration::from_secs(20);
    let playlist = loop {
        let (st, body) = http_get(s.http, "/live/hls/index.m3u8?token=pl4y", &[]);
        let text = String::from_utf8_lossy(&body).to_string();
        if st == 200
            && text
                .lines()
                .any(|l| !l.starts_with('#') && l.contains("seg"))
        {
            break text;
        }
        assert!(Instant::now() < deadline, "no HLS playlist: {st} {text}");
        std::thread::sleep(Duration::from_millis(200));
    };
    let first: u64 = playlist
        .lines()
        .find_map(|l| l.strip_prefix("#EXT-X-MEDIA-SEQUENCE:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0);
    let n = playlist
        .lines()
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .count() as u64;
    let (st, _) = http_get(
        s.http,
        &format!("/live/hls/index.m3u8?token=pl4y&_HLS_msn={}", first + n),
        &[],
    );
    assert_eq!(st, 200, "blocking reload\n{playlist}");
    // A play refused, a play.
    assert_eq!(http_get(s.http, "/live/cam.flv", &[]).0, 403);
    let http = s.http;
    let slow = std::thread::spawn(move || {
        let mut c = std::net::TcpStream::connect(http).unwrap();
        c.write_all(b"GET /live/cam.flv?token=pl4y HTTP/1.1\r\nHost: x\r\n\r\n")
            .unwrap();
        c.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
        let mut buf = [0u8; 4096];
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
            match c.read(&mut buf) {
                Ok(0) => return true,
                Ok(_) => {}
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                Err(e) if e.kind() == std::io::ErrorKind::TimedOut => {}
                Err(_) => return true,
            }
        }
        false
    });

    let deadline = Instant::now() + Duration::from_secs(30);
    let missing = loop {
        let (st, body) = http_get(s.http, "/metrics", &[]);
        assert_eq!(st, 200);
        let text = String::from_utf8_lossy(&body);
        let have: BTreeSet<&str> = text
            .lines()
            .filter(|l| !l.starts_with('#'))
            .filter_map(|l| l.split(['{', ' ']).next())
            .collect();
        let missing: Vec<&String> = wanted
            .iter()
            .filter(|m| !have.contains(m.as_str()))
            .collect();
        if missing.is_empty() || Instant::now() > deadline {
            break missing.into_iter().cloned().collect::<Vec<_>>();
        }
        std::thread::sleep(Duration::from_millis(300));
    };
    assert!(
        missing.is_empty(),
        "the dashboard queries metrics /metrics does not have: {missing:?}\n{}",
        s.log()
    );
    // The slow player helps the drop along; a lapped packager counts too.
    let dropped = slow.join().unwrap();
    let (_, body) = http_get(s.http, "/metrics", &[]);
    let drops: Vec<String> = String::from_utf8_lossy(&body)
        .lines()
        .filter(|l| l.starts_with("arcly_subscribers_dropped_total"))
        .map(str::to_owned)
        .collect();
    eprintln!(
        "{} metrics queried, all present; slow player dropped: {dropped}; {drops:?}",
        wanted.len()
    );
}
