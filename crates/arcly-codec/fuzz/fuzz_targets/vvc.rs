#![no_main]
use arcly_codec::vvc;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = vvc::Sps::parse(data);
    let b = bytes::Bytes::copy_from_slice(data);
    if let Ok(rec) = vvc::VvcDecoderConfigurationRecord::parse(&b) {
        if let Ok(out) = rec.to_bytes() {
            assert_eq!(vvc::VvcDecoderConfigurationRecord::parse(&out).expect("reparse"), rec);
        }
    }
});
