//! Muxing throughput over a long H.264+AAC stream (60 s of the fixture),
//! against a memcpy of the same number of bytes in the same run.
#![allow(missing_docs)] // criterion_group! generates undocumented functions

use arcly_core::traits::Muxer;
use arcly_mpegts::MpegTsMuxer;
use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};

#[path = "support/mod.rs"]
mod common;

fn mux_all(frames: &[arcly_core::frame::MediaFrame]) -> usize {
    let mut mux = MpegTsMuxer::new();
    let mut n = 0;
    for f in frames {
        if f.is_video() && f.is_keyframe() {
            mux.start_segment().unwrap();
        }
        mux.write_frame(f).unwrap();
        if f.is_video() {
            n += mux.flush().unwrap().len();
        }
    }
    n + mux.flush().unwrap().len()
}

fn bench(c: &mut Criterion) {
    let frames = common::long_stream(10);
    let out_len = mux_all(&frames);
    let src = vec![0x5Au8; out_len];
    let mut dst = vec![0u8; out_len];
    let mut g = c.benchmark_group("mux_h264_aac_60s");
    g.throughput(Throughput::Bytes(out_len as u64));
    g.bench_function("arcly_mpegts_mux", |b| {
        b.iter(|| black_box(mux_all(black_box(&frames))))
    });
    g.bench_function("memcpy_same_bytes", |b| {
        b.iter(|| {
            dst.copy_from_slice(black_box(&src));
            black_box(&dst);
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
