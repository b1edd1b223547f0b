#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(sps) = arcly_codec::h264::Sps::parse(data) {
        let _ = sps.frame_rate();
        assert!(sps.width > 0 && sps.height > 0);
    }
});
