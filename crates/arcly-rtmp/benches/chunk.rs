//! Chunk stream decode/encode throughput, each against a memcpy of the same
//! bytes measured in the same run.
#![allow(missing_docs)]

use arcly_rtmp::chunk::{ChunkDecoder, ChunkEncoder, MessageHeader};
use bytes::{Bytes, BytesMut};
use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};

/// 2 s of 2.5 Mb/s video at 25 fps plus 48 kHz AAC: realistic message sizes.
fn messages() -> Vec<(MessageHeader, Bytes)> {
    let mut v = Vec::new();
    for i in 0..50u32 {
        let vlen = if i % 25 == 0 { 60_000 } else { 10_000 };
        v.push((
            MessageHeader {
                csid: 6,
                timestamp: i * 40,
                type_id: 9,
                stream_id: 1,
            },
            Bytes::from(vec![i as u8; vlen]),
        ));
        for a in 0..2 {
            v.push((
                MessageHeader {
                    csid: 4,
                    timestamp: i * 40 + a * 21,
                    type_id: 8,
                    stream_id: 1,
                },
                Bytes::from(vec![0xaf; 300]),
            ));
        }
    }
    v
}

fn bench(c: &mut Criterion) {
    let msgs = messages();
    for cs in [128u32, 4096, 65536] {
        let mut enc = ChunkEncoder::new();
        enc.set_chunk_size(cs);
        let mut wire = BytesMut::new();
        for (h, p) in &msgs {
            enc.write(h, p, &mut wire);
        }
        let wire = wire.freeze();
        let mut g = c.benchmark_group(format!("chunk_cs{cs}"));
        g.throughput(Throughput::Bytes(wire.len() as u64));
        g.bench_function("decode", |b| {
            b.iter(|| {
                let mut dec = ChunkDecoder::default();
                dec.set_chunk_size(cs).unwrap();
                let mut input = BytesMut::from(&wire[..]);
                let mut n = 0;
                while let Some(m) = dec.decode(&mut input).unwrap() {
                    n += m.payload.len();
                }
                black_box(n)
            })
        });
        g.bench_function("encode_copy", |b| {
            let mut out = BytesMut::with_capacity(wire.len());
            b.iter(|| {
                out.clear();
                let mut enc = ChunkEncoder::new();
                enc.set_chunk_size(cs);
                for (h, p) in &msgs {
                    enc.write(h, p, &mut out);
                }
                black_box(out.len())
            })
        });
        g.bench_function("encode_vectored", |b| {
            let mut out = Vec::new();
            b.iter(|| {
                out.clear();
                let mut enc = ChunkEncoder::new();
                enc.set_chunk_size(cs);
                for (h, p) in &msgs {
                    enc.write_vectored(h, p, &mut out);
                }
                black_box(out.len())
            })
        });
        g.bench_function("memcpy_reference", |b| {
            let mut out = vec![0u8; wire.len()];
            b.iter(|| {
                out.copy_from_slice(&wire);
                black_box(out[out.len() / 2])
            })
        });
        g.finish();
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
