//! mux → demux: the frames out equal the frames in (payload, timestamps,
//! keyframe flags, CONFIG records), for every codec, across the 33-bit wrap.

mod common;

use arcly_core::frame::{CodecId, FrameFlags, MediaFrame, TimeBase};
use arcly_core::testing::tools::fixture;
use arcly_core::traits::Muxer;
use arcly_mpegts::MpegTsMuxer;
use bytes::Bytes;
use proptest::prelude::*;
use std::sync::OnceLock;

/// A real avcC (from the H.264 fixture, through our demuxer).
fn avcc() -> Bytes {
    static R: OnceLock<Bytes> = OnceLock::new();
    R.get_or_init(|| {
        let ts = std::fs::read(fixture("h264-aac.ts")).unwrap();
        common::demux_all(&ts)
            .into_iter()
            .find(|f| f.is_config() && f.codec == CodecId::H264)
            .unwrap()
            .payload
    })
    .clone()
}

const ASC: [u8; 2] = [0x11, 0x90]; // AAC-LC, 48 kHz, stereo

fn opus_head() -> Bytes {
    let mut h = b"OpusHead".to_vec();
    h.extend_from_slice(&[1, 2, 0, 0]);
    h.extend_from_slice(&48000u32.to_le_bytes());
    h.extend_from_slice(&[0, 0, 0]);
    Bytes::from(h)
}

#[derive(Clone, Debug)]
struct VideoSpec {
    keyframe: bool,
    nals: Vec<Vec<u8>>,
    step: i64,
    cts: i64,
}

fn video_frame() -> impl Strategy<Value = VideoSpec> {
    (
        any::<bool>(),
        prop::collection::vec(prop::collection::vec(1u8..=255, 1..3000), 1..4),
        1i64..6000,
        0i64..9000,
    )
        .prop_map(|(keyframe, nals, step, cts)| VideoSpec {
            keyframe,
            nals,
            step,
            cts,
        })
}

/// Length-prefixed NAL units: an IDR/IRAP or non-IDR slice header first, the
/// rest non-VCL-free filler; no byte is 0, so no start-code emulation.
fn video_payload(h265: bool, v: &VideoSpec) -> Bytes {
    let mut out = Vec::new();
    for (i, body) in v.nals.iter().enumerate() {
        let header: &[u8] = match (h265, i == 0 && v.keyframe) {
            (false, true) => &[0x65],
            (false, false) => &[0x41],
            (true, true) => &[0x26, 0x01],  // IDR_W_RADL
            (true, false) => &[0x02, 0x01], // TRAIL_R
        };
        let nal = [header, body].concat();
        out.extend_from_slice(&(nal.len() as u32).to_be_bytes());
        out.extend_from_slice(&nal);
    }
    Bytes::from(out)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Video {
    None,
    H264,
    H265,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Audio {
    None,
    Aac,
    Opus,
}

fn build(
    video: Video,
    audio: Audio,
    vframes: &[VideoSpec],
    aframes: &[Vec<u8>],
    start: i64,
) -> Vec<MediaFrame> {
    let tb = TimeBase::MPEG_90K;
    let mut frames: Vec<(i64, MediaFrame)> = Vec::new();
    let vcodec = match video {
        Video::H264 => Some(CodecId::H264),
        Video::H265 => Some(CodecId::H265),
        Video::None => None,
    };
    if let Some(codec) = vcodec {
        if codec == CodecId::H264 {
            frames.push((
                i64::MIN,
                MediaFrame::new(codec, tb, start, start, avcc()).with_flags(FrameFlags::CONFIG),
            ));
        }
        let mut dts = start;
        for (i, v) in vframes.iter().enumerate() {
            let mut v = v.clone();
            if i == 0 {
                v.keyframe = true;
            }
            let mut f = MediaFrame::new(
                codec,
                tb,
                dts,
                dts + v.cts,
                video_payload(codec == CodecId::H265, &v),
            );
            if v.keyframe {
                f.flags.insert(FrameFlags::KEYFRAME);
            }
            frames.push((dts, f));
            dts += v.step;
        }
    }
    let acodec = match audio {
        Audio::Aac => Some(CodecId::Aac),
        Audio::Opus => Some(CodecId::Opus),
        Audio::None => None,
    };
    if let Some(codec) = acodec {
        let config = if codec == CodecId::Aac {
            Bytes::from_static(&ASC)
        } else {
            opus_head()
        };
        frames.push((
            i64::MIN,
            MediaFrame::new(codec, tb, start, start, config).with_flags(FrameFlags::CONFIG),
        ));
        for (i, p) in aframes.iter().enumerate() {
            let ts = start + i as i64 * 1920;
            frames.push((
                ts,
                MediaFrame::new(codec, tb, ts, ts, Bytes::from(p.clone()))
                    .with_flags(FrameFlags::KEYFRAME),
            ));
        }
    }
    frames.sort_by_key(|(t, _)| *t);
    frames.into_iter().map(|(_, f)| f).collect()
}

fn check(input: &[MediaFrame]) -> Result<(), TestCaseError> {
    let mut mux = MpegTsMuxer::new();
    mux.start_segment().unwrap();
    let mut ts = Vec::new();
    for f in input {
        mux.write_frame(f).unwrap();
        // flush at odd moments: output is the concatenation
        if f.payload.len() % 3 == 0 {
            ts.extend_from_slice(&mux.flush().unwrap());
        }
    }
    ts.extend_from_slice(&mux.flush().unwrap());
    let out = common::demux_all(&ts);
    for codec in [CodecId::H264, CodecId::H265, CodecId::Aac, CodecId::Opus] {
        let media_in: Vec<&MediaFrame> = input
            .iter()
            .filter(|f| f.codec == codec && !f.is_config())
            .collect();
        let media_out: Vec<&MediaFrame> = out
            .iter()
            .filter(|f| f.codec == codec && !f.is_config())
            .collect();
        prop_assert_eq!(media_in.len(), media_out.len(), "{} frame count", codec);
        let base_in = media_in.first().map(|f| f.dts);
        let base_out = media_out.first().map(|f| f.dts);
        for (a, b) in media_in.iter().zip(&media_out) {
            prop_assert_eq!(&a.payload, &b.payload, "{} payload", codec);
            prop_assert_eq!(
                a.dts - base_in.unwrap(),
                b.dts - base_out.unwrap(),
                "{} dts",
                codec
            );
            prop_assert_eq!(a.pts - a.dts, b.pts - b.dts, "{} pts", codec);
            prop_assert_eq!(a.is_keyframe(), b.is_keyframe(), "{} keyframe", codec);
            prop_assert_eq!(b.time_base, TimeBase::MPEG_90K);
        }
        // Absolute timestamps survive when they start below 2^33.
        if let (Some(a), Some(b)) = (base_in, base_out) {
            prop_assert_eq!(a.rem_euclid(1 << 33), b);
        }
        if matches!(codec, CodecId::H264 | CodecId::Aac | CodecId::Opus) {
            let cfg_in = input
                .iter()
                .find(|f| f.codec == codec && f.is_config())
                .map(|f| &f.payload);
            let cfg_out = out
                .iter()
                .find(|f| f.codec == codec && f.is_config())
                .map(|f| &f.payload);
            if !media_in.is_empty()
                && (codec != CodecId::H264 || media_in.iter().any(|f| f.is_keyframe()))
            {
                prop_assert_eq!(cfg_in, cfg_out, "{} CONFIG", codec);
            }
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn mux_demux_round_trip(
        video in prop_oneof![Just(Video::None), Just(Video::H264), Just(Video::H265)],
        audio in prop_oneof![Just(Audio::None), Just(Audio::Aac), Just(Audio::Opus)],
        vframes in prop::collection::vec(video_frame(), 1..12),
        aframes in prop::collection::vec(prop::collection::vec(any::<u8>(), 1..1500), 1..20),
        start in prop_oneof![0i64..1_000_000, ((1i64 << 33) - 400_000)..((1i64 << 33) + 10)],
    ) {
        let frames = build(video, audio, &vframes, &aframes, start);
        check(&frames)?;
    }
}

#[test]
fn large_video_frames_use_unbounded_pes() {
    let v = VideoSpec {
        keyframe: true,
        nals: vec![vec![7u8; 200_000], vec![9u8; 70_000]],
        step: 3600,
        cts: 0,
    };
    let frames = build(
        Video::H264,
        Audio::Aac,
        &[
            v.clone(),
            VideoSpec {
                keyframe: false,
                ..v
            },
        ],
        &vec![vec![1; 300]; 3],
        90_000,
    );
    check(&frames).unwrap();
}

#[test]
fn millisecond_timestamps_rescale_to_90k() {
    let mut mux = MpegTsMuxer::new();
    mux.write_frame(&MediaFrame::config(
        CodecId::Aac,
        0,
        Bytes::from_static(&ASC),
    ))
    .unwrap();
    for ts in [0i64, 21, 43, 64] {
        mux.write_frame(&MediaFrame::audio(
            CodecId::Aac,
            ts,
            Bytes::from_static(b"\x01\x02"),
        ))
        .unwrap();
    }
    let out = common::demux_all(&mux.flush().unwrap());
    let dts: Vec<i64> = out
        .iter()
        .filter(|f| !f.is_config())
        .map(|f| f.dts)
        .collect();
    assert_eq!(dts, [0, 21 * 90, 43 * 90, 64 * 90]);
}
