//! A process that records: the crash test's child (`kill -9` mid-recording).
//!
//! `record_child <root> <input.ts> <publish-until-ms>` publishes the frames of
//! an MPEG-TS file whose DTS is before `publish-until-ms` (from the first
//! frame) into an engine recorded with 1 s segments under `<root>`, prints
//! `SEGMENT <key>` for every segment that reaches the index and `PUBLISHED`
//! when done, then waits forever with its last segment open.

use arcly_core::engine::{AppSpec, Engine};
use arcly_core::registry::{PublishRegistry, PublishRequest};
use arcly_core::StreamPath;
use arcly_mpegts::TsDemuxer;
use arcly_record::{FsStorage, RecordConfig, RecordPolicy, Recorder, RecorderEvent};
use std::io::Write;
use std::sync::Arc;
use std::time::Duration;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let [_, root, input, until] = &args[..] else {
        return Err("usage: record_child <root> <input.ts> <publish-until-ms>".into());
    };
    let until: i64 = until.parse()?;
    let data = std::fs::read(input)?;
    let mut demux = TsDemuxer::new();
    demux.push(&data)?;
    demux.finish()?;
    let frames: Vec<_> = std::iter::from_fn(|| demux.next_frame()).collect();

    let engine = Engine::builder().application(AppSpec::new("live")).build();
    let storage = Arc::new(FsStorage::new(root)?);
    let policy = RecordPolicy {
        config: RecordConfig {
            segment_target: Duration::from_secs(1),
            ..RecordConfig::default()
        },
        ..RecordPolicy::default()
    };
    let recorder = Recorder::builder(engine.clone(), storage)
        .policy("live", policy)
        .build();
    let mut events = recorder.events();
    tokio::spawn(async move {
        while let Ok(e) = events.recv().await {
            if let RecorderEvent::SegmentWritten { segment, .. } = e {
                println!("SEGMENT {}", segment.key);
                let _ = std::io::stdout().flush();
            }
        }
    });
    let path = StreamPath::parse("live", "crash")?;
    recorder.start(&path).await?;
    let mut publisher = engine
        .publish(PublishRequest::new(path.clone(), "child"))
        .await?;
    let first = frames
        .iter()
        .find(|f| !f.is_config())
        .map_or(0, |f| f.dts_ms());
    for f in frames {
        if !f.is_config() && f.dts_ms() - first >= until {
            break;
        }
        publisher.push(f);
        tokio::task::yield_now().await;
    }
    println!("PUBLISHED");
    std::io::stdout().flush()?;
    // Keep the publisher (and the open segment) alive until killed.
    std::future::pending::<()>().await;
    Ok(())
}
