#![no_main]
use arcly_codec::vp9;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let b = bytes::Bytes::copy_from_slice(data);
    if let Ok(frames) = vp9::superframe_frames(&b) {
        for f in frames {
            let _ = vp9::FrameHeader::parse(&f);
        }
    }
    let _ = vp9::VpCodecConfigurationRecord::from_keyframe(data, Some((25, 1)));
    if let Ok(rec) = vp9::VpCodecConfigurationRecord::parse(&b) {
        let _ = rec.to_bytes();
    }
});
