#![allow(dead_code)]
//! Shared by the benches: a long H.264+AAC stream built from the fixture.

use arcly_core::frame::MediaFrame;
use arcly_core::testing::tools::fixture;
use arcly_mpegts::TsDemuxer;

/// The fixture's frames repeated `times` times back to back (timestamps
/// shifted), CONFIG frames only at the start.
pub fn long_stream(times: i64) -> Vec<MediaFrame> {
    let ts = std::fs::read(fixture("h264-aac.ts")).expect("fixture");
    let mut d = TsDemuxer::new();
    d.push(&ts).expect("demux");
    d.finish().expect("finish");
    let frames: Vec<MediaFrame> = std::iter::from_fn(|| d.next_frame()).collect();
    let span = frames.iter().map(|f| f.dts).max().unwrap_or(0)
        - frames.iter().map(|f| f.dts).min().unwrap_or(0)
        + 3600;
    let mut out = Vec::new();
    for k in 0..times {
        for f in &frames {
            if f.is_config() && k > 0 {
                continue;
            }
            let mut f = f.clone();
            f.dts += k * span;
            f.pts += k * span;
            out.push(f);
        }
    }
    out
}
