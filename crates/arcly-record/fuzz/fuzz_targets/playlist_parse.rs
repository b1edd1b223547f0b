//! The recording index parser on arbitrary bytes: never panics, and whatever
//! it accepts renders and parses back to the same segments.
#![no_main]

use arcly_record::{PlaylistKind, RecordingPlaylist};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(p) = RecordingPlaylist::parse(data) {
        let text = p.render(PlaylistKind::Vod);
        let back = RecordingPlaylist::parse(text.as_bytes()).expect("own output parses");
        // URIs with surrounding whitespace or '#' prefixes cannot survive a
        // line-based format; everything the parser produced is trimmed.
        assert_eq!(back.segments.len(), p.segments.len());
        assert_eq!(back.media_sequence, p.media_sequence);
    }
});
