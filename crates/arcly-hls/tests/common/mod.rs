//! Shared helpers for the integration tests: a tiny test-only FLV reader
//! (legacy and Enhanced RTMP FourCC tags) producing canonical `MediaFrame`s,
//! and ffmpeg drivers.
#![allow(dead_code)]

use arcly_core::{CodecId, FrameFlags, MediaFrame, TimeBase};
use bytes::Bytes;
use std::path::Path;

fn be24(b: &[u8]) -> u32 {
    (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2])
}

fn si24(b: &[u8]) -> i64 {
    let v = be24(b) as i64;
    if v & 0x80_0000 != 0 {
        v - 0x100_0000
    } else {
        v
    }
}

fn fourcc_codec(f: &[u8]) -> CodecId {
    match f {
        b"avc1" => CodecId::H264,
        b"hvc1" => CodecId::H265,
        b"av01" => CodecId::Av1,
        b"vp09" => CodecId::Vp9,
        b"Opus" => CodecId::Opus,
        b"mp4a" => CodecId::Aac,
        other => panic!("unexpected fourcc {:?}", String::from_utf8_lossy(other)),
    }
}

/// Read every audio/video tag of an FLV file as canonical frames (ms time base).
pub fn read_flv(path: &Path) -> Vec<MediaFrame> {
    let data = Bytes::from(std::fs::read(path).expect("read flv"));
    assert_eq!(&data[..3], b"FLV");
    let mut pos = usize::try_from(u32::from_be_bytes(data[5..9].try_into().unwrap())).unwrap() + 4;
    let mut out = Vec::new();
    while pos + 11 <= data.len() {
        let tag_type = data[pos] & 0x1f;
        let size = be24(&data[pos + 1..]) as usize;
        let ts = (be24(&data[pos + 4..]) | (u32::from(data[pos + 7]) << 24)) as i64;
        let body = data.slice(pos + 11..pos + 11 + size);
        pos += 11 + size + 4;
        if body.is_empty() {
            continue;
        }
        match tag_type {
            8 => {
                let fmt = body[0] >> 4;
                if fmt == 10 {
                    let codec = CodecId::Aac;
                    if body[1] == 0 {
                        out.push(MediaFrame::config(codec, ts, body.slice(2..)));
                    } else {
                        out.push(MediaFrame::audio(codec, ts, body.slice(2..)));
                    }
                } else if fmt == 9 {
                    let ptype = body[0] & 0x0f;
                    let codec = fourcc_codec(&body[1..5]);
                    match ptype {
                        0 => out.push(MediaFrame::config(codec, ts, body.slice(5..))),
                        1 => out.push(MediaFrame::audio(codec, ts, body.slice(5..))),
                        _ => {}
                    }
                }
            }
            9 => {
                let b0 = body[0];
                if b0 & 0x80 != 0 {
                    let frame_type = (b0 >> 4) & 7;
                    let ptype = b0 & 0x0f;
                    let codec = fourcc_codec(&body[1..5]);
                    let rest = body.slice(5..);
                    match ptype {
                        0 => {
                            let mut rec = rest;
                            if codec == CodecId::Vp9
                                && rec.len() >= 12
                                && rec[0] == 1
                                && rec[1..4] == [0, 0, 0]
                            {
                                rec = rec.slice(4..); // FullBox header -> canonical vpcC body
                            }
                            out.push(
                                MediaFrame::config(codec, ts, rec).with_flags(FrameFlags::NONE),
                            );
                            let last = out.last_mut().unwrap();
                            last.frame_type = arcly_core::FrameType::Video;
                        }
                        1 | 3 => {
                            let (cts, payload) =
                                if ptype == 1 && matches!(codec, CodecId::H264 | CodecId::H265) {
                                    (si24(&rest[..3]), rest.slice(3..))
                                } else {
                                    (0, rest)
                                };
                            let mut f = MediaFrame::video(codec, ts, ts + cts, payload);
                            if frame_type == 1 {
                                f = f.with_flags(FrameFlags::KEYFRAME);
                            }
                            out.push(f);
                        }
                        _ => {}
                    }
                } else if b0 & 0x0f == 7 {
                    let codec = CodecId::H264;
                    let cts = si24(&body[2..5]);
                    match body[1] {
                        0 => out.push(MediaFrame::config(codec, ts, body.slice(5..))),
                        1 => {
                            let mut f = MediaFrame::video(codec, ts, ts + cts, body.slice(5..));
                            if b0 >> 4 == 1 {
                                f = f.with_flags(FrameFlags::KEYFRAME);
                            }
                            out.push(f);
                        }
                        _ => {}
                    }
                }
            }
            _ => {}
        }
    }
    for f in &mut out {
        assert_eq!(f.time_base, TimeBase::MILLIS);
    }
    out
}

/// Run ffmpeg with `-v error` decoding `input` to null; returns stderr (must be empty).
pub fn decode_errors(ffmpeg: &Path, input: &Path) -> String {
    let out = std::process::Command::new(ffmpeg)
        .args(["-hide_banner", "-nostdin", "-v", "error", "-i"])
        .arg(input)
        .args(["-f", "null", "-"])
        .output()
        .expect("run ffmpeg");
    let mut s = String::from_utf8_lossy(&out.stderr).into_owned();
    if !out.status.success() {
        s.push_str(&format!("\nexit status {}", out.status));
    }
    s
}

/// Demux an MPEG-TS fixture into canonical frames (90 kHz) with arcly-mpegts.
pub fn read_ts(path: &Path) -> Vec<MediaFrame> {
    let data = std::fs::read(path).expect("read ts");
    let mut d = arcly_mpegts::TsDemuxer::new();
    d.push(&data).expect("demux");
    d.finish().expect("demux finish");
    let mut out = Vec::new();
    while let Some(f) = d.next_frame() {
        out.push(f);
    }
    out
}

/// Media duration of `frames` (first to last decode time), in microseconds.
pub fn span_us(frames: &[MediaFrame]) -> i64 {
    let media = frames.iter().filter(|f| !f.is_config());
    let (mut lo, mut hi) = (i64::MAX, i64::MIN);
    for f in media {
        let t = f.dts_in(TimeBase::MICROS);
        lo = lo.min(t);
        hi = hi.max(t);
    }
    hi - lo
}
