//! The access layer's text handling never panics: carrying a query through
//! a playlist's URIs, the carried query, and percent-decoding a credential;
//! every URI line of the input still carries the query afterwards.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let (playlist, query) = text.split_once('\0').unwrap_or((text, "token=x"));
    let _ = arcly_core::auth::percent_decode(query);
    if query.chars().any(char::is_control) {
        return; // a URI's query holds no raw control characters
    }
    if let Some(q) = arcly_hls::access::carried_query(Some(query)) {
        let out = arcly_hls::access::carry_query(playlist, &q);
        let uris_in = playlist
            .lines()
            .filter(|l| !l.trim_end_matches('\r').is_empty() && !l.starts_with('#'))
            .count();
        let carried = out
            .lines()
            .filter(|l| !l.trim_end_matches('\r').is_empty() && !l.starts_with('#'))
            .filter(|l| l.trim_end_matches('\r').ends_with(q.as_str()))
            .count();
        assert_eq!(uris_in, carried, "a URI line lost the query");
    }
});
