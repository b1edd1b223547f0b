//! Containers through the core's `Muxer` contract: fMP4 (arcly-hls's
//! `Fmp4Muxer`) recording HEVC + AAC with an `EXT-X-MAP` index that ffmpeg
//! decodes bit-exact, and codecs MPEG-TS cannot carry failing loudly.

mod common;

use arcly_core::registry::{PublishRegistry, PublishRequest};
use arcly_core::testing::tools::{ffmpeg9, fixture, framemd5, md5_column};
use arcly_core::traits::{ContainerFormat, StorageBackend};
use arcly_core::{CodecId, MediaFrame};
use arcly_hls::fmp4::Fmp4Muxer;
use arcly_record::{
    DropCause, FinishReason, FsStorage, RecordConfig, RecordPolicy, Recorder, RecorderEvent,
    RecordingPlaylist, INDEX_NAME,
};
use arcly_rtmp::flv::{FlvReader, TagDemuxer};
use common::*;
use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

/// Every frame of an (Enhanced) FLV fixture, in the canonical layout.
fn flv_frames(name: &str) -> Vec<MediaFrame> {
    let mut reader = FlvReader::new();
    reader.push(&std::fs::read(fixture(name)).unwrap());
    let mut demux = TagDemuxer::new();
    let mut frames = Vec::new();
    while let Some(tag) = reader.next_tag().unwrap() {
        demux
            .demux(tag.tag_type, tag.timestamp, tag.body, &mut frames)
            .unwrap();
    }
    frames
}

/// framemd5 columns of streams 0 and 1, decoded by FFmpeg 9 (Enhanced FLV).
fn md5s9(input: &Path) -> (Vec<String>, Vec<String>) {
    let lines = framemd5(&ffmpeg9(), &[], input.to_str().unwrap(), &[]);
    (md5_column(&lines, 0), md5_column(&lines, 1))
}

async fn publish_all(
    engine: &arcly_core::engine::Engine,
    p: &arcly_core::StreamPath,
    frames: &[MediaFrame],
) {
    let mut s = engine
        .publish(PublishRequest::new(p.clone(), "test"))
        .await
        .unwrap();
    for f in frames {
        s.push(f.clone());
        tokio::task::yield_now().await;
    }
    s.close();
}

fn fmp4_config() -> RecordConfig {
    RecordConfig {
        segment_target: Duration::from_secs(1),
        ..RecordConfig::default()
    }
    .muxer(Arc::new(|| Box::new(Fmp4Muxer::new())))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fmp4_recording_of_hevc_aac_decodes_bit_exact() {
    let frames = flv_frames("hevc-aac.enhanced.flv");
    assert!(frames.iter().any(|f| f.codec == CodecId::H265));
    let dir = tmpdir();
    let storage = Arc::new(FsStorage::new(dir.path()).unwrap());
    let engine = engine();
    let recorder = Recorder::builder(engine.clone(), storage.clone())
        .policy(
            "live",
            RecordPolicy {
                config: fmp4_config(),
                ..RecordPolicy::default()
            },
        )
        .build();
    let p = path("hevc");
    recorder.start(&p).await.unwrap();
    publish_all(&engine, &p, &frames).await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    let summary = recorder.stop(&p).await.unwrap();
    assert_eq!(
        summary.stats.frames_written,
        media_count(&frames),
        "{summary:?}"
    );
    assert_eq!(summary.stats.frames_dropped, 0);
    let prefix = summary.prefix.unwrap();

    let names: Vec<String> = storage
        .list(&format!("{prefix}/"))
        .await
        .unwrap()
        .iter()
        .map(|k| k.as_str().rsplit('/').next().unwrap().to_owned())
        .collect();
    assert!(names.contains(&"init.mp4".to_owned()), "{names:?}");
    assert!(names.iter().any(|n| n == "000001.m4s"), "{names:?}");
    assert!(!names.iter().any(|n| n.ends_with(".ts")), "{names:?}");

    let m3u8 = root_path(&dir, &format!("{prefix}/{INDEX_NAME}"));
    let text = std::fs::read_to_string(&m3u8).unwrap();
    assert!(text.contains("#EXT-X-VERSION:7\n"), "{text}");
    assert_eq!(
        text.matches("#EXT-X-MAP:URI=\"init.mp4\"\n").count(),
        1,
        "one EXT-X-MAP for one initialization: {text}"
    );
    let index = RecordingPlaylist::parse(text.as_bytes()).unwrap();
    assert!(index.segments.len() >= 3, "{text}");
    assert!(index
        .segments
        .iter()
        .all(|s| s.uri.ends_with(".m4s") && s.map.as_deref() == Some("init.mp4")));
    let init = std::fs::read(root_path(&dir, &format!("{prefix}/init.mp4"))).unwrap();
    assert_eq!(&init[4..8], b"ftyp");

    let (sv, sa) = md5s9(&fixture("hevc-aac.enhanced.flv"));
    let (rv, ra) = md5s9(&m3u8);
    assert_eq!(sv.len(), 150, "6 s at 25 fps");
    assert!(
        sa.len() > 250,
        "6 s of 1024-sample AAC at 48 kHz: {}",
        sa.len()
    );
    assert_same(&rv, &sv, "HEVC video framemd5 through the fMP4 playlist");
    assert_same(&ra, &sa, "AAC audio framemd5 through the fMP4 playlist");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn codecs_mpeg_ts_cannot_carry_fail_the_recording_at_the_first_frame() {
    for (fixture_name, codec) in [
        ("av1-opus.enhanced.flv", CodecId::Av1),
        ("vp9-opus.enhanced.flv", CodecId::Vp9),
    ] {
        let frames = flv_frames(fixture_name);
        let dir = tmpdir();
        let storage = Arc::new(FsStorage::new(dir.path()).unwrap());
        let (engine, observer, audit) = observed_engine();
        let recorder = Recorder::builder(engine.clone(), storage.clone()).build();
        let p = path("unsupported");
        let mut events = recorder.events();
        recorder.start(&p).await.unwrap();
        let viewer_frames = {
            let mut req = arcly_core::registry::PlayRequest::new(p.clone(), "viewer");
            req.wait_for_publisher = true;
            let mut sub = arcly_core::registry::PlaybackRegistry::subscribe(&engine, req)
                .await
                .unwrap();
            let h = tokio::spawn(async move {
                let mut n = 0u64;
                while let Ok(f) = sub.recv().await {
                    if f.is_end_of_stream() {
                        break;
                    }
                    if !f.is_config() && (f.is_video() || f.is_audio()) {
                        n += 1;
                    }
                }
                n
            });
            publish_all(&engine, &p, &frames).await;
            h.await.unwrap()
        };
        assert_eq!(viewer_frames, media_count(&frames), "live delivery intact");
        // The recording ends by itself: it failed.
        let finished = loop {
            match tokio::time::timeout(Duration::from_secs(5), events.recv())
                .await
                .expect("the recording finishes")
                .unwrap()
            {
                RecorderEvent::RecordingFinished { summary, .. } => break summary,
                RecorderEvent::Unsupported {
                    codec: c,
                    format,
                    error,
                    ..
                } => {
                    assert_eq!((c, format), (codec, ContainerFormat::MpegTs), "{error}");
                    assert!(error.contains(codec.name().as_str()), "{error}");
                    eprintln!("{fixture_name}: {error}");
                }
                RecorderEvent::FramesDropped { cause, .. } => {
                    assert_eq!(cause, DropCause::Unrecordable)
                }
                RecorderEvent::SegmentWritten { segment, .. } => {
                    panic!("{fixture_name}: wrote {segment:?}")
                }
                _ => {}
            }
        };
        match &finished.reason {
            FinishReason::Failed(e) => assert!(e.contains(codec.name().as_str()), "{e}"),
            other => panic!("{fixture_name}: {other:?}"),
        }
        assert_eq!(finished.stats.segments, 0);
        assert_eq!(finished.stats.frames_written, 0, "{finished:?}");
        assert!(finished.stats.frames_dropped >= 1);
        assert_eq!(
            observer.dropped.load(Ordering::Relaxed),
            finished.stats.frames_dropped,
            "the observer heard of it"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(
            audit.0.lock().unwrap().iter().any(|e| e.protocol == arcly_record::PROTOCOL
                && matches!(&e.outcome, arcly_core::audit::AuditOutcome::Failed(r) if r.contains(codec.name().as_str()))),
            "audited"
        );
        assert!(
            storage.list("").await.unwrap().is_empty(),
            "nothing half-written"
        );
        assert!(recorder.active().is_empty());
    }
}
