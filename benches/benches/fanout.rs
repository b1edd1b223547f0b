//! Fan-out of one publisher to N subscribers: the arcly bus (GOP cache and
//! QoS accounting on) against a bare `tokio::sync::broadcast` of
//! `Arc<MediaFrame>` and a plain `Arc::clone` loop, in the same run.
//! Throughput is deliveries (frames × subscribers).
#![allow(missing_docs)] // criterion's macros generate undocumented items

use arcly_core::engine::{AppSpec, Engine};
use arcly_core::registry::{PlayRequest, PlaybackRegistry, PublishRegistry, PublishRequest};
use arcly_core::testing::SyntheticStream;
use arcly_core::{MediaFrame, StreamPath};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use std::hint::black_box;
use std::sync::Arc;

const FRAMES: usize = 64;

fn fanout(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut group = c.benchmark_group("fanout");
    group.sample_size(20);
    let frames: Vec<MediaFrame> = SyntheticStream::new(30)
        .video_only()
        .skip(1)
        .take(FRAMES)
        .collect();
    for &subs in &[1usize, 100, 1_000, 10_000] {
        group.throughput(Throughput::Elements((FRAMES * subs) as u64));

        group.bench_with_input(BenchmarkId::new("arcly_bus", subs), &subs, |b, &subs| {
            let engine = Engine::builder()
                .application(AppSpec::new("live").gop_cache(120).channel_capacity(1024))
                .build();
            let path = StreamPath::parse("live", "bench").unwrap();
            let (mut publisher, mut subscribers) = rt.block_on(async {
                let mut p = engine
                    .publish(PublishRequest::new(path.clone(), "bench"))
                    .await
                    .unwrap();
                for f in SyntheticStream::new(30).video_only().take(1) {
                    p.push(f); // the configuration
                }
                let mut v = Vec::with_capacity(subs);
                for _ in 0..subs {
                    let mut s = engine
                        .subscribe(PlayRequest::new(path.clone(), "bench"))
                        .await
                        .unwrap();
                    while s.try_recv().unwrap().is_some() {}
                    v.push(s);
                }
                (p, v)
            });
            b.iter(|| {
                for f in &frames {
                    publisher.push(f.clone());
                }
                for s in &mut subscribers {
                    while let Some(f) = s.try_recv().unwrap() {
                        black_box(&f);
                    }
                }
            });
        });

        group.bench_with_input(
            BenchmarkId::new("bare_broadcast", subs),
            &subs,
            |b, &subs| {
                let (tx, _) = tokio::sync::broadcast::channel::<Arc<MediaFrame>>(1024);
                let mut rxs: Vec<_> = (0..subs).map(|_| tx.subscribe()).collect();
                b.iter(|| {
                    for f in &frames {
                        let _ = tx.send(Arc::new(f.clone()));
                    }
                    for rx in &mut rxs {
                        while let Ok(f) = rx.try_recv() {
                            black_box(&f);
                        }
                    }
                });
            },
        );

        group.bench_with_input(
            BenchmarkId::new("arc_clone_loop", subs),
            &subs,
            |b, &subs| {
                let shared: Vec<Arc<MediaFrame>> = frames.iter().cloned().map(Arc::new).collect();
                b.iter(|| {
                    for f in &shared {
                        for _ in 0..subs {
                            black_box(Arc::clone(f));
                        }
                    }
                });
            },
        );
    }
    group.finish();
}

/// The same fan-out with subscribers drained by two threads at once, as a
/// multi-threaded runtime spreads players over cores: here shared-counter
/// traffic between cores shows up.
fn fanout_two_threads(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut group = c.benchmark_group("fanout_2threads");
    group.sample_size(20);
    let frames: Vec<MediaFrame> = SyntheticStream::new(30)
        .video_only()
        .skip(1)
        .take(FRAMES)
        .collect();
    let subs = 1_000usize;
    group.throughput(Throughput::Elements((FRAMES * subs) as u64));
    group.bench_function(BenchmarkId::new("arcly_bus", subs), |b| {
        let engine = Engine::builder()
            .application(AppSpec::new("live").gop_cache(120).channel_capacity(1024))
            .build();
        let path = StreamPath::parse("live", "bench").unwrap();
        let (mut publisher, subscribers) = rt.block_on(async {
            let mut p = engine
                .publish(PublishRequest::new(path.clone(), "bench"))
                .await
                .unwrap();
            for f in SyntheticStream::new(30).video_only().take(1) {
                p.push(f);
            }
            let mut v = Vec::with_capacity(subs);
            for _ in 0..subs {
                let mut s = engine
                    .subscribe(PlayRequest::new(path.clone(), "bench"))
                    .await
                    .unwrap();
                while s.try_recv().unwrap().is_some() {}
                v.push(s);
            }
            (p, v)
        });
        let (mut left, mut right): (Vec<_>, Vec<_>) = (Vec::new(), Vec::new());
        for (i, s) in subscribers.into_iter().enumerate() {
            if i % 2 == 0 {
                left.push(s)
            } else {
                right.push(s)
            }
        }
        b.iter(|| {
            for f in &frames {
                publisher.push(f.clone());
            }
            std::thread::scope(|scope| {
                for half in [&mut left, &mut right] {
                    scope.spawn(move || {
                        for s in half.iter_mut() {
                            while let Some(f) = s.try_recv().unwrap() {
                                black_box(&f);
                            }
                        }
                    });
                }
            });
        });
    });
    group.bench_function(BenchmarkId::new("bare_broadcast", subs), |b| {
        let (tx, _) = tokio::sync::broadcast::channel::<Arc<MediaFrame>>(1024);
        let mut left: Vec<_> = (0..subs / 2).map(|_| tx.subscribe()).collect();
        let mut right: Vec<_> = (0..subs / 2).map(|_| tx.subscribe()).collect();
        b.iter(|| {
            for f in &frames {
                let _ = tx.send(Arc::new(f.clone()));
            }
            std::thread::scope(|scope| {
                for half in [&mut left, &mut right] {
                    scope.spawn(move || {
                        for rx in half.iter_mut() {
                            while let Ok(f) = rx.try_recv() {
                                black_box(&f);
                            }
                        }
                    });
                }
            });
        });
    });
    group.finish();
}

criterion_group!(benches, fanout, fanout_two_threads);
criterion_main!(benches);
