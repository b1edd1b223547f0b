//! The packager against a real engine: frames published from fixtures,
//! publisher restarts, the end of a stream, and the registry's lifecycle.

mod common;

use arcly_core::engine::{AppSpec, Engine};
use arcly_core::registry::{PublishRegistry, PublishRequest};
use arcly_core::testing::tools;
use arcly_core::StreamPath;
use arcly_hls::checker;
use arcly_hls::packager::{HlsRegistry, PackagerConfig};
use std::sync::Arc;
use std::time::Duration;

fn engine() -> Engine {
    Engine::builder()
        .application(AppSpec::new("live").channel_capacity(1024))
        .build()
}

async fn publish_all(engine: &Engine, path: &StreamPath, frames: &[arcly_core::MediaFrame]) {
    let mut p = engine
        .publish(PublishRequest::new(path.clone(), "test"))
        .await
        .unwrap();
    for f in frames {
        p.push(f.clone());
        tokio::task::yield_now().await;
    }
    p.close();
}

#[tokio::test]
async fn restart_marks_a_discontinuity_and_stop_ends_the_playlist() {
    let engine = engine();
    let frames = common::read_ts(&tools::fixture("h264-aac.ts"));
    let path = StreamPath::parse("live", "cam").unwrap();
    let mut cfg = PackagerConfig::default();
    cfg.hls.window = 20;
    let hls = HlsRegistry::new(Arc::new(engine.clone()), cfg);
    let follow = hls.follow(&engine);

    publish_all(&engine, &path, &frames).await;
    let packager = hls.get(&path).expect("started on Published");
    // The publisher left: the last segment is closed, the playlist stays live.
    tokio::time::timeout(Duration::from_secs(5), async {
        while packager
            .lock()
            .playlist(false)
            .is_none_or(|t| !t.contains("seg2.ts"))
        {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .expect("three segments after the first publisher");
    let live = packager.lock().playlist(false).unwrap();
    assert!(!live.contains("#EXT-X-ENDLIST"), "{live}");
    checker::check(&live).unwrap();

    // The same publisher again (timestamps restart): a discontinuity.
    publish_all(&engine, &path, &frames).await;
    assert!(hls.get(&path).is_some_and(|p| p.finished_at().is_none()));
    hls.shutdown();
    tokio::time::timeout(Duration::from_secs(5), packager.finished())
        .await
        .unwrap();
    let text = packager.lock().playlist(false).unwrap();
    let s = checker::check(&text).unwrap_or_else(|e| panic!("{e:#?}\n{text}"));
    assert!(text.ends_with("#EXT-X-ENDLIST\n"), "{text}");
    assert_eq!(text.matches("#EXT-X-DISCONTINUITY\n").count(), 1, "{text}");
    let total: f64 = packager
        .lock()
        .media_playlist()
        .unwrap()
        .segments
        .iter()
        .map(|s| s.duration)
        .sum();
    let want = 2.0 * (common::span_us(&frames) as f64 / 1e6);
    assert!((total - want).abs() < 0.2, "{total} vs {want}");
    let _ = s;
    follow.await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn a_stream_that_stays_unpublished_ends() {
    let engine = engine();
    let frames = common::read_ts(&tools::fixture("h264-aac.ts"));
    let path = StreamPath::parse("live", "gone").unwrap();
    let cfg = PackagerConfig {
        unpublish_grace: Duration::from_secs(3),
        ..PackagerConfig::default()
    };
    let hls = HlsRegistry::new(Arc::new(engine.clone()), cfg);
    let packager = hls.start(&path).unwrap(); // before anyone publishes
    tokio::task::yield_now().await;
    publish_all(&engine, &path, &frames).await;
    tokio::time::timeout(Duration::from_secs(10), packager.finished())
        .await
        .expect("ends after the grace period");
    let text = packager.lock().playlist(false).unwrap();
    assert!(text.ends_with("#EXT-X-ENDLIST\n"), "{text}");
    checker::check(&text).unwrap();
    // A new publisher gets a fresh packager.
    let again = hls.start(&path).unwrap();
    assert!(again.finished_at().is_none());
}
