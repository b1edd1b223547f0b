//! The playlist checker never panics on arbitrary text.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(s) = arcly_hls::checker::check(text) {
            let _ = arcly_hls::checker::check_reload(&s, &s);
        }
    }
});
