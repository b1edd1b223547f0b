//! A play token guards every resource of a protected stream, over real
//! sockets with a real publisher: playlists, segments, parts and init
//! sections; the playlists carry the credential on every URI they name;
//! it is accepted percent-encoded, as a bearer token, and a few KB long.

mod common;

use arcly_core::testing::tools;
use common::{http_get, publish, Arcly};
use std::time::{Duration, Instant};

/// Every URI a playlist names: URI lines and `URI="…"` attributes.
fn uris(playlist: &str) -> Vec<String> {
    let mut out = Vec::new();
    for line in playlist.lines() {
        if line.is_empty() {
            continue;
        }
        if !line.starts_with('#') {
            out.push(line.to_owned());
            continue;
        }
        let mut rest = line;
        while let Some(at) = rest.find("URI=\"") {
            let after = &rest[at + 5..];
            let end = after.find('"').unwrap_or(after.len());
            out.push(after[..end].to_owned());
            rest = &after[end..];
        }
    }
    out
}

fn wait_playlist(s: &Arcly, path: &str, headers: &[(&str, &str)]) -> String {
    common::wait_playlist(s, path, headers, Duration::from_secs(30))
}

#[test]
fn every_hls_resource_needs_the_play_token_and_playlists_carry_it() {
    let ff = tools::ffmpeg();
    let token = "pt+7/x";
    let encoded = "pt%2B7%2Fx";
    let s = Arcly::start(&[
        "--ll-hls",
        "--hls-segment",
        "1",
        "--play-token",
        &format!("live={token}"),
    ]);
    let _p = publish(&ff, "h264-aac.flv", &s.rtmp_url("live/cam"), true, true);
    let q = format!("token={encoded}");
    let media = wait_playlist(&s, &format!("/live/cam/index.m3u8?{q}"), &[]);

    // Refused without the credential, and with a wrong one.
    assert_eq!(http_get(s.http, "/live/cam/index.m3u8", &[]).0, 403);
    assert_eq!(
        http_get(s.http, "/live/cam/index.m3u8?token=pt", &[]).0,
        403
    );
    assert_eq!(http_get(s.http, "/live/cam.m3u8", &[]).0, 403);

    let named = uris(&media);
    assert!(
        named
            .iter()
            .any(|u| u.contains(".m4s") || u.contains(".ts")),
        "{media}"
    );
    assert!(
        named.iter().any(|u| u.contains("part")),
        "LL-HLS parts: {media}"
    );
    for uri in &named {
        assert!(
            uri.ends_with(&q),
            "{uri} does not carry the credential:\n{media}"
        );
        if media
            .lines()
            .any(|l| l.starts_with("#EXT-X-PRELOAD-HINT") && l.contains(uri.as_str()))
        {
            continue; // not there yet; asking would block
        }
        let path = format!("/live/cam/{uri}");
        let (code, _) = http_get(s.http, &path, &[]);
        assert_eq!(code, 200, "{path}");
        let bare = path.split('?').next().unwrap();
        assert_eq!(
            http_get(s.http, bare, &[]).0,
            403,
            "{bare} served without the token"
        );
    }

    // The multivariant playlist's variant carries it too.
    let (code, body) = http_get(s.http, &format!("/live/cam.m3u8?{q}"), &[]);
    let multi = String::from_utf8_lossy(&body);
    assert_eq!(code, 200, "{multi}");
    assert!(
        uris(&multi).iter().all(|u| u.ends_with(&q)) && !uris(&multi).is_empty(),
        "{multi}"
    );

    // A bearer token works for every resource; the playlist then needs no
    // rewriting.
    let bearer = format!("Bearer {token}");
    let auth = [("Authorization", bearer.as_str())];
    let plain = wait_playlist(&s, "/live/cam/index.m3u8", &auth);
    let seg = uris(&plain)
        .into_iter()
        .find(|u| !u.contains('?') && (u.ends_with(".m4s") || u.ends_with(".ts")))
        .unwrap_or_else(|| panic!("{plain}"));
    assert_eq!(http_get(s.http, &format!("/live/cam/{seg}"), &auth).0, 200);
}

#[test]
fn tokens_of_a_few_kilobytes_are_accepted() {
    let ff = tools::ffmpeg();
    let long = "k".repeat(3000);
    // ffmpeg's RTMP client keeps at most 512 bytes of stream name (its
    // PLAYPATH_MAX_LENGTH), token included.
    let long_pub = "p".repeat(480);
    let s = Arcly::start(&[
        "--play-token",
        &format!("live={long}"),
        "--publish-token",
        &format!("live={long_pub}"),
    ]);
    let url = s.rtmp_url(&format!("live/cam?token={long_pub}"));
    let _p = publish(&ff, "h264-aac.flv", &url, true, true);
    wait_playlist(&s, &format!("/live/cam/index.m3u8?token={long}"), &[]);
    assert_eq!(
        http_get(s.http, &format!("/live/cam/index.m3u8?token={long}x"), &[]).0,
        403
    );
}

/// OBS puts the token after the application (`Server: rtmp://h/live?token=x`,
/// `Stream Key: cam`), so it arrives in `connect`'s app and tcUrl, not with
/// the stream name; ffmpeg does the same with `-rtmp_app`. An HTTP-FLV
/// player may send its token as `Authorization: Bearer`.
#[test]
fn obs_style_tokens_in_the_app_and_bearer_tokens_over_http_flv() {
    use std::io::{Read, Write};
    let ff = tools::ffmpeg();
    let s = Arcly::start(&[
        "--publish-token",
        "live=pub-3",
        "--play-token",
        "live=play-4",
    ]);
    let publish_with_app = |app: &str| {
        let mut cmd = std::process::Command::new(&ff);
        cmd.args(["-hide_banner", "-nostdin", "-v", "error", "-re"])
            .args(["-stream_loop", "-1", "-i"])
            .arg(tools::fixture("h264-aac.flv"))
            .args(["-c", "copy", "-f", "flv", "-rtmp_app", app])
            .args(["-rtmp_playpath", "cam"])
            .arg(format!("rtmp://{}/", s.rtmp));
        common::Proc::spawn(cmd)
    };
    let mut wrong = publish_with_app("live?token=nope");
    assert!(
        !wrong.wait(Duration::from_secs(20)).success(),
        "a wrong token in the app was accepted"
    );
    let _good = publish_with_app("live?token=pub-3");
    let bearer = [("Authorization", "Bearer play-4")];
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (code, body) = http_get(s.http, "/live/cam/index.m3u8", &bearer);
        if code == 200 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "publish with the token in the app never went live: {code} {}\n{}",
            String::from_utf8_lossy(&body),
            s.log()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let flv_head = |auth: Option<&str>| {
        let mut c = std::net::TcpStream::connect(s.http).unwrap();
        c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let extra = auth.map_or(String::new(), |a| format!("Authorization: {a}\r\n"));
        write!(c, "GET /live/cam.flv HTTP/1.1\r\nHost: x\r\n{extra}\r\n").unwrap();
        let mut b = [0u8; 64];
        let n = c.read(&mut b).unwrap_or(0);
        String::from_utf8_lossy(&b[..n]).to_string()
    };
    assert!(flv_head(Some("Bearer play-4")).starts_with("HTTP/1.1 200"));
    assert!(flv_head(Some("Bearer play-5")).starts_with("HTTP/1.1 403"));
    assert!(flv_head(None).starts_with("HTTP/1.1 403"));
}
