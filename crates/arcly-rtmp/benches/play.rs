//! What one player costs per frame on the server: queueing a bus frame for
//! a player (chunk and FLV headers into the session's buffer, the payload
//! referenced) and handing the queue to a `writev`, against the allocating
//! path measured in the same run (`send_frame` of a rebased copy of the
//! frame, then the queue taken as a `Vec<Bytes>`, as the handler did before
//! the transmit queue).
#![allow(missing_docs)]

use arcly_core::{CodecId, FrameFlags, MediaFrame};
use arcly_rtmp::session::ServerSession;
use bytes::Bytes;
use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use std::io::IoSlice;
use std::sync::Arc;

/// A server session with one accepted play; returns it and the stream id.
fn playing_session() -> (ServerSession, u32) {
    let (s, _, sid) = arcly_rtmp::testing::playing_pair().expect("in-memory play");
    (s, sid)
}

/// 200 ms of a 2.5 Mb/s 30 fps H.264 stream with 48 kHz AAC: one merged
/// write's worth of frames.
fn frames() -> Vec<Arc<MediaFrame>> {
    let mut v = Vec::new();
    for i in 0..6i64 {
        let key = i == 0;
        let len = if key { 60_000 } else { 9_000 };
        let f = MediaFrame::video(
            CodecId::H264,
            i * 33,
            i * 33 + 66,
            Bytes::from(vec![1u8; len]),
        );
        v.push(Arc::new(if key {
            f.with_flags(FrameFlags::KEYFRAME)
        } else {
            f
        }));
        for a in 0..2 {
            let ts = i * 33 + a * 21;
            v.push(Arc::new(MediaFrame::audio(
                CodecId::Aac,
                ts,
                Bytes::from(vec![0x21u8; 370]),
            )));
        }
    }
    v
}

fn bench(c: &mut Criterion) {
    let frames = frames();
    let bytes: usize = frames.iter().map(|f| f.payload.len()).sum();
    let mut g = c.benchmark_group("rtmp_play_batch");
    g.throughput(Throughput::Bytes(bytes as u64));
    g.bench_function("transmit_queue", |b| {
        let (mut s, sid) = playing_session();
        let mut base = 0i64;
        b.iter(|| {
            for f in &frames {
                let (dts, pts) = (f.dts_ms() + base, f.pts_ms() + base);
                s.send_frame_at(sid, f, dts, pts).unwrap();
            }
            base += 200;
            // What the handler's flush does: slices straight from the queue.
            let mut written = 0;
            while s.has_transmit() {
                let mut iov = [IoSlice::new(&[]); 64];
                let k = s.transmit_vectored(&mut iov);
                let n: usize = iov[..k].iter().map(|x| x.len()).sum();
                written += n;
                s.advance_transmit(n);
            }
            black_box(written)
        })
    });
    g.bench_function("naive_alloc_reference", |b| {
        let (mut s, sid) = playing_session();
        let mut out: Vec<Bytes> = Vec::new();
        let mut base = 0i64;
        b.iter(|| {
            for f in &frames {
                let mut copy = (**f).clone();
                copy.dts += base;
                copy.pts += base;
                s.send_frame(sid, &copy).unwrap();
            }
            base += 200;
            out.clear();
            s.poll_transmit_vectored(&mut out);
            let iov: Vec<IoSlice<'_>> = out.iter().map(|b| IoSlice::new(b)).collect();
            black_box(iov.iter().map(|x| x.len()).sum::<usize>())
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
