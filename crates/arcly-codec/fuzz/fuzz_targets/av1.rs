#![no_main]
use arcly_codec::av1;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let b = bytes::Bytes::copy_from_slice(data);
    let _ = av1::Obus::new(b.clone()).count();
    let _ = av1::SequenceHeader::parse(data);
    if let Ok(c) = av1::to_canonical(&b) {
        assert!(av1::Obus::new(c).all(|o| o.is_ok_and(|o| o.has_size_field)));
    }
    let _ = av1::is_keyframe(data);
    if let Ok(rec) = av1::Av1CodecConfigurationRecord::parse(&b) {
        let _ = rec.sequence_header();
        let _ = rec.codec_string();
    }
});
