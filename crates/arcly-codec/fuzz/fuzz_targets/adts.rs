#![no_main]
use arcly_codec::aac;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let b = bytes::Bytes::copy_from_slice(data);
    for f in aac::AdtsFrames::new(b.clone()).flatten() {
        assert!(f.payload.len() <= aac::MAX_ADTS_FRAME_LEN);
    }
    let _ = aac::adts_to_raw(&b);
});
