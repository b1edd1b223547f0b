//! The segmenter never panics on any frame sequence (codecs, flags,
//! timestamps, configuration records and payloads from the input), and
//! its playlists always render; the HTTP router never panics on any path.
#![no_main]
use arcly_core::{CodecId, FrameFlags, FrameType, MediaFrame, TimeBase};
use arcly_hls::stream::{HlsConfig, HlsStream, SegmentFormat};
use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use std::time::Duration;

const CODECS: [CodecId; 7] = [
    CodecId::H264,
    CodecId::H265,
    CodecId::Av1,
    CodecId::Vp9,
    CodecId::Aac,
    CodecId::Opus,
    CodecId::Mp3,
];

fuzz_target!(|data: &[u8]| {
    let Some((&mode, mut rest)) = data.split_first() else { return };
    if let Ok(s) = std::str::from_utf8(rest) {
        let _ = arcly_hls::http::is_hls_path(s);
    }
    let mut hls = HlsStream::new(HlsConfig {
        segment_target: Duration::from_millis(500),
        part_target: (mode & 1 == 1).then_some(Duration::from_millis(200)),
        window: usize::from(mode >> 5) + 1,
        format: match (mode >> 1) & 3 {
            0 => SegmentFormat::MpegTs,
            1 => SegmentFormat::Fmp4,
            _ => SegmentFormat::Auto,
        },
        ..HlsConfig::default()
    });
    let mut t: i64 = 0;
    // Each frame: [codec/kind, flags, dts step (i16 ms), cts (u8), len (u8), payload…]
    while rest.len() >= 5 {
        let (head, tail) = rest.split_at(5);
        let len = usize::from(head[4]).min(tail.len());
        let payload = Bytes::copy_from_slice(&tail[..len]);
        rest = &tail[len..];
        let codec = CODECS[usize::from(head[0] % 7)];
        t = t.saturating_add(i64::from(i16::from_be_bytes([head[2], head[3]])));
        let mut f = MediaFrame::new(codec, TimeBase::MILLIS, t, t + i64::from(head[1] >> 4), payload);
        f.frame_type = if codec.is_video() { FrameType::Video } else { FrameType::Audio };
        f.track = head[0] >> 7;
        let flags = head[1] & 0x0f;
        if flags & 1 != 0 {
            f.flags |= FrameFlags::KEYFRAME;
        }
        if flags & 2 != 0 {
            f.flags |= FrameFlags::CONFIG;
        }
        if flags & 4 != 0 {
            f.flags |= FrameFlags::DISCONTINUITY;
        }
        if flags == 8 {
            f = MediaFrame::end_of_stream();
        }
        let _ = hls.push(&f);
        let _ = hls.playlist(false);
        let _ = hls.playlist(true);
    }
    hls.end();
    if let Some(text) = hls.playlist(false) {
        assert!(text.ends_with("#EXT-X-ENDLIST\n"));
    }
    let _ = hls.variant("index.m3u8");
});
