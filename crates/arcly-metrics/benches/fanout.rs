//! Per-delivery cost of the observer on the fan-out path.
//!
//! One publisher, `SUBS` subscribers; each iteration publishes a batch of
//! frames and every subscriber drains it with `try_recv`. The same loop runs
//! with `NoopObserver` (the reference), `PrometheusObserver` per app and
//! `PrometheusObserver` per stream, in the same run. Throughput is in
//! deliveries (frames x subscribers).
#![allow(missing_docs)] // criterion_group! generates an undocumented fn

use arcly_core::bus::Subscription;
use arcly_core::engine::{AppSpec, Engine};
use arcly_core::inbound::PublishSession;
use arcly_core::observe::{NoopObserver, Observer, StreamProbe};
use arcly_core::registry::{PlayRequest, PlaybackRegistry, PublishRegistry, PublishRequest};
use arcly_core::testing::SyntheticStream;
use arcly_core::{MediaFrame, StreamPath};
use arcly_metrics::{MetricsOptions, PrometheusObserver};
use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use prometheus_client::registry::Registry;
use std::hint::black_box;
use std::sync::Arc;

const SUBS: usize = 16;
const BATCH: usize = 256;

struct Rig {
    _engine: Engine,
    publisher: PublishSession,
    subs: Vec<Subscription>,
    frames: Vec<MediaFrame>,
}

fn rig(observer: Arc<dyn Observer>) -> Rig {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    rt.block_on(async {
        let engine = Engine::builder()
            .application(
                AppSpec::new("live")
                    .gop_cache(0)
                    .channel_capacity(BATCH * 2),
            )
            .observer(observer)
            .build();
        let path = StreamPath::parse("live", "bench").unwrap();
        let mut publisher = engine
            .publish(PublishRequest::new(path.clone(), "rtmp"))
            .await
            .unwrap();
        let mut subs = Vec::new();
        for _ in 0..SUBS {
            subs.push(
                engine
                    .subscribe(PlayRequest::new(path.clone(), "http-flv"))
                    .await
                    .unwrap(),
            );
        }
        // Open the keyframe gate and let every subscriber see configuration.
        let mut src = SyntheticStream::new(50);
        for f in src.by_ref().take(4) {
            publisher.push(f);
        }
        for s in &mut subs {
            while s.try_recv().unwrap().is_some() {}
        }
        // Steady state: inter frames and audio only.
        let frames: Vec<MediaFrame> = src
            .filter(|f| !f.is_keyframe() && !f.is_config())
            .take(BATCH)
            .collect();
        Rig {
            _engine: engine,
            publisher,
            subs,
            frames,
        }
    })
}

fn run(rig: &mut Rig, frames: Vec<MediaFrame>) {
    for f in frames {
        rig.publisher.push(f);
    }
    for s in &mut rig.subs {
        while let Some(f) = s.try_recv().unwrap() {
            black_box(f);
        }
    }
}

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("fanout_delivery");
    g.throughput(Throughput::Elements((BATCH * SUBS) as u64));
    // The reference runs first and last, so the spread between its two runs
    // shows how much noise the shared machine adds.
    let cases: Vec<(&str, Arc<dyn Observer>)> = vec![
        ("noop_reference", Arc::new(NoopObserver)),
        (
            "prometheus_per_app",
            Arc::new(PrometheusObserver::new(&mut Registry::default())),
        ),
        (
            "prometheus_per_stream",
            Arc::new(PrometheusObserver::with_options(
                &mut Registry::default(),
                MetricsOptions::new().per_stream(1000),
            )),
        ),
        ("noop_reference_again", Arc::new(NoopObserver)),
    ];
    for (name, observer) in cases {
        let mut r = rig(observer);
        let frames = r.frames.clone();
        g.bench_function(name, |b| {
            b.iter_batched(
                || frames.clone(),
                |frames| run(&mut r, frames),
                BatchSize::LargeInput,
            )
        });
    }
    g.finish();

    // The probe calls alone: what the frame path pays per frame in and per
    // batch of deliveries out.
    let mut g = c.benchmark_group("probe");
    let path = StreamPath::parse("live", "bench").unwrap();
    let frame = MediaFrame::video(
        arcly_core::CodecId::H264,
        0,
        0,
        bytes::Bytes::from_static(&[0u8; 1200]),
    );
    let probes: Vec<(&str, Arc<dyn StreamProbe>)> = vec![
        ("noop", NoopObserver.stream_created(&path)),
        (
            "prometheus_per_app",
            PrometheusObserver::new(&mut Registry::default()).stream_created(&path),
        ),
    ];
    for (name, probe) in probes {
        g.bench_function(format!("frame_in/{name}"), |b| {
            b.iter(|| probe.frame_in(black_box(&frame)))
        });
        g.bench_function(format!("frames_out/{name}"), |b| {
            b.iter(|| probe.frames_out(black_box("http-flv"), 64, 64 * 1200))
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
