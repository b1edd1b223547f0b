//! What the parsers report for real encoder output must equal what FFmpeg
//! reports for the same stream.
//!
//! Small clips: `tests/fixtures/make.sh` (expected values from ffprobe in
//! `tests/fixtures/EXPECTED.txt`); the 640x360 clips: `fixtures/media/make.sh`
//! (`PROBE.txt`). H.264 keyframe flags are compared with a live
//! `ffprobe -show_packets` run; Enhanced FLV (which Debian's ffprobe cannot
//! read) with the keyframe flag FFmpeg 9 wrote into each tag.
//! Tests of optional codecs need their Cargo feature (`--all-features`).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use arcly_codec::aac::{self, AdtsFrames, AudioSpecificConfig};
#[cfg(feature = "av1")]
use arcly_codec::av1;
use arcly_codec::h264::{self, AvcDecoderConfigurationRecord};
#[cfg(feature = "h265")]
use arcly_codec::h265::HevcDecoderConfigurationRecord;
use arcly_codec::nal::{self, AnnexBNals};
#[cfg(feature = "vp9")]
use arcly_codec::vp9::{self, VpCodecConfigurationRecord};
#[cfg(feature = "vvc")]
use arcly_codec::vvc::{self, VvcDecoderConfigurationRecord};
use arcly_codec::{is_keyframe, CodecInfo};
use arcly_core::testing::tools;
use arcly_core::CodecId;
use bytes::{Bytes, BytesMut};

fn small(name: &str) -> PathBuf {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name);
    assert!(
        p.is_file(),
        "fixture {} missing: run tests/fixtures/make.sh",
        p.display()
    );
    p
}

/// One FLV tag's interesting parts.
#[derive(Debug)]
struct Tag {
    kind: u8,
    /// Video: FLV frame type 1 (keyframe). Audio: false.
    key: bool,
    /// Sequence header / SequenceStart.
    config: bool,
    /// The record or the frame payload.
    body: Bytes,
}

/// A minimal FLV reader (FLV 10.1 §E and Enhanced RTMP v1) for test input.
fn flv_tags(path: &Path) -> Vec<Tag> {
    let data = Bytes::from(std::fs::read(path).unwrap());
    assert_eq!(&data[..3], b"FLV");
    let mut pos = 13;
    let mut tags = Vec::new();
    while pos + 11 <= data.len() {
        let kind = data[pos];
        let size = u32::from_be_bytes([0, data[pos + 1], data[pos + 2], data[pos + 3]]) as usize;
        let d = data.slice(pos + 11..pos + 11 + size);
        pos += 11 + size + 4;
        match kind {
            9 if d[0] & 0x80 != 0 => {
                // Enhanced: [ex|frametype|packettype][fourcc]...
                let ft = (d[0] >> 4) & 7;
                let pt = d[0] & 0xf;
                let fourcc = &d[1..5];
                let body = match pt {
                    0 => d.slice(5..),
                    1 if fourcc == b"hvc1" || fourcc == b"avc1" => d.slice(8..),
                    1 | 3 => d.slice(5..),
                    _ => continue,
                };
                tags.push(Tag {
                    kind,
                    key: ft == 1,
                    config: pt == 0,
                    body,
                });
            }
            9 => {
                if d[1] > 1 {
                    continue;
                }
                tags.push(Tag {
                    kind,
                    key: d[0] >> 4 == 1,
                    config: d[1] == 0,
                    body: d.slice(5..),
                });
            }
            8 if d[0] >> 4 == 10 => tags.push(Tag {
                kind,
                key: false,
                config: d[1] == 0,
                body: d.slice(2..),
            }),
            8 if d[0] >> 4 == 9 => {
                let pt = d[0] & 0xf;
                tags.push(Tag {
                    kind,
                    key: false,
                    config: pt == 0,
                    body: d.slice(5..),
                });
            }
            _ => {}
        }
    }
    tags
}

fn video_config(tags: &[Tag]) -> Bytes {
    tags.iter()
        .find(|t| t.kind == 9 && t.config)
        .expect("video sequence header")
        .body
        .clone()
}

fn video_frames(tags: &[Tag]) -> Vec<&Tag> {
    tags.iter()
        .filter(|t| t.kind == 9 && !t.config && !t.body.is_empty())
        .collect()
}

/// `key=value` pairs of one fixture's EXPECTED.txt line.
fn expected(name: &str) -> HashMap<String, String> {
    let text = std::fs::read_to_string(small("EXPECTED.txt")).unwrap();
    let line = text
        .lines()
        .find(|l| l.starts_with(&format!("{name}: ")))
        .unwrap_or_else(|| panic!("{name} not in EXPECTED.txt"));
    line[name.len() + 2..]
        .split('|')
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}

fn ffprobe_key_flags(path: &Path) -> Vec<bool> {
    let out = Command::new(tools::ffprobe())
        .args([
            "-v",
            "error",
            "-select_streams",
            "v:0",
            "-show_entries",
            "packet=flags",
            "-of",
            "csv=p=0",
        ])
        .arg(path)
        .output()
        .expect("run ffprobe");
    assert!(out.status.success());
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| l.starts_with('K'))
        .collect()
}

fn bit_depth_of(pix_fmt: &str) -> u8 {
    if pix_fmt.contains("10") {
        10
    } else {
        8
    }
}

fn check_video(info: &CodecInfo, e: &HashMap<String, String>) {
    assert_eq!(info.profile_name, Some(e["profile"].as_str()), "profile");
    assert_eq!(
        info.width.map(|w| w.to_string()).as_deref(),
        Some(e["width"].as_str()),
        "width"
    );
    assert_eq!(
        info.height.map(|h| h.to_string()).as_deref(),
        Some(e["height"].as_str()),
        "height"
    );
    assert_eq!(
        info.bit_depth,
        Some(bit_depth_of(&e["pix_fmt"])),
        "bit depth"
    );
    if e["level"] != "-99" {
        assert_eq!(
            info.level.map(|l| l.to_string()).as_deref(),
            Some(e["level"].as_str()),
            "level"
        );
    }
    if let Some((n, d)) = info.frame_rate {
        assert_eq!(format!("{n}/{d}"), e["r_frame_rate"], "frame rate");
    }
}

#[test]
fn h264_clips_match_ffprobe() {
    let names = [
        "h264-baseline.flv",
        "h264-main.flv",
        "h264-high-sar.flv",
        "h264-high10.flv",
        "h264-openh264-novui.flv",
    ];
    for name in names {
        let path = small(name);
        let tags = flv_tags(&path);
        let record = video_config(&tags);
        let e = expected(name);
        let info = CodecInfo::from_config_bytes(CodecId::H264, &record).unwrap();
        check_video(&info, &e);
        let rec = AvcDecoderConfigurationRecord::parse(&record).unwrap();
        let sps = rec.parse_sps().unwrap();
        if name.contains("novui") {
            // OpenH264's VUI has an aspect ratio and bitstream restriction but no timing
            let timing = sps.vui.as_ref().and_then(|v| v.timing);
            assert_eq!(
                (timing, info.frame_rate),
                (None, None),
                "{name}: no VUI timing"
            );
        } else {
            assert_eq!(info.frame_rate, Some((25, 1)), "{name}: x264 VUI timing");
        }
        let sar = sps.sar().map(|(a, b)| format!("{a}:{b}"));
        assert_eq!(
            sar.as_deref(),
            Some(e["sample_aspect_ratio"].as_str()),
            "{name}: SAR"
        );
        for pps in &rec.pps {
            h264::Pps::parse(pps).unwrap();
        }
        // the record FFmpeg built survives parse → build byte for byte
        assert_eq!(rec.to_bytes().unwrap(), record, "{name}: avcC round trip");
        // and building from the parameter sets yields the same record
        let rebuilt =
            AvcDecoderConfigurationRecord::from_parameter_sets(rec.sps.clone(), rec.pps.clone())
                .unwrap();
        assert_eq!(
            (
                rebuilt.profile_idc,
                rebuilt.level_idc,
                &rebuilt.sps,
                &rebuilt.pps
            ),
            (rec.profile_idc, rec.level_idc, &rec.sps, &rec.pps)
        );
        assert_eq!(
            info.codec_string(),
            format!(
                "avc1.{:02x}{:02x}{:02x}",
                sps.profile_idc, sps.constraint_flags, sps.level_idc
            )
        );
        // keyframes agree with ffprobe's packet flags; layouts round-trip
        let frames = video_frames(&tags);
        let flags = ffprobe_key_flags(&path);
        assert_eq!(frames.len(), flags.len(), "{name}: frame count");
        for (f, k) in frames.iter().zip(&flags) {
            assert_eq!(
                is_keyframe(CodecId::H264, &f.body),
                *k,
                "{name}: keyframe flag"
            );
            assert_eq!(f.key, *k, "{name}: FLV frame type agrees with ffprobe");
            let annexb = h264::length_prefixed_to_annexb(&f.body, 4).unwrap();
            assert_eq!(h264::annexb_to_length_prefixed(&annexb).unwrap(), f.body);
        }
    }
}

#[test]
#[cfg(feature = "h265")]
fn hevc_clips_match_ffprobe() {
    for name in ["hevc-main.flv", "hevc-main10.flv"] {
        let tags = flv_tags(&small(name));
        let record = video_config(&tags);
        let info = CodecInfo::from_config_bytes(CodecId::H265, &record).unwrap();
        check_video(&info, &expected(name));
        let rec = HevcDecoderConfigurationRecord::parse(&record).unwrap();
        assert_eq!(rec.to_bytes().unwrap(), record, "{name}: hvcC round trip");
        let profile = if name.contains("10") { 2 } else { 1 };
        assert!(
            info.codec_string().starts_with(&format!("hvc1.{profile}.")),
            "{}",
            info.codec_string()
        );
        let vps: Vec<_> = rec.nalus_of(32).cloned().collect();
        let sps: Vec<_> = rec.nalus_of(33).cloned().collect();
        let pps: Vec<_> = rec.nalus_of(34).cloned().collect();
        let rebuilt = HevcDecoderConfigurationRecord::from_parameter_sets(vps, sps, pps).unwrap();
        assert_eq!(
            (rebuilt.ptl, rebuilt.chroma_format, rebuilt.bit_depth_luma),
            (rec.ptl, rec.chroma_format, rec.bit_depth_luma)
        );
        let frames = video_frames(&tags);
        assert!(frames.iter().filter(|f| f.key).count() >= 2);
        for f in frames {
            assert_eq!(
                is_keyframe(CodecId::H265, &f.body),
                f.key,
                "{name}: IRAP flag"
            );
        }
    }
}

#[test]
#[cfg(feature = "vp9")]
fn vp9_clips_match_ffprobe() {
    for name in ["vp9-profile0.flv", "vp9-profile2.flv"] {
        let tags = flv_tags(&small(name));
        let e = expected(name);
        let ffmpeg_vpcc = VpCodecConfigurationRecord::parse(&video_config(&tags)).unwrap();
        let frames = video_frames(&tags);
        let first = frames.first().unwrap();
        let info = CodecInfo::from_vp9_keyframe(&first.body, Some((25, 1))).unwrap();
        check_video(&info, &e);
        let ours = VpCodecConfigurationRecord::from_keyframe(&first.body, None).unwrap();
        assert_eq!(
            (
                ours.profile,
                ours.bit_depth,
                ours.chroma_subsampling,
                ours.full_range
            ),
            (
                ffmpeg_vpcc.profile,
                ffmpeg_vpcc.bit_depth,
                ffmpeg_vpcc.chroma_subsampling,
                ffmpeg_vpcc.full_range
            ),
            "{name}: vpcC from the key frame vs FFmpeg's"
        );
        assert_eq!(
            VpCodecConfigurationRecord::parse(&ours.to_bytes().unwrap())
                .unwrap()
                .level,
            ours.level
        );
        assert_eq!(
            info.codec_string(),
            format!("vp09.0{}.10.{:02}", ours.profile, ours.bit_depth)
        );
        for f in frames {
            assert_eq!(
                is_keyframe(CodecId::Vp9, &f.body),
                f.key,
                "{name}: key frame flag"
            );
            for sub in vp9::superframe_frames(&f.body).unwrap() {
                vp9::FrameHeader::parse(&sub).unwrap();
            }
        }
    }
}

#[test]
#[cfg(feature = "av1")]
fn av1_matches_probe() {
    // PROBE.txt: av1 (Main), yuv420p, 640x360, 25 fps
    let tags = flv_tags(&tools::fixture("av1-opus.enhanced.flv"));
    let record = video_config(&tags);
    let rec = av1::Av1CodecConfigurationRecord::parse(&record).unwrap();
    assert_eq!(rec.to_bytes(), record, "av1C round trip");
    let info = CodecInfo::from_config_bytes(CodecId::Av1, &record).unwrap();
    assert_eq!(
        (info.profile_name, info.width, info.height, info.bit_depth),
        (Some("Main"), Some(640), Some(360), Some(8))
    );
    assert_eq!(
        info.codec_string(),
        format!("av01.0.{:02}M.08", rec.level_idx)
    );
    let rebuilt = av1::Av1CodecConfigurationRecord::from_obus(&rec.config_obus).unwrap();
    assert_eq!(rebuilt.to_bytes(), record);
    let frames = video_frames(&tags);
    assert!(frames.iter().filter(|f| f.key).count() >= 3);
    for f in &frames {
        assert_eq!(is_keyframe(CodecId::Av1, &f.body), f.key, "key frame flag");
        let canon = av1::to_canonical(&f.body).unwrap();
        assert_eq!(
            canon.as_ptr(),
            f.body.as_ptr(),
            "already canonical: no copy"
        );
    }
    // Opus config in the same file: PROBE.txt says 48000 Hz mono
    let opus = tags.iter().find(|t| t.kind == 8 && t.config).unwrap();
    let o = CodecInfo::from_config_bytes(CodecId::Opus, &opus.body).unwrap();
    assert_eq!(
        (o.sample_rate, o.channels, o.codec_string()),
        (Some(48000), Some(1), "Opus")
    );
}

#[test]
#[cfg(feature = "av1")]
fn av1_obu_stream_converts_to_canonical() {
    // FFmpeg's low-overhead OBU muxer writes temporal delimiters: split the
    // stream at them and convert each temporal unit.
    let out = Command::new(tools::ffmpeg())
        .args(["-v", "error", "-i"])
        .arg(tools::fixture("av1-opus.mp4"))
        .args([
            "-map",
            "0:v",
            "-c",
            "copy",
            "-frames:v",
            "30",
            "-f",
            "obu",
            "-",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let data = Bytes::from(out.stdout);
    let obus: Vec<_> = av1::Obus::new(data.clone())
        .collect::<Result<_, _>>()
        .unwrap();
    let tds = obus
        .iter()
        .filter(|o| o.obu_type == av1::obu_type::TEMPORAL_DELIMITER)
        .count();
    assert_eq!(tds, 30);
    let canon = av1::to_canonical(&data).unwrap();
    assert!(
        av1::Obus::new(canon.clone()).all(|o| o.is_ok_and(|o| o.has_size_field && o.obu_type != 2))
    );
    assert!(is_keyframe(CodecId::Av1, &canon));
}

#[test]
#[cfg(feature = "vvc")]
fn vvc_matches_ffmpeg9() {
    // FFmpeg 9 says: vvc (Main 10), yuv420p10le, 640x360 (PROBE.txt)
    let mp4 = Bytes::from(std::fs::read(tools::fixture("vvc.mp4")).unwrap());
    let at = mp4.windows(4).position(|w| w == b"vvcC").expect("vvcC box");
    let size = u32::from_be_bytes(mp4[at - 4..at].try_into().unwrap()) as usize;
    let body = mp4.slice(at + 4..at - 4 + size); // FullBox header + record
    let rec = VvcDecoderConfigurationRecord::parse(&body).unwrap();
    assert_eq!(rec.to_bytes().unwrap(), body.slice(4..), "vvcC round trip");
    let info = CodecInfo::from_config_bytes(CodecId::Vvc, &body).unwrap();
    assert_eq!(
        (info.profile_name, info.width, info.height, info.bit_depth),
        (Some("Main 10"), Some(640), Some(360), Some(10))
    );
    assert!(
        info.codec_string().starts_with("vvc1.1.L"),
        "{}",
        info.codec_string()
    );
    // the Annex-B elementary stream: parameter sets rebuild the same PTL
    let es = Bytes::from(std::fs::read(tools::fixture("vvc.annexb.h266")).unwrap());
    let nals: Vec<Bytes> = AnnexBNals::new(es.clone()).collect();
    let of = |t| {
        nals.iter()
            .filter(|n| vvc::nal_type_of(n) == Some(t))
            .take(1)
            .cloned()
            .collect::<Vec<_>>()
    };
    let built = VvcDecoderConfigurationRecord::from_parameter_sets(
        of(vvc::nal_type::VPS),
        of(vvc::nal_type::SPS),
        of(vvc::nal_type::PPS),
    )
    .unwrap();
    assert_eq!(
        built.ptl.as_ref().map(|p| &p.ptl),
        rec.ptl.as_ref().map(|p| &p.ptl)
    );
    let built_bytes = built.to_bytes().unwrap();
    assert_eq!(
        VvcDecoderConfigurationRecord::parse(&built_bytes).unwrap(),
        built
    );
    // 6 s with a keyframe every 50 frames (make.sh -g 50): IRAPs at 0, 2 s, 4 s at least
    let irap = nals.iter().filter(|n| vvc::is_irap(n)).count();
    assert!(irap >= 3, "{irap} IRAP slices");
    let lp = nal::annexb_to_length_prefixed(&es).unwrap();
    assert!(is_keyframe(CodecId::Vvc, &lp));
    assert_eq!(nal::LengthPrefixedNals::new(lp, 4).count(), nals.len());
}

#[test]
#[cfg(all(feature = "h265", feature = "vp9"))]
fn main_fixtures_match_probe() {
    // PROBE.txt: h264 (High) 640x360 [SAR 1:1] 25 fps; aac (LC) 48000 Hz mono
    let tags = flv_tags(&tools::fixture("h264-aac.flv"));
    let v = CodecInfo::from_config_bytes(CodecId::H264, &video_config(&tags)).unwrap();
    assert_eq!(
        (v.profile_name, v.width, v.height, v.frame_rate),
        (Some("High"), Some(640), Some(360), Some((25, 1)))
    );
    assert_eq!(v.codec_string(), "avc1.64001e");
    let asc = tags.iter().find(|t| t.kind == 8 && t.config).unwrap();
    let a = CodecInfo::from_config_bytes(CodecId::Aac, &asc.body).unwrap();
    assert_eq!(
        (a.profile_name, a.sample_rate, a.channels, a.codec_string()),
        (Some("LC"), Some(48000), Some(1), "mp4a.40.2")
    );
    // hevc (Main) 640x360
    let tags = flv_tags(&tools::fixture("hevc-aac.enhanced.flv"));
    let h = CodecInfo::from_config_bytes(CodecId::H265, &video_config(&tags)).unwrap();
    assert_eq!(
        (h.profile_name, h.width, h.height, h.bit_depth),
        (Some("Main"), Some(640), Some(360), Some(8))
    );
    // vp9 (Profile 0) 640x360, opus 48000 mono
    let tags = flv_tags(&tools::fixture("vp9-opus.enhanced.flv"));
    let p = CodecInfo::from_config_bytes(CodecId::Vp9, &video_config(&tags)).unwrap();
    assert_eq!((p.profile_name, p.bit_depth), (Some("Profile 0"), Some(8)));
    let first = video_frames(&tags)[0];
    let k = CodecInfo::from_vp9_keyframe(&first.body, Some((25, 1))).unwrap();
    assert_eq!(
        (k.width, k.height, k.level),
        (Some(640), Some(360), Some(21))
    );
}

#[test]
fn adts_stream_matches_ffprobe_and_rebuilds_identically() {
    let path = tools::fixture("aac.adts.aac");
    let data = Bytes::from(std::fs::read(&path).unwrap());
    let frames: Vec<_> = AdtsFrames::new(data.clone())
        .collect::<Result<_, _>>()
        .unwrap();
    let out = Command::new(tools::ffprobe())
        .args([
            "-v",
            "error",
            "-show_entries",
            "packet=size",
            "-of",
            "csv=p=0",
        ])
        .arg(&path)
        .output()
        .unwrap();
    let sizes: Vec<usize> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.trim().parse().ok())
        .collect();
    assert_eq!(frames.len(), sizes.len(), "frame count vs ffprobe");
    let mut rebuilt = BytesMut::new();
    for f in &frames {
        assert_eq!(
            (
                f.header.sample_rate(),
                f.header.channel_configuration,
                f.header.object_type
            ),
            (48000, 1, 2)
        );
        aac::raw_to_adts(&f.header.audio_specific_config(), &f.payload, &mut rebuilt).unwrap();
    }
    assert_eq!(
        rebuilt.freeze(),
        data,
        "raw → ADTS reproduces FFmpeg's ADTS stream"
    );
    assert_eq!(
        AudioSpecificConfig::parse(&frames[0].header.audio_specific_config().to_bytes().unwrap())
            .unwrap()
            .sampling_frequency,
        48000
    );
}

#[test]
fn annexb_elementary_streams_round_trip() {
    for name in ["h264.annexb.h264", "hevc.annexb.h265", "vvc.annexb.h266"] {
        let es = Bytes::from(std::fs::read(tools::fixture(name)).unwrap());
        let nals: Vec<Bytes> = AnnexBNals::new(es.clone()).collect();
        let lp = nal::annexb_to_length_prefixed(&es).unwrap();
        let back = nal::length_prefixed_to_annexb(&lp, 4).unwrap();
        assert_eq!(
            AnnexBNals::new(back.clone()).collect::<Vec<_>>(),
            nals,
            "{name}"
        );
        assert_eq!(
            nal::annexb_to_length_prefixed(&back).unwrap(),
            lp,
            "{name}: Annex-B → LP → Annex-B → LP is stable"
        );
    }
}
