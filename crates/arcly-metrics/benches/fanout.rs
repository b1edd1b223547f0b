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
use std::time::Instant;

const SUBS: usize = 16;
const BATCH: usize = 256;

struct Rig {
    _engine: Engine,
    publisher: PublishSession,
    subs: Vec<Subscription>,
    frames: Vec<MediaFrame>,
}

fn rig(observer: Arc<dyn Observer>, subscribers: usize) -> Rig {
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
        for _ in 0..subscribers {
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

/// Interleaved A/B/C measurement: each round runs one batch on every rig in
/// a rotating order, so load from other processes hits all of them alike.
/// Prints the median time per delivery and the overhead against the
/// reference.
fn paired(rounds: usize, subscribers: usize) {
    let mut rigs = [
        rig(Arc::new(NoopObserver), subscribers),
        rig(
            Arc::new(PrometheusObserver::new(&mut Registry::default())),
            subscribers,
        ),
        rig(
            Arc::new(PrometheusObserver::with_options(
                &mut Registry::default(),
                MetricsOptions::new().per_stream(1000),
            )),
            subscribers,
        ),
    ];
    let frames = rigs[0].frames.clone();
    let mut times: [Vec<f64>; 3] = Default::default();
    for round in 0..rounds {
        for k in 0..rigs.len() {
            let idx = (round + k) % rigs.len();
            let batch = frames.clone();
            let t = Instant::now();
            run(&mut rigs[idx], batch);
            times[idx].push(t.elapsed().as_nanos() as f64 / (BATCH * subscribers) as f64);
        }
    }
    let median = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let [noop, app, stream] = times.each_mut().map(median);
    println!(
        "paired fan-out ({rounds} rounds, subscribers={subscribers}, {BATCH} frames): \
         noop {noop:.2} ns/delivery, prometheus per-app {app:.2} ns ({:+.1}%), \
         per-stream {stream:.2} ns ({:+.1}%)",
        (app / noop - 1.0) * 100.0,
        (stream / noop - 1.0) * 100.0
    );
}

fn bench(c: &mut Criterion) {
    for subscribers in [1, 4, SUBS, 64] {
        paired(3000 * SUBS / subscribers.max(4), subscribers);
    }
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
        let mut r = rig(observer, SUBS);
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
