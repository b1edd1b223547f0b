//! Fuzz the TS demuxer: arbitrary bytes, fed in two pieces, must never
//! panic; whatever frames come out must re-mux.
#![no_main]

use arcly_core::traits::Muxer;
use arcly_mpegts::{DemuxLimits, MpegTsMuxer, TsDemuxer};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let limits = DemuxLimits {
        max_pes_size: 1 << 16,
        max_streams: 4,
        max_queued_frames: 256,
    };
    let mut d = TsDemuxer::with_limits(limits);
    let split = data.first().map_or(0, |b| usize::from(*b)).min(data.len());
    let _ = d.push(&data[..split]);
    let _ = d.push(&data[split..]);
    let _ = d.finish();
    let mut mux = MpegTsMuxer::new();
    while let Some(f) = d.next_frame() {
        let _ = mux.write_frame(&f);
    }
    let _ = mux.flush();
});
