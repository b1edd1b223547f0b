//! Handlers that do not match what the derive calls: rustc's errors land on
//! the method names written in the attribute.
use arcly_macros::MediaSink;
use arcly_stream::prelude::*;
use std::sync::Arc;

#[derive(MediaSink)]
#[media_sink(on_frame = handle_frame)]
struct NotAsync;

impl NotAsync {
    fn handle_frame(&mut self, _frame: Arc<MediaFrame>) -> Result<()> {
        Ok(())
    }
}

#[derive(MediaSink)]
#[media_sink(video = on_video, on_end = finish)]
struct Missing;

#[derive(MediaSink)]
#[media_sink(on_frame = handle_frame)]
struct WrongArgument;

impl WrongArgument {
    async fn handle_frame(&mut self, _frame: MediaFrame) -> Result<()> {
        Ok(())
    }
}

#[derive(MediaSink)]
struct NotASink {
    #[media_sink(delegate)]
    inner: Vec<u8>,
}

fn main() {}
