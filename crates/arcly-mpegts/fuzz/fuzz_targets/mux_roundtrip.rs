//! Fuzz the muxer: arbitrary frames (H.264/H.265 access units with
//! arbitrary NAL bodies, AAC and Opus packets, arbitrary timestamps across
//! the 33-bit wrap) → `MpegTsMuxer` → `TsDemuxer`. Nothing may panic, the
//! demuxer must accept the muxer's output without error, and every media
//! frame must come back with the same payload, timestamps and keyframe flag.
#![no_main]

use arcly_core::frame::{CodecId, FrameFlags, MediaFrame, TimeBase};
use arcly_core::traits::Muxer;
use arcly_mpegts::{MpegTsMuxer, TsDemuxer};
use bytes::Bytes;
use libfuzzer_sys::arbitrary::{Result, Unstructured};
use libfuzzer_sys::fuzz_target;

/// avcC of the H.264 fixture (High, 640x360): SPS and PPS.
const SPS: &[u8] = &[
    0x67, 0x64, 0x00, 0x1e, 0xac, 0xd9, 0x40, 0xa0, 0x2f, 0xf9, 0x70, 0x11, 0x00, 0x00, 0x03, 0x00,
    0x01, 0x00, 0x00, 0x03, 0x00, 0x32, 0x0f, 0x16, 0x2d, 0x96,
];
const PPS: &[u8] = &[0x68, 0xef, 0xbc, 0xb0];
const ASC: &[u8] = &[0x11, 0x90]; // AAC-LC, 48 kHz, stereo

fn avcc() -> Bytes {
    let mut r = vec![1, SPS[1], SPS[2], SPS[3], 0xFF, 0xE1];
    r.extend_from_slice(&(SPS.len() as u16).to_be_bytes());
    r.extend_from_slice(SPS);
    r.push(1);
    r.extend_from_slice(&(PPS.len() as u16).to_be_bytes());
    r.extend_from_slice(PPS);
    r.extend_from_slice(&[0xFD, 0xF8, 0xF8, 0]); // 4:2:0, 8 bit, no SPS ext
    Bytes::from(r)
}

fn opus_head() -> Bytes {
    let mut h = b"OpusHead".to_vec();
    h.extend_from_slice(&[1, 2, 0, 0]);
    h.extend_from_slice(&48000u32.to_le_bytes());
    h.extend_from_slice(&[0, 0, 0]);
    Bytes::from(h)
}

/// A NAL body with emulation prevention (H.264 §7.4.1): no `00 00 0x`
/// with x ≤ 3 inside, and not ending in 0.
fn escape(body: &[u8], out: &mut Vec<u8>) {
    let mut zeros = 0;
    for &b in body {
        if zeros >= 2 && b <= 3 {
            out.push(3);
            zeros = 0;
        }
        out.push(b);
        zeros = if b == 0 { zeros + 1 } else { 0 };
    }
    if out.last() == Some(&0) {
        out.push(0x80);
    }
}

fn video_frame(u: &mut Unstructured<'_>, h265: bool, dts: i64) -> Result<MediaFrame> {
    let n = u.int_in_range(1..=4)?;
    let mut payload = Vec::new();
    let mut key = false;
    for _ in 0..n {
        // Slice, IDR/IRAP or SEI types; never parameter sets or AUDs,
        // which the demuxer moves into CONFIG frames or drops.
        let mut nal = if h265 {
            let t = *u.choose(&[0u8, 1, 19, 20, 21, 39])?;
            key |= (16..=21).contains(&t);
            vec![t << 1, 0x01]
        } else {
            let t = *u.choose(&[1u8, 5, 6, 12])?;
            key |= t == 5;
            vec![0x60 | t]
        };
        let len = u.int_in_range(0..=600)?;
        let body = u.bytes(len)?;
        escape(body, &mut nal);
        payload.extend_from_slice(&(nal.len() as u32).to_be_bytes());
        payload.extend_from_slice(&nal);
    }
    let cts = i64::from(u.int_in_range(0u32..=9000)?);
    let codec = if h265 { CodecId::H265 } else { CodecId::H264 };
    let mut f = MediaFrame::new(
        codec,
        TimeBase::MPEG_90K,
        dts,
        dts + cts,
        Bytes::from(payload),
    );
    if key {
        f.flags.insert(FrameFlags::KEYFRAME);
    }
    Ok(f)
}

fn frames(u: &mut Unstructured<'_>) -> Result<Vec<MediaFrame>> {
    let video = *u.choose(&[None, Some(false), Some(true)])?;
    let audio = *u.choose(&[None, Some(CodecId::Aac), Some(CodecId::Opus)])?;
    let start = i64::try_from(u.int_in_range(0u64..=(1 << 33) - 1)?).unwrap_or(0);
    let mut out = Vec::new();
    if video == Some(false) {
        out.push(
            MediaFrame::new(CodecId::H264, TimeBase::MPEG_90K, start, start, avcc())
                .with_flags(FrameFlags::CONFIG),
        );
    }
    match audio {
        Some(CodecId::Aac) => out.push(
            MediaFrame::new(
                CodecId::Aac,
                TimeBase::MPEG_90K,
                start,
                start,
                Bytes::from_static(ASC),
            )
            .with_flags(FrameFlags::CONFIG),
        ),
        Some(_) => out.push(
            MediaFrame::new(CodecId::Opus, TimeBase::MPEG_90K, start, start, opus_head())
                .with_flags(FrameFlags::CONFIG),
        ),
        None => {}
    }
    let (mut vdts, mut adts) = (start, start);
    while !u.is_empty() && out.len() < 64 {
        let pick_video = match (video, audio) {
            (Some(_), Some(_)) => u.arbitrary::<bool>()?,
            (Some(_), None) => true,
            (None, Some(_)) => false,
            (None, None) => break,
        };
        if pick_video {
            vdts += i64::from(u.int_in_range(0u32..=6000)?);
            out.push(video_frame(u, video == Some(true), vdts)?);
        } else {
            adts += i64::from(u.int_in_range(0u32..=6000)?);
            let len = u.int_in_range(1..=1500)?;
            let payload = Bytes::copy_from_slice(u.bytes(len)?);
            let codec = audio.unwrap_or(CodecId::Aac);
            out.push(
                MediaFrame::new(codec, TimeBase::MPEG_90K, adts, adts, payload)
                    .with_flags(FrameFlags::KEYFRAME),
            );
        }
    }
    Ok(out)
}

fn media(frames: &[MediaFrame], video: bool) -> Vec<(Bytes, i64, i64, bool)> {
    frames
        .iter()
        .filter(|f| !f.is_config() && f.is_video() == video)
        .map(|f| (f.payload.clone(), f.dts, f.pts, f.is_keyframe()))
        .collect()
}

fuzz_target!(|data: &[u8]| {
    let mut u = Unstructured::new(data);
    let Ok(input) = frames(&mut u) else { return };
    let segment_every = data.first().map_or(0, |b| usize::from(b % 8));
    let mut mux = MpegTsMuxer::new();
    let mut ts = Vec::new();
    for (i, f) in input.iter().enumerate() {
        if segment_every != 0 && i % segment_every == 0 {
            ts.extend_from_slice(&mux.flush().unwrap());
            mux.start_segment().unwrap();
        }
        mux.write_frame(f).expect("valid frame refused");
    }
    ts.extend_from_slice(&mux.flush().unwrap());
    assert_eq!(ts.len() % 188, 0);
    let mut d = TsDemuxer::new();
    // Fed in odd pieces: the packet boundary handling must not matter.
    let cut = (data.len() * 188 + 7) % (ts.len() + 1);
    d.push(&ts[..cut]).expect("demuxing our own output");
    d.push(&ts[cut..]).expect("demuxing our own output");
    d.finish().expect("finishing our own output");
    let output: Vec<MediaFrame> = std::iter::from_fn(|| d.next_frame()).collect();
    // The demuxer cannot know how many 33-bit wraps preceded its first
    // timestamp: the output may be shifted by one multiple of 2^33. The
    // muxer keeps each stream's order but may interleave streams
    // differently (it packs AAC frames into one PES), so compare the first
    // frame of the same kind.
    let first_in = input.iter().find(|f| !f.is_config());
    let shift = match (
        first_in,
        first_in.and_then(|a| {
            output
                .iter()
                .find(|f| !f.is_config() && f.is_video() == a.is_video())
        }),
    ) {
        (Some(a), Some(b)) => a.dts - b.dts,
        _ => 0,
    };
    assert_eq!(
        shift.rem_euclid(1 << 33),
        0,
        "timestamps shifted by {shift}"
    );
    for video in [true, false] {
        let (a, b) = (media(&input, video), media(&output, video));
        assert_eq!(a.len(), b.len(), "video={video}: frame count");
        for (x, y) in a.iter().zip(&b) {
            let y = (y.0.clone(), y.1 + shift, y.2 + shift, y.3);
            assert_eq!(x, &y, "video={video}");
        }
    }
});
