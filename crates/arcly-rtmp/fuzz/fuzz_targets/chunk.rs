#![no_main]
use arcly_rtmp::chunk::ChunkDecoder;
use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&cs, rest)) = data.split_first() else { return };
    let mut d = ChunkDecoder::default();
    let _ = d.set_chunk_size(u32::from(cs) + 1);
    // Feed in two pieces to exercise partial input.
    let mid = rest.len() / 2;
    let mut buf = BytesMut::new();
    for piece in [&rest[..mid], &rest[mid..]] {
        buf.extend_from_slice(piece);
        while let Ok(Some(_)) = d.decode(&mut buf) {}
    }
});
