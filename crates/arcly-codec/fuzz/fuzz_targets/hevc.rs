#![no_main]
use arcly_codec::h265;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = h265::Sps::parse(data);
    let b = bytes::Bytes::copy_from_slice(data);
    if let Ok(rec) = h265::HevcDecoderConfigurationRecord::parse(&b) {
        let out = rec.to_bytes().expect("a parsed record builds");
        assert_eq!(h265::HevcDecoderConfigurationRecord::parse(&out).expect("reparse"), rec);
        let _ = rec.codec_string();
    }
    let _ = h265::contains_keyframe(data);
});
