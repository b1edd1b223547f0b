//! Muxer contract details and demuxer error handling.

mod common;

use arcly_core::frame::{CodecId, FourCc, FrameFlags, MediaFrame};
use arcly_core::traits::{ContainerFormat, Muxer};
use arcly_core::StreamError;
use arcly_mpegts::packet::{TsPacket, PACKET_SIZE};
use arcly_mpegts::{psi, MpegTsMuxer, TsDemuxer, TsError};
use bytes::Bytes;

const ASC: Bytes = Bytes::from_static(&[0x11, 0x88]);

fn aac(ts: i64) -> MediaFrame {
    MediaFrame::audio(
        CodecId::Aac,
        ts,
        Bytes::from_static(&[0x21, 0x10, 0x05, 0x00]),
    )
}

fn packets(ts: &[u8]) -> Vec<TsPacket<'_>> {
    ts.chunks_exact(PACKET_SIZE)
        .map(|p| TsPacket::parse(p.try_into().unwrap()).unwrap())
        .collect()
}

#[test]
fn codecs_ts_cannot_carry_are_unsupported() {
    let mut mux = MpegTsMuxer::new();
    assert_eq!(mux.format(), ContainerFormat::MpegTs);
    assert!(mux.init_segment().unwrap().is_none());
    for codec in [
        CodecId::Av1,
        CodecId::Vp9,
        CodecId::Vvc,
        CodecId::Other(FourCc(*b"abcd")),
    ] {
        let f = MediaFrame::video(codec, 0, 0, Bytes::from_static(b"x"));
        let err = mux.write_frame(&f).unwrap_err();
        assert!(matches!(err, StreamError::Unsupported(_)), "{codec}: {err}");
    }
    // AAC object type 42 (USAC) and a PCE channel layout have no ADTS form.
    let usac = MediaFrame::config(CodecId::Aac, 0, Bytes::from_static(&[0xF9, 0x46, 0x40]));
    assert!(mux.write_frame(&usac).is_err());
    // Opus with 3 channels in mapping family 255 cannot be described.
    let mut head = b"OpusHead".to_vec();
    head.extend_from_slice(&[1, 3, 0, 0, 0x80, 0xBB, 0, 0, 0, 0, 255, 3, 0, 0, 1, 2]);
    let err = mux
        .write_frame(&MediaFrame::config(CodecId::Opus, 0, Bytes::from(head)))
        .unwrap_err();
    assert!(matches!(err, StreamError::Unsupported(_)), "{err}");
    // Metadata and end-of-stream markers are not media: ignored.
    mux.write_frame(&MediaFrame::metadata(0, Bytes::from_static(b"\x02")))
        .unwrap();
    mux.write_frame(&MediaFrame::end_of_stream()).unwrap();
}

#[test]
fn malformed_frames_are_errors_not_panics() {
    let mut mux = MpegTsMuxer::new();
    // AAC before its config
    assert!(matches!(
        mux.write_frame(&aac(0)),
        Err(StreamError::Protocol(_))
    ));
    // NAL length past the frame
    let bad = MediaFrame::video(CodecId::H264, 0, 0, Bytes::from_static(&[0, 0, 0, 9, 0x65]));
    assert!(matches!(
        mux.write_frame(&bad),
        Err(StreamError::Protocol(_))
    ));
    // a truncated avcC
    let cfg = MediaFrame::config(
        CodecId::H264,
        0,
        Bytes::from_static(&[1, 0x64, 0, 0x1F, 0xFF, 0xE1, 0, 9]),
    );
    assert!(mux.write_frame(&cfg).is_err());
}

#[test]
fn pmt_lists_stream_types_and_opus_descriptors() {
    let mut mux = MpegTsMuxer::new();
    mux.add_stream(CodecId::H265, 0).unwrap();
    mux.add_stream(CodecId::Aac, 0).unwrap();
    mux.add_stream(CodecId::Mp3, 1).unwrap();
    mux.add_stream(CodecId::Opus, 2).unwrap();
    mux.start_segment().unwrap();
    let ts = mux.flush().unwrap();
    let p = packets(&ts);
    assert_eq!(p[0].pid, 0);
    let pmt = psi::parse_pmt(&p[1].payload[1..]).unwrap();
    let types: Vec<u8> = pmt.streams.iter().map(|s| s.stream_type).collect();
    assert_eq!(types, [0x24, 0x0F, 0x03, 0x06]);
    assert_eq!(pmt.pcr_pid, pmt.streams[0].pid, "PCR on the video PID");
    assert_eq!(pmt.streams[3].registration(), Some(*b"Opus"));
    assert_eq!(pmt.streams[3].descriptor(0x7F), Some(&[0x80, 2][..]));
}

#[test]
fn pcr_goes_on_audio_when_there_is_no_video_and_is_bridged_over_gaps() {
    let mut mux = MpegTsMuxer::new();
    mux.write_frame(&MediaFrame::config(CodecId::Aac, 0, ASC))
        .unwrap();
    mux.start_segment().unwrap();
    mux.write_frame(&aac(1000)).unwrap();
    mux.write_frame(&aac(1500)).unwrap(); // a 500 ms hole
    let ts = mux.flush().unwrap();
    let pcrs: Vec<u64> = packets(&ts)
        .iter()
        .filter_map(|p| p.adaptation.and_then(|a| a.pcr))
        .collect();
    assert!(pcrs.len() >= 12, "{pcrs:?}");
    assert!(pcrs
        .windows(2)
        .all(|w| w[1] >= w[0] && w[1] - w[0] <= 40 * 27_000));
    common::check_segments(&[ts], false);
}

#[test]
fn discontinuity_sets_the_indicator_and_reaches_the_demuxer() {
    let mut mux = MpegTsMuxer::new();
    mux.write_frame(&MediaFrame::config(CodecId::Aac, 0, ASC))
        .unwrap();
    mux.write_frame(&aac(0)).unwrap();
    mux.write_frame(&aac(21)).unwrap();
    mux.discontinuity();
    mux.write_frame(&aac(90_000)).unwrap();
    // the frame flag works too
    mux.write_frame(&aac(10).with_flags(FrameFlags::DISCONTINUITY))
        .unwrap();
    let ts = mux.flush().unwrap();
    let flagged = packets(&ts)
        .iter()
        .filter(|p| p.adaptation.is_some_and(|a| a.discontinuity))
        .count();
    assert_eq!(flagged, 2);
    let frames = common::demux_all(&ts);
    let media: Vec<&MediaFrame> = frames.iter().filter(|f| !f.is_config()).collect();
    let disc: Vec<bool> = media
        .iter()
        .map(|f| f.flags.contains(FrameFlags::DISCONTINUITY))
        .collect();
    assert_eq!(disc, [false, false, true, true]);
    assert_eq!(media[2].dts, 90_000 * 90);
}

#[test]
fn demuxer_reports_continuity_loss_and_recovers() {
    let mut mux = MpegTsMuxer::new();
    mux.write_frame(&MediaFrame::config(CodecId::Aac, 0, ASC))
        .unwrap();
    for i in 0..10 {
        mux.write_frame(&MediaFrame::audio(
            CodecId::Aac,
            i * 21,
            Bytes::from(vec![i as u8 + 1; 400]),
        ))
        .unwrap();
    }
    let ts = mux.flush().unwrap().to_vec();
    // drop the 5th packet
    let mut cut = ts[..4 * PACKET_SIZE].to_vec();
    cut.extend_from_slice(&ts[5 * PACKET_SIZE..]);
    let mut d = TsDemuxer::new();
    let err = d.push(&cut).unwrap_err();
    assert!(matches!(err, TsError::ContinuityError { .. }), "{err}");
    d.finish().unwrap();
    let n = std::iter::from_fn(|| d.next_frame())
        .filter(|f| !f.is_config())
        .count();
    assert_eq!(n, 9, "only the damaged frame is lost");
    assert_eq!(d.stats().continuity_errors, 1);
}

#[test]
fn demuxer_survives_garbage_truncation_and_bad_crc() {
    let mut mux = MpegTsMuxer::new();
    mux.write_frame(&MediaFrame::config(CodecId::Aac, 0, ASC))
        .unwrap();
    mux.start_segment().unwrap();
    for i in 0..5 {
        mux.write_frame(&aac(i * 21)).unwrap();
    }
    let ts = mux.flush().unwrap().to_vec();

    // garbage in front: sync is lost, then found
    let mut g = vec![0x12u8; 77];
    g.extend_from_slice(&ts);
    let mut d = TsDemuxer::new();
    assert!(matches!(d.push(&g), Err(TsError::SyncLost { skipped: 77 })));
    d.finish().unwrap();
    assert_eq!(
        std::iter::from_fn(|| d.next_frame())
            .filter(|f| !f.is_config())
            .count(),
        5
    );

    // a PMT with a broken CRC: refused, no stream
    let mut bad = ts.clone();
    bad[PACKET_SIZE + 10] ^= 0xFF;
    let mut d = TsDemuxer::new();
    assert!(matches!(d.push(&bad), Err(TsError::BadSection { .. })));
    assert_eq!(d.streams().count(), 0);

    // every truncation and single-byte corruption: errors at most, no panic
    for cut in (0..ts.len()).step_by(37) {
        let mut d = TsDemuxer::new();
        let _ = d.push(&ts[..cut]);
        let _ = d.finish();
        while d.next_frame().is_some() {}
    }
    for i in (0..ts.len()).step_by(11) {
        let mut c = ts.clone();
        c[i] = c[i].wrapping_add(0x5A);
        let mut d = TsDemuxer::new();
        let _ = d.push(&c);
        let _ = d.finish();
        while d.next_frame().is_some() {}
    }
}

#[test]
fn demuxer_bounds_pes_size() {
    let mut mux = MpegTsMuxer::new();
    let nal = [&[0u8, 0, 0x10, 0x01, 0x65][..], &vec![0x55u8; 0x1001 - 1]].concat();
    mux.write_frame(
        &MediaFrame::video(CodecId::H264, 0, 0, Bytes::from(nal)).with_flags(FrameFlags::KEYFRAME),
    )
    .unwrap();
    let ts = mux.flush().unwrap();
    let limits = arcly_mpegts::DemuxLimits {
        max_pes_size: 1024,
        ..Default::default()
    };
    let mut d = TsDemuxer::with_limits(limits);
    assert!(matches!(
        d.push(&ts),
        Err(TsError::LimitExceeded {
            limit: "max_pes_size",
            ..
        })
    ));
    d.finish().unwrap();
    assert!(d.next_frame().is_none());
}

#[test]
fn flush_hands_out_whole_packets_and_segments_start_with_psi() {
    let mut mux = MpegTsMuxer::new();
    mux.write_frame(&MediaFrame::config(CodecId::Aac, 0, ASC))
        .unwrap();
    assert!(mux.flush().unwrap().is_empty());
    mux.start_segment().unwrap();
    mux.write_frame(&aac(0)).unwrap();
    let a = mux.flush().unwrap();
    assert_eq!(a.len() % PACKET_SIZE, 0);
    let p = packets(&a);
    assert_eq!((p[0].pid, p[1].pid), (0, 0x1000));
    // no second PAT right after start_segment
    assert_eq!(p.iter().filter(|p| p.pid == 0).count(), 1);
}

/// PAT and PMT come right before every video keyframe, without
/// `start_segment`, and on the interval otherwise; audio trailing the video
/// clock does not make the muxer repeat them.
#[test]
fn psi_precedes_every_video_keyframe_and_follows_the_interval() {
    let cfg = arcly_mpegts::MuxerConfig {
        psi_interval: 90_000, // 1 s
        ..Default::default()
    };
    let mut mux = MpegTsMuxer::with_config(cfg);
    mux.write_frame(&MediaFrame::config(CodecId::Aac, 0, ASC))
        .unwrap();
    let idr = [&[0u8, 0, 0, 5, 0x65][..], &[0x77u8; 4]].concat();
    let non_idr = [&[0u8, 0, 0, 5, 0x41][..], &[0x77u8; 4]].concat();
    // 10 s at 25 fps, a keyframe every 37 frames (1.48 s, off the interval),
    // audio 10 ms behind the video.
    let mut keyframes = 0;
    for i in 0..250i64 {
        let key = i % 37 == 0;
        keyframes += usize::from(key);
        let payload = Bytes::from(if key { idr.clone() } else { non_idr.clone() });
        let mut f = MediaFrame::video(CodecId::H264, i * 40, i * 40, payload);
        if key {
            f.flags.insert(FrameFlags::KEYFRAME);
        }
        mux.write_frame(&f).unwrap();
        mux.write_frame(&aac(i * 40 - 10)).unwrap();
    }
    let ts = mux.flush().unwrap();
    let video_pid = mux
        .streams()
        .find(|s| s.1 == CodecId::H264)
        .map(|s| s.0)
        .unwrap();
    let p = packets(&ts);
    let mut seen_keys = 0;
    for (i, pkt) in p.iter().enumerate() {
        let key = pkt.payload_unit_start
            && pkt.pid == video_pid
            && pkt.adaptation.is_some_and(|a| a.random_access);
        if key {
            seen_keys += 1;
            assert!(i >= 2, "keyframe before any PSI");
            assert_eq!((p[i - 2].pid, p[i - 1].pid), (0, 0x1000), "packet {i}");
        }
    }
    assert_eq!(seen_keys, keyframes);
    let pats = p.iter().filter(|p| p.pid == 0).count();
    // One per keyframe (7) plus the 1 s interval between them (at most 10
    // more); the old rule rewrote them after nearly every audio frame.
    assert!(
        (keyframes..=keyframes + 10).contains(&pats),
        "{pats} PATs for {keyframes} keyframes in 10 s"
    );
}

mod hostile {
    use super::*;
    use proptest::prelude::*;

    fn valid_stream() -> Vec<u8> {
        let mut mux = MpegTsMuxer::new();
        mux.write_frame(&MediaFrame::config(CodecId::Aac, 0, ASC))
            .unwrap();
        let nal = [&[0u8, 0, 1, 0x2D, 0x65][..], &[0x77u8; 300]].concat();
        for i in 0..6 {
            mux.write_frame(&aac(i * 21)).unwrap();
            let f = MediaFrame::video(CodecId::H264, i * 40, i * 40 + 80, Bytes::from(nal.clone()));
            mux.write_frame(&f).unwrap();
        }
        mux.flush().unwrap().to_vec()
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

        /// Random bytes and random mutations of a valid stream: no panic,
        /// frames stay within the PES bound.
        #[test]
        fn demuxer_never_panics(
            noise in prop::collection::vec(any::<u8>(), 0..2000),
            edits in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..20),
            split in any::<prop::sample::Index>(),
        ) {
            for mut data in [noise.clone(), valid_stream()] {
                if !data.is_empty() {
                    for (i, b) in &edits {
                        let n = data.len();
                        data[i.index(n)] = *b;
                    }
                }
                let at = split.index(data.len() + 1);
                let mut d = TsDemuxer::new();
                let _ = d.push(&data[..at]);
                let _ = d.push(&data[at..]);
                let _ = d.finish();
                while let Some(f) = d.next_frame() {
                    prop_assert!(f.payload.len() <= arcly_mpegts::demux::MAX_PES_SIZE);
                }
            }
        }
    }
}

#[test]
fn contiguous_aac_frames_share_a_pes_and_round_trip_exactly() {
    // AAC-LC stereo at 48 kHz (1024 samples are 1920 ticks) and 44.1 kHz
    // (2089.79 ticks: the PTS follow the demuxer's integer formula, and a
    // frame whose PTS is not exactly the formula's from the PES start
    // begins a new PES).
    for (asc, rate) in [([0x11, 0x90], 48_000), ([0x12, 0x10], 44_100)] {
        aac_packing(asc, rate);
    }
}

fn aac_packing(asc: [u8; 2], rate: i64) {
    use arcly_core::frame::TimeBase;
    use arcly_mpegts::mux::MAX_AAC_FRAMES_PER_PES;
    let asc = Bytes::copy_from_slice(&asc);
    let frame = |pts: i64, n: u8| {
        MediaFrame::new(
            CodecId::Aac,
            TimeBase::MPEG_90K,
            pts,
            pts,
            Bytes::from(vec![0x21, n, 0x05, 0x00]),
        )
        .with_flags(FrameFlags::KEYFRAME)
    };
    let mut input = Vec::new();
    for k in 0..12i64 {
        input.push(frame(1000 + k * 1024 * 90_000 / rate, k as u8));
    }
    // A hole, then more frames; a flush must emit every frame written.
    for k in 0..3i64 {
        input.push(frame(900_000 + k * 1024 * 90_000 / rate, 100 + k as u8));
    }
    let mut mux = MpegTsMuxer::new();
    mux.write_frame(&MediaFrame::config(CodecId::Aac, 0, asc))
        .unwrap();
    let mut segments = Vec::new();
    mux.start_segment().unwrap();
    for f in &input[..13] {
        mux.write_frame(f).unwrap();
    }
    segments.push(mux.flush().unwrap());
    let first = common::demux_all(&segments[0]);
    assert_eq!(first.iter().filter(|f| !f.is_config()).count(), 13);
    mux.start_segment().unwrap();
    for f in &input[13..] {
        mux.write_frame(f).unwrap();
    }
    segments.push(mux.flush().unwrap());
    let ts: Vec<u8> = segments.iter().flat_map(|s| s.iter().copied()).collect();
    let pid = mux.streams().next().unwrap().0;
    let pes = packets(&ts)
        .iter()
        .filter(|p| p.pid == pid && p.payload_unit_start)
        .count();
    // 12 frames in PESes of at most 5, then 1 after the hole (the flush
    // ends its PES), then 2.
    let least = 12usize.div_ceil(MAX_AAC_FRAMES_PER_PES) + 2;
    if rate == 48_000 {
        assert_eq!(pes, least);
    } else {
        assert!(pes >= least && pes < input.len(), "{pes} PES");
    }
    let out: Vec<(Bytes, i64)> = common::demux_all(&ts)
        .into_iter()
        .filter(|f| !f.is_config())
        .map(|f| (f.payload.clone(), f.pts_in(TimeBase::MPEG_90K)))
        .collect();
    let want: Vec<(Bytes, i64)> = input.iter().map(|f| (f.payload.clone(), f.pts)).collect();
    assert_eq!(out, want);
    common::check_segments(&segments, false);
}
