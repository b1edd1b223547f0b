#![no_main]
use arcly_rtmp::flv::{mux_frame, FlvReader, TagDemuxer};
use bytes::Bytes;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&t, body)) = data.split_first() else { return };
    let mut d = TagDemuxer::new();
    let mut out = Vec::new();
    let tag_type = [8u8, 9, 18][usize::from(t % 3)];
    let _ = d.demux(tag_type, u32::from(t) * 1000, Bytes::copy_from_slice(body), &mut out);
    for f in &out {
        let _ = mux_frame(f);
    }
    let mut r = FlvReader::new();
    r.push(data);
    while let Ok(Some(_)) = r.next_tag() {}
});
