//! The segmenter end to end: fixtures in, playlists checked on every
//! update, ffmpeg reading the playlist and decoding frame-exact.

mod common;

use arcly_core::testing::tools;
use arcly_hls::checker::{self, Summary};
use arcly_hls::stream::{HlsConfig, HlsStream, SegmentFormat};
use std::path::{Path, PathBuf};
use std::time::Duration;

struct Run {
    hls: HlsStream,
    playlists: usize,
}

/// Push every frame of `fixture`, checking every playlist state (full and
/// delta) with the checker and every reload against the previous one.
fn run(fixture: &str, cfg: HlsConfig) -> Run {
    let frames = common::read_flv(&tools::fixture(fixture));
    let mut hls = HlsStream::new(cfg);
    let mut prev: Option<Summary> = None;
    let mut playlists = 0;
    let mut last_pos = hls.position();
    let mut check_now = |hls: &HlsStream, prev: &mut Option<Summary>| {
        let Some(text) = hls.playlist(false) else {
            return;
        };
        let s = checker::check(&text).unwrap_or_else(|e| panic!("{fixture}: {e:#?}\n{text}"));
        if let Some(p) = prev.as_ref() {
            checker::check_reload(p, &s)
                .unwrap_or_else(|e| panic!("{fixture}: reload {e:#?}\n{text}"));
        }
        let delta = hls.playlist(true).unwrap();
        checker::check(&delta).unwrap_or_else(|e| panic!("{fixture}: delta {e:#?}\n{delta}"));
        *prev = Some(s);
        playlists += 1;
    };
    for f in &frames {
        hls.push(f).unwrap();
        if hls.position() != last_pos {
            last_pos = hls.position();
            check_now(&hls, &mut prev);
        }
    }
    hls.end();
    check_now(&hls, &mut prev);
    Run { hls, playlists }
}

/// Write the playlist and every resource it names into a fresh folder.
fn write_out(hls: &HlsStream, dir: &Path) -> PathBuf {
    let _ = std::fs::remove_dir_all(dir);
    std::fs::create_dir_all(dir).unwrap();
    let text = hls.playlist(false).unwrap();
    for line in text.lines() {
        let uri = if let Some(i) = line.find("URI=\"") {
            let rest = &line[i + 5..];
            &rest[..rest.find('"').unwrap()]
        } else if !line.starts_with('#') && !line.is_empty() {
            line
        } else {
            continue;
        };
        let (bytes, _) = hls
            .resource(uri)
            .unwrap_or_else(|| panic!("{uri} not served"));
        std::fs::write(dir.join(uri), bytes).unwrap();
    }
    let p = dir.join("index.m3u8");
    std::fs::write(&p, text).unwrap();
    p
}

fn md5s(ffmpeg: &Path, input: &Path, map: &str) -> Vec<String> {
    let lines = tools::framemd5(ffmpeg, &[], input.to_str().unwrap(), &["-map", map]);
    tools::md5_column(&lines, 0)
}

fn assert_same(want: &[String], got: &[String], settle: usize, what: &str) {
    assert_eq!(want.len(), got.len(), "{what}: frame counts differ");
    let bad: Vec<usize> = (settle..want.len())
        .filter(|&i| want[i] != got[i])
        .collect();
    assert!(
        bad.is_empty(),
        "{what}: {} of {} frames differ, first at {:?}",
        bad.len(),
        want.len(),
        bad.first()
    );
}

fn decode_and_compare(fixture: &str, cfg: HlsConfig, tag: &str) -> Run {
    let settle = if fixture.contains("opus") { 50 } else { 0 };
    let r = run(fixture, cfg);
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("hls-{tag}"));
    let playlist = write_out(&r.hls, &dir);
    let errors = common::decode_errors(&tools::ffmpeg(), &playlist);
    assert!(
        errors.trim().is_empty(),
        "{tag}: ffmpeg complained:\n{errors}"
    );
    let ff9 = tools::ffmpeg9();
    let src = tools::fixture(fixture);
    let want = md5s(&ff9, &src, "0:v:0");
    let got = md5s(&ff9, &playlist, "0:v:0");
    assert!(want.len() >= 150, "{tag}: {} source frames", want.len());
    assert_same(&want, &got, 0, &format!("{tag} video"));
    // Audio before the first video keyframe is not packaged: the decoded
    // audio is the source's minus at most a few leading packets. Opus
    // decoder state depends on earlier packets, so its output converges to
    // the source's only after `settle` frames.
    let want = md5s(&ff9, &src, "0:a:0");
    let got = md5s(&ff9, &playlist, "0:a:0");
    let skipped = want.len() - got.len();
    assert!(skipped <= 4, "{tag}: {skipped} audio frames lost");
    assert_same(&want[skipped..], &got, settle, &format!("{tag} audio"));
    r
}

fn big_window(format: SegmentFormat) -> HlsConfig {
    HlsConfig {
        window: 100,
        format,
        ..HlsConfig::default()
    }
}

#[test]
fn h264_aac_over_ts() {
    let r = decode_and_compare("h264-aac.flv", big_window(SegmentFormat::Auto), "ts");
    assert_eq!(r.hls.format(), arcly_core::traits::ContainerFormat::MpegTs);
    assert_eq!(r.hls.media_playlist().unwrap().segments.len(), 3);
    assert!(r.playlists >= 3);
    // PROBE.txt: h264 (High) 640x360 25 fps + aac (LC).
    let mv = r.hls.multivariant("index.m3u8").unwrap();
    checker::check(&mv).unwrap();
    assert!(mv.contains("CODECS=\"avc1.64"), "{mv}");
    assert!(
        mv.contains(",mp4a.40.2\",RESOLUTION=640x360,FRAME-RATE=25.000\n"),
        "{mv}"
    );
    let v = r.hls.variant("index.m3u8").unwrap();
    // The media's own bit rate, plus at most 30 % TS/PES overhead.
    let frames = common::read_flv(&tools::fixture("h264-aac.flv"));
    let bytes: usize = frames.iter().map(|f| f.payload.len()).sum();
    let media = bytes as f64 * 8.0 / 6.0;
    let avg = v.average_bandwidth.unwrap() as f64;
    assert!(avg > media && avg < media * 1.3, "{avg} vs {media}");
    assert!(v.bandwidth as f64 >= avg);
}

#[test]
fn h264_aac_over_fmp4() {
    decode_and_compare("h264-aac.flv", big_window(SegmentFormat::Fmp4), "fmp4");
}

#[test]
fn hevc_aac_picks_fmp4() {
    let r = decode_and_compare(
        "hevc-aac.enhanced.flv",
        big_window(SegmentFormat::Auto),
        "hevc",
    );
    assert_eq!(r.hls.format(), arcly_core::traits::ContainerFormat::Fmp4);
    // PROBE.txt: hevc (Main) 640x360 25 fps + aac (LC).
    let mv = r.hls.multivariant("index.m3u8").unwrap();
    assert!(mv.contains("CODECS=\"hvc1.1."), "{mv}");
    assert!(
        mv.contains(",mp4a.40.2\",RESOLUTION=640x360,FRAME-RATE=25.000\n"),
        "{mv}"
    );
}

#[test]
fn av1_opus_over_fmp4() {
    decode_and_compare(
        "av1-opus.enhanced.flv",
        big_window(SegmentFormat::Auto),
        "av1",
    );
}

#[test]
fn ll_hls_parts_decode_and_follow_the_rules() {
    let cfg = HlsConfig {
        part_target: Some(Duration::from_millis(200)),
        segment_target: Duration::from_secs(1),
        window: 100,
        format: SegmentFormat::Fmp4,
        ..HlsConfig::default()
    };
    let r = decode_and_compare("h264-aac.flv", cfg, "ll");
    // Parts: one playlist per part, every one checked above.
    // (The first playlist appears once the first segment fixes the target duration.)
    assert!(r.playlists > 18, "{} playlists", r.playlists);
    let p = r.hls.media_playlist().unwrap();
    // Keyframes every 2 s: segments are 2 s despite a 1 s target, and TARGETDURATION is 2.
    assert_eq!(p.target_duration, 2);
    let last = p.segments.last().unwrap();
    assert!(last.parts.iter().all(|x| x.duration <= 0.2005));
    assert!(last.parts[0].independent && !last.parts[1].independent);
}

#[test]
fn preload_hint_names_the_next_part_and_blocking_positions_advance() {
    let cfg = HlsConfig {
        part_target: Some(Duration::from_millis(200)),
        window: 1,
        retain: 1,
        format: SegmentFormat::Fmp4,
        ..HlsConfig::default()
    };
    let frames = common::read_flv(&tools::fixture("h264-aac.flv"));
    let mut hls = HlsStream::new(cfg);
    let mut rx = hls.subscribe();
    let mut hints_checked = 0;
    let mut hint: Option<String> = None;
    for f in &frames {
        hls.push(f).unwrap();
        if rx.has_changed().unwrap() {
            let pos = *rx.borrow_and_update();
            // The part that was hinted is now listed and served.
            let text = hls.playlist(false).unwrap_or_default();
            if let Some(h) = hint.take() {
                if pos.parts > 0 {
                    assert!(
                        text.contains(&format!("URI=\"{h}\"")),
                        "hint {h} not listed:\n{text}"
                    );
                    assert!(hls.resource(&h).is_some());
                    hints_checked += 1;
                }
            }
            if pos.parts > 0 {
                assert!(hls.is_ready(pos.msn, Some(pos.parts - 1)));
                assert!(!hls.is_ready(pos.msn, Some(pos.parts)));
                assert!(hls
                    .resource(&hls.part_uri(pos.msn, pos.parts as usize))
                    .is_none());
            }
            hint = checker::check(&text).ok().and_then(|s| s.preload_hint);
        }
    }
    assert!(hints_checked > 15, "{hints_checked}");
    // One listed; those that left it stay for their duration plus the
    // longest playlist that listed them (RFC 8216bis §6.2.2, checked in
    // tests/retention.rs): with 2 s segments and a 1-segment window plus
    // the parts of the next, segment 0 is held for 2 + 4 s and left the
    // playlist 2 s of media ago; segment 1 has only just left it.
    hls.end();
    let p = hls.media_playlist().unwrap();
    assert_eq!(p.segments.len(), 1);
    assert_eq!(p.media_sequence, 2);
    assert!(hls.segment(0).is_some() && hls.segment(1).is_some() && hls.segment(2).is_some());
}
