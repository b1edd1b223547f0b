//! Shared helpers of the integration tests: demux a whole buffer, remux into
//! segments, and the muxer-output checks (continuity, PCR, segment starts).
#![allow(dead_code)]

use arcly_core::frame::MediaFrame;
use arcly_core::traits::Muxer;
use arcly_mpegts::packet::{TsPacket, PACKET_SIZE};
use arcly_mpegts::{MpegTsMuxer, TsDemuxer};
use bytes::Bytes;
use std::collections::HashMap;

/// Demux `ts` fed in odd-sized chunks; every push must succeed.
pub fn demux_all(ts: &[u8]) -> Vec<MediaFrame> {
    let mut d = TsDemuxer::new();
    let mut out = Vec::new();
    for chunk in ts.chunks(1000) {
        d.push(chunk).expect("demux");
        out.extend(std::iter::from_fn(|| d.next_frame()));
    }
    d.finish().expect("finish");
    out.extend(std::iter::from_fn(|| d.next_frame()));
    out
}

/// Mux `frames` into segments: a new one at every video keyframe (every
/// ~2 s of audio when there is no video), the first at the first frame.
pub fn remux(frames: &[MediaFrame]) -> Vec<Bytes> {
    let mut mux = MpegTsMuxer::new();
    let has_video = frames.iter().any(|f| f.is_video());
    let mut segments = Vec::new();
    let mut seg_start: Option<i64> = None;
    for f in frames {
        if !f.is_config() {
            let cut = match seg_start {
                None => true,
                Some(t) => {
                    if has_video {
                        f.is_video() && f.is_keyframe()
                    } else {
                        f.dts_ms() - t >= 2000
                    }
                }
            };
            if cut {
                let b = mux.flush().unwrap();
                if !b.is_empty() {
                    segments.push(b);
                }
                mux.start_segment().unwrap();
                seg_start = Some(f.dts_ms());
            }
        }
        mux.write_frame(f).unwrap();
    }
    segments.push(mux.flush().unwrap());
    segments
}

/// What the checks measured.
#[derive(Debug, Default)]
pub struct Report {
    pub packets: usize,
    pub pcrs: usize,
    pub max_pcr_gap_ms: f64,
}

/// The muxer-output checks: sync bytes, continuity counters that never
/// skip, PCRs monotonic at most 40 ms apart, and every segment starting
/// with PAT, PMT and (segments after the first, or any with video first) a
/// video keyframe carrying random_access_indicator.
pub fn check_segments(segments: &[Bytes], has_video: bool) -> Report {
    let mut cc: HashMap<u16, u8> = HashMap::new();
    let mut last_pcr: Option<u64> = None;
    let mut report = Report::default();
    let mut pmt_pid = None;
    let mut video_pids: Vec<u16> = Vec::new();
    for (si, seg) in segments.iter().enumerate() {
        assert_eq!(
            seg.len() % PACKET_SIZE,
            0,
            "segment {si} is not whole packets"
        );
        let mut first_pes: Option<(u16, bool)> = None;
        for (pi, raw) in seg.chunks_exact(PACKET_SIZE).enumerate() {
            let p = TsPacket::parse(raw.try_into().unwrap()).expect("packet parses");
            report.packets += 1;
            if pi == 0 {
                assert_eq!(p.pid, 0, "segment {si} does not start with the PAT");
                let pat = arcly_mpegts::psi::parse_pat(&p.payload[1..]).unwrap();
                pmt_pid = Some(pat[0].1);
            }
            if pi == 1 {
                assert_eq!(
                    Some(p.pid),
                    pmt_pid,
                    "segment {si}: PMT is not the second packet"
                );
                let pmt = arcly_mpegts::psi::parse_pmt(&p.payload[1..]).unwrap();
                video_pids = pmt
                    .streams
                    .iter()
                    .filter(|s| s.stream_type == 0x1B || s.stream_type == 0x24)
                    .map(|s| s.pid)
                    .collect();
            }
            if p.has_payload {
                if let Some(prev) = cc.insert(p.pid, p.continuity_counter) {
                    assert_eq!(
                        p.continuity_counter,
                        (prev + 1) & 0xF,
                        "CC skipped on PID {:#x} (segment {si} packet {pi})",
                        p.pid
                    );
                }
            } else if let Some(prev) = cc.get(&p.pid) {
                assert_eq!(
                    p.continuity_counter, *prev,
                    "adaptation-only packet changed the CC"
                );
            }
            if let Some(pcr) = p.adaptation.and_then(|a| a.pcr) {
                if let Some(l) = last_pcr {
                    assert!(pcr >= l, "PCR went back: {l} -> {pcr}");
                    let gap = (pcr - l) as f64 / 27_000.0;
                    assert!(gap <= 40.0, "PCR gap {gap} ms > 40 ms");
                    report.max_pcr_gap_ms = report.max_pcr_gap_ms.max(gap);
                }
                last_pcr = Some(pcr);
                report.pcrs += 1;
            }
            if p.payload_unit_start && p.pid != 0 && Some(p.pid) != pmt_pid && first_pes.is_none() {
                first_pes = Some((p.pid, p.adaptation.is_some_and(|a| a.random_access)));
            }
        }
        if has_video {
            let (pid, rai) = first_pes.expect("segment has media");
            if si > 0 || video_pids.contains(&pid) {
                assert!(
                    video_pids.contains(&pid),
                    "segment {si} starts with PID {pid:#x}, not video"
                );
                assert!(
                    rai,
                    "segment {si}: keyframe without random_access_indicator"
                );
                let frames = demux_all(seg);
                let first = frames.iter().find(|f| !f.is_config()).expect("frames");
                assert!(
                    first.is_video() && first.is_keyframe(),
                    "segment {si} does not start with a keyframe"
                );
            }
        }
    }
    assert!(report.pcrs > 0, "no PCR at all");
    report
}
