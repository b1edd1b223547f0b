//! `RecordingsService` on an fMP4 recording, without a socket: the listing
//! names the format and codecs, the playlist maps the initialization
//! section, and the download (init + fragments) decodes without errors.
#![cfg(feature = "http")]

mod common;

use arcly_core::auth::PermitAll;
use arcly_core::registry::{PublishRegistry, PublishRequest};
use arcly_hls::fmp4::Fmp4Muxer;
use arcly_http::{ConnInfo, HttpService, RequestBody};
use arcly_record::http::RecordingsService;
use arcly_record::playlist::{parse_compact_time, rfc3339};
use arcly_record::{FsStorage, RecordConfig, RecordPolicy, Recorder};
use bytes::Bytes;
use common::*;
use http_body_util::BodyExt;
use hyper::{Method, Request, StatusCode};
use std::sync::Arc;
use std::time::Duration;

async fn get(svc: &RecordingsService, uri: &str) -> (StatusCode, String, Bytes) {
    let body: RequestBody = http_body_util::Empty::<Bytes>::new()
        .map_err(|never| match never {})
        .boxed();
    let mut req = Request::builder()
        .method(Method::GET)
        .uri(uri)
        .body(body)
        .unwrap();
    req.extensions_mut().insert(ConnInfo {
        peer: "127.0.0.1:5000".parse().unwrap(),
        shutdown: Default::default(),
    });
    assert!(svc.owns(&Method::GET, req.uri().path()), "{uri}");
    let resp = svc.call(req).await;
    let status = resp.status();
    let ctype = resp
        .headers()
        .get(hyper::header::CONTENT_TYPE)
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    (status, ctype, bytes)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_fmp4_recording_plays_back_and_downloads() {
    // Every configuration first: demuxed TS announces AAC at its first ADTS
    // frame, after the first video keyframe, and whether the first init
    // section then holds it depended on timing (a second init section
    // makes a range download 409).
    let mut frames = fixture_frames("h264-aac.ts");
    frames.sort_by_key(|f| !f.is_config());
    let dir = tmpdir();
    let storage = Arc::new(FsStorage::new(dir.path()).unwrap());
    let engine = engine();
    let config = RecordConfig {
        segment_target: Duration::from_secs(1),
        ..RecordConfig::default()
    }
    .muxer(Arc::new(|| Box::new(Fmp4Muxer::new())));
    let recorder = Recorder::builder(engine.clone(), storage.clone())
        .policy(
            "live",
            RecordPolicy {
                config,
                ..RecordPolicy::default()
            },
        )
        .build();
    let p = path("cam");
    recorder.start(&p).await.unwrap();
    let mut s = engine
        .publish(PublishRequest::new(p.clone(), "test"))
        .await
        .unwrap();
    for f in &frames {
        s.push(f.clone());
        tokio::task::yield_now().await;
    }
    s.close();
    tokio::time::sleep(Duration::from_millis(50)).await;
    let prefix = recorder.stop(&p).await.unwrap().prefix.unwrap();
    let id = prefix.rsplit('/').next().unwrap().to_owned();

    let svc = RecordingsService::new(storage, Arc::new(PermitAll))
        .admin(|_| None)
        .recorder(recorder);
    let (st, _, list) = get(&svc, "/api/recordings").await;
    assert_eq!(st, StatusCode::OK);
    let list = String::from_utf8_lossy(&list);
    assert!(list.contains("\"format\": \"fmp4\""), "{list}");
    assert!(list.contains("\"codecs\": [\"h264\", \"aac\"]"), "{list}");

    // The whole recording: its start, for an hour.
    let start = rfc3339(parse_compact_time(&id).unwrap());
    let range = format!("start={start}&duration=3600");
    let (st, ctype, pl) = get(&svc, &format!("/live/cam/recordings/index.m3u8?{range}")).await;
    let pl = String::from_utf8_lossy(&pl).into_owned();
    assert_eq!(st, StatusCode::OK, "{pl}");
    assert_eq!(ctype, "application/vnd.apple.mpegurl");
    assert!(
        pl.contains(&format!("#EXT-X-MAP:URI=\"{id}/init.mp4\"")),
        "{pl}"
    );
    assert!(pl.contains("#EXT-X-VERSION:7"), "{pl}");
    let (st, ctype, init) = get(&svc, &format!("/live/cam/recordings/{id}/init.mp4")).await;
    assert_eq!((st, ctype.as_str()), (StatusCode::OK, "video/mp4"));
    assert_eq!(&init[4..8], b"ftyp");

    let (st, ctype, mp4) = get(&svc, &format!("/live/cam/recordings/download?{range}")).await;
    assert_eq!((st, ctype.as_str()), (StatusCode::OK, "video/mp4"));
    assert!(
        mp4.starts_with(&init),
        "the download starts with the init section"
    );
    let file = dir.path().join("download.mp4");
    std::fs::write(&file, &mp4).unwrap();
    let errors = decode_errors(&file);
    assert!(errors.trim().is_empty(), "{errors}");
    let (v, a) = md5s(&file);
    let (sv, _) = source_md5s();
    assert!(
        v.len() + 5 >= sv.len() && !a.is_empty(),
        "{} of {} frames",
        v.len(),
        sv.len()
    );
}
