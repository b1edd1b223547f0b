//! NAL scanning throughput over a large Annex-B stream (the repository's
//! x264 fixture repeated to 32 MiB), against a naive byte loop and a memcpy
//! of the same bytes in the same run; and the per-call cost of parsing
//! configuration records.
#![allow(missing_docs)] // criterion_group! generates an undocumented fn

use std::hint::black_box;

use arcly_codec::aac::AudioSpecificConfig;
use arcly_codec::h264::AvcDecoderConfigurationRecord;
use arcly_codec::nal::{find_start_code, AnnexBNals};
use arcly_codec::CodecInfo;
use arcly_core::CodecId;
use bytes::Bytes;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};

const TARGET: usize = 32 << 20;

fn stream() -> Bytes {
    let es =
        std::fs::read(arcly_core::testing::tools::fixture("h264.annexb.h264")).expect("fixture");
    let mut v = Vec::with_capacity(TARGET + es.len());
    while v.len() < TARGET {
        v.extend_from_slice(&es);
    }
    Bytes::from(v)
}

/// The reference: look at every byte.
fn naive_count(d: &[u8]) -> usize {
    let mut n = 0;
    let mut i = 0;
    while i + 2 < d.len() {
        if d[i] == 0 && d[i + 1] == 0 && d[i + 2] == 1 {
            n += 1;
            i += 3;
        } else {
            i += 1;
        }
    }
    n
}

fn fast_count(d: &[u8]) -> usize {
    let mut n = 0;
    let mut from = 0;
    while let Some(sc) = find_start_code(d, from) {
        n += 1;
        from = sc.payload;
    }
    n
}

/// Uniformly random payload bytes (0x01 once in 256 bytes: the scanner's
/// worst realistic case), emulation-prevented, in 1400-byte NAL units.
fn random_stream() -> Bytes {
    let mut x = 0x2545_f491_4f6c_dd1du64;
    let mut v = Vec::with_capacity(TARGET + 4096);
    while v.len() < TARGET {
        let nal: Vec<u8> = (0..1400)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                (x >> 24) as u8
            })
            .collect();
        v.extend_from_slice(&[0, 0, 0, 1]);
        v.extend_from_slice(&arcly_codec::nal::add_emulation_prevention(&nal));
        v.push(0x80);
    }
    Bytes::from(v)
}

fn scan(c: &mut Criterion) {
    scan_one(c, "annexb_scan_x264", stream());
    scan_one(c, "annexb_scan_random", random_stream());
}

fn scan_one(c: &mut Criterion, group: &str, data: Bytes) {
    assert_eq!(naive_count(&data), fast_count(&data));
    let mut g = c.benchmark_group(group);
    g.throughput(Throughput::Bytes(data.len() as u64));
    g.sample_size(10);
    g.bench_function("memchr_find_start_code", |b| {
        b.iter(|| fast_count(black_box(&data)))
    });
    g.bench_function("AnnexBNals_iter", |b| {
        b.iter(|| AnnexBNals::new(black_box(data.clone())).count())
    });
    g.bench_function("naive_byte_loop", |b| {
        b.iter(|| naive_count(black_box(&data)))
    });
    g.bench_function("memcpy_reference", |b| b.iter(|| black_box(data.to_vec())));
    g.finish();
}

fn records(c: &mut Criterion) {
    // x264's High-profile record from the fixture stream
    let sps = Bytes::from_static(&[
        0x67, 0x64, 0x00, 0x1e, 0xac, 0xd9, 0x40, 0xa0, 0x2f, 0xf9, 0x70, 0x11, 0x00, 0x00, 0x03,
        0x00, 0x01, 0x00, 0x00, 0x03, 0x00, 0x32, 0x0f, 0x16, 0x2d, 0x96,
    ]);
    let pps = Bytes::from_static(&[0x68, 0xef, 0xbc, 0xb0]);
    let avcc = AvcDecoderConfigurationRecord::from_parameter_sets(vec![sps], vec![pps])
        .unwrap()
        .to_bytes()
        .unwrap();
    let mut g = c.benchmark_group("config_record");
    g.bench_function("avcC_parse", |b| {
        b.iter(|| AvcDecoderConfigurationRecord::parse(black_box(&avcc)).unwrap())
    });
    g.bench_function("CodecInfo_from_avcC", |b| {
        b.iter(|| CodecInfo::from_config_bytes(CodecId::H264, black_box(&avcc)).unwrap())
    });
    g.bench_function("AudioSpecificConfig_parse", |b| {
        b.iter(|| AudioSpecificConfig::parse(black_box(&[0x11, 0x88])).unwrap())
    });
    g.bench_function("memcpy_of_avcC_reference", |b| {
        b.iter(|| black_box(avcc.to_vec()))
    });
    g.finish();
}

criterion_group!(benches, scan, records);
criterion_main!(benches);
