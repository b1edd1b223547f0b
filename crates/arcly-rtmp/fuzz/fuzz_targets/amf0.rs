#![no_main]
use arcly_rtmp::amf0;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(values) = amf0::decode_all(data) {
        // What decodes re-encodes to something that decodes the same.
        let again = amf0::decode_all(&amf0::encode_all(&values)).expect("re-decode");
        assert_eq!(format!("{again:?}"), format!("{values:?}"));
    }
});
