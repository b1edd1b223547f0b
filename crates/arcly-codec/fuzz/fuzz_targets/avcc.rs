#![no_main]
use arcly_codec::h264::AvcDecoderConfigurationRecord;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let b = bytes::Bytes::copy_from_slice(data);
    if let Ok(rec) = AvcDecoderConfigurationRecord::parse(&b) {
        // build → parse is the identity for anything that parsed
        let out = rec.to_bytes().expect("a parsed record builds");
        assert_eq!(AvcDecoderConfigurationRecord::parse(&out).expect("reparse"), rec);
        let _ = rec.parse_sps();
    }
    let _ = AvcDecoderConfigurationRecord::from_access_unit(&b);
});
