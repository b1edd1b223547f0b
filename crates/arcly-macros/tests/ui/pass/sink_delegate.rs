//! Wrappers: a generic struct and a tuple struct delegating to inner sinks.
use arcly_macros::MediaSink;
use arcly_stream::prelude::*;
use arcly_stream::testing::{CollectingSink, SyntheticStream};
use std::sync::Arc;

/// Passes configuration and keyframes only; everything else goes to `inner`
/// untouched (lifecycle included).
#[derive(MediaSink)]
#[media_sink(filter(video), video = keyframes_only)]
struct KeyframesOnly<S> {
    #[media_sink(delegate)]
    inner: S,
    dropped: usize,
}

impl<S: MediaSink> KeyframesOnly<S> {
    async fn keyframes_only(&mut self, frame: Arc<MediaFrame>) -> Result<()> {
        if frame.is_config() || frame.is_keyframe() {
            self.inner.on_frame(frame).await
        } else {
            self.dropped += 1;
            Ok(())
        }
    }
}

/// Forwards everything to a boxed sink.
#[derive(MediaSink)]
struct Tap(#[media_sink(delegate)] Box<dyn MediaSink>);

#[tokio::main]
async fn main() {
    let engine = Engine::builder().application(AppSpec::new("live")).build();
    let path = StreamPath::parse("live", "cam").unwrap();
    let keys = CollectingSink::new();
    let all = CollectingSink::new();
    let a = engine.attach_sink(
        path.clone(),
        Box::new(KeyframesOnly { inner: keys.clone(), dropped: 0 }),
    );
    let b = engine.attach_sink(path.clone(), Box::new(Tap(Box::new(all.clone()))));
    while engine.stream_stats(&path).map_or(0, |s| s.subscribers) < 2 {
        tokio::task::yield_now().await;
    }
    let mut publisher = engine.publish(PublishRequest::new(path, "test")).await.unwrap();
    for frame in SyntheticStream::new(5).take(2 + 2 * 20) {
        publisher.push(frame);
    }
    publisher.close();
    for _ in 0..500 {
        if all.frames().iter().any(|f| f.is_end_of_stream()) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    engine.shutdown();
    a.await.unwrap().unwrap();
    b.await.unwrap().unwrap();

    let keys = keys.frames();
    assert_eq!(keys.len(), 1 + 4, "the H.264 config and one keyframe per GOP of 5");
    assert!(keys[0].is_config() && keys[1..].iter().all(|f| f.is_keyframe()));
    assert_eq!(all.frames().len(), 2 + 2 * 20 + 1, "everything, and the end marker");
    assert!(all.ended());
}
