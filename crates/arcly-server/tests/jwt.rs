//! Signed, expiring tokens (JWTs) against the real binary: `arcly token`
//! issues them, ffmpeg publishes with `?token=<jwt>` until the token
//! expires and not after, tokens out of scope (another stream, another
//! action) are refused with the reason in the log, and RTMP, HLS and
//! HTTP-FLV players present them in the query or (HLS) as a bearer token. A JWKS
//! file verifies RS256 and ES256 tokens.

mod common;

use arcly_core::testing::tools;
use common::{http_get, publish, Arcly};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::Command;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

const SECRET: &str = "integration-test-secret-of-32-bytes!";

/// `arcly --jwt-secret SECRET token ARGS`: the token (first line of stdout).
fn issue(args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_arcly"))
        .args(["--jwt-secret", SECRET, "token"])
        .args(args)
        .output()
        .expect("run arcly token");
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "arcly token {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let token = text.lines().next().unwrap_or_default().to_owned();
    assert_eq!(token.split('.').count(), 3, "{text}");
    token
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// The status line of a GET, without waiting for the body (HTTP-FLV
/// bodies do not end).
fn status_of(addr: SocketAddr, path: &str, headers: &[(&str, &str)]) -> u16 {
    let mut s = TcpStream::connect(addr).expect("connect http");
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let mut req = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\n");
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes()).unwrap();
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n") {
        match s.read(&mut byte) {
            Ok(1) => head.push(byte[0]),
            _ => break,
        }
    }
    String::from_utf8_lossy(&head)
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0)
}

fn wait_playlist(s: &Arcly, path: &str, headers: &[(&str, &str)]) -> String {
    common::wait_playlist(s, path, headers, Duration::from_secs(40))
}

/// Wait until the server's log contains `what`.
fn wait_log(s: &Arcly, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !s.log().contains(what) {
        assert!(
            Instant::now() < deadline,
            "no {what:?} in the log:\n{}",
            s.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn a_jwt_publishes_until_it_expires_and_not_after() {
    let ff = tools::ffmpeg();
    // No leeway, so the test need not wait out the default 30 s of skew.
    let s = Arcly::start(&["--jwt-secret", SECRET, "--jwt-leeway", "0"]);
    // Long enough for ffmpeg to connect on a busy machine, short enough to
    // wait out.
    let ttl = 15;
    let issued = unix_now();
    let token = issue(&[
        "--stream",
        "cam",
        "--action",
        "publish",
        "--ttl",
        &format!("{ttl}s"),
    ]);

    // Without any token: refused (a JWT is required once a secret is set).
    let mut none = publish(&ff, "h264-aac.flv", &s.rtmp_url("live/cam"), false, false);
    assert!(
        !none.wait(Duration::from_secs(30)).success(),
        "published without a token"
    );

    let mut ok = publish(
        &ff,
        "h264-aac.flv",
        &s.rtmp_url(&format!("live/cam?token={token}")),
        true,
        true,
    );
    s.wait_stream("live", "cam", true, Duration::from_secs(30));
    let _ = ok.0.kill();
    let _ = ok.0.wait();
    s.wait_stream("live", "cam", false, Duration::from_secs(30));

    // Past its exp (with a margin of whole seconds for rounding).
    let expired_at = issued + ttl + 3;
    while unix_now() < expired_at {
        std::thread::sleep(Duration::from_millis(200));
    }
    let mut late = publish(
        &ff,
        "h264-aac.flv",
        &s.rtmp_url(&format!("live/cam?token={token}")),
        false,
        false,
    );
    assert!(
        !late.wait(Duration::from_secs(30)).success(),
        "an expired token published; log:\n{}",
        s.log()
    );
    wait_log(&s, "JWT refused: expired");
    let log = s.log();
    assert!(
        log.contains("a signed publish token (JWT) is required"),
        "{log}"
    );
}

#[test]
fn jwts_are_refused_out_of_scope_and_accepted_by_rtmp_hls_and_http_flv_players() {
    let ff = tools::ffmpeg();
    let s = Arcly::start(&[
        "--jwt-secret",
        SECRET,
        "--jwt-required-for",
        "both",
        "--hls-segment",
        "1",
    ]);
    let pub_cams = issue(&["--stream", "cam*", "--action", "publish", "--ttl", "10m"]);
    let play_cams = issue(&["--stream", "cam*", "--action", "play", "--ttl", "10m"]);
    let play_dog = issue(&["--stream", "dog", "--action", "play", "--ttl", "10m"]);

    // Another stream, another action: refused, and the log says which.
    let mut dog = publish(
        &ff,
        "h264-aac.flv",
        &s.rtmp_url(&format!("live/dog?token={pub_cams}")),
        false,
        false,
    );
    assert!(
        !dog.wait(Duration::from_secs(30)).success(),
        "published out of scope"
    );
    wait_log(&s, "JWT refused: wrong stream");
    let mut as_player = publish(
        &ff,
        "h264-aac.flv",
        &s.rtmp_url(&format!("live/cam1?token={play_cams}")),
        false,
        false,
    );
    assert!(
        !as_player.wait(Duration::from_secs(30)).success(),
        "a play token published"
    );
    wait_log(&s, "JWT refused: wrong action");

    // The pattern covers cam1.
    let _p = publish(
        &ff,
        "h264-aac.flv",
        &s.rtmp_url(&format!("live/cam1?token={pub_cams}")),
        true,
        true,
    );
    let q = format!("token={play_cams}");
    let media = wait_playlist(&s, &format!("/live/cam1/index.m3u8?{q}"), &[]);
    assert!(media.contains(&q), "the playlist carries the JWT:\n{media}");
    assert_eq!(http_get(s.http, "/live/cam1/index.m3u8", &[]).0, 403);
    for wrong in [&play_dog, &pub_cams] {
        let (code, body) = http_get(s.http, &format!("/live/cam1/index.m3u8?token={wrong}"), &[]);
        assert_eq!(code, 403, "{}", String::from_utf8_lossy(&body));
    }
    let mut tampered = play_cams.clone();
    let at = tampered.rfind('.').unwrap() + 1;
    let c = if tampered[at..].starts_with('A') {
        "B"
    } else {
        "A"
    };
    tampered.replace_range(at..at + 1, c);
    assert_eq!(
        http_get(
            s.http,
            &format!("/live/cam1/index.m3u8?token={tampered}"),
            &[]
        )
        .0,
        403
    );
    wait_log(&s, "bad signature");

    // As a bearer token, for the playlist and a segment.
    let bearer = format!("Bearer {play_cams}");
    let auth = [("Authorization", bearer.as_str())];
    let plain = wait_playlist(&s, "/live/cam1/index.m3u8", &auth);
    let seg = plain
        .lines()
        .find(|l| !l.starts_with('#') && !l.is_empty())
        .unwrap_or_else(|| panic!("{plain}"));
    assert_eq!(http_get(s.http, &format!("/live/cam1/{seg}"), &auth).0, 200);
    let dog_bearer = format!("Bearer {play_dog}");
    assert_eq!(
        http_get(
            s.http,
            "/live/cam1/index.m3u8",
            &[("Authorization", &dog_bearer)]
        )
        .0,
        403
    );

    // RTMP play takes it in the stream-name query, as publish does.
    let url = s.rtmp_url(&format!("live/cam1?{q}"));
    let frames = common::framemd5_timeout(
        &ff,
        &[],
        &url,
        &["-map", "0:v", "-frames:v", "5"],
        Duration::from_secs(60),
    );
    assert!(!frames.is_empty(), "RTMP play with the JWT decoded nothing");
    let mut cmd = Command::new(&ff);
    cmd.args(["-hide_banner", "-nostdin", "-v", "error", "-i"])
        .arg(s.rtmp_url(&format!("live/cam1?token={pub_cams}")))
        .args(["-frames:v", "1", "-f", "null", "-"]);
    let mut refused = common::Proc::spawn(cmd);
    assert!(
        !refused.wait(Duration::from_secs(60)).success(),
        "a publish token played over RTMP"
    );

    // HTTP-FLV takes the JWT in the query.
    assert_eq!(status_of(s.http, &format!("/live/cam1.flv?{q}"), &[]), 200);
    assert_eq!(status_of(s.http, "/live/cam1.flv", &[]), 403);
    assert_eq!(
        status_of(s.http, &format!("/live/cam1.flv?token={play_dog}"), &[]),
        403
    );
}

/// RS256 and ES256 tokens verified against a JWKS file: ffmpeg publishes
/// with an RS256 token, HLS plays with an ES256 bearer token; an HS256
/// token made with the RSA public key as its secret is refused.
#[test]
fn a_jwks_file_verifies_rs256_publish_and_es256_play() {
    use jsonwebtoken::{encode, Algorithm, EncodingKey, Header};
    let ff = tools::ffmpeg();
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/jwt");
    let jwks = dir.join("jwks.json");
    let s = Arcly::start(&["--jwks", jwks.to_str().unwrap(), "--hls-segment", "1"]);
    let claims = |action: &str| serde_json::json!({"app": "live", "stream": "cam", "action": action, "exp": unix_now() + 600});
    let sign = |alg: Algorithm, kid: &str, action: &str, key: &EncodingKey| {
        let mut h = Header::new(alg);
        h.kid = Some(kid.into());
        encode(&h, &claims(action), key).unwrap()
    };
    let rsa = EncodingKey::from_rsa_der(&std::fs::read(dir.join("rsa.der")).unwrap());
    let ec = EncodingKey::from_ec_der(&std::fs::read(dir.join("ec.der")).unwrap());
    let rs_publish = sign(Algorithm::RS256, "rsa-1", "publish", &rsa);
    let es_play = sign(Algorithm::ES256, "ec-1", "play", &ec);
    let public = std::fs::read(dir.join("rsa_pub.pem")).unwrap();
    let confused = sign(
        Algorithm::HS256,
        "rsa-1",
        "publish",
        &EncodingKey::from_secret(&public),
    );

    let mut bad = publish(
        &ff,
        "h264-aac.flv",
        &s.rtmp_url(&format!("live/cam?token={confused}")),
        false,
        false,
    );
    assert!(
        !bad.wait(Duration::from_secs(30)).success(),
        "alg confusion published"
    );
    wait_log(&s, "JWT refused: wrong algorithm");

    let _p = publish(
        &ff,
        "h264-aac.flv",
        &s.rtmp_url(&format!("live/cam?token={rs_publish}")),
        true,
        true,
    );
    let bearer = format!("Bearer {es_play}");
    wait_playlist(&s, "/live/cam/index.m3u8", &[("Authorization", &bearer)]);
    let rs_bearer = format!("Bearer {rs_publish}");
    assert_eq!(
        http_get(
            s.http,
            "/live/cam/index.m3u8",
            &[("Authorization", &rs_bearer)]
        )
        .0,
        403,
        "a publish token played"
    );
}
