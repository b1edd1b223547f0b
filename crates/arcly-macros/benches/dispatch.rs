//! What the derive costs per frame: a `#[derive(MediaSink)]` with a kind
//! filter, a codec filter and per-kind routing, against the same logic
//! written by hand as a `MediaSink` impl (the reference), on the same frames.

use arcly_macros::MediaSink;
use arcly_stream::prelude::*;
use arcly_stream::testing::SyntheticStream;
use criterion::{criterion_main, Criterion, Throughput};
use std::hint::black_box;
use std::sync::Arc;

#[derive(MediaSink, Default)]
#[media_sink(filter(video, audio), codecs(H264, Aac), config = cfg, video = pic, audio = snd)]
struct Derived {
    n: [u64; 3],
}

impl Derived {
    async fn cfg(&mut self, f: Arc<MediaFrame>) -> Result<()> {
        self.n[0] += f.payload.len() as u64;
        Ok(())
    }
    async fn pic(&mut self, f: Arc<MediaFrame>) -> Result<()> {
        self.n[1] += f.payload.len() as u64;
        Ok(())
    }
    async fn snd(&mut self, f: Arc<MediaFrame>) -> Result<()> {
        self.n[2] += f.payload.len() as u64;
        Ok(())
    }
}

#[derive(Default)]
struct ByHand {
    n: [u64; 3],
}

#[arcly_stream::async_trait]
impl MediaSink for ByHand {
    async fn on_frame(&mut self, f: Arc<MediaFrame>) -> Result<()> {
        if !(f.is_video() || f.is_audio()) || !matches!(f.codec, CodecId::H264 | CodecId::Aac) {
            return Ok(());
        }
        let slot = if f.is_config() {
            0
        } else if f.is_video() {
            1
        } else {
            2
        };
        self.n[slot] += f.payload.len() as u64;
        Ok(())
    }
}

fn run(sink: &mut dyn MediaSink, frames: &[Arc<MediaFrame>], rt: &tokio::runtime::Runtime) {
    rt.block_on(async {
        for f in frames {
            sink.on_frame(Arc::clone(f)).await.unwrap();
        }
    });
}

fn dispatch(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let mut frames: Vec<Arc<MediaFrame>> = SyntheticStream::new(50)
        .take(10_000)
        .map(Arc::new)
        .collect();
    frames.push(Arc::new(MediaFrame::metadata(0, Bytes::from_static(b"x"))));
    let mut g = c.benchmark_group("media_sink_dispatch");
    g.throughput(Throughput::Elements(frames.len() as u64));
    g.bench_function("derived", |b| {
        let mut s = Derived::default();
        b.iter(|| run(black_box(&mut s), &frames, &rt));
        assert!(s.n.iter().all(|&n| n > 0));
    });
    g.bench_function("hand_written_reference", |b| {
        let mut s = ByHand::default();
        b.iter(|| run(black_box(&mut s), &frames, &rt));
        assert!(s.n.iter().all(|&n| n > 0));
    });
    g.finish();
}

#[allow(missing_docs)] // the macro's generated fn
mod group {
    criterion::criterion_group!(benches, super::dispatch);
}
criterion_main!(group::benches);
