//! Keyframe-boundary decisions, in one small reusable type.
//!
//! [`SegmentClock`] decides where a segment ends: at the first keyframe
//! once the target duration is reached, or — when a maximum is set and the
//! next frame would cross it — wherever the stream is. It knows nothing of
//! HLS and is meant to move to `arcly_core::segment` so the recorder cuts
//! files by the same rule.

use std::time::Duration;

/// Why a segment boundary falls before a frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cut {
    /// No boundary: the frame continues the current segment.
    None,
    /// The first segment starts here (the first keyframe).
    First,
    /// A keyframe after the target duration: a clean boundary.
    Keyframe,
    /// No keyframe came in time: the maximum duration forces a boundary
    /// before a non-keyframe (the next segment is not independent).
    Forced,
}

/// Decides segment boundaries from decode times (microseconds) of the
/// frames that drive segmentation (video, or audio in audio-only streams).
///
/// ```
/// use arcly_hls::segment::{Cut, SegmentClock};
/// use std::time::Duration;
/// let mut c = SegmentClock::new(Duration::from_secs(2));
/// assert_eq!(c.decide(0, false, 40_000), Cut::None); // waits for a keyframe
/// assert_eq!(c.decide(40_000, true, 40_000), Cut::First);
/// assert_eq!(c.decide(1_040_000, true, 40_000), Cut::None); // too early
/// assert_eq!(c.decide(2_040_000, true, 40_000), Cut::Keyframe);
/// ```
#[derive(Clone, Debug)]
pub struct SegmentClock {
    target_us: i64,
    max_us: Option<i64>,
    start_us: Option<i64>,
}

impl SegmentClock {
    /// Cut at the first keyframe `target` after the segment start.
    pub fn new(target: Duration) -> Self {
        Self {
            target_us: duration_us(target),
            max_us: None,
            start_us: None,
        }
    }

    /// Never let a segment grow past `max` (forcing a cut before a
    /// non-keyframe if needed).
    pub fn set_max(&mut self, max: Option<Duration>) {
        self.max_us = max.map(duration_us);
    }

    /// Decode time where the current segment began.
    pub fn segment_start(&self) -> Option<i64> {
        self.start_us
    }

    /// Time elapsed in the current segment at `dts_us`.
    pub fn elapsed(&self, dts_us: i64) -> Option<i64> {
        self.start_us.map(|s| dts_us.saturating_sub(s))
    }

    /// Decide for a driving frame at `dts_us` (`keyframe`: a random-access
    /// point; `frame_us`: its expected duration) and, on a boundary, start
    /// the new segment at `dts_us`.
    pub fn decide(&mut self, dts_us: i64, keyframe: bool, frame_us: i64) -> Cut {
        let cut = match self.start_us {
            None if keyframe => Cut::First,
            None => Cut::None,
            Some(start) => {
                let elapsed = dts_us.saturating_sub(start);
                if keyframe && elapsed >= self.target_us {
                    Cut::Keyframe
                } else if self
                    .max_us
                    .is_some_and(|m| elapsed.saturating_add(frame_us) > m)
                    && elapsed > 0
                {
                    Cut::Forced
                } else {
                    Cut::None
                }
            }
        };
        if cut != Cut::None {
            self.start_us = Some(dts_us);
        }
        cut
    }

    /// Forget the current segment (after a discontinuity the next keyframe
    /// starts afresh).
    pub fn reset(&mut self) {
        self.start_us = None;
    }
}

fn duration_us(d: Duration) -> i64 {
    i64::try_from(d.as_micros()).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forced_cut_when_keyframes_are_late() {
        let mut c = SegmentClock::new(Duration::from_secs(2));
        c.set_max(Some(Duration::from_millis(2500)));
        assert_eq!(c.decide(0, true, 40_000), Cut::First);
        assert_eq!(c.decide(2_440_000, false, 40_000), Cut::None);
        assert_eq!(c.decide(2_480_000, false, 40_000), Cut::Forced);
        assert_eq!(c.elapsed(2_520_000), Some(40_000));
        c.reset();
        assert_eq!(c.decide(9_000_000, false, 40_000), Cut::None);
    }
}
