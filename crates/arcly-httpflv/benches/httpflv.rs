//! HTTP-FLV egress: building one GOP's tags for a player.
//!
//! - `tag_writer` (what the server does): FLV headers built per frame in
//!   one scratch buffer, the payloads shared into a vectored [`Chunks`].
//! - `write_frame_copy` (naive): the same tags written into one `BytesMut`,
//!   copying every payload.
//! - `memcpy_payloads` (reference): only copying the payload bytes.

use arcly_core::{CodecId, FrameFlags, MediaFrame};
use arcly_http::Chunks;
use arcly_httpflv::TagWriter;
use arcly_rtmp::flv::FlvWriter;
use bytes::{Buf, Bytes, BytesMut};
use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};

/// A 2 s GOP at 25 fps and ~2 Mbit/s with 48 kHz AAC: 50 pictures (a 60 kB
/// keyframe, 9 kB others) and 94 audio frames of 380 bytes.
fn gop() -> Vec<MediaFrame> {
    let mut v = Vec::new();
    let mut a = 0;
    for i in 0..50i64 {
        let size = if i == 0 { 60_000 } else { 9_000 };
        let mut f = MediaFrame::video(
            CodecId::H264,
            i * 40,
            i * 40 + 80,
            Bytes::from(vec![7u8; size]),
        );
        if i == 0 {
            f = f.with_flags(FrameFlags::KEYFRAME);
        }
        v.push(f);
        while a * 21 <= i * 40 {
            v.push(MediaFrame::audio(
                CodecId::Aac,
                a * 21,
                Bytes::from(vec![1u8; 380]),
            ));
            a += 1;
        }
    }
    v
}

fn bench(c: &mut Criterion) {
    let frames = gop();
    let bytes: u64 = frames.iter().map(|f| f.payload.len() as u64).sum();
    let mut g = c.benchmark_group("httpflv_gop");
    g.throughput(Throughput::Bytes(bytes));
    g.bench_function("tag_writer", |b| {
        b.iter_batched(
            TagWriter::new,
            |mut w| {
                let mut out = Chunks::new();
                for f in &frames {
                    w.append(f, &mut out);
                }
                w.finish_batch(&mut out);
                out.remaining()
            },
            BatchSize::SmallInput,
        )
    });
    g.bench_function("write_frame_copy", |b| {
        b.iter(|| {
            let mut out = BytesMut::with_capacity(bytes as usize + frames.len() * 32);
            for f in &frames {
                FlvWriter::write_frame(f, &mut out).unwrap();
            }
            out.len()
        })
    });
    g.bench_function("memcpy_payloads", |b| {
        b.iter(|| {
            let mut out = Vec::with_capacity(bytes as usize);
            for f in &frames {
                out.extend_from_slice(&f.payload);
            }
            out.len()
        })
    });
    g.finish();
}

#[allow(missing_docs)]
mod group {
    use super::*;
    criterion_group!(benches, bench);
}
use group::benches;
criterion_main!(benches);
