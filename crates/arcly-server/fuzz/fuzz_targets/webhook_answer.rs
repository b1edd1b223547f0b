//! A webhook's answer body and a hook URL: never a panic, the reason is
//! bounded.
#![no_main]
use arcly_server::webhook::{answer_reason, HookUrl, MAX_REASON_CHARS};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let r = answer_reason(data);
    assert!(r.chars().count() <= MAX_REASON_CHARS);
    if let Ok(s) = std::str::from_utf8(data) {
        let _ = HookUrl::parse(s);
    }
});
