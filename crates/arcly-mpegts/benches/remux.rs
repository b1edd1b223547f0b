//! Whole remux of a large TS file (2 minutes of H.264+AAC, written by this
//! crate): read, demux, mux, write in process, against
//! `ffmpeg -c copy -f mpegts` on the same file in the same run.
#![allow(missing_docs)] // criterion_group! generates undocumented functions

use arcly_core::testing::tools::ffmpeg;
use arcly_core::traits::Muxer;
use arcly_mpegts::{MpegTsMuxer, TsDemuxer};
use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use std::path::PathBuf;
use std::process::Command;

#[path = "support/mod.rs"]
mod common;

fn remux(data: &[u8]) -> Vec<u8> {
    let mut demux = TsDemuxer::new();
    let mut mux = MpegTsMuxer::new();
    let mut out = Vec::with_capacity(data.len() + data.len() / 8);
    let drain = |demux: &mut TsDemuxer, mux: &mut MpegTsMuxer, out: &mut Vec<u8>| {
        while let Some(f) = demux.next_frame() {
            if f.is_video() && f.is_keyframe() {
                out.extend_from_slice(&mux.flush().unwrap());
                mux.start_segment().unwrap();
            }
            mux.write_frame(&f).unwrap();
        }
        out.extend_from_slice(&mux.flush().unwrap());
    };
    for chunk in data.chunks(1 << 16) {
        demux.push(chunk).unwrap();
        drain(&mut demux, &mut mux, &mut out);
    }
    demux.finish().unwrap();
    drain(&mut demux, &mut mux, &mut out);
    out
}

fn bench(c: &mut Criterion) {
    let dir = std::env::temp_dir();
    let input: PathBuf = dir.join(format!("arcly-mpegts-bench-{}.ts", std::process::id()));
    let out_ours = dir.join(format!("arcly-mpegts-bench-{}.ours.ts", std::process::id()));
    let out_ff = dir.join(format!(
        "arcly-mpegts-bench-{}.ffmpeg.ts",
        std::process::id()
    ));
    let mut mux = MpegTsMuxer::new();
    for f in common::long_stream(20) {
        if f.is_video() && f.is_keyframe() {
            mux.start_segment().unwrap();
        }
        mux.write_frame(&f).unwrap();
    }
    std::fs::write(&input, mux.flush().unwrap()).unwrap();
    let size = std::fs::metadata(&input).unwrap().len();
    let ff = ffmpeg();
    let mut g = c.benchmark_group("remux_120s_file");
    g.sample_size(10);
    g.throughput(Throughput::Bytes(size));
    g.bench_function("arcly_mpegts_read_demux_mux_write", |b| {
        b.iter(|| {
            let data = std::fs::read(&input).unwrap();
            std::fs::write(&out_ours, black_box(remux(&data))).unwrap();
        })
    });
    g.bench_function("ffmpeg_c_copy_f_mpegts_process", |b| {
        b.iter(|| {
            let st = Command::new(&ff)
                .args(["-hide_banner", "-v", "error", "-y", "-i"])
                .arg(&input)
                .args(["-map", "0", "-c", "copy", "-f", "mpegts"])
                .arg(&out_ff)
                .status()
                .unwrap();
            assert!(st.success());
        })
    });
    g.finish();
    for p in [&input, &out_ours, &out_ff] {
        let _ = std::fs::remove_file(p);
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
