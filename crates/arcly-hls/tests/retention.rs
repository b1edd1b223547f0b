//! RFC 8216bis §6.2.2: "When the server removes a Media Segment URI from the
//! Playlist, the corresponding Media Segment MUST remain available to
//! clients for a period of time equal to the duration of the segment plus
//! the duration of the longest Playlist file distributed by the server
//! containing that segment." (Issue 18, item 13.)
//!
//! Synthetic frames drive the sans-IO segmenter; time is the media time of
//! the frames pushed (a live publisher is paced at real time). After every
//! frame the test renders the playlist, notes for each segment the longest
//! playlist that listed it and the time it left, and checks the segment is
//! still served for the whole period — and that memory stays bounded.

use arcly_core::{CodecId, FrameFlags, MediaFrame};
use arcly_hls::checker;
use arcly_hls::stream::{HlsConfig, HlsStream, SegmentFormat};
use bytes::Bytes;
use std::collections::HashMap;
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

#[derive(Default)]
struct Seen {
    /// Longest playlist (seconds of media, segments and parts) that listed it.
    longest: f64,
    duration: f64,
    /// Media time (ms) at which it was no longer listed.
    left_at: Option<i64>,
}

/// The segment URIs listed in `text` with their durations, and the
/// playlist's duration: its segments plus the parts listed after them.
fn listed(text: &str) -> (Vec<(String, f64)>, f64) {
    let s = checker::check(text).unwrap_or_else(|e| panic!("{e:?}\n{text}"));
    let mut segs = Vec::new();
    let mut pending = None;
    let mut tail_parts = 0.0;
    for line in text.lines() {
        if let Some(d) = line.strip_prefix("#EXTINF:") {
            pending = Some(d.trim_end_matches(',').parse::<f64>().unwrap());
            tail_parts = 0.0;
        } else if let Some(p) = line.strip_prefix("#EXT-X-PART:DURATION=") {
            tail_parts += p.split(',').next().unwrap().parse::<f64>().unwrap();
        } else if !line.starts_with('#') && !line.is_empty() {
            segs.push((line.to_owned(), pending.take().unwrap()));
        }
    }
    let total = segs.iter().map(|(_, d)| d).sum::<f64>() + tail_parts;
    assert_eq!(s.segments.len(), segs.len());
    (segs, total)
}

fn run(ll: bool, window: usize, gop_ms: i64) {
    let mut hls = HlsStream::new(HlsConfig {
        segment_target: Duration::from_secs(1),
        part_target: ll.then_some(Duration::from_millis(250)),
        window,
        format: SegmentFormat::Fmp4,
        ..HlsConfig::default()
    });
    hls.push(&MediaFrame::config(CodecId::H264, 0, avcc()))
        .unwrap();
    let payload = Bytes::from_static(&[0, 0, 0, 2, 0x65, 0x88]);
    let mut seen: HashMap<String, Seen> = HashMap::new();
    let mut max_in_memory = 0;
    // 60 s at 25 fps.
    for i in 0..1500i64 {
        let t = i * 40;
        let mut f = MediaFrame::video(CodecId::H264, t, t, payload.clone());
        if t % gop_ms == 0 {
            f = f.with_flags(FrameFlags::KEYFRAME);
        }
        hls.push(&f).unwrap();
        let Some(text) = hls.playlist(false) else {
            continue;
        };
        let (segs, total) = listed(&text);
        for (uri, d) in &segs {
            let s = seen.entry(uri.clone()).or_default();
            s.longest = s.longest.max(total);
            s.duration = *d;
        }
        let mut in_memory = 0;
        for (uri, s) in &mut seen {
            if s.left_at.is_none() && !segs.iter().any(|(u, _)| u == uri) {
                s.left_at = Some(t);
            }
            let served = hls.resource(uri).is_some();
            in_memory += usize::from(served);
            if let Some(left) = s.left_at {
                let due_ms = ((s.duration + s.longest) * 1000.0).ceil() as i64;
                if t - left < due_ms {
                    assert!(
                        served,
                        "{uri} (EXTINF {}, longest playlist {}) gone {} ms after it left \
                         the playlist, before the {due_ms} ms of RFC 8216bis §6.2.2 \
                         (ll {ll}, window {window})",
                        s.duration,
                        s.longest,
                        t - left
                    );
                }
            }
        }
        max_in_memory = max_in_memory.max(in_memory);
    }
    // Memory stays bounded: the window, what §6.2.2 needs (the segment's
    // own duration plus a playlist's worth, one segment more with parts)
    // and one segment of slack for the check happening at segment ends.
    let bound = 2 * window + 3;
    assert!(
        max_in_memory <= bound,
        "{max_in_memory} segments in memory, more than {bound} (ll {ll}, window {window})"
    );
    assert!(seen.values().filter(|s| s.left_at.is_some()).count() > 20);
}

#[test]
fn a_segment_outlives_its_playlist_by_its_duration_plus_the_playlist() {
    for ll in [false, true] {
        for window in [1, 3, 6] {
            for gop_ms in [1000, 2000] {
                run(ll, window, gop_ms);
            }
        }
    }
}
