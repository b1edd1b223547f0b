//! The fMP4 muxer's output, decoded by real ffmpeg: silent under
//! `-v error`, and frame-for-frame identical (framemd5) to the source.

mod common;

use arcly_core::testing::tools;
use arcly_core::traits::Muxer;
use arcly_hls::fmp4::Fmp4Muxer;
use std::path::PathBuf;

/// Mux a fixture: a fragment before every video keyframe and every
/// `part_frames` frames in between (like LL-HLS parts would).
fn mux_fixture(name: &str, part_frames: usize) -> PathBuf {
    let frames = common::read_flv(&tools::fixture(name));
    assert!(frames.len() > 100, "{name}: only {} frames", frames.len());
    let mut mux = Fmp4Muxer::new();
    let mut fragments = Vec::new();
    let mut since_flush = 0;
    for f in &frames {
        if !f.is_config() && (f.is_keyframe() || since_flush >= part_frames) {
            let frag = mux.flush().unwrap();
            if !frag.is_empty() {
                fragments.push(frag);
            }
            since_flush = 0;
        }
        mux.write_frame(f).unwrap();
        since_flush += 1;
    }
    fragments.push(mux.flush().unwrap());
    let init = mux.init_segment().unwrap().expect("init segment");
    let mut out = init.to_vec();
    for f in &fragments {
        out.extend_from_slice(f);
    }
    let path =
        PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("fmp4-{name}-{part_frames}.mp4"));
    std::fs::write(&path, out).unwrap();
    path
}

fn md5s(ffmpeg: &std::path::Path, input: &str, map: &str) -> Vec<String> {
    let lines = tools::framemd5(ffmpeg, &[], input, &["-map", map]);
    tools::md5_column(&lines, 0)
}

fn check(name: &str, part_frames: usize) {
    let out = mux_fixture(name, part_frames);
    let errors = common::decode_errors(&tools::ffmpeg(), &out);
    assert!(
        errors.trim().is_empty(),
        "{name}: ffmpeg 5.1 complained:\n{errors}"
    );
    let ff9 = tools::ffmpeg9();
    let errors = common::decode_errors(&ff9, &out);
    assert!(
        errors.trim().is_empty(),
        "{name}: ffmpeg 9 complained:\n{errors}"
    );
    let src = tools::fixture(name);
    for map in ["0:v:0", "0:a:0"] {
        let want = md5s(&ff9, src.to_str().unwrap(), map);
        let got = md5s(&ff9, out.to_str().unwrap(), map);
        assert!(
            want.len() > 50,
            "{name} {map}: {} source frames",
            want.len()
        );
        assert_eq!(want, got, "{name} {map}: decoded frames differ");
    }
}

#[test]
fn h264_aac_matches_source() {
    check("h264-aac.flv", 5);
}

#[test]
fn hevc_aac_matches_source() {
    check("hevc-aac.enhanced.flv", 5);
}

#[test]
fn av1_opus_matches_source() {
    check("av1-opus.enhanced.flv", 7);
}

#[test]
fn vp9_opus_matches_source() {
    check("vp9-opus.enhanced.flv", 1000);
}

#[test]
fn init_segment_reports_picture_size() {
    for name in [
        "h264-aac.flv",
        "hevc-aac.enhanced.flv",
        "av1-opus.enhanced.flv",
        "vp9-opus.enhanced.flv",
    ] {
        let frames = common::read_flv(&tools::fixture(name));
        let mut mux = Fmp4Muxer::new();
        for f in frames.iter().take(40) {
            mux.write_frame(f).unwrap();
        }
        assert_eq!(mux.resolution(), Some((640, 360)), "{name}");
    }
}
