//! Recording throughput: real frames through `SegmentWriter` (MPEG-TS mux,
//! keyframe cuts) into `FsStorage` appends plus a sync and an atomic index
//! put per segment (what the recorder does), against writing the very same
//! segment bytes with `std::fs`. Variants: no sync at all, and the old
//! `fdatasync` per append.

#![allow(missing_docs)]

use arcly_core::traits::{StorageBackend, StorageKey};
use arcly_core::{MediaFrame, TimeBase};
use arcly_mpegts::TsDemuxer;
use arcly_record::{
    FsStorage, PlaylistKind, RecordingPlaylist, SegmentWriter, WriterAction, WriterConfig,
};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use std::io::Write;
use std::time::{Duration, SystemTime};

/// The fixture looped `n` times with continuous timestamps (~6 s each).
fn frames(n: i64) -> Vec<MediaFrame> {
    let data = std::fs::read(arcly_core::testing::tools::fixture("h264-aac.ts")).unwrap();
    let mut d = TsDemuxer::new();
    d.push(&data).unwrap();
    d.finish().unwrap();
    let one: Vec<MediaFrame> = std::iter::from_fn(|| d.next_frame()).collect();
    let mut out = Vec::new();
    for i in 0..n {
        let off = TimeBase::MILLIS.rescale(i * 6_080, TimeBase::MPEG_90K);
        for f in &one {
            if i > 0 && f.is_config() {
                continue;
            }
            let mut f = f.clone();
            f.dts += off;
            f.pts += off;
            out.push(f);
        }
    }
    out
}

async fn apply(
    actions: &mut Vec<WriterAction>,
    segments: &mut Vec<(String, Vec<u8>)>,
    playlist: &mut RecordingPlaylist,
    store: &FsStorage,
    sync: bool,
) {
    for a in actions.drain(..) {
        match a {
            WriterAction::Append { key, data } => {
                match segments.last_mut() {
                    Some(s) if s.0 == key.as_str() => s.1.extend_from_slice(&data),
                    _ => segments.push((key.to_string(), data.to_vec())),
                }
                store.append(&key, data).await.unwrap();
            }
            WriterAction::SegmentClosed(info) => {
                if sync {
                    store.sync(&info.key).await.unwrap();
                }
                playlist.segments.push(arcly_record::PlaylistSegment {
                    uri: info.key.to_string(),
                    duration: info.duration,
                    bytes: info.bytes,
                    discontinuity: false,
                    program_date_time: None,
                    map: None,
                });
                let k = StorageKey::new("live/bench/index.m3u8").unwrap();
                let body = playlist.render(PlaylistKind::Vod);
                store.put(&k, body.into()).await.unwrap();
            }
            _ => {}
        }
    }
}

fn record(
    frames: &[MediaFrame],
    store: &FsStorage,
    rt: &tokio::runtime::Runtime,
    sync: bool,
) -> Vec<(String, Vec<u8>)> {
    let mut w = SegmentWriter::new("live/bench", WriterConfig::default());
    let mut actions = Vec::new();
    let mut playlist = RecordingPlaylist::new(Duration::from_secs(6));
    let mut segments = Vec::new();
    rt.block_on(async {
        for f in frames {
            w.push(f, SystemTime::UNIX_EPOCH, &mut actions).unwrap();
            if !actions.is_empty() {
                apply(&mut actions, &mut segments, &mut playlist, store, sync).await;
            }
        }
        w.finish(&mut actions).unwrap();
        apply(&mut actions, &mut segments, &mut playlist, store, sync).await;
    });
    segments
}

fn bench(c: &mut Criterion) {
    let frames = frames(10);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let scratch = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let store = FsStorage::new(scratch.path().join("probe"))
        .unwrap()
        .sync_appends(false);
    let reference = record(&frames, &store, &rt, false);
    let total: usize = reference.iter().map(|s| s.1.len()).sum();
    let mut g = c.benchmark_group("record_60s_h264_aac");
    g.throughput(Throughput::Bytes(total as u64));
    g.sample_size(10);
    let mut run = 0u64;
    g.bench_function("recorder_fs_nosync", |b| {
        b.iter(|| {
            run += 1;
            let s = FsStorage::new(scratch.path().join(format!("r{run}")))
                .unwrap()
                .sync_appends(false);
            record(&frames, &s, &rt, false)
        })
    });
    g.bench_function("recorder_fs_sync_per_segment", |b| {
        b.iter(|| {
            run += 1;
            let s = FsStorage::new(scratch.path().join(format!("g{run}"))).unwrap();
            record(&frames, &s, &rt, true)
        })
    });
    g.bench_function("std_fs_same_bytes", |b| {
        b.iter(|| {
            run += 1;
            let dir = scratch.path().join(format!("s{run}"));
            for (key, bytes) in &reference {
                let p = dir.join(key);
                std::fs::create_dir_all(p.parent().unwrap()).unwrap();
                let mut f = std::fs::OpenOptions::new()
                    .append(true)
                    .create(true)
                    .open(&p)
                    .unwrap();
                f.write_all(bytes).unwrap();
            }
        })
    });
    g.bench_function("recorder_fs_fsync_per_append", |b| {
        b.iter(|| {
            run += 1;
            let s = FsStorage::new(scratch.path().join(format!("f{run}")))
                .unwrap()
                .sync_appends(true);
            record(&frames, &s, &rt, true)
        })
    });
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default();
    targets = bench
}
criterion_main!(benches);
