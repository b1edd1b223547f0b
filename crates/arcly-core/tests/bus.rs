//! Behaviour of the bus and the engine under concurrency.

use arcly_core::auth::{AuthDecision, AuthRequest, StreamAuthenticator};
use arcly_core::engine::{AppSpec, Engine};
use arcly_core::events::EngineEvent;
use arcly_core::registry::{PlayRequest, PlaybackRegistry, PublishRegistry, PublishRequest};
use arcly_core::testing::{CollectingSink, MemorySource, SyntheticStream};
use arcly_core::{MediaFrame, StreamError, StreamPath};
use proptest::prelude::*;
use std::sync::Arc;
use std::time::Duration;

fn engine(gop: usize) -> Engine {
    Engine::builder()
        .application(AppSpec::new("live").gop_cache(gop).channel_capacity(64))
        .build()
}

fn path(s: &str) -> StreamPath {
    StreamPath::parse("live", s).unwrap()
}

/// Checks that a subscriber's sequence is decodable: configuration before
/// the first video frame, the first video frame a keyframe, and within each
/// GOP no picture missing. Returns the number of video frames seen.
fn assert_decodable(frames: &[Arc<MediaFrame>]) -> usize {
    let mut have_config = false;
    let mut expect: Option<(u64, u64)> = None;
    let mut n = 0;
    for f in frames {
        if f.is_end_of_stream() {
            have_config = false;
            expect = None;
            continue;
        }
        if f.is_config() {
            if f.is_video() {
                have_config = true;
            }
            continue;
        }
        if !f.is_video() {
            continue;
        }
        n += 1;
        assert!(have_config, "video frame {f:?} before its configuration");
        let (gop, idx) = SyntheticStream::decode_position(&f.payload).unwrap();
        match expect {
            None => assert!(
                f.is_keyframe() && idx == 0,
                "first picture is not a keyframe: {f:?}"
            ),
            Some((g, i)) => {
                if f.is_keyframe() {
                    assert_eq!(idx, 0);
                    assert!(gop >= g, "went back in time");
                } else {
                    assert_eq!((gop, idx), (g, i), "a picture inside a GOP is missing");
                }
            }
        }
        expect = Some((gop, idx + 1));
    }
    n
}

#[tokio::test]
async fn many_subscribers_receive_every_frame_in_order() {
    let e = engine(0);
    let mut pubs = e
        .publish(PublishRequest::new(path("a"), "test"))
        .await
        .unwrap();
    let mut subs = Vec::new();
    for _ in 0..50 {
        subs.push(
            e.subscribe(PlayRequest::new(path("a"), "test"))
                .await
                .unwrap(),
        );
    }
    let frames: Vec<_> = SyntheticStream::new(10).take(40).collect();
    for f in frames.clone() {
        pubs.push(f);
    }
    for s in &mut subs {
        for want in &frames {
            let got = s.recv().await.unwrap();
            assert_eq!(got.payload, want.payload);
        }
    }
    assert_eq!(e.stream_stats(&path("a")).unwrap().subscribers, 50);
}

#[tokio::test]
async fn fan_out_shares_the_payload() {
    let e = engine(0);
    let mut p = e
        .publish(PublishRequest::new(path("z"), "test"))
        .await
        .unwrap();
    let mut a = e
        .subscribe(PlayRequest::new(path("z"), "test"))
        .await
        .unwrap();
    let mut b = e
        .subscribe(PlayRequest::new(path("z"), "test"))
        .await
        .unwrap();
    p.push(SyntheticStream::new(5).next().unwrap());
    let fa = a.recv().await.unwrap();
    let fb = b.recv().await.unwrap();
    assert!(
        Arc::ptr_eq(&fa, &fb),
        "subscribers must share one Arc<MediaFrame>"
    );
}

#[tokio::test]
async fn late_joiner_starts_with_config_and_keyframe() {
    let e = engine(120);
    let mut p = e
        .publish(PublishRequest::new(path("b"), "test"))
        .await
        .unwrap();
    // 2 GOPs and 3 pictures into the third.
    for f in SyntheticStream::new(10).take(2 + 2 * 20 + 2 * 3) {
        p.push(f);
    }
    let mut s = e
        .subscribe(PlayRequest::new(path("b"), "test"))
        .await
        .unwrap();
    let first = s.recv().await.unwrap();
    assert!(first.is_config() && first.is_video(), "{first:?}");
    let second = s.recv().await.unwrap();
    assert!(second.is_config() && second.is_audio(), "{second:?}");
    let third = s.recv().await.unwrap();
    assert!(third.is_keyframe(), "{third:?}");
    assert_eq!(
        SyntheticStream::decode_position(&third.payload),
        Some((2, 0))
    );
    // Then the rest of the cached GOP without a gap, then live frames.
    let mut got = vec![first, second, third];
    while let Some(f) = s.try_recv().unwrap() {
        got.push(f);
    }
    for f in SyntheticStream::new(10).skip(2 + 2 * 20 + 2 * 3).take(20) {
        p.push(f);
    }
    while let Some(f) = s.try_recv().unwrap() {
        got.push(f);
    }
    assert_eq!(assert_decodable(&got), 3 + 10);
}

#[tokio::test]
async fn slow_subscriber_skips_to_next_keyframe_without_delaying_others() {
    let e = engine(0);
    let mut p = e
        .publish(PublishRequest::new(path("c"), "test"))
        .await
        .unwrap();
    let mut fast = e
        .subscribe(PlayRequest::new(path("c"), "test"))
        .await
        .unwrap();
    let mut slow = e
        .subscribe(PlayRequest::new(path("c"), "test"))
        .await
        .unwrap();
    let frames: Vec<_> = SyntheticStream::new(10)
        .video_only()
        .take(1 + 300)
        .collect();
    let mut fast_got = Vec::new();
    for f in frames {
        p.push(f); // never blocks, whatever `slow` does
        while let Some(f) = fast.try_recv().unwrap() {
            fast_got.push(f);
        }
    }
    assert_eq!(fast_got.len(), 301, "the fast subscriber lost frames");
    let mut slow_got = Vec::new();
    while let Some(f) = slow.try_recv().unwrap() {
        slow_got.push(f);
    }
    assert!(slow.skipped() > 0, "the slow subscriber should have lagged");
    assert!(slow_got.len() < 301);
    // The frames it did get are decodable: it resumed at a keyframe.
    assert_decodable(&slow_got);
    let stats = e.stream_stats(&path("c")).unwrap();
    assert!(stats.qos_skipped >= slow.skipped());
}

#[tokio::test]
async fn a_subscriber_that_keeps_lagging_is_dropped() {
    let e = Engine::builder()
        .max_lag_events(2)
        .application(AppSpec::new("live").channel_capacity(4))
        .build();
    let mut p = e
        .publish(PublishRequest::new(path("d"), "test"))
        .await
        .unwrap();
    let mut s = e
        .subscribe(PlayRequest::new(path("d"), "test"))
        .await
        .unwrap();
    let mut src = SyntheticStream::new(3).video_only();
    let mut err = None;
    for _ in 0..5 {
        for f in src.by_ref().take(20) {
            p.push(f);
        }
        // Read a little, then fall behind again.
        if let Err(e) = s.try_recv() {
            err = Some(e);
            break;
        }
    }
    assert!(
        matches!(err, Some(StreamError::SlowSubscriber { .. })),
        "{err:?}"
    );
    assert_eq!(e.stream_stats(&path("d")).unwrap().subscribers_dropped, 1);
}

#[tokio::test]
async fn unpublish_tells_subscribers_and_republish_continues() {
    let e = engine(50);
    let mut events = e.events().subscribe();
    let mut p = e
        .publish(PublishRequest::new(path("e"), "test"))
        .await
        .unwrap();
    let mut req = PlayRequest::new(path("e"), "test");
    req.wait_for_publisher = true;
    let mut s = e.subscribe(req).await.unwrap();
    for f in SyntheticStream::new(5).take(8) {
        p.push(f);
    }
    drop(p);
    let mut got = Vec::new();
    while let Some(f) = s.try_recv().unwrap() {
        got.push(f);
    }
    assert!(got.last().unwrap().is_end_of_stream());
    assert!(!e.stream_stats(&path("e")).unwrap().live);
    assert!(matches!(
        events.recv().await.unwrap(),
        EngineEvent::Published { .. }
    ));
    // A player asking now (without waiting) is told there is no stream.
    let err = e
        .subscribe(PlayRequest::new(path("e"), "test"))
        .await
        .unwrap_err();
    assert!(matches!(err, StreamError::StreamNotFound { .. }));
    // The next publisher: the subscriber carries on, flagged discontinuity.
    let mut p2 = e
        .publish(PublishRequest::new(path("e"), "test"))
        .await
        .unwrap();
    assert_eq!(p2.generation(), 2);
    for f in SyntheticStream::new(5).take(4) {
        p2.push(f);
    }
    let f = s.recv().await.unwrap();
    assert!(f.is_config() && f.flags.contains(arcly_core::FrameFlags::DISCONTINUITY));
    assert!(f.sequence > got.last().unwrap().sequence);
    got.push(f);
    while let Some(f) = s.try_recv().unwrap() {
        got.push(f);
    }
    assert_decodable(&got);
}

#[tokio::test]
async fn second_publisher_and_limits_get_clear_errors() {
    let e = Engine::builder()
        .max_publishers(1)
        .application(AppSpec::new("live"))
        .build();
    let _p = e
        .publish(PublishRequest::new(path("f"), "test"))
        .await
        .unwrap();
    let err = e
        .publish(PublishRequest::new(path("f"), "test"))
        .await
        .unwrap_err();
    assert!(
        matches!(err, StreamError::TooManyPublishers { limit: 1 }),
        "{err}"
    );
    // Raised while running (a reload): the next publish gets in, the one in stays.
    e.set_limits(2, usize::MAX);
    let _q = e
        .publish(PublishRequest::new(path("g"), "test"))
        .await
        .unwrap();
    let err = e
        .publish(PublishRequest::new(path("h"), "test"))
        .await
        .unwrap_err();
    assert!(
        matches!(err, StreamError::TooManyPublishers { limit: 2 }),
        "{err}"
    );
    let e = engine(0);
    let _p = e
        .publish(PublishRequest::new(path("f"), "test"))
        .await
        .unwrap();
    let err = e
        .publish(PublishRequest::new(path("f"), "test"))
        .await
        .unwrap_err();
    assert!(
        matches!(err, StreamError::AlreadyPublishing { .. }),
        "{err}"
    );
    let err = e
        .publish(PublishRequest::new(
            StreamPath::parse("vod", "x").unwrap(),
            "test",
        ))
        .await
        .unwrap_err();
    assert!(matches!(err, StreamError::UnknownApp(_)), "{err}");
    let e = Engine::builder()
        .max_subscribers_per_stream(1)
        .application(AppSpec::new("live"))
        .build();
    let _p = e
        .publish(PublishRequest::new(path("g"), "test"))
        .await
        .unwrap();
    let _s = e
        .subscribe(PlayRequest::new(path("g"), "test"))
        .await
        .unwrap();
    let err = e
        .subscribe(PlayRequest::new(path("g"), "test"))
        .await
        .unwrap_err();
    assert!(
        matches!(err, StreamError::TooManySubscribers { limit: 1 }),
        "{err}"
    );
}

struct TokenAuth;

#[async_trait::async_trait]
impl StreamAuthenticator for TokenAuth {
    async fn authorize(&self, req: &AuthRequest) -> AuthDecision {
        if req.query_param("token").as_deref() == Some("ok") {
            AuthDecision::Allow
        } else {
            AuthDecision::Deny("bad token".into())
        }
    }
}

#[tokio::test]
async fn auth_denial_is_a_clear_error() {
    let e = Engine::builder()
        .authenticator(Arc::new(TokenAuth))
        .application(AppSpec::new("live"))
        .build();
    let err = e
        .publish(PublishRequest::new(path("h"), "test"))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, StreamError::Unauthorized { reason } if reason == "bad token"),
        "{err}"
    );
    let mut req = PublishRequest::new(path("h"), "test");
    req.query = Some("token=ok".into());
    let _p = e.publish(req).await.unwrap();
    assert_eq!(e.publisher_count(), 1);
}

#[tokio::test(start_paused = true)]
async fn idle_reaper_removes_idle_streams() {
    let e = Engine::builder()
        .idle_timeout(Duration::from_secs(2))
        .application(AppSpec::new("live"))
        .build();
    let run = tokio::spawn({
        let e = e.clone();
        async move { e.run().await }
    });
    let p = e
        .publish(PublishRequest::new(path("i"), "test"))
        .await
        .unwrap();
    assert_eq!(e.stream_count(), 1);
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert_eq!(e.stream_count(), 1, "a live stream is never reaped");
    drop(p);
    // `idle_for` uses the real clock; make it see time pass.
    std::thread::sleep(Duration::from_millis(2100));
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(e.stream_count(), 0);
    e.shutdown();
    run.await.unwrap().unwrap();
}

#[tokio::test]
async fn source_pump_and_sink_attach_move_frames() {
    let e = engine(0);
    let sink = CollectingSink::new();
    let task = e.attach_sink(path("j"), Box::new(sink.clone()));
    tokio::time::sleep(Duration::from_millis(20)).await;
    let frames: Vec<_> = SyntheticStream::new(5).take(30).collect();
    let pump = e.pump_source(path("j"), Box::new(MemorySource::new(frames.clone())));
    pump.await.unwrap().unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;
    let got = sink.frames();
    assert!(got.len() >= 30, "{}", got.len());
    assert_eq!(
        got[..30]
            .iter()
            .map(|f| f.payload.clone())
            .collect::<Vec<_>>(),
        frames.iter().map(|f| f.payload.clone()).collect::<Vec<_>>()
    );
    e.shutdown();
    task.await.unwrap().unwrap();
    assert!(sink.ended());
}

#[test]
fn engines_are_send_sync_and_independent() {
    fn check<T: Send + Sync>() {}
    check::<Engine>();
    let a = engine(0);
    let b = engine(0);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let _p = a
            .publish(PublishRequest::new(path("k"), "test"))
            .await
            .unwrap();
        assert_eq!(a.stream_count(), 1);
        assert_eq!(b.stream_count(), 0);
    });
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]
    /// Under random join times and random lag, every subscriber's sequence
    /// begins with configuration and a keyframe and has no hole inside a GOP.
    #[test]
    fn every_subscriber_sequence_is_decodable(
        gop in 1usize..12,
        total in 10usize..300,
        joins in proptest::collection::vec(0usize..300, 1..6),
        reads in proptest::collection::vec(0usize..40, 1..40),
        capacity in 4usize..32,
    ) {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(async move {
            let e = Engine::builder()
                .max_lag_events(u32::MAX)
                .application(AppSpec::new("live").gop_cache(64).channel_capacity(capacity))
                .build();
            let mut p = e.publish(PublishRequest::new(path("p"), "test")).await.unwrap();
            let mut subs: Vec<(arcly_core::bus::Subscription, Vec<Arc<MediaFrame>>)> = Vec::new();
            let mut read_idx = 0;
            for (i, f) in SyntheticStream::new(gop).take(total).enumerate() {
                for _ in joins.iter().filter(|&&j| j == i) {
                    let s = e.subscribe(PlayRequest::new(path("p"), "test")).await.unwrap();
                    subs.push((s, Vec::new()));
                }
                p.push(f);
                for (s, got) in &mut subs {
                    let n = reads[read_idx % reads.len()];
                    read_idx += 1;
                    for _ in 0..n {
                        match s.try_recv().unwrap() {
                            Some(f) => got.push(f),
                            None => break,
                        }
                    }
                }
            }
            for (s, got) in &mut subs {
                while let Some(f) = s.try_recv().unwrap() {
                    got.push(f);
                }
                assert_decodable(got);
            }
        });
    }
}

#[tokio::test]
async fn gop_cache_spans_chunks_and_stops_at_its_bound() {
    // A GOP of 150 pictures (300 frames with audio) crosses several slot chunks.
    let e = Engine::builder()
        .application(AppSpec::new("live").gop_cache(400).channel_capacity(1024))
        .build();
    let mut p = e
        .publish(PublishRequest::new(path("chunks"), "test"))
        .await
        .unwrap();
    for f in SyntheticStream::new(150).take(2 + 2 * 150 + 2 * 149) {
        p.push(f);
    }
    let mut s = e
        .subscribe(PlayRequest::new(path("chunks"), "test"))
        .await
        .unwrap();
    let mut got = Vec::new();
    while let Some(f) = s.try_recv().unwrap() {
        got.push(f);
    }
    assert_eq!(
        assert_decodable(&got),
        149,
        "the whole second GOP is replayed"
    );
    // Over the frame bound the cache is dropped: a joiner waits for the next keyframe.
    let e = Engine::builder()
        .application(AppSpec::new("live").gop_cache(5))
        .build();
    let mut p = e
        .publish(PublishRequest::new(path("small"), "test"))
        .await
        .unwrap();
    for f in SyntheticStream::new(10).take(2 + 2 * 7) {
        p.push(f);
    }
    assert_eq!(e.stream_stats(&path("small")).unwrap().gop_frames, 0);
    let mut s = e
        .subscribe(PlayRequest::new(path("small"), "test"))
        .await
        .unwrap();
    let mut got = Vec::new();
    while let Some(f) = s.try_recv().unwrap() {
        got.push(f);
    }
    assert!(
        got.iter().all(|f| f.is_config()),
        "only configuration is replayed: {got:?}"
    );
    for f in SyntheticStream::new(10).skip(2 + 2 * 7).take(2 * 6) {
        p.push(f);
    }
    while let Some(f) = s.try_recv().unwrap() {
        got.push(f);
    }
    assert_eq!(assert_decodable(&got), 3, "it starts at the next keyframe");
}

#[tokio::test]
async fn an_operator_can_kick_a_publisher() {
    let e = engine(0);
    let p = e
        .publish(PublishRequest::new(path("kick"), "test"))
        .await
        .unwrap();
    let handle = e.stream(&path("kick")).unwrap();
    assert!(!p.kicked().is_cancelled());
    assert!(handle.kick_publisher());
    tokio::time::timeout(Duration::from_secs(1), p.kicked().cancelled())
        .await
        .unwrap();
    drop(p);
    assert!(!handle.kick_publisher(), "nobody left to kick");
    let p2 = e
        .publish(PublishRequest::new(path("kick"), "test"))
        .await
        .unwrap();
    assert!(
        !p2.kicked().is_cancelled(),
        "a new publisher starts un-kicked"
    );
}

#[tokio::test]
async fn codec_metadata_does_not_replace_on_metadata() {
    let e = engine(0);
    let mut p = e
        .publish(PublishRequest::new(path("meta"), "test"))
        .await
        .unwrap();
    p.push(MediaFrame::metadata(
        0,
        bytes::Bytes::from_static(b"onMetaData"),
    ));
    let mut colour = MediaFrame::video(
        arcly_core::CodecId::H265,
        0,
        0,
        bytes::Bytes::from_static(b"colorInfo"),
    );
    colour.frame_type = arcly_core::FrameType::Data;
    p.push(colour);
    let cfg = e.stream(&path("meta")).unwrap().configs();
    assert_eq!(
        cfg.metadata.as_ref().unwrap().payload.as_ref(),
        b"onMetaData"
    );
    assert_eq!(cfg.codec_metadata.len(), 1);
    assert_eq!(cfg.frames().count(), 2);
}

/// What one subscriber has checked so far of the frames it received.
#[derive(Default)]
struct RaceCheck {
    last_sequence: u64,
    /// The generation of the last media frame, while it can be trusted
    /// (reset when the subscriber lagged).
    generation: Option<u64>,
    markers_since: u64,
    markers: u64,
    frames: u64,
}

impl RaceCheck {
    fn frame(&mut self, f: &MediaFrame) {
        assert!(
            f.sequence > self.last_sequence,
            "sequence went from {} to {}: {f:?}",
            self.last_sequence,
            f.sequence
        );
        self.last_sequence = f.sequence;
        if f.is_end_of_stream() {
            self.markers += 1;
            self.markers_since += 1;
            return;
        }
        self.frames += 1;
        let g = u64::from_be_bytes(f.payload[..8].try_into().unwrap());
        if let Some(prev) = self.generation {
            assert!(g >= prev, "generation {prev} then {g}");
            // Each publisher in between left exactly one marker.
            assert_eq!(
                self.markers_since,
                g - prev,
                "markers between generation {prev} and {g}"
            );
            if g > prev {
                assert!(
                    f.flags.contains(arcly_core::FrameFlags::DISCONTINUITY),
                    "the first frame of generation {g} is not flagged: {f:?}"
                );
            }
        }
        self.generation = Some(g);
        self.markers_since = 0;
    }
}

/// Publishers come and go on the same names while players join and leave
/// and the reaper removes idle streams as fast as it can. The hand-over
/// between publishers must keep the ring single-writer (sequences strictly
/// increase, every publisher leaves exactly one end-of-stream marker before
/// the next one's first frame), and a publisher or waiting player never
/// lands on a stream the reaper removed.
#[test]
fn republish_subscribe_and_reap_race_stress() {
    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
    const PUBLISH_THREADS: usize = 3;
    const CYCLES: usize = 3000;
    const FRAMES: u64 = 6;
    const NAMES: [&str; 2] = ["race0", "race1"];
    let e = Engine::builder()
        .idle_timeout(Duration::ZERO)
        .max_lag_events(u32::MAX)
        .application(AppSpec::new("live").gop_cache(16).channel_capacity(1 << 14))
        .build();
    let stop = Arc::new(AtomicBool::new(false));
    let publishes = Arc::new(AtomicU64::new(0));
    let reaped = Arc::new(AtomicU64::new(0));
    let rt = || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
    };
    std::thread::scope(|scope| {
        let mut publishers = Vec::new();
        for t in 0..PUBLISH_THREADS {
            let e = e.clone();
            let publishes = Arc::clone(&publishes);
            publishers.push(scope.spawn(move || {
                let rt = rt();
                for i in 0..CYCLES {
                    let name = path(NAMES[(t + i) % NAMES.len()]);
                    let mut p = loop {
                        match rt.block_on(e.publish(PublishRequest::new(name.clone(), "test"))) {
                            Ok(p) => break p,
                            Err(StreamError::AlreadyPublishing { .. }) => std::thread::yield_now(),
                            Err(err) => panic!("publish {name}: {err}"),
                        }
                    };
                    let g = p.generation();
                    for n in 0..FRAMES {
                        let mut payload = g.to_be_bytes().to_vec();
                        payload.extend_from_slice(&n.to_be_bytes());
                        p.push(
                            MediaFrame::video(arcly_core::CodecId::H264, 0, 0, payload.into())
                                .with_flags(arcly_core::FrameFlags::KEYFRAME),
                        );
                    }
                    assert!(!p.stream().is_closed(), "published into a closed stream");
                    let registered = e.stream(&name).expect("a live stream is registered");
                    assert!(registered.is_live());
                    assert_eq!(
                        registered.stats().generation,
                        g,
                        "the registered stream is not the one published to"
                    );
                    publishes.fetch_add(1, Ordering::Relaxed);
                    drop(p);
                }
            }));
        }
        let mut players = Vec::new();
        for t in 0..2 {
            let e = e.clone();
            let stop = Arc::clone(&stop);
            players.push(scope.spawn(move || {
                let rt = rt();
                let mut seen = (0, 0);
                let mut round = 0;
                while !stop.load(Ordering::Relaxed) {
                    round += 1;
                    let mut req = PlayRequest::new(path(NAMES[(t + round) % NAMES.len()]), "test");
                    req.wait_for_publisher = true;
                    let mut sub = match rt.block_on(e.subscribe(req)) {
                        Ok(s) => s,
                        Err(err) => panic!("a waiting player was refused: {err}"),
                    };
                    let mut check = RaceCheck::default();
                    let mut skipped = 0;
                    let wanted = 1 + round % 3;
                    while check.markers < wanted as u64 && !stop.load(Ordering::Relaxed) {
                        let next = rt.block_on(async {
                            tokio::time::timeout(Duration::from_millis(20), sub.recv()).await
                        });
                        let f = match next {
                            Ok(Ok(f)) => f,
                            Ok(Err(err)) => panic!("a subscriber ended: {err}"),
                            Err(_) => continue,
                        };
                        if sub.skipped() != skipped {
                            skipped = sub.skipped();
                            check.generation = None;
                        }
                        check.frame(&f);
                    }
                    seen.0 += check.frames;
                    seen.1 += check.markers;
                }
                seen
            }));
        }
        let churn = {
            let e = e.clone();
            let stop = Arc::clone(&stop);
            // Players that leave at once: streams go idle and are reaped
            // while others look them up.
            scope.spawn(move || {
                let rt = rt();
                let mut round = 0;
                while !stop.load(Ordering::Relaxed) {
                    round += 1;
                    let mut req = PlayRequest::new(path(NAMES[round % NAMES.len()]), "test");
                    req.wait_for_publisher = true;
                    if let Err(err) = rt.block_on(e.subscribe(req)) {
                        panic!("a waiting player was refused: {err}");
                    }
                }
            })
        };
        let reaper = {
            let e = e.clone();
            let stop = Arc::clone(&stop);
            let reaped = Arc::clone(&reaped);
            scope.spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    reaped.fetch_add(e.reap_idle() as u64, Ordering::Relaxed);
                    std::thread::yield_now();
                }
            })
        };
        let mut failure = None;
        for p in publishers {
            if let Err(err) = p.join() {
                failure.get_or_insert(err);
            }
        }
        stop.store(true, Ordering::Relaxed);
        let mut seen = (0, 0);
        for p in players {
            match p.join() {
                Ok((frames, markers)) => {
                    seen.0 += frames;
                    seen.1 += markers;
                }
                Err(err) => {
                    failure.get_or_insert(err);
                }
            }
        }
        if let Err(err) = churn.join() {
            failure.get_or_insert(err);
        }
        if let Err(err) = reaper.join() {
            failure.get_or_insert(err);
        }
        if let Some(err) = failure {
            std::panic::resume_unwind(err);
        }
        eprintln!(
            "{} publishes, {} streams reaped, players checked {} frames and {} markers",
            publishes.load(Ordering::Relaxed),
            reaped.load(Ordering::Relaxed),
            seen.0,
            seen.1
        );
        assert!(seen.1 > 0, "no player saw a publisher leave");
    });
}

/// A codec's end of sequence (AVC end of sequence, Enhanced RTMP
/// `SequenceEnd`) as the RTMP ingest maps it: a video frame of the codec
/// flagged END_OF_STREAM, with no payload.
fn sequence_end(ts: i64) -> MediaFrame {
    MediaFrame::video(arcly_core::CodecId::H264, ts, ts, bytes::Bytes::new())
        .with_flags(arcly_core::FrameFlags::END_OF_STREAM)
}

#[tokio::test]
async fn a_codec_sequence_end_is_not_the_publisher_leaving() {
    let e = Engine::builder()
        .max_lag_events(u32::MAX)
        .application(AppSpec::new("live").channel_capacity(8))
        .build();
    let mut p = e
        .publish(PublishRequest::new(path("seqend"), "test"))
        .await
        .unwrap();
    let mut s = e
        .subscribe(PlayRequest::new(path("seqend"), "test"))
        .await
        .unwrap();
    let mut src = SyntheticStream::new(30).video_only();
    // Configuration, a keyframe and P-frames: the subscriber reads nothing
    // and is lapped, so it must wait for the next keyframe.
    for f in src.by_ref().take(1 + 20) {
        p.push(f);
    }
    // The encoder ends its sequence and goes on with P-frames (its next
    // keyframe comes later).
    p.push(sequence_end(800));
    for f in src.by_ref().take(3) {
        p.push(f);
    }
    let mut got = Vec::new();
    while let Some(f) = s.try_recv().unwrap() {
        got.push(f);
    }
    assert!(s.skipped() > 0, "the subscriber should have lagged");
    let pictures: Vec<_> = got
        .iter()
        .filter(|f| f.is_video() && !f.is_config() && !f.is_end_of_stream())
        .collect();
    assert!(
        pictures.is_empty(),
        "a lagging subscriber resumed on P-frames after a codec sequence end: {pictures:?}"
    );
    // The next keyframe is delivered: the subscriber resumes there.
    let mut key = SyntheticStream::new(30).video_only().skip(1 + 30).take(2);
    p.push(key.next().unwrap());
    p.push(key.next().unwrap());
    let mut f = s.try_recv().unwrap().expect("the keyframe");
    if f.is_config() {
        // It lost the configuration while it lagged: re-sent first.
        f = s.try_recv().unwrap().expect("the keyframe");
    }
    assert!(f.is_keyframe(), "{f:?}");
    assert!(e.stream(&path("seqend")).unwrap().is_live());
}

/// Keeps every audit record.
#[derive(Default)]
struct AuditLog(std::sync::Mutex<Vec<arcly_core::audit::AuditEvent>>);

#[async_trait::async_trait]
impl arcly_core::audit::AuditSink for AuditLog {
    async fn record(&self, event: arcly_core::audit::AuditEvent) {
        self.0.lock().unwrap().push(event);
    }
}

impl AuditLog {
    /// The outcomes of plays recorded so far, waiting (up to a few seconds
    /// of the paused clock) until `n` are there.
    async fn plays(&self, n: usize) -> Vec<arcly_core::audit::AuditOutcome> {
        for _ in 0..500 {
            let plays: Vec<_> = self
                .0
                .lock()
                .unwrap()
                .iter()
                .filter(|e| e.action == arcly_core::auth::AuthAction::Play)
                .map(|e| e.outcome.clone())
                .collect();
            if plays.len() >= n {
                return plays;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("fewer than {n} play records");
    }
}

#[tokio::test(start_paused = true)]
async fn the_audit_trail_records_when_a_play_ends() {
    use arcly_core::audit::AuditOutcome;
    let log = Arc::new(AuditLog::default());
    let e = Engine::builder()
        .audit_sink(log.clone(), 64)
        .max_lag_events(0)
        .application(AppSpec::new("live").channel_capacity(4))
        .build();
    let mut p = e
        .publish(PublishRequest::new(path("audit"), "test"))
        .await
        .unwrap();
    let mut req = PlayRequest::new(path("audit"), "test");
    req.peer = Some("192.0.2.7:4000".parse().unwrap());
    let s = e.subscribe(req).await.unwrap();
    assert_eq!(log.plays(1).await, [AuditOutcome::Started]);
    drop(s);
    assert_eq!(
        log.plays(2).await,
        [AuditOutcome::Started, AuditOutcome::Ended]
    );
    let ended = log.0.lock().unwrap().last().unwrap().clone();
    assert_eq!(ended.peer, req_peer());
    assert_eq!(ended.path, path("audit"));
    // A player dropped for being too slow failed.
    let mut s = e
        .subscribe(PlayRequest::new(path("audit"), "test"))
        .await
        .unwrap();
    for f in SyntheticStream::new(5).video_only().take(20) {
        p.push(f);
    }
    assert!(matches!(
        s.try_recv(),
        Err(StreamError::SlowSubscriber { .. })
    ));
    drop(s);
    let plays = log.plays(4).await;
    assert!(
        matches!(&plays[3], AuditOutcome::Failed(reason) if reason.contains("slow")),
        "{plays:?}"
    );
}

fn req_peer() -> Option<std::net::SocketAddr> {
    Some("192.0.2.7:4000".parse().unwrap())
}

/// Enhanced RTMP multitrack as the RTMP ingest maps it: track 0 is
/// `SyntheticStream::new(10)` (H.264 and AAC), track 1 a second H.264
/// rendition whose GOPs start five pictures later. Frames of picture `n`
/// (for every `n` in `pictures`) in publish order.
fn two_tracks(pictures: std::ops::Range<usize>) -> Vec<MediaFrame> {
    let mut main = SyntheticStream::new(10);
    let mut second = SyntheticStream::new(10).video_only();
    let mut out = Vec::new();
    // Configuration: both tracks' sequence headers and the audio one.
    let configs: Vec<_> = main.by_ref().take(2).collect();
    let second_config = second.next().unwrap().with_track(1);
    for i in 0..pictures.end {
        let mut frames = Vec::new();
        if i == 0 {
            frames.extend(configs.iter().cloned());
            frames.push(second_config.clone());
        }
        frames.extend(main.by_ref().take(2));
        if i >= 5 {
            frames.push(second.next().unwrap().with_track(1));
        }
        if pictures.contains(&i) {
            out.extend(frames);
        }
    }
    out
}

/// The first track-0 picture in `frames`, and whether any track-1 frame came.
fn first_main_picture(frames: &[Arc<MediaFrame>]) -> (Option<&Arc<MediaFrame>>, bool) {
    let first = frames
        .iter()
        .find(|f| f.is_video() && !f.is_config() && f.track == 0);
    (first, frames.iter().any(|f| f.track == 1))
}

#[tokio::test]
async fn a_late_joiner_starts_the_default_track_on_its_keyframe() {
    let e = engine(200);
    let mut p = e
        .publish(PublishRequest::new(path("mt"), "test"))
        .await
        .unwrap();
    // Track 0 keyframes at pictures 0 and 10, track 1 at 5 and 15.
    for f in two_tracks(0..18) {
        p.push(f);
    }
    let mut s = e
        .subscribe(PlayRequest::new(path("mt"), "test"))
        .await
        .unwrap();
    let mut got = Vec::new();
    while let Some(f) = s.try_recv().unwrap() {
        got.push(f);
    }
    let (first, _) = first_main_picture(&got);
    let first = first.expect("a track-0 picture");
    assert!(
        first.is_keyframe(),
        "the cached GOP starts track 0 on a P-frame: {first:?}"
    );
    assert_eq!(
        SyntheticStream::decode_position(&first.payload),
        Some((1, 0))
    );
}

#[tokio::test]
async fn a_lagging_subscriber_waits_for_a_default_track_keyframe() {
    let e = Engine::builder()
        .max_lag_events(u32::MAX)
        .application(AppSpec::new("live").channel_capacity(8))
        .build();
    let mut p = e
        .publish(PublishRequest::new(path("mtlag"), "test"))
        .await
        .unwrap();
    let mut s = e
        .subscribe(PlayRequest::new(path("mtlag"), "test"))
        .await
        .unwrap();
    // Lapped during pictures 0..14; track 1's keyframe comes at 15, track
    // 0's only at 20.
    for f in two_tracks(0..15) {
        p.push(f);
    }
    let mut got = Vec::new();
    while let Some(f) = s.try_recv().unwrap() {
        got.push(f);
    }
    assert!(s.skipped() > 0);
    got.clear();
    for f in two_tracks(15..21) {
        p.push(f);
        while let Some(f) = s.try_recv().unwrap() {
            got.push(f);
        }
    }
    let (first, _) = first_main_picture(&got);
    let first = first.expect("a track-0 picture");
    assert!(
        first.is_keyframe(),
        "a lagging subscriber resumed track 0 on a P-frame: {first:?}"
    );
}

#[tokio::test]
async fn players_that_did_not_ask_for_multitrack_get_the_default_track_only() {
    use arcly_core::bus::TrackSelection;
    let e = Engine::builder()
        .application(AppSpec::new("live").gop_cache(200).channel_capacity(256))
        .build();
    let mut p = e
        .publish(PublishRequest::new(path("mtsel"), "test"))
        .await
        .unwrap();
    for f in two_tracks(0..18) {
        p.push(f);
    }
    let mut legacy = e
        .subscribe(PlayRequest::new(path("mtsel"), "test"))
        .await
        .unwrap();
    legacy.select_tracks(TrackSelection::Default);
    let mut all = e
        .subscribe(PlayRequest::new(path("mtsel"), "test"))
        .await
        .unwrap();
    assert_eq!(all.tracks(), TrackSelection::All);
    for f in two_tracks(18..40) {
        p.push(f);
    }
    let (mut got, mut got_all) = (Vec::new(), Vec::new());
    while let Some(f) = legacy.try_recv().unwrap() {
        got.push(f);
    }
    while let Some(f) = all.try_recv().unwrap() {
        got_all.push(f);
    }
    assert!(
        got.iter().all(|f| f.track == 0 && f.is_default_track()),
        "a legacy player got another track"
    );
    // Configuration, the GOP from picture 10 and the live pictures up to 39.
    assert_eq!(assert_decodable(&got), 30);
    let main: Vec<_> = got_all.iter().filter(|f| f.track == 0).collect();
    assert_eq!(main.len(), got.len(), "the same track 0 either way");
    assert!(got_all
        .iter()
        .any(|f| f.track == 1 && !f.is_default_track()));
    // Track 1 is flagged on the shared frame, not copied per subscriber.
    let shared = got_all
        .iter()
        .find(|f| f.track == 0 && !f.is_config())
        .unwrap();
    assert!(got.iter().any(|f| Arc::ptr_eq(f, shared)));
}

#[tokio::test]
async fn a_publish_that_starts_on_another_tracks_keyframe_starts_track_0_on_its_own() {
    let e = engine(0);
    let mut req = PlayRequest::new(path("mtstart"), "test");
    req.wait_for_publisher = true;
    let mut s = e.subscribe(req).await.unwrap();
    let mut got = Vec::new();
    for round in 0..2 {
        let mut p = e
            .publish(PublishRequest::new(path("mtstart"), "test"))
            .await
            .unwrap();
        // Track 1's keyframe opens the publish; track 0 is mid-GOP until
        // picture 10.
        let mut main = SyntheticStream::new(10).video_only();
        let mut second = SyntheticStream::new(10).video_only();
        p.push(main.next().unwrap());
        p.push(second.next().unwrap().with_track(1));
        let mut main = main.skip(5);
        for _ in 0..10 {
            p.push(second.next().unwrap().with_track(1));
            p.push(main.next().unwrap());
        }
        drop(p);
        let start = got.len();
        while let Some(f) = s.try_recv().unwrap() {
            got.push(f);
        }
        let (first, _) = first_main_picture(&got[start..]);
        let first = first.expect("a track-0 picture");
        assert!(
            first.is_keyframe(),
            "publisher {round}: track 0 starts on a P-frame: {first:?}"
        );
    }
}
