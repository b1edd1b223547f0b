//! Property: whatever frame sequence a publisher sends (keyframes late or
//! missing, timestamp jumps forwards and backwards, publishers leaving and
//! coming back, audio-only stretches), every playlist the segmenter shows
//! passes the checker, full and delta, and each reload follows from the
//! previous one.
//!
//! Frames come at a steady rhythm with jitter; a gap longer than any of the
//! last 16 (a dropped frame) can make one LL-HLS part one gap longer than
//! PART-TARGET, since a part's end is only known when the next frame comes.
//!
//! A stall longer than PART-TARGET (a random seed found one of 0.74 s after
//! a publisher came back) cannot fit in any part: the segmenter treats it as
//! a discontinuity; the regression file replays that case.

use arcly_core::{CodecId, FrameFlags, MediaFrame};
use arcly_hls::checker::{self, Summary};
use arcly_hls::stream::{HlsConfig, HlsStream, SegmentFormat};
use bytes::Bytes;
use proptest::prelude::*;
use std::time::Duration;

/// avcC of a 640x360 High profile stream (SPS + PPS).
fn avcc() -> Bytes {
    let sps = [
        0x67, 0x64, 0x00, 0x1e, 0xac, 0xd9, 0x40, 0xa0, 0x2f, 0xf9, 0x70, 0x11, 0x00, 0x00, 0x03,
        0x00, 0x01, 0x00, 0x00, 0x03, 0x00, 0x32, 0x0f, 0x16, 0x2d, 0x96,
    ];
    let mut v = vec![1, 0x64, 0, 0x1e, 0xff, 0xe1, 0, sps.len() as u8];
    v.extend_from_slice(&sps);
    v.extend_from_slice(&[1, 0, 4, 0x68, 0xeb, 0xe3, 0xcb]);
    Bytes::from(v)
}

#[derive(Clone, Debug)]
enum Ev {
    /// A video frame `gap` ms after the last, keyframe or not, with `audio` AAC frames after it.
    Video { gap: i64, key: bool, audio: u8 },
    /// A timestamp jump of `ms` (may be negative).
    Jump(i64),
    /// The publisher leaves; the next one restarts its clock at `restart` ms.
    Leave { restart: i64 },
}

fn event() -> impl Strategy<Value = Ev> {
    prop_oneof![
        20 => (-2i64..=2, prop::bool::weighted(0.08), 0u8..3)
            .prop_map(|(jitter, key, audio)| Ev::Video { gap: 40 + jitter, key, audio }),
        1 => prop_oneof![-40_000i64..-10_100, 10_100i64..60_000, -2_000i64..0].prop_map(Ev::Jump),
        1 => (0i64..100_000).prop_map(|restart| Ev::Leave { restart }),
    ]
}

fn check_all(hls: &HlsStream, prev: &mut Option<Summary>) -> Result<(), TestCaseError> {
    let Some(text) = hls.playlist(false) else {
        return Ok(());
    };
    let s = checker::check(&text).map_err(|e| TestCaseError::fail(format!("{e:#?}\n{text}")))?;
    if let Some(p) = prev.as_ref() {
        checker::check_reload(p, &s)
            .map_err(|e| TestCaseError::fail(format!("reload {e:#?}\n{text}")))?;
    }
    let delta = hls.playlist(true).unwrap();
    checker::check(&delta).map_err(|e| TestCaseError::fail(format!("delta {e:#?}\n{delta}")))?;
    *prev = Some(s);
    Ok(())
}

proptest! {
    // A fixed seed keeps CI deterministic; the cases random seeds found are
    // replayed first from `segmenter_props.proptest-regressions`. Comment
    // the seed out locally (or run the `segmenter` fuzz target) to explore.
    #![proptest_config(ProptestConfig {
        cases: 48,
        rng_seed: proptest::test_runner::RngSeed::Fixed(0x0a5c_1e55),
        ..ProptestConfig::default()
    })]
    #[test]
    fn every_playlist_state_passes_the_checker(
        events in proptest::collection::vec(event(), 1..700),
        ll in any::<bool>(),
        fmp4 in any::<bool>(),
        window in 1usize..8,
    ) {
        let mut hls = HlsStream::new(HlsConfig {
            segment_target: Duration::from_secs(1),
            part_target: ll.then_some(Duration::from_millis(300)),
            window,
            format: if fmp4 { SegmentFormat::Fmp4 } else { SegmentFormat::MpegTs },
            ..HlsConfig::default()
        });
        let configs = [
            MediaFrame::config(CodecId::H264, 0, avcc()),
            MediaFrame::config(CodecId::Aac, 0, Bytes::from_static(&[0x11, 0x88])),
        ];
        let mut t = 0i64;
        let mut prev = None;
        let mut need_config = true;
        let payload = Bytes::from_static(&[0, 0, 0, 2, 0x65, 0x88]);
        for ev in events {
            if need_config {
                for c in &configs {
                    let mut c = c.clone();
                    c.dts = t;
                    c.pts = t;
                    hls.push(&c).unwrap();
                }
                need_config = false;
            }
            match ev {
                Ev::Video { gap, key, audio } => {
                    t += gap;
                    let mut f = MediaFrame::video(CodecId::H264, t, t + 40, payload.clone());
                    if key {
                        f = f.with_flags(FrameFlags::KEYFRAME);
                    }
                    hls.push(&f).unwrap();
                    for a in 0..i64::from(audio) {
                        hls.push(&MediaFrame::audio(CodecId::Aac, t + a * 20, Bytes::from_static(b"\x21\x00"))).unwrap();
                    }
                }
                Ev::Jump(ms) => t = (t + ms).max(0),
                Ev::Leave { restart } => {
                    hls.push(&MediaFrame::end_of_stream()).unwrap();
                    t = restart;
                    need_config = true;
                }
            }
            check_all(&hls, &mut prev)?;
        }
        hls.end();
        check_all(&hls, &mut prev)?;
    }
}
