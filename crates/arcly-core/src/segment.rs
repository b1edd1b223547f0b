//! Shared segment timing: where a live stream is cut into segments (and
//! LL-HLS parts). The HLS packager and the recorder both ask a
//! [`SegmentClock`], so keyframe-boundary decisions live in one place.
//!
//! Rules (RFC 8216 §3 and §6.2.1; recording follows the same):
//! - a segment starts only at a random-access point: a video keyframe, or any
//!   audio frame when the stream has no video;
//! - a new segment starts at the first such point at or after the target
//!   duration (or the byte bound) since the segment began;
//! - a discontinuity (publisher restart, flagged frame, or a timestamp jump
//!   backwards or forwards by more than [`SegmentPolicy::max_gap`]) forces a
//!   cut at the next random-access point, marked as a discontinuity;
//! - parts are cut every part target at any frame boundary; a part that
//!   starts at a random-access point is independent.
//!
//! ```
//! use arcly_core::segment::{Cut, SegmentClock, SegmentPolicy};
//! use arcly_core::{CodecId, FrameFlags, MediaFrame};
//! use std::time::Duration;
//! let mut clock = SegmentClock::new(SegmentPolicy::new(Duration::from_secs(2)));
//! let key = |ms| MediaFrame::video(CodecId::H264, ms, ms, Default::default()).with_flags(FrameFlags::KEYFRAME);
//! assert_eq!(clock.on_frame(&key(0)).cut, Cut::Segment);
//! assert_eq!(clock.on_frame(&key(1000)).cut, Cut::None);
//! assert_eq!(clock.on_frame(&key(2000)).cut, Cut::Segment);
//! ```

use crate::frame::{FrameFlags, MediaFrame, TimeBase};
use std::time::Duration;

/// How a stream is cut.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SegmentPolicy {
    /// Target segment duration.
    pub target: Duration,
    /// Cut at the next random-access point once a segment holds this many bytes.
    pub max_bytes: Option<u64>,
    /// LL-HLS part target, when parts are wanted.
    pub part_target: Option<Duration>,
    /// A timestamp jump larger than this is a discontinuity.
    pub max_gap: Duration,
}

impl SegmentPolicy {
    /// Segments of `target`, no parts, no byte bound, 10 s gap tolerance.
    pub fn new(target: Duration) -> Self {
        Self {
            target,
            max_bytes: None,
            part_target: None,
            max_gap: Duration::from_secs(10),
        }
    }

    /// Also cut parts of `part` (LL-HLS).
    #[must_use]
    pub fn with_parts(mut self, part: Duration) -> Self {
        self.part_target = Some(part);
        self
    }

    /// Also cut once a segment holds `bytes`.
    #[must_use]
    pub fn with_max_bytes(mut self, bytes: u64) -> Self {
        self.max_bytes = Some(bytes);
        self
    }
}

/// What to do before writing a frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cut {
    /// Keep writing into the current segment and part.
    None,
    /// Close the current part and start a new one before this frame.
    Part,
    /// Close the current segment (and part) and start a new one before this frame.
    Segment,
}

/// The decision for one frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decision {
    /// Where to cut.
    pub cut: Cut,
    /// The new segment follows a discontinuity.
    pub discontinuity: bool,
    /// The new part (or segment) starts at a random-access point.
    pub independent: bool,
}

/// Decides segment and part boundaries for one stream. Feed it every media
/// frame in order, before writing the frame.
#[derive(Debug, Clone)]
pub struct SegmentClock {
    policy: SegmentPolicy,
    has_video: bool,
    segment_start_us: Option<i64>,
    part_start_us: Option<i64>,
    last_dts_us: Option<i64>,
    segment_bytes: u64,
    pending_discontinuity: bool,
}

impl SegmentClock {
    /// A clock for `policy`; the first random-access frame starts segment 0.
    pub fn new(policy: SegmentPolicy) -> Self {
        Self {
            policy,
            has_video: false,
            segment_start_us: None,
            part_start_us: None,
            last_dts_us: None,
            segment_bytes: 0,
            pending_discontinuity: false,
        }
    }

    /// The policy.
    pub fn policy(&self) -> &SegmentPolicy {
        &self.policy
    }

    /// Declare that the stream has video (otherwise learnt from the first video frame).
    pub fn set_has_video(&mut self, has_video: bool) {
        self.has_video = has_video;
    }

    /// Elapsed media time in the current segment, up to the last frame seen.
    pub fn segment_elapsed(&self) -> Duration {
        match (self.segment_start_us, self.last_dts_us) {
            (Some(s), Some(l)) if l > s => Duration::from_micros((l - s) as u64),
            _ => Duration::ZERO,
        }
    }

    /// Decide what to do before writing `frame`. CONFIG and data frames never
    /// cut; the end-of-stream marker forces a discontinuity at the next cut.
    pub fn on_frame(&mut self, frame: &MediaFrame) -> Decision {
        let none = Decision {
            cut: Cut::None,
            discontinuity: false,
            independent: false,
        };
        if frame.is_end_of_stream() {
            // Only the publisher leaving breaks the timeline; a codec's end
            // of sequence (the encoder restarting its stream) does not.
            if frame.is_publisher_end() {
                self.pending_discontinuity = true;
            }
            return none;
        }
        if frame.is_config() || !(frame.is_video() || frame.is_audio()) {
            return none;
        }
        if frame.is_video() {
            self.has_video = true;
        }
        let dts = frame.dts_in(TimeBase::MICROS);
        if frame.flags.contains(FrameFlags::DISCONTINUITY) {
            self.pending_discontinuity = true;
        }
        if let Some(last) = self.last_dts_us {
            let gap = self.policy.max_gap.as_micros() as i64;
            if dts < last - gap || dts > last + gap {
                self.pending_discontinuity = true;
            }
        }
        let random_access = if self.has_video {
            frame.is_video() && frame.is_keyframe()
        } else {
            frame.is_audio()
        };
        let decision = match self.segment_start_us {
            None if random_access => Some(Cut::Segment),
            None => None,
            Some(start) => {
                let elapsed = dts.saturating_sub(start);
                let due = elapsed >= self.policy.target.as_micros() as i64
                    || self
                        .policy
                        .max_bytes
                        .is_some_and(|m| self.segment_bytes >= m)
                    || self.pending_discontinuity;
                if random_access && due {
                    Some(Cut::Segment)
                } else {
                    match (self.policy.part_target, self.part_start_us) {
                        (Some(pt), Some(ps)) if dts.saturating_sub(ps) >= pt.as_micros() as i64 => {
                            Some(Cut::Part)
                        }
                        _ => None,
                    }
                }
            }
        };
        if self.segment_start_us.is_some() || decision.is_some() {
            self.last_dts_us = Some(dts);
        }
        self.segment_bytes += frame.payload.len() as u64;
        match decision {
            Some(Cut::Segment) => {
                let discontinuity = std::mem::take(&mut self.pending_discontinuity)
                    && self.segment_start_us.is_some();
                self.segment_start_us = Some(dts);
                self.part_start_us = Some(dts);
                self.segment_bytes = frame.payload.len() as u64;
                Decision {
                    cut: Cut::Segment,
                    discontinuity,
                    independent: true,
                }
            }
            Some(Cut::Part) => {
                self.part_start_us = Some(dts);
                Decision {
                    cut: Cut::Part,
                    discontinuity: false,
                    independent: random_access,
                }
            }
            _ => none,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frame::CodecId;

    fn v(ms: i64, key: bool) -> MediaFrame {
        let f = MediaFrame::video(
            CodecId::H264,
            ms,
            ms,
            bytes::Bytes::from_static(b"0123456789"),
        );
        if key {
            f.with_flags(FrameFlags::KEYFRAME)
        } else {
            f
        }
    }

    #[test]
    fn cuts_only_at_keyframes_after_the_target() {
        let mut c = SegmentClock::new(SegmentPolicy::new(Duration::from_secs(2)));
        assert_eq!(
            c.on_frame(&v(0, false)).cut,
            Cut::None,
            "no segment before a keyframe"
        );
        assert_eq!(c.on_frame(&v(40, true)).cut, Cut::Segment);
        assert_eq!(
            c.on_frame(&v(2000, false)).cut,
            Cut::None,
            "not at a non-keyframe"
        );
        assert_eq!(c.on_frame(&v(3000, true)).cut, Cut::Segment);
        assert_eq!(c.segment_elapsed(), Duration::ZERO);
    }

    #[test]
    fn parts_and_independence() {
        let mut c = SegmentClock::new(
            SegmentPolicy::new(Duration::from_secs(2)).with_parts(Duration::from_millis(500)),
        );
        assert_eq!(c.on_frame(&v(0, true)).cut, Cut::Segment);
        assert_eq!(c.on_frame(&v(400, false)).cut, Cut::None);
        let d = c.on_frame(&v(520, false));
        assert_eq!((d.cut, d.independent), (Cut::Part, false));
        let d = c.on_frame(&v(1040, true));
        assert_eq!((d.cut, d.independent), (Cut::Part, true));
    }

    #[test]
    fn discontinuities_force_a_marked_cut() {
        let mut c = SegmentClock::new(SegmentPolicy::new(Duration::from_secs(6)));
        c.on_frame(&v(0, true));
        let d = c.on_frame(&v(100_000, true));
        assert_eq!((d.cut, d.discontinuity), (Cut::Segment, true));
        c.on_frame(&MediaFrame::end_of_stream());
        let d = c.on_frame(&v(100_040, true));
        assert_eq!((d.cut, d.discontinuity), (Cut::Segment, true));
        let d = c.on_frame(&v(100_080, true));
        assert_eq!(d.cut, Cut::None);
    }

    /// An encoder's end of sequence (AVC EOS, Enhanced RTMP SequenceEnd) is
    /// not the publisher leaving: no discontinuity, no early cut.
    #[test]
    fn a_codec_sequence_end_does_not_break_the_timeline() {
        let mut c = SegmentClock::new(SegmentPolicy::new(Duration::from_secs(2)));
        c.on_frame(&v(0, true));
        let eos = MediaFrame::video(CodecId::H264, 40, 40, bytes::Bytes::new())
            .with_flags(FrameFlags::END_OF_STREAM);
        assert!(eos.is_sequence_end());
        assert_eq!(c.on_frame(&eos).cut, Cut::None);
        let d = c.on_frame(&v(80, true));
        assert_eq!((d.cut, d.discontinuity), (Cut::None, false));
        let d = c.on_frame(&v(2_000, true));
        assert_eq!((d.cut, d.discontinuity), (Cut::Segment, false));
    }

    #[test]
    fn audio_only_cuts_at_any_audio_frame() {
        let mut c = SegmentClock::new(SegmentPolicy::new(Duration::from_secs(1)));
        let a = |ms| MediaFrame::audio(CodecId::Aac, ms, bytes::Bytes::new());
        assert_eq!(c.on_frame(&a(0)).cut, Cut::Segment);
        assert_eq!(c.on_frame(&a(999)).cut, Cut::None);
        assert_eq!(c.on_frame(&a(1002)).cut, Cut::Segment);
    }

    #[test]
    fn byte_bound_cuts_early() {
        let mut c =
            SegmentClock::new(SegmentPolicy::new(Duration::from_secs(60)).with_max_bytes(25));
        c.on_frame(&v(0, true));
        c.on_frame(&v(40, false));
        c.on_frame(&v(80, false));
        assert_eq!(c.on_frame(&v(120, true)).cut, Cut::Segment);
    }
}
