#![no_main]
use arcly_codec::aac::AudioSpecificConfig;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(asc) = AudioSpecificConfig::parse(data) {
        let _ = asc.codec_string();
        if let Ok(b) = asc.to_bytes() {
            assert_eq!(AudioSpecificConfig::parse(&b).expect("reparse"), asc);
        }
    }
});
