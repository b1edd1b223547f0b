//! The muxer against real FFmpeg: fixtures demuxed by [`TsDemuxer`], muxed
//! by [`MpegTsMuxer`], then `ffprobe -v error` must say nothing and
//! `framemd5` must equal the source's, frame for frame.

mod common;

use arcly_core::testing::tools::{ffmpeg, ffprobe, fixture, framemd5, md5_column};
use std::path::{Path, PathBuf};
use std::process::Command;

fn tmp(name: &str) -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("arcly-mpegts-{}-{name}", std::process::id()))
}

/// The fixture as MPEG-TS: as is, or rewrapped by ffmpeg (`-c copy`).
fn source_ts(name: &str) -> PathBuf {
    let src = fixture(name);
    if name.ends_with(".ts") {
        return src;
    }
    let out = tmp(&format!("{name}.src.ts"));
    let st = Command::new(ffmpeg())
        .args(["-hide_banner", "-v", "error", "-y", "-i"])
        .arg(&src)
        .args(["-c", "copy", "-f", "mpegts"])
        .arg(&out)
        .status()
        .expect("run ffmpeg");
    assert!(st.success(), "ffmpeg could not rewrap {name}");
    out
}

fn ffprobe_errors(path: &Path) -> String {
    let out = Command::new(ffprobe())
        .args([
            "-v",
            "error",
            "-show_packets",
            "-show_streams",
            "-of",
            "compact",
        ])
        .arg(path)
        .output()
        .expect("run ffprobe");
    assert!(
        out.status.success(),
        "ffprobe failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("stream|"), "ffprobe found no stream");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn codecs(path: &Path) -> Vec<String> {
    let out = Command::new(ffprobe())
        .args([
            "-v",
            "error",
            "-show_entries",
            "stream=codec_name",
            "-of",
            "csv=p=0",
        ])
        .arg(path)
        .output()
        .expect("run ffprobe");
    // ffprobe lists the streams once per program and once on their own.
    let mut v: Vec<String> = Vec::new();
    for l in String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
    {
        if !v.iter().any(|x| x == l) {
            v.push(l.to_owned());
        }
    }
    v
}

fn round_trip(name: &str, streams: usize, expect_codecs: &[&str]) {
    let src = source_ts(name);
    let input = std::fs::read(&src).unwrap();
    let frames = common::demux_all(&input);
    let has_video = frames.iter().any(|f| f.is_video());
    let segments = common::remux(&frames);
    let report = common::check_segments(&segments, has_video);
    let out = tmp(&format!("{name}.out.ts"));
    std::fs::write(&out, segments.concat()).unwrap();

    let errors = ffprobe_errors(&out);
    assert!(
        errors.is_empty(),
        "ffprobe -v error on our {name}: {errors}"
    );
    assert_eq!(codecs(&out), expect_codecs, "codecs of our {name}");

    let ff = ffmpeg();
    let a = framemd5(&ff, &[], src.to_str().unwrap(), &[]);
    let b = framemd5(&ff, &[], out.to_str().unwrap(), &[]);
    for s in 0..streams {
        let (ca, cb) = (md5_column(&a, s), md5_column(&b, s));
        assert!(!ca.is_empty(), "{name}: source stream {s} decoded no frame");
        assert_eq!(ca.len(), cb.len(), "{name}: stream {s} frame count");
        assert_eq!(ca, cb, "{name}: stream {s} differs");
    }
    eprintln!(
        "{name}: {} frames, {} segments, {} packets, {} PCRs, max PCR gap {:.1} ms",
        frames.len(),
        segments.len(),
        report.packets,
        report.pcrs,
        report.max_pcr_gap_ms
    );
    let _ = std::fs::remove_file(&out);
    if src != fixture(name) {
        let _ = std::fs::remove_file(&src);
    }
}

#[test]
fn h264_aac() {
    round_trip("h264-aac.ts", 2, &["h264", "aac"]);
}

#[test]
fn h265_aac() {
    round_trip("hevc-aac.mp4", 2, &["hevc", "aac"]);
}

#[test]
fn h265_main10_round_trips_and_its_hvcc_says_main_10() {
    round_trip("hevc-10bit.mp4", 1, &["hevc"]);
    // The hvcC the demuxer synthesizes from in-band VPS/SPS/PPS must carry
    // the SPS's profile and bit depth (ffmpeg: "hevc (Main 10)", yuv420p10le).
    let src = source_ts("hevc-10bit.mp4");
    let frames = common::demux_all(&std::fs::read(&src).unwrap());
    let _ = std::fs::remove_file(&src);
    let config = frames
        .iter()
        .find(|f| f.is_config() && f.codec == arcly_core::CodecId::H265)
        .expect("an hvcC CONFIG frame");
    let info =
        arcly_codec::CodecInfo::from_config(arcly_core::CodecId::H265, &config.payload).unwrap();
    assert_eq!(info.profile_name, Some("Main 10"));
    assert_eq!(info.bit_depth, Some(10));
    assert_eq!(info.chroma_format, Some(1));
    assert_eq!((info.width, info.height), (Some(640), Some(360)));
}

#[test]
fn audio_only_aac() {
    round_trip("aac-audio-only.flv", 1, &["aac"]);
}

#[test]
fn video_only_h264() {
    round_trip("h264-baseline-video-only.flv", 1, &["h264"]);
}

#[test]
fn h264_mp3() {
    round_trip("h264-mp3.ts", 2, &["h264", "mp3"]);
}

#[test]
fn opus_audio_only() {
    // ffmpeg rewraps the WebM's Opus into TS; our demuxer and muxer must
    // hand it back decodable bit-exactly.
    let src = tmp("opus.src.ts");
    let st = Command::new(ffmpeg())
        .args(["-hide_banner", "-v", "error", "-y", "-i"])
        .arg(fixture("vp9-opus.webm"))
        .args(["-map", "0:a", "-c", "copy", "-f", "mpegts"])
        .arg(&src)
        .status()
        .expect("run ffmpeg");
    assert!(st.success());
    let frames = common::demux_all(&std::fs::read(&src).unwrap());
    assert!(frames
        .iter()
        .any(|f| f.codec == arcly_core::CodecId::Opus && !f.is_config()));
    let segments = common::remux(&frames);
    common::check_segments(&segments, false);
    let out = tmp("opus.out.ts");
    std::fs::write(&out, segments.concat()).unwrap();
    let errors = ffprobe_errors(&out);
    assert!(
        errors.is_empty(),
        "ffprobe -v error on our Opus TS: {errors}"
    );
    assert_eq!(codecs(&out), ["opus"]);
    let ff = ffmpeg();
    let a = md5_column(&framemd5(&ff, &[], src.to_str().unwrap(), &[]), 0);
    let b = md5_column(&framemd5(&ff, &[], out.to_str().unwrap(), &[]), 0);
    assert!(!a.is_empty());
    assert_eq!(a, b, "Opus decodes differently");
    let _ = std::fs::remove_file(&out);
    let _ = std::fs::remove_file(&src);
}
