//! Retention counts what is already on storage (issue 18, item 16): a
//! restarted server keeps an application's recordings under
//! `max_total_bytes` including those of earlier runs (oldest first), and
//! `RecordConfig::max_age` deletes recordings older than it, those of
//! earlier runs included, at start-up and while nothing records.

mod common;

use arcly_core::registry::PublishRegistry;
use arcly_core::registry::PublishRequest;
use arcly_core::traits::{StorageBackend, StorageKey};
use arcly_core::{MediaFrame, TimeBase};
use arcly_record::{
    FsStorage, RecordConfig, RecordPolicy, Recorder, RecorderEvent, RecordingPlaylist, INDEX_NAME,
    LIVE_NAME,
};
use common::*;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::broadcast;

fn small_segments() -> RecordConfig {
    RecordConfig {
        segment_target: Duration::from_secs(1),
        retry_backoff: Duration::from_millis(1),
        ..RecordConfig::default()
    }
}

/// Record `frames` as stream `key` of app `live` with `policy`; returns the
/// recording's prefix and the keys retention deleted meanwhile.
async fn record(
    storage: &Arc<FsStorage>,
    policy: RecordPolicy,
    key: &str,
    frames: &[MediaFrame],
) -> (String, Vec<String>) {
    let engine = engine();
    let recorder = Recorder::builder(engine.clone(), storage.clone())
        .policy("live", policy)
        .build();
    let mut events = recorder.events();
    let p = path(key);
    recorder.start(&p).await.unwrap();
    let mut s = engine
        .publish(PublishRequest::new(p.clone(), "test"))
        .await
        .unwrap();
    for f in frames {
        s.push(f.clone());
        tokio::task::yield_now().await;
    }
    s.close();
    tokio::time::sleep(Duration::from_millis(50)).await;
    let summary = recorder.stop(&p).await.unwrap();
    engine.shutdown();
    (summary.prefix.unwrap(), deleted(&mut events))
}

fn deleted(rx: &mut broadcast::Receiver<RecorderEvent>) -> Vec<String> {
    std::iter::from_fn(|| rx.try_recv().ok())
        .filter_map(|e| match e {
            RecorderEvent::SegmentDeleted { key, .. } => Some(key),
            _ => None,
        })
        .collect()
}

async fn index(storage: &FsStorage, prefix: &str) -> Option<RecordingPlaylist> {
    let key = StorageKey::new(format!("{prefix}/{INDEX_NAME}")).unwrap();
    let text = storage.get(&key).await.ok()?;
    Some(RecordingPlaylist::parse(&text).unwrap())
}

/// Bytes of every segment every index on storage names.
async fn stored_bytes(storage: &FsStorage) -> u64 {
    let mut total = 0;
    for k in storage.list("live/").await.unwrap() {
        if let Some(prefix) = k.as_str().strip_suffix(&format!("/{INDEX_NAME}")) {
            total += index(storage, prefix).await.unwrap().bytes();
        }
    }
    total
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_total_bytes_counts_the_recordings_of_earlier_runs() {
    let frames = fixture_frames("h264-aac.ts");
    let dir = tmpdir();
    let storage = Arc::new(FsStorage::new(dir.path()).unwrap());
    let unlimited = RecordPolicy {
        config: small_segments(),
        ..RecordPolicy::default()
    };
    // An earlier run: one recording, no bound.
    let (old, _) = record(&storage, unlimited.clone(), "old", &frames).await;
    let old_index = index(&storage, &old).await.unwrap();
    let one = old_index.bytes();
    assert!(old_index.segments.len() >= 3);

    // This run: bounded to 1.7 recordings' worth. Recording the same clip
    // again must make room by deleting the earlier run's segments, oldest
    // first, not this run's.
    let limit = one * 17 / 10;
    let bounded = RecordPolicy {
        max_total_bytes: Some(limit),
        ..unlimited
    };
    let (new, gone) = record(&storage, bounded, "new", &frames).await;
    assert!(
        stored_bytes(&storage).await <= limit,
        "{} bytes stored, limit {limit} (deleted: {gone:?})",
        stored_bytes(&storage).await
    );
    assert!(!gone.is_empty());
    for (i, k) in gone.iter().enumerate() {
        assert_eq!(
            k,
            &format!("{old}/{:06}.ts", i + 1),
            "the earlier run's, oldest first"
        );
    }
    // The earlier recording's index follows (so it never names a missing
    // segment) and still plays; this run's recording is whole.
    let old_index = index(&storage, &old).await.unwrap();
    assert_eq!(old_index.media_sequence, gone.len() as u64);
    let listed = storage.list(&format!("{old}/")).await.unwrap();
    assert_eq!(listed.len(), old_index.segments.len() + 2, "{listed:?}");
    assert_eq!(
        decode_errors(&root_path(&dir, &format!("{old}/{INDEX_NAME}"))),
        ""
    );
    assert_eq!(index(&storage, &new).await.unwrap().media_sequence, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_age_deletes_old_recordings_at_start_up_and_spares_recent_ones() {
    let frames = fixture_frames("h264-aac.ts");
    let dir = tmpdir();
    let storage = Arc::new(FsStorage::new(dir.path()).unwrap());
    let unlimited = RecordPolicy {
        config: small_segments(),
        ..RecordPolicy::default()
    };
    let (recent, _) = record(&storage, unlimited.clone(), "recent", &frames).await;
    // The same recording as an earlier run would have left it in 2020:
    // dated by its folder name and its first EXT-X-PROGRAM-DATE-TIME.
    let old = "live/old/20200101T000000.000Z".to_owned();
    let mut playlist = index(&storage, &recent).await.unwrap();
    for s in &playlist.segments {
        let from = StorageKey::new(format!("{recent}/{}", s.uri)).unwrap();
        let to = StorageKey::new(format!("{old}/{}", s.uri)).unwrap();
        storage
            .put(&to, storage.get(&from).await.unwrap())
            .await
            .unwrap();
    }
    playlist.segments[0].program_date_time = Some("2020-01-01T00:00:00.000Z".into());
    for name in [INDEX_NAME, LIVE_NAME] {
        let key = StorageKey::new(format!("{old}/{name}")).unwrap();
        let text = playlist.render(arcly_record::PlaylistKind::Vod);
        storage.put(&key, text.into()).await.unwrap();
    }

    // A recorder keeping 30 days: at start-up (run), before anything is
    // published, the 2020 recording goes, segments and playlists; the
    // recent one stays whole.
    let engine = engine();
    let recorder = Recorder::builder(engine.clone(), storage.clone())
        .policy(
            "live",
            RecordPolicy {
                config: RecordConfig {
                    max_age: Some(Duration::from_secs(30 * 86_400)),
                    ..small_segments()
                },
                ..unlimited
            },
        )
        .build();
    let mut events = recorder.events();
    let runner = recorder.run();
    let mut gone = Vec::new();
    let n = playlist.segments.len();
    tokio::time::timeout(Duration::from_secs(20), async {
        while gone.len() < n {
            if let Ok(RecorderEvent::SegmentDeleted { key, .. }) = events.recv().await {
                gone.push(key);
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("only {gone:?} deleted"));
    for (i, k) in gone.iter().enumerate() {
        assert_eq!(k, &format!("{old}/{:06}.ts", i + 1), "oldest first");
    }
    assert!(storage.list(&format!("{old}/")).await.unwrap().is_empty());
    let recent_index = index(&storage, &recent).await.unwrap();
    assert_eq!(recent_index.media_sequence, 0);
    assert_eq!(recent_index.segments.len(), n);
    engine.shutdown();
    runner.await.unwrap();
    // Nothing else was deleted, and the clip's first frame is still there.
    assert!(deleted(&mut events).is_empty());
    let first = frames.iter().find(|f| !f.is_config()).unwrap();
    assert!(first.dts_in(TimeBase::MILLIS) >= 0);
}
