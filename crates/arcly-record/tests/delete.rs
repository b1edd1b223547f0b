//! `Recorder::delete_recording`: a finished recording is deleted whole
//! (indexes first), a recording in progress is refused, a missing one is
//! reported; retention's ledger forgets what was deleted.

use arcly_core::engine::{AppSpec, Engine};
use arcly_core::registry::{PublishRegistry, PublishRequest};
use arcly_core::traits::StorageBackend;
use arcly_core::{CodecId, MediaFrame, StreamPath};
use arcly_record::{DeleteOutcome, FsStorage, RecordMode, RecordPolicy, Recorder, RecorderEvent};
use std::sync::Arc;
use std::time::Duration;

fn mp3(ms: i64) -> MediaFrame {
    let mut v = vec![0xFF, 0xFB, 0x94, 0x64];
    v.resize(384, 0);
    MediaFrame::audio(CodecId::Mp3, ms, v.into())
}

#[tokio::test]
async fn recordings_are_deleted_whole_and_only_when_finished() {
    let dir = tempfile::tempdir().unwrap();
    let storage = Arc::new(FsStorage::new(dir.path()).unwrap());
    let engine = Engine::builder().application(AppSpec::new("live")).build();
    let recorder = Recorder::builder(engine.clone(), storage.clone())
        .policy(
            "live",
            RecordPolicy {
                mode: RecordMode::OnRequest,
                // A bound, so a retention ledger accounts the segments.
                max_total_bytes: Some(1 << 30),
                ..Default::default()
            },
        )
        .build();
    let mut events = recorder.events();
    let path = StreamPath::parse("live", "cam").unwrap();
    recorder.start(&path).await.unwrap();
    let mut publisher = engine
        .publish(PublishRequest::new(path.clone(), "test"))
        .await
        .unwrap();
    for i in 0..500 {
        publisher.push(mp3(i * 24));
    }
    tokio::time::sleep(Duration::from_millis(50)).await;
    let first = recorder.stop(&path).await.unwrap().prefix.unwrap();

    // A second recording, still in progress: refused.
    recorder.start(&path).await.unwrap();
    for i in 500..1000 {
        publisher.push(mp3(i * 24));
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    let second = loop {
        if let Some(p) = recorder.recording_prefix(&path) {
            break p;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no second recording"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    assert_ne!(first, second);
    assert_eq!(
        recorder.delete_recording(&second).await.unwrap(),
        DeleteOutcome::InProgress
    );

    let before = storage.list(&format!("{first}/")).await.unwrap();
    assert!(before.len() >= 3, "{before:?}");
    match recorder.delete_recording(&first).await.unwrap() {
        DeleteOutcome::Deleted { objects, bytes } => {
            assert_eq!(
                objects,
                before.len() - 2,
                "every object but the two indexes"
            );
            assert!(bytes > 0);
        }
        other => panic!("{other:?}"),
    }
    assert!(storage.list(&format!("{first}/")).await.unwrap().is_empty());
    let mut deleted = 0;
    while let Ok(e) = events.try_recv() {
        if let RecorderEvent::SegmentDeleted { key, .. } = e {
            assert!(key.starts_with(&first), "{key}");
            deleted += 1;
        }
    }
    assert_eq!(deleted, before.len() - 2);
    assert_eq!(
        recorder.delete_recording(&first).await.unwrap(),
        DeleteOutcome::NotFound
    );
    assert_eq!(
        recorder.delete_recording("live/cam").await.unwrap(),
        DeleteOutcome::NotFound
    );
    // Retention now runs without meeting the deleted segments again.
    assert_eq!(recorder.enforce_retention().await, 0);
    let summary = recorder.stop(&path).await.unwrap();
    assert_eq!(summary.prefix.as_deref(), Some(second.as_str()));
    assert!(!storage
        .list(&format!("{second}/"))
        .await
        .unwrap()
        .is_empty());
}
