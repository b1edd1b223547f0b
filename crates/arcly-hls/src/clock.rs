//! HLS's view of the shared segment timing.
//!
//! Segment boundaries come from [`arcly_core::segment::SegmentClock`], the
//! rule the recorder also uses (first random-access point at or after the
//! target, a marked cut after a discontinuity). Two things HLS needs that
//! the core clock does not do are added here:
//!
//! * a *forced* cut before a non-keyframe when the segment would otherwise
//!   exceed `EXT-X-TARGETDURATION` after rounding (RFC 8216bis §4.4.3.1: an
//!   EXTINF rounded to the nearest integer MUST NOT exceed it);
//! * part cuts that never exceed the part target (RFC 8216bis §4.4.4.9: a
//!   Partial Segment's duration MUST NOT exceed `PART-TARGET`). The core
//!   clock closes a part at the first frame *at or after* the part target,
//!   which makes the part one frame too long; here a part closes *before*
//!   the frame that would overflow it. The core policy therefore carries no
//!   part target.
//!
//! * parts close before the frame after which the *largest recent* frame
//!   gap would overflow them (the end of a part is only known when the next
//!   frame arrives, so a gap longer than any of the last 16 — a dropped
//!   frame — can still make one part one gap too long).
//!
//! It also ends the segment in progress at once on a break — a flagged
//! frame, a driving-track decode time going backwards, or a forward stall
//! longer than the segment target (which no segment bounded by
//! `EXT-X-TARGETDURATION` could hold) — where the core clock would only
//! start the next segment at the next random-access point; the shared
//! clock is then restarted for the new timeline and the next segment is
//! marked as a discontinuity.

use arcly_core::segment::{Cut, SegmentClock, SegmentPolicy};
use arcly_core::{FrameFlags, MediaFrame, TimeBase};
use std::time::Duration;

/// Expected frame duration before two driving frames have been seen.
const DEFAULT_FRAME_US: i64 = 40_000;
/// Shortest forward gap treated as a break, whatever the target.
const MIN_STALL_US: i64 = 1_000_000;
/// Driving-frame gaps remembered for the part look-ahead.
const GAP_HISTORY: usize = 16;
/// Largest gap the look-ahead believes in (a longer one is a stall, not a rhythm).
const MAX_LOOKAHEAD_US: i64 = 250_000;
/// Slack when comparing a part against its target (timestamp rounding).
const PART_SLACK_US: i64 = 500;

/// What to do before writing a frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Step {
    /// Write it into the current part.
    Continue,
    /// Close the current part before this frame; the new part is
    /// independent when this frame is a random-access point.
    Part { independent: bool },
    /// Close the current segment (if any) at `end_us` and open a new one
    /// with this frame.
    Segment {
        end_us: i64,
        independent: bool,
        discontinuity: bool,
    },
    /// Close the current segment at `end_us` now; nothing opens until the
    /// shared clock starts a segment again.
    Break { end_us: i64 },
}

/// The shared clock plus the HLS bounds. Fed every media frame in order.
#[derive(Debug)]
pub(crate) struct HlsClock {
    core: SegmentClock,
    policy: SegmentPolicy,
    /// A break happened: the next segment follows a discontinuity.
    broken: bool,
    max_gap_us: i64,
    part_target_us: Option<i64>,
    max_us: Option<i64>,
    video_driven: bool,
    segment_start_us: Option<i64>,
    part_start_us: i64,
    last_driving_us: Option<i64>,
    frame_us: i64,
    /// Recent gaps between driving frames (ring), for the part look-ahead.
    gaps: [i64; GAP_HISTORY],
    gap_pos: usize,
}

fn micros(d: Duration) -> i64 {
    i64::try_from(d.as_micros()).unwrap_or(i64::MAX)
}

impl HlsClock {
    /// Segments of `target`, parts of `part_target`, and no segment longer
    /// than `max_first` until [`HlsClock::set_max`] tightens it.
    pub(crate) fn new(
        target: Duration,
        part_target: Option<Duration>,
        max_first: Duration,
    ) -> Self {
        let policy = SegmentPolicy::new(target);
        // A stall longer than a segment target cannot fit in a segment
        // bounded by EXT-X-TARGETDURATION: it is a break, not a gap.
        let max_gap_us = micros(policy.max_gap).min(micros(target).max(MIN_STALL_US));
        Self {
            core: SegmentClock::new(policy.clone()),
            policy,
            broken: false,
            max_gap_us,
            part_target_us: part_target.map(micros),
            max_us: Some(micros(max_first)),
            video_driven: false,
            segment_start_us: None,
            part_start_us: 0,
            last_driving_us: None,
            frame_us: DEFAULT_FRAME_US,
            gaps: [DEFAULT_FRAME_US; GAP_HISTORY],
            gap_pos: 0,
        }
    }

    /// Whether video frames drive the cuts (else audio frames).
    pub(crate) fn set_video_driven(&mut self, video: bool) {
        self.video_driven = video;
        self.core.set_has_video(video);
    }

    /// Never let a segment be longer than `max_us`.
    pub(crate) fn set_max(&mut self, max_us: i64) {
        self.max_us = Some(max_us);
    }

    /// Where the segment in progress ends if it must end now (after the
    /// last driving frame).
    pub(crate) fn end_of_last_frame(&self) -> Option<i64> {
        self.last_driving_us
            .map(|l| l.saturating_add(self.frame_us))
    }

    /// The publisher went away: the segment in progress ends now and the
    /// next random-access point starts a discontinuity.
    pub(crate) fn publisher_left(&mut self) -> Option<i64> {
        let end = self.end_of_last_frame();
        self.broken = false; // the shared clock marks this one
        self.core.on_frame(&MediaFrame::end_of_stream());
        self.segment_start_us = None;
        self.last_driving_us = None;
        end
    }

    /// Decide for a media frame (not CONFIG, not data).
    pub(crate) fn decide(&mut self, frame: &MediaFrame) -> Step {
        let dts = frame.dts_in(TimeBase::MICROS);
        let driving = if self.video_driven {
            frame.is_video()
        } else {
            frame.is_audio()
        };
        let random_access = driving && (frame.is_keyframe() || frame.is_audio());
        // A discontinuity ends the segment in progress after its last frame.
        let mut broke_at = None;
        if driving {
            // Decode times of the driving track only go forwards; a step
            // back (of any size) or forwards past the gap tolerance starts
            // a new timeline.
            // With LL-HLS parts, a stall longer than PART-TARGET (and well
            // beyond the stream's own rhythm) cannot fit in any part
            // (8216bis §4.4.4.9): it breaks the timeline too.
            let rhythm = self
                .gaps
                .iter()
                .copied()
                .max()
                .unwrap_or(0)
                .max(self.frame_us);
            let stalled = |gap: i64| {
                self.part_target_us
                    .is_some_and(|pt| gap > pt && gap > rhythm.saturating_mul(3))
            };
            let jumped = self
                .last_driving_us
                .is_some_and(|l| dts < l || dts > l + self.max_gap_us || stalled(dts - l));
            if jumped || frame.flags.contains(FrameFlags::DISCONTINUITY) {
                broke_at = self.end_of_last_frame();
                self.segment_start_us = None;
                self.last_driving_us = None;
                self.broken = true;
                // A fresh shared clock: the new timeline's first
                // random-access point starts a segment.
                self.core = SegmentClock::new(self.policy.clone());
                self.core.set_has_video(self.video_driven);
            }
        }
        let core = self.core.on_frame(frame);
        let step = if core.cut == Cut::Segment {
            // `end_us` ends the previous segment: at this frame, or after
            // the last frame before a discontinuity.
            let end_us = broke_at.unwrap_or(dts);
            Step::Segment {
                end_us,
                independent: core.independent,
                discontinuity: core.discontinuity || std::mem::take(&mut self.broken),
            }
        } else if let Some(end_us) = broke_at {
            Step::Break { end_us }
        } else if !driving {
            Step::Continue
        } else if let Some(start) = self.segment_start_us {
            let elapsed = dts.saturating_sub(start);
            // The largest recent gap between driving frames: how far past
            // this frame the segment (or part) may end.
            let recent = self.gaps.iter().copied().max().unwrap_or(self.frame_us);
            let over_max = self
                .max_us
                .is_some_and(|m| elapsed.saturating_add(recent) > m);
            if over_max && elapsed > 0 {
                Step::Segment {
                    end_us: dts,
                    independent: random_access,
                    discontinuity: false,
                }
            } else {
                // A part closes before the frame after which the next gap
                // could overflow it. The next gap is unknown: assume the
                // largest recent one (jitter, an occasional dropped frame),
                // but at most 15 % of the part target so that parts stay at
                // or above 85 % of it (§4.4.4.9).
                match self.part_target_us {
                    Some(pt)
                        if dts > self.part_start_us
                            && dts
                                .saturating_add(recent.min(pt * 15 / 100))
                                .saturating_sub(self.part_start_us)
                                > pt + PART_SLACK_US =>
                    {
                        Step::Part {
                            independent: random_access,
                        }
                    }
                    _ => Step::Continue,
                }
            }
        } else {
            Step::Continue
        };
        if driving {
            if let Some(last) = self.last_driving_us {
                let d = dts.saturating_sub(last);
                if d > 0 {
                    self.frame_us = d;
                    self.gaps[self.gap_pos] = d.min(MAX_LOOKAHEAD_US);
                    self.gap_pos = (self.gap_pos + 1) % GAP_HISTORY;
                }
            }
            self.last_driving_us = Some(dts);
        }
        match step {
            Step::Segment { .. } => {
                self.segment_start_us = Some(dts);
                self.part_start_us = dts;
            }
            Step::Part { .. } => self.part_start_us = dts,
            Step::Break { .. } | Step::Continue => {}
        }
        step
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arcly_core::CodecId;

    fn v(ms: i64, key: bool) -> MediaFrame {
        let f = MediaFrame::video(CodecId::H264, ms, ms, bytes::Bytes::new());
        if key {
            f.with_flags(FrameFlags::KEYFRAME)
        } else {
            f
        }
    }

    fn clock() -> HlsClock {
        let mut c = HlsClock::new(
            Duration::from_secs(2),
            Some(Duration::from_millis(500)),
            Duration::from_secs(10),
        );
        c.set_video_driven(true);
        c
    }

    #[test]
    fn parts_never_exceed_the_target() {
        let mut c = clock();
        assert!(matches!(c.decide(&v(0, true)), Step::Segment { .. }));
        let mut cuts = Vec::new();
        for i in 1..50 {
            if let Step::Part { .. } = c.decide(&v(i * 40, false)) {
                cuts.push(i * 40);
            }
        }
        assert_eq!(&cuts[..3], &[480, 960, 1440]);
    }

    #[test]
    fn forced_cut_bounds_the_segment() {
        let mut c = clock();
        c.set_max(2_499_000);
        c.decide(&v(0, true));
        let forced = (1..100)
            .map(|i| (i * 40, c.decide(&v(i * 40, false))))
            .find(|(_, s)| matches!(s, Step::Segment { .. }));
        assert_eq!(
            forced,
            Some((
                2480,
                Step::Segment {
                    end_us: 2_480_000,
                    independent: false,
                    discontinuity: false
                }
            ))
        );
    }

    #[test]
    fn jump_breaks_then_keyframe_restarts_marked() {
        let mut c = clock();
        c.decide(&v(0, true));
        c.decide(&v(40, false));
        assert_eq!(c.decide(&v(60_000, false)), Step::Break { end_us: 80_000 });
        assert_eq!(c.decide(&v(60_040, false)), Step::Continue);
        assert_eq!(
            c.decide(&v(60_080, true)),
            Step::Segment {
                end_us: 60_080_000,
                independent: true,
                discontinuity: true
            }
        );
    }

    #[test]
    fn publisher_restart_is_a_discontinuity() {
        let mut c = clock();
        c.decide(&v(0, true));
        c.decide(&v(40, false));
        assert_eq!(c.publisher_left(), Some(80_000));
        assert_eq!(
            c.decide(&v(0, true)),
            Step::Segment {
                end_us: 0,
                independent: true,
                discontinuity: true
            }
        );
    }
}
