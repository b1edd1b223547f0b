//! The fMP4 muxer never panics on hostile CONFIG records and payloads
//! (the SPS / sequence header / OpusHead / ASC readers are bounded).
#![no_main]
use arcly_core::traits::Muxer;
use arcly_core::{CodecId, FrameFlags, MediaFrame};
use bytes::Bytes;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&sel, rest)) = data.split_first() else { return };
    let codec = [CodecId::H264, CodecId::H265, CodecId::Av1, CodecId::Vp9, CodecId::Aac, CodecId::Opus][usize::from(sel % 6)];
    let mid = rest.len() / 2;
    let mut m = arcly_hls::fmp4::Fmp4Muxer::new();
    let _ = m.write_frame(&MediaFrame::config(codec, 0, Bytes::copy_from_slice(&rest[..mid])));
    let f = MediaFrame::new(codec, arcly_core::TimeBase::MILLIS, 0, 0, Bytes::copy_from_slice(&rest[mid..]))
        .with_flags(FrameFlags::KEYFRAME);
    let _ = m.write_frame(&f);
    let _ = m.init_segment();
    let _ = m.flush();
});
