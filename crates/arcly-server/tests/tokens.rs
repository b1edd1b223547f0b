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

/// Poll `path` until it answers 200 with a playlist naming segments.
fn wait_playlist(s: &Arcly, path: &str, headers: &[(&str, &str)]) -> String {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (code, body) = http_get(s.http, path, headers);
        let text = String::from_utf8_lossy(&body).to_string();
        if code == 200 && text.contains("#EXTINF") {
            return text;
        }
        assert!(
            Instant::now() < deadline,
            "{path}: {code} {text}\n{}",
            s.log()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
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
    let s = Arcly::start(&["--play-token", &format!("live={long}")]);
    let _p = publish(&ff, "h264-aac.flv", &s.rtmp_url("live/cam"), true, true);
    wait_playlist(&s, &format!("/live/cam/index.m3u8?token={long}"), &[]);
    assert_eq!(
        http_get(s.http, &format!("/live/cam/index.m3u8?token={long}x"), &[]).0,
        403
    );
}
