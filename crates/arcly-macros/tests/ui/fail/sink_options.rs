//! Attribute mistakes on #[derive(MediaSink)]: each points at the user's tokens.
use arcly_macros::MediaSink;

#[derive(MediaSink)]
#[media_sink(on_fram = handle_frame)]
struct Typo;

#[derive(MediaSink)]
#[media_sink(on_frame = "handle_frame")]
struct Quoted;

#[derive(MediaSink)]
#[media_sink(on_frame)]
struct NoValue;

#[derive(MediaSink)]
#[media_sink(on_frame = on_frame)]
struct Recursive;

#[derive(MediaSink)]
#[media_sink(on_frame = a, on_frame = b)]
struct Twice;

#[derive(MediaSink)]
#[media_sink(on_frame = a, codecs(h264, Aac))]
struct CodecCase;

#[derive(MediaSink)]
#[media_sink(on_frame = a, filter(H264))]
struct CodecAsKind;

#[derive(MediaSink)]
#[media_sink(filter(video), audio = on_audio)]
struct Unreachable;

#[derive(MediaSink)]
struct Nowhere {
    frames: usize,
}

#[derive(MediaSink)]
#[media_sink(delegate)]
struct DelegateOnStruct {
    inner: Box<dyn arcly_stream::traits::MediaSink>,
}

#[derive(MediaSink)]
struct TwoDelegates {
    #[media_sink(delegate)]
    a: Box<dyn arcly_stream::traits::MediaSink>,
    #[media_sink(delegate)]
    b: Box<dyn arcly_stream::traits::MediaSink>,
}

#[derive(MediaSink)]
enum NotAStruct {
    A,
}

fn main() {}
