//! An encoder's end of sequence is not the publisher leaving (issue 18
//! item 2): the playlist carries no discontinuity for it.

use arcly_core::{CodecId, FrameFlags, MediaFrame};
use arcly_hls::stream::{HlsConfig, HlsStream};
use bytes::Bytes;

fn playlist_with(mid_stream: Option<MediaFrame>) -> String {
    let mut hls = HlsStream::new(HlsConfig::default());
    let asc = Bytes::from_static(&[0x11, 0x88]);
    hls.push(&MediaFrame::config(CodecId::Aac, 0, asc)).unwrap();
    for i in 0..600 {
        if i == 300 {
            if let Some(f) = &mid_stream {
                hls.push(f).unwrap();
            }
        }
        hls.push(&MediaFrame::audio(
            CodecId::Aac,
            i * 20,
            Bytes::from_static(b"\x21\x00"),
        ))
        .unwrap();
    }
    hls.end();
    hls.playlist(false).expect("segments are ready")
}

#[test]
fn a_codec_sequence_end_leaves_the_timeline_alone() {
    let eos =
        MediaFrame::audio(CodecId::Aac, 6000, Bytes::new()).with_flags(FrameFlags::END_OF_STREAM);
    assert!(eos.is_sequence_end());
    let text = playlist_with(Some(eos));
    assert!(!text.contains("#EXT-X-DISCONTINUITY\n"), "{text}");
    let count = |t: &str| t.matches("#EXTINF").count();
    assert_eq!(count(&text), count(&playlist_with(None)), "{text}");
}
