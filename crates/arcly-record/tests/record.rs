//! Recording real media through an engine: every frame on disk, the index
//! playable, restarts continued, failures reported with live delivery intact.

mod common;

use arcly_core::registry::{PlayRequest, PlaybackRegistry, PublishRegistry, PublishRequest};
use arcly_core::traits::StorageBackend;
use arcly_core::{MediaFrame, TimeBase};
use arcly_record::{
    DropCause, FsStorage, RecordConfig, RecordPolicy, Recorder, RecorderEvent, RecordingPlaylist,
    INDEX_NAME, LIVE_NAME,
};
use common::*;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::broadcast;

fn policy(cfg: RecordConfig) -> RecordPolicy {
    RecordPolicy {
        config: cfg,
        ..RecordPolicy::default()
    }
}

fn small_segments() -> RecordConfig {
    RecordConfig {
        segment_target: Duration::from_secs(1),
        retry_backoff: Duration::from_millis(1),
        ..RecordConfig::default()
    }
}

/// Publish `frames` (shifted by `offset_ms`), yielding so subscribers keep up.
async fn publish(
    engine: &arcly_core::engine::Engine,
    p: &arcly_core::StreamPath,
    frames: &[MediaFrame],
    offset_ms: i64,
) {
    let mut s = engine
        .publish(PublishRequest::new(p.clone(), "test"))
        .await
        .unwrap();
    let off = TimeBase::MILLIS.rescale(offset_ms, TimeBase::MPEG_90K);
    for f in frames {
        let mut f = f.clone();
        if !f.is_config() {
            f.dts += off;
            f.pts += off;
        }
        s.push(f);
        tokio::task::yield_now().await;
    }
    s.close();
}

/// A parallel live subscriber: counts the media frames it receives until
/// `stop` end-of-stream markers.
fn live_counter(
    engine: &arcly_core::engine::Engine,
    p: &arcly_core::StreamPath,
    eos: usize,
) -> tokio::task::JoinHandle<u64> {
    let engine = engine.clone();
    let p = p.clone();
    let (tx, rx) = std::sync::mpsc::channel();
    let h = tokio::spawn(async move {
        let mut req = PlayRequest::new(p, "viewer");
        req.wait_for_publisher = true;
        let mut sub = engine.subscribe(req).await.unwrap();
        tx.send(()).unwrap();
        let mut n = 0;
        let mut seen_eos = 0;
        while seen_eos < eos {
            let f = sub.recv().await.unwrap();
            if f.is_end_of_stream() {
                seen_eos += 1;
            } else if !f.is_config() && (f.is_video() || f.is_audio()) {
                n += 1;
            }
        }
        n
    });
    rx.recv().unwrap();
    h
}

fn drain(rx: &mut broadcast::Receiver<RecorderEvent>) -> Vec<RecorderEvent> {
    std::iter::from_fn(|| rx.try_recv().ok()).collect()
}

async fn playlist(storage: &dyn StorageBackend, prefix: &str, name: &str) -> RecordingPlaylist {
    let key = arcly_core::traits::StorageKey::new(format!("{prefix}/{name}")).unwrap();
    RecordingPlaylist::parse(&storage.get(&key).await.unwrap()).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graceful_stop_has_every_frame_on_disk_bit_exact() {
    let frames = fixture_frames("h264-aac.ts");
    let dir = tmpdir();
    let storage = Arc::new(FsStorage::new(dir.path()).unwrap());
    let engine = engine();
    let recorder = Recorder::builder(engine.clone(), storage.clone())
        .policy("live", policy(small_segments()))
        .build();
    let p = path("cam");
    let mut events = recorder.events();
    assert!(recorder.start(&p).await.unwrap());
    assert!(!recorder.start(&p).await.unwrap(), "already recording");
    let viewer = live_counter(&engine, &p, 1);
    publish(&engine, &p, &frames, 0).await;
    assert_eq!(viewer.await.unwrap(), media_count(&frames));
    let summary = recorder.stop(&p).await.unwrap();
    assert_eq!(
        summary.stats.frames_written,
        media_count(&frames),
        "{summary:?}"
    );
    assert_eq!(summary.stats.frames_dropped, 0);
    let prefix = summary.prefix.unwrap();

    let index = playlist(storage.as_ref(), &prefix, INDEX_NAME).await;
    let live = playlist(storage.as_ref(), &prefix, LIVE_NAME).await;
    assert!(index.ended && live.ended, "final playlists carry ENDLIST");
    assert_eq!(index.segments.len(), 3, "cut at the keyframes 2 s apart");
    assert_eq!(
        index
            .segments
            .iter()
            .map(|s| s.uri.as_str())
            .collect::<Vec<_>>(),
        ["000001.ts", "000002.ts", "000003.ts"]
    );
    let total: f64 = index.duration().as_secs_f64();
    assert!((total - 6.0).abs() < 0.1, "duration {total}");
    assert_eq!(index.bytes(), summary.stats.bytes_written);
    let written = drain(&mut events)
        .iter()
        .filter(|e| matches!(e, RecorderEvent::SegmentWritten { .. }))
        .count();
    assert_eq!(written, 3);

    let m3u8 = root_path(&dir, &format!("{prefix}/{INDEX_NAME}"));
    assert_eq!(decode_errors(&m3u8), "", "ffmpeg -v error on the recording");
    let (sv, sa) = source_md5s();
    let (rv, ra) = md5s(&m3u8);
    assert_same(&rv, &sv, "video framemd5");
    assert_same(&ra, &sa, "audio framemd5");
    // The EVENT playlist plays the same.
    let (lv, _) = md5s(&root_path(&dir, &format!("{prefix}/{LIVE_NAME}")));
    assert_same(&lv, &sv, "EVENT playlist video");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_returning_publisher_continues_after_a_discontinuity() {
    let frames = fixture_frames("h264-aac.ts");
    let dir = tmpdir();
    let storage = Arc::new(FsStorage::new(dir.path()).unwrap());
    let engine = engine();
    let recorder = Recorder::builder(engine.clone(), storage.clone())
        .policy("live", policy(small_segments()))
        .build();
    let p = path("cam");
    recorder.start(&p).await.unwrap();
    publish(&engine, &p, &frames, 0).await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    publish(&engine, &p, &frames, 10_000).await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    let summary = recorder.stop(&p).await.unwrap();
    assert_eq!(summary.stats.frames_written, 2 * media_count(&frames));
    let prefix = summary.prefix.unwrap();
    let index = playlist(storage.as_ref(), &prefix, INDEX_NAME).await;
    assert_eq!(index.segments.len(), 6, "one recording, both publishers");
    let disc: Vec<bool> = index.segments.iter().map(|s| s.discontinuity).collect();
    assert_eq!(disc, [false, false, false, true, false, false]);
    let m3u8 = root_path(&dir, &format!("{prefix}/{INDEX_NAME}"));
    let text = std::fs::read_to_string(&m3u8).unwrap();
    assert_eq!(text.matches("#EXT-X-DISCONTINUITY\n").count(), 1);
    assert_eq!(text.matches("#EXT-X-PROGRAM-DATE-TIME:").count(), 2);
    let (sv, sa) = source_md5s();
    let (rv, ra) = md5s(&m3u8);
    assert_same(
        &rv,
        &[sv.clone(), sv.clone()].concat(),
        "video of both publishers",
    );
    // Through the playlist ffmpeg carries the AAC decoder's state across the
    // discontinuity, so the second publisher's audio is checked on its own
    // segments: their bytes must decode exactly as the source does.
    let n = sa.len();
    assert_eq!(ra.len(), 2 * n);
    assert_same(&ra[..n], &sa, "audio of the first publisher");
    let second = root_path(&dir, &format!("{prefix}/second.ts"));
    let mut bytes = Vec::new();
    for seg in &index.segments[3..] {
        bytes.extend(std::fs::read(root_path(&dir, &format!("{prefix}/{}", seg.uri))).unwrap());
    }
    std::fs::write(&second, bytes).unwrap();
    let (v2, a2) = md5s(&second);
    assert_same(&v2, &sv, "video of the second publisher");
    assert_same(&a2, &sa, "audio of the second publisher");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publisher_gone_past_the_grace_finishes_the_recording() {
    let frames = fixture_frames("h264-aac.ts");
    let dir = tmpdir();
    let storage = Arc::new(FsStorage::new(dir.path()).unwrap());
    let engine = engine();
    let cfg = RecordConfig {
        republish_grace: Duration::from_millis(100),
        ..small_segments()
    };
    let recorder = Recorder::builder(engine.clone(), storage.clone())
        .policy("live", policy(cfg))
        .build();
    let p = path("cam");
    let mut events = recorder.events();
    recorder.start(&p).await.unwrap();
    publish(&engine, &p, &frames, 0).await;
    let summary = loop {
        match tokio::time::timeout(Duration::from_secs(5), events.recv())
            .await
            .expect("recording finishes")
            .unwrap()
        {
            RecorderEvent::RecordingFinished { summary, .. } => break summary,
            _ => continue,
        }
    };
    assert_eq!(summary.reason, arcly_record::FinishReason::PublisherGone);
    assert_eq!(summary.stats.frames_written, media_count(&frames));
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(recorder.active().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disk_full_is_reported_retried_and_live_viewers_are_untouched() {
    let frames = fixture_frames("h264-aac.ts");
    let dir = tmpdir();
    let fs: Arc<dyn StorageBackend> = Arc::new(FsStorage::new(dir.path()).unwrap());
    let faulty = Faulty::new(fs, std::io::ErrorKind::StorageFull);
    let (engine, observer, audit) = observed_engine();
    let cfg = RecordConfig {
        retries: 2,
        flush_bytes: 64 << 10,
        ..small_segments()
    };
    let recorder = Recorder::builder(engine.clone(), faulty.clone())
        .policy("live", policy(cfg))
        .build();
    let p = path("cam");
    let mut events = recorder.events();
    recorder.start(&p).await.unwrap();
    // The first append fails once (a retry absorbs it); every append to the
    // second segment finds the disk full.
    faulty.fail_next_appends.store(1, Ordering::Release);
    faulty.fail_appends_to("000002.ts");
    let viewer = live_counter(&engine, &p, 1);
    publish(&engine, &p, &frames, 0).await;
    assert_eq!(
        viewer.await.unwrap(),
        media_count(&frames),
        "live viewer got every frame"
    );
    tokio::time::sleep(Duration::from_millis(100)).await;
    let summary = recorder.stop(&p).await.unwrap();
    let ev = drain(&mut events);
    let errors: Vec<_> = ev
        .iter()
        .filter_map(|e| match e {
            RecorderEvent::StorageError {
                op, kind, retrying, ..
            } => Some((*op, *kind, *retrying)),
            _ => None,
        })
        .collect();
    let full = Some(std::io::ErrorKind::StorageFull);
    assert_eq!(
        errors,
        [
            ("append", full, true),
            ("append", full, true),
            ("append", full, true),
            ("append", full, false)
        ],
        "one absorbed failure, then two retries and a give-up"
    );
    // The same failures reached the engine's observer, labelled.
    let observed = observer.storage_errors.lock().unwrap().clone();
    assert_eq!(observed.len() as u64, summary.stats.storage_errors);
    assert_eq!(observed.len(), 4);
    for (path, op, kind) in &observed {
        assert_eq!(
            (path.as_str(), *op, *kind),
            ("live/cam", "append", "full"),
            "{observed:?}"
        );
    }
    let dropped: u64 = ev
        .iter()
        .filter_map(|e| match e {
            RecorderEvent::FramesDropped {
                frames,
                cause: DropCause::StorageFailure,
                ..
            } => Some(*frames),
            _ => None,
        })
        .sum();
    assert!(dropped > 0);
    assert_eq!(
        summary.stats.frames_written,
        media_count(&frames),
        "everything reached the writer"
    );
    assert_eq!(summary.stats.frames_dropped, dropped, "{summary:?}");
    assert_eq!(observer.dropped.load(Ordering::Relaxed), dropped);
    // The give-up is in the audit trail.
    let failed: Vec<String> = audit
        .0
        .lock()
        .unwrap()
        .iter()
        .filter(|e| e.protocol == arcly_record::PROTOCOL)
        .filter_map(|e| match &e.outcome {
            arcly_core::audit::AuditOutcome::Failed(r) => Some(r.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(failed.len(), 1, "{failed:?}");
    assert!(
        failed[0].starts_with("append live/cam/") && failed[0].contains("000002.ts"),
        "{failed:?}"
    );
    // The index lists only complete segments, marks the gap, and plays.
    let prefix = summary.prefix.unwrap();
    let index = playlist(faulty.as_ref(), &prefix, INDEX_NAME).await;
    assert_eq!(index.segments.len(), 2, "{index:?}");
    assert!(index.segments[1].discontinuity);
    assert_eq!(index.segments[1].uri, "000003.ts");
    let keys = faulty.list(&format!("{prefix}/")).await.unwrap();
    assert!(
        !keys.iter().any(|k| k.as_str().ends_with("000002.ts")),
        "the broken segment is removed"
    );
    let m3u8 = root_path(&dir, &format!("{prefix}/{INDEX_NAME}"));
    let (rv, _) = md5s(&m3u8);
    let (sv, _) = source_md5s();
    assert_eq!(rv.len(), 100, "segments 1 and 3: 2 s of video each");
    assert_same(&rv[..50], &sv[..50], "segment 1");
    assert_same(&rv[50..], &sv[100..], "segment 3");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_segment_is_synced_once_before_the_index_names_it() {
    let frames = fixture_frames("h264-aac.ts");
    let dir = tmpdir();
    let fs: Arc<dyn StorageBackend> = Arc::new(FsStorage::new(dir.path()).unwrap());
    let store = Faulty::new(fs, std::io::ErrorKind::Other);
    let engine = engine();
    let cfg = RecordConfig {
        flush_bytes: 16 << 10,
        ..small_segments()
    };
    let recorder = Recorder::builder(engine.clone(), store.clone())
        .policy("live", policy(cfg))
        .build();
    let p = path("cam");
    recorder.start(&p).await.unwrap();
    publish(&engine, &p, &frames, 0).await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    let summary = recorder.stop(&p).await.unwrap();
    assert_eq!(summary.stats.segments, 3);
    let ops = store.ops();
    let appends = ops.iter().filter(|(op, _)| *op == "append").count();
    let syncs: Vec<&String> = ops
        .iter()
        .filter(|(op, _)| *op == "sync")
        .map(|(_, k)| k)
        .collect();
    assert!(
        appends > 3 * syncs.len(),
        "no flush per append: {appends} appends"
    );
    assert_eq!(syncs.len(), 3, "one sync per closed segment: {ops:?}");
    // Replay the log: whenever the index is written, every segment it names
    // was synced before and not appended to since.
    let mut synced = std::collections::HashSet::new();
    let prefix = summary.prefix.unwrap();
    let mut named = 0;
    for (op, key) in &ops {
        match *op {
            "append" => assert!(!synced.contains(key), "append after sync: {key}"),
            "sync" => {
                synced.insert(key.clone());
            }
            "put" if key.ends_with(INDEX_NAME) => {
                named += 1;
                // The n-th index write names segments 1..=n (the last
                // write only adds ENDLIST).
                for n in 1..=named.min(3) {
                    let seg = format!("{prefix}/{n:06}.ts");
                    assert!(synced.contains(&seg), "index names {seg} before its sync");
                }
            }
            _ => {}
        }
    }
    // Three segment closes, plus the final rewrite with ENDLIST.
    assert_eq!(named, 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_permanent_error_is_not_retried_and_live_viewers_are_untouched() {
    let frames = fixture_frames("h264-aac.ts");
    let dir = tmpdir();
    let storage = Arc::new(FsStorage::new(dir.path()).unwrap());
    // A file where the recording's directory must go: ENOTDIR for every write.
    std::fs::create_dir(storage.root().join("live")).unwrap();
    std::fs::write(storage.root().join("live/cam"), b"in the way").unwrap();
    let engine = engine();
    let recorder = Recorder::builder(engine.clone(), storage.clone())
        .policy("live", policy(small_segments()))
        .build();
    let p = path("cam");
    let mut events = recorder.events();
    recorder.start(&p).await.unwrap();
    let viewer = live_counter(&engine, &p, 1);
    publish(&engine, &p, &frames, 0).await;
    assert_eq!(viewer.await.unwrap(), media_count(&frames));
    let summary = recorder.stop(&p).await.unwrap();
    let ev = drain(&mut events);
    let errors: Vec<_> = ev
        .iter()
        .filter_map(|e| match e {
            RecorderEvent::StorageError {
                kind,
                retrying,
                error,
                ..
            } => Some((*kind, *retrying, error.clone())),
            _ => None,
        })
        .collect();
    assert!(!errors.is_empty());
    for (kind, retrying, error) in &errors {
        assert_eq!(*kind, Some(std::io::ErrorKind::NotADirectory), "{error}");
        assert!(!retrying, "not retried: {error}");
        assert!(error.contains("live/cam/"), "names the key: {error}");
    }
    assert_eq!(summary.stats.segments, 0);
    assert_eq!(summary.stats.frames_dropped, media_count(&frames));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_disk_drops_to_the_next_keyframe_and_says_so() {
    let frames = fixture_frames("h264-aac.ts");
    let dir = tmpdir();
    let fs: Arc<dyn StorageBackend> =
        Arc::new(FsStorage::new(dir.path()).unwrap().sync_appends(false));
    let slow = Faulty::new(fs, std::io::ErrorKind::Other);
    let engine = engine();
    let cfg = RecordConfig {
        queue_frames: 32,
        flush_bytes: 1,
        ..small_segments()
    };
    let recorder = Recorder::builder(engine.clone(), slow.clone())
        .policy("live", policy(cfg))
        .build();
    let p = path("cam");
    let mut events = recorder.events();
    recorder.start(&p).await.unwrap();
    let viewer = live_counter(&engine, &p, 1);
    slow.delay_ms.store(5, Ordering::Release);
    publish(&engine, &p, &frames, 0).await;
    assert_eq!(viewer.await.unwrap(), media_count(&frames));
    slow.delay_ms.store(0, Ordering::Release);
    let summary = recorder.stop(&p).await.unwrap();
    let s = summary.stats;
    assert!(s.frames_dropped > 0, "{s:?}");
    let reported: u64 = drain(&mut events)
        .iter()
        .filter_map(|e| match e {
            RecorderEvent::FramesDropped {
                frames,
                cause: DropCause::QueueFull,
                ..
            } => Some(*frames),
            _ => None,
        })
        .sum();
    assert_eq!(reported, s.frames_dropped, "every drop reported");
    assert_eq!(
        s.frames_written + s.frames_dropped,
        media_count(&frames),
        "nothing lost silently: {s:?}"
    );
    let m3u8 = root_path(&dir, &format!("{}/{INDEX_NAME}", summary.prefix.unwrap()));
    assert_eq!(decode_errors(&m3u8), "");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retention_deletes_the_oldest_segments_first() {
    let frames = fixture_frames("h264-aac.ts");
    let dir = tmpdir();
    let storage = Arc::new(FsStorage::new(dir.path()).unwrap());
    let engine = engine();
    let pol = RecordPolicy {
        max_total_bytes: Some(700_000),
        ..policy(small_segments())
    };
    let recorder = Recorder::builder(engine.clone(), storage.clone())
        .policy("live", pol)
        .build();
    let p = path("cam");
    let mut events = recorder.events();
    recorder.start(&p).await.unwrap();
    publish(&engine, &p, &frames, 0).await;
    publish(&engine, &p, &frames, 10_000).await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    let summary = recorder.stop(&p).await.unwrap();
    let deleted: Vec<String> = drain(&mut events)
        .into_iter()
        .filter_map(|e| match e {
            RecorderEvent::SegmentDeleted { key, .. } => Some(key),
            _ => None,
        })
        .collect();
    assert!(!deleted.is_empty());
    let prefix = summary.prefix.unwrap();
    let index = playlist(storage.as_ref(), &prefix, INDEX_NAME).await;
    assert!(index.bytes() <= 700_000, "{}", index.bytes());
    assert_eq!(index.media_sequence, deleted.len() as u64);
    for (i, k) in deleted.iter().enumerate() {
        assert_eq!(k, &format!("{prefix}/{:06}.ts", i + 1), "oldest first");
    }
    let listed = storage.list(&format!("{prefix}/")).await.unwrap();
    assert_eq!(listed.len(), index.segments.len() + 2);
    let m3u8 = root_path(&dir, &format!("{prefix}/{INDEX_NAME}"));
    assert_eq!(decode_errors(&m3u8), "");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recording_sink_attached_to_the_engine() {
    let frames = fixture_frames("h264-aac.ts");
    let dir = tmpdir();
    let storage = Arc::new(FsStorage::new(dir.path()).unwrap());
    let engine = engine();
    let p = path("sink");
    let (sink, handle) =
        arcly_record::RecordingSink::new(p.clone(), storage.clone(), small_segments());
    let attached = engine.attach_sink(p.clone(), Box::new(sink));
    tokio::time::sleep(Duration::from_millis(20)).await;
    publish(&engine, &p, &frames, 0).await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    engine.shutdown();
    attached.await.unwrap().unwrap();
    let summary = handle.finished().await.unwrap();
    assert_eq!(summary.stats.frames_written, media_count(&frames));
    let m3u8 = root_path(&dir, &format!("{}/{INDEX_NAME}", summary.prefix.unwrap()));
    let (rv, _) = md5s(&m3u8);
    assert_same(&rv, &source_md5s().0, "video");
}

/// `Recorder::run` with `RecordMode::All` learns of a publisher after it
/// started: the publisher pushes its first second as one burst, before the
/// recorder's task can run. The GOP-cache replay covers that gap; without a
/// cache the recording starts at the next keyframe.
async fn record_all_after_a_burst(gop_cache: usize) -> (Vec<String>, u64) {
    let frames = fixture_frames("h264-aac.ts");
    let dir = tmpdir();
    let storage = Arc::new(FsStorage::new(dir.path()).unwrap());
    let engine = arcly_core::engine::Engine::builder()
        .application(
            arcly_core::engine::AppSpec::new("live")
                .channel_capacity(4096)
                .gop_cache(gop_cache),
        )
        .build();
    let recorder = Recorder::builder(engine.clone(), storage.clone())
        .policy(
            "live",
            RecordPolicy {
                mode: arcly_record::RecordMode::All,
                ..policy(small_segments())
            },
        )
        .build();
    let runner = recorder.run();
    let p = path("burst");
    let mut s = engine
        .publish(PublishRequest::new(p.clone(), "test"))
        .await
        .unwrap();
    let first = frames
        .iter()
        .find(|f| !f.is_config())
        .unwrap()
        .dts_in(TimeBase::MILLIS);
    let (burst, rest): (Vec<_>, Vec<_>) = frames
        .iter()
        .partition(|f| f.is_config() || f.dts_in(TimeBase::MILLIS) < first + 1000);
    for f in burst {
        s.push(f.clone()); // no yield: the recorder has not subscribed yet
    }
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(
        recorder.active(),
        std::slice::from_ref(&p),
        "recording started on Published"
    );
    for f in rest {
        s.push(f.clone());
        tokio::task::yield_now().await;
    }
    s.close();
    tokio::time::sleep(Duration::from_millis(50)).await;
    let summary = recorder.stop(&p).await.unwrap();
    engine.shutdown();
    runner.await.unwrap();
    let m3u8 = root_path(&dir, &format!("{}/{INDEX_NAME}", summary.prefix.unwrap()));
    (md5s(&m3u8).0, summary.stats.frames_written)
}

// One thread: the recorder's task cannot run before the test yields, so
// the burst is certainly published before the recorder subscribes.
#[tokio::test(flavor = "current_thread")]
async fn record_all_with_a_gop_cache_misses_nothing() {
    let frames = fixture_frames("h264-aac.ts");
    let (sv, _) = source_md5s();
    let (with_cache, written) = record_all_after_a_burst(1024).await;
    assert_same(&with_cache, &sv, "GOP cache replay: the whole video");
    assert_eq!(written, media_count(&frames), "every frame, audio too");
    let (without, _) = record_all_after_a_burst(0).await;
    assert_eq!(without.len(), 100, "no cache: from the keyframe at +2 s");
    assert_same(&without, &sv[50..], "no cache: the first GOP is lost");
}
