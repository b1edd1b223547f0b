//! LL-HLS holds each segment once (issue 18, item 15): a segment is the
//! concatenation of its parts, so once it is complete its parts are views
//! of the segment's one buffer (`Bytes::slice`), not a second copy of the
//! same media.

use arcly_core::{CodecId, FrameFlags, MediaFrame};
use arcly_hls::stream::{HlsConfig, HlsStream, SegmentFormat};
use bytes::Bytes;
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

/// 20 s of 25 fps video (2 s GOPs, 4 kB frames) through an LL-HLS
/// segmenter with 250 ms parts.
fn packaged(format: SegmentFormat) -> HlsStream {
    let mut hls = HlsStream::new(HlsConfig {
        segment_target: Duration::from_secs(2),
        part_target: Some(Duration::from_millis(250)),
        window: 4,
        format,
        ..HlsConfig::default()
    });
    hls.push(&MediaFrame::config(CodecId::H264, 0, avcc()))
        .unwrap();
    let mut nal = vec![0u8; 4096];
    nal[..4].copy_from_slice(&4092u32.to_be_bytes());
    nal[4] = 0x65;
    let payload = Bytes::from(nal);
    for i in 0..500i64 {
        let t = i * 40;
        let mut f = MediaFrame::video(CodecId::H264, t, t, payload.clone());
        if t % 2000 == 0 {
            f = f.with_flags(FrameFlags::KEYFRAME);
        }
        hls.push(&f).unwrap();
    }
    hls
}

#[test]
fn parts_of_a_complete_segment_are_views_of_its_one_buffer() {
    for format in [SegmentFormat::Fmp4, SegmentFormat::MpegTs] {
        let hls = packaged(format);
        let p = hls.media_playlist().unwrap();
        let mut checked = 0;
        for (i, entry) in p.segments.iter().enumerate() {
            let msn = p.media_sequence + i as u64;
            let seg = hls.segment(msn).unwrap();
            assert!(
                entry.parts.len() >= 8,
                "{format:?}: {} parts",
                entry.parts.len()
            );
            // Where each part's bytes live: right after the previous part,
            // inside the segment's buffer.
            let mut at = seg.as_ptr() as usize;
            let mut total = 0;
            for idx in 0..entry.parts.len() {
                let part = hls.part(msn, idx).unwrap();
                assert_eq!(
                    part.as_ptr() as usize,
                    at,
                    "{format:?}: part {msn}.{idx} is a copy, not a view of segment {msn}"
                );
                at += part.len();
                total += part.len();
            }
            assert_eq!(
                total,
                seg.len(),
                "{format:?}: the parts make up the segment"
            );
            checked += 1;
        }
        assert_eq!(checked, 4);
        // The accounting agrees: the segments in memory once, plus the
        // parts of the one in progress and the init segment (a few kB).
        let stored: usize = (0..=hls.position().msn)
            .filter_map(|msn| hls.segment(msn))
            .map(|b| b.len())
            .sum();
        let held = hls.held_bytes();
        assert!(
            held >= stored && held < stored + stored / 5,
            "{format:?}: {held} bytes held for {stored} bytes of segments"
        );
    }
}
