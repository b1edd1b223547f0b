//! Publishes a synthetic stream through an engine to a few subscribers and
//! prints what they received. `cargo run -p arcly-stream --example synthetic`
use arcly_stream::prelude::*;
use arcly_stream::testing::SyntheticStream;
use std::time::Duration;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<()> {
    let engine = Engine::builder()
        .application(AppSpec::new("live").gop_cache(120))
        .build();
    let path = StreamPath::parse("live", "demo")?;
    let mut publisher = engine
        .publish(PublishRequest::new(path.clone(), "example"))
        .await?;
    let early = engine
        .subscribe(PlayRequest::new(path.clone(), "example"))
        .await?;
    let source = tokio::spawn(async move {
        for frame in SyntheticStream::new(25).take(2 + 2 * 60) {
            publisher.push(frame);
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    let late = engine
        .subscribe(PlayRequest::new(path.clone(), "example"))
        .await?;
    source.await.expect("publisher task");
    for (name, mut sub) in [("early", early), ("late", late)] {
        let (mut video, mut audio, mut config, mut first_video) = (0, 0, 0, None);
        while let Some(f) = sub.try_recv()? {
            if f.is_end_of_stream() {
                break;
            }
            match (f.is_config(), f.is_video()) {
                (true, _) => config += 1,
                (false, true) => {
                    video += 1;
                    first_video.get_or_insert(f.is_keyframe());
                }
                (false, false) => audio += 1,
            }
        }
        println!(
            "{name} subscriber: {config} config, {video} video, {audio} audio frames; first picture a keyframe: {}",
            first_video.unwrap_or(false)
        );
    }
    let stats = engine.stream_stats(&path).expect("stream exists");
    println!(
        "stream {}: {} frames in, {} bytes in",
        stats.path, stats.frames_in, stats.bytes_in
    );
    Ok(())
}
