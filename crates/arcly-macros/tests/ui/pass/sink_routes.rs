//! Per-kind routing, filters and lifecycle hooks, fed by a real publish.
use arcly_macros::MediaSink;
use arcly_stream::prelude::*;
use arcly_stream::testing::SyntheticStream;
use std::sync::{Arc, Mutex};

#[derive(Default, Debug)]
struct Log {
    started: Option<String>,
    configs: Vec<CodecId>,
    video: usize,
    audio: usize,
    other: usize,
    ended: bool,
}

#[derive(MediaSink)]
#[media_sink(filter(video, audio), codecs(H264, "mp4a"))]
#[media_sink(config = on_config, video = on_video, audio = on_audio, on_frame = on_other)]
#[media_sink(on_start = start, on_end = finish)]
struct Router {
    log: Arc<Mutex<Log>>,
}

impl Router {
    async fn start(&mut self, path: &StreamPath) -> Result<()> {
        self.log.lock().unwrap().started = Some(path.to_string());
        Ok(())
    }
    async fn on_config(&mut self, f: Arc<MediaFrame>) -> Result<()> {
        self.log.lock().unwrap().configs.push(f.codec);
        Ok(())
    }
    async fn on_video(&mut self, f: Arc<MediaFrame>) -> Result<()> {
        assert!(f.is_video() && !f.is_config());
        self.log.lock().unwrap().video += 1;
        Ok(())
    }
    async fn on_audio(&mut self, f: Arc<MediaFrame>) -> Result<()> {
        assert!(f.is_audio() && !f.is_config());
        self.log.lock().unwrap().audio += 1;
        Ok(())
    }
    async fn on_other(&mut self, _f: Arc<MediaFrame>) -> Result<()> {
        // Data frames (the end-of-stream marker) are filtered out before routing.
        self.log.lock().unwrap().other += 1;
        Ok(())
    }
    async fn finish(&mut self) -> Result<()> {
        self.log.lock().unwrap().ended = true;
        Ok(())
    }
}

#[tokio::main]
async fn main() {
    let engine = Engine::builder().application(AppSpec::new("live")).build();
    let path = StreamPath::parse("live", "cam").unwrap();
    let log = Arc::new(Mutex::new(Log::default()));
    let task = engine.attach_sink(path.clone(), Box::new(Router { log: log.clone() }));
    // Let the sink subscribe (it waits for the publisher) before publishing.
    while engine.stream_stats(&path).map_or(0, |s| s.subscribers) == 0 {
        tokio::task::yield_now().await;
    }
    let mut publisher = engine.publish(PublishRequest::new(path, "test")).await.unwrap();
    for frame in SyntheticStream::new(10).take(2 + 2 * 30) {
        publisher.push(frame);
    }
    publisher.close();
    for _ in 0..500 {
        if log.lock().unwrap().video == 30 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    engine.shutdown();
    task.await.unwrap().unwrap();

    let log = log.lock().unwrap();
    assert_eq!(log.started.as_deref(), Some("live/cam"));
    assert_eq!(log.configs, vec![CodecId::H264, CodecId::Aac]);
    assert_eq!((log.video, log.audio, log.other), (30, 30, 0), "{log:?}");
    assert!(log.ended);
}
