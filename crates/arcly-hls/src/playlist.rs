//! HLS playlist model and renderer (RFC 8216 and its successor draft,
//! draft-pantos-hls-rfc8216bis, "8216bis" below).
//!
//! A [`MediaPlaylist`] is plain data: segments with their parts, the
//! in-progress parts, LL-HLS server control, rendition reports. Rendering
//! is a pure function of the model ([`MediaPlaylist::render`]) so the HTTP
//! layer can render once per update and serve the same bytes to every
//! client. A [`MultivariantPlaylist`] lists renditions.
//!
//! ```
//! use arcly_hls::playlist::{MediaPlaylist, SegmentEntry};
//! let mut p = MediaPlaylist::new(2);
//! p.segments.push(SegmentEntry::new("seg0.ts", 2.0));
//! p.ended = true;
//! let text = p.render(false);
//! assert!(text.contains("#EXTINF:2.000,\nseg0.ts\n#EXT-X-ENDLIST"));
//! arcly_hls::checker::check(&text).unwrap();
//! ```

use std::fmt::Write;
use std::time::{SystemTime, UNIX_EPOCH};

/// One partial segment (8216bis §4.4.4.9).
#[derive(Clone, Debug, PartialEq)]
pub struct PartEntry {
    /// URI of the part, relative to the playlist.
    pub uri: String,
    /// Duration in seconds.
    pub duration: f64,
    /// Whether the part starts with an independent frame (`INDEPENDENT=YES`).
    pub independent: bool,
}

/// One complete media segment.
#[derive(Clone, Debug, PartialEq)]
pub struct SegmentEntry {
    /// URI of the segment, relative to the playlist.
    pub uri: String,
    /// Duration in seconds (`EXTINF`, 8216bis §4.4.4.1).
    pub duration: f64,
    /// An `EXT-X-DISCONTINUITY` precedes this segment (§4.4.4.3).
    pub discontinuity: bool,
    /// Wall-clock time of the first sample (`EXT-X-PROGRAM-DATE-TIME`, §4.4.4.6).
    pub program_date_time: Option<SystemTime>,
    /// An `EXT-X-MAP` (§4.4.4.5) applying from this segment on, when it
    /// differs from the previous segment's.
    pub map_uri: Option<String>,
    /// Its partial segments (rendered only near the live edge).
    pub parts: Vec<PartEntry>,
}

impl SegmentEntry {
    /// A segment with only a URI and a duration.
    pub fn new(uri: impl Into<String>, duration: f64) -> Self {
        Self {
            uri: uri.into(),
            duration,
            discontinuity: false,
            program_date_time: None,
            map_uri: None,
            parts: Vec::new(),
        }
    }
}

/// LL-HLS parameters: `EXT-X-PART-INF` and `EXT-X-SERVER-CONTROL`
/// (8216bis §4.4.3.7, §4.4.3.8).
#[derive(Clone, Debug, PartialEq)]
pub struct LowLatency {
    /// `PART-TARGET` in seconds.
    pub part_target: f64,
    /// `PART-HOLD-BACK` in seconds (at least 2 × `part_target`; 3 × is advised).
    pub part_hold_back: f64,
    /// `CAN-BLOCK-RELOAD=YES`.
    pub can_block_reload: bool,
    /// `CAN-SKIP-UNTIL` in seconds (at least 6 × the target duration), enabling delta updates.
    pub can_skip_until: Option<f64>,
}

/// An `EXT-X-RENDITION-REPORT` (8216bis §4.4.5.4).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RenditionReport {
    /// URI of the other rendition's media playlist.
    pub uri: String,
    /// Its last media sequence number.
    pub last_msn: u64,
    /// Its last part index, if it has parts.
    pub last_part: Option<u64>,
}

/// A media playlist. See the [module docs](self).
#[derive(Clone, Debug, PartialEq)]
pub struct MediaPlaylist {
    /// `EXT-X-TARGETDURATION` in whole seconds; every segment's duration,
    /// rounded to the nearest integer, must not exceed it (§4.4.3.1).
    pub target_duration: u32,
    /// Media sequence number of the first segment in `segments` (§4.4.3.2).
    pub media_sequence: u64,
    /// `EXT-X-DISCONTINUITY-SEQUENCE` (§4.4.3.3).
    pub discontinuity_sequence: u64,
    /// `EXT-X-INDEPENDENT-SEGMENTS` (§4.4.2.1).
    pub independent_segments: bool,
    /// `EXT-X-MAP` URI in force at the first segment (fMP4 init segment).
    pub map_uri: Option<String>,
    /// Complete segments, oldest first.
    pub segments: Vec<SegmentEntry>,
    /// Parts of the segment being built (it has no `EXTINF` yet).
    pub pending_parts: Vec<PartEntry>,
    /// `EXT-X-PRELOAD-HINT:TYPE=PART` URI of the part that comes next (§4.4.5.3).
    pub preload_hint: Option<String>,
    /// `EXT-X-ENDLIST` (§4.4.3.4).
    pub ended: bool,
    /// LL-HLS parameters, if parts are produced.
    pub low_latency: Option<LowLatency>,
    /// `EXT-X-RENDITION-REPORT`s for the other renditions.
    pub rendition_reports: Vec<RenditionReport>,
}

/// Keep parts only for segments this many target durations from the end
/// (8216bis §4.4.4.9: older parts are removed from the playlist).
const PART_WINDOW_TARGET_DURATIONS: f64 = 3.0;

impl MediaPlaylist {
    /// An empty live playlist with `EXT-X-TARGETDURATION:target_duration`.
    pub fn new(target_duration: u32) -> Self {
        Self {
            target_duration,
            media_sequence: 0,
            discontinuity_sequence: 0,
            independent_segments: true,
            map_uri: None,
            segments: Vec::new(),
            pending_parts: Vec::new(),
            preload_hint: None,
            ended: false,
            low_latency: None,
            rendition_reports: Vec::new(),
        }
    }

    /// The protocol version the rendered text needs (8216bis §8):
    /// 3 for decimal EXTINF, 6 for EXT-X-MAP, 9 for delta updates (EXT-X-SKIP).
    pub fn version(&self) -> u32 {
        if self
            .low_latency
            .as_ref()
            .is_some_and(|l| l.can_skip_until.is_some())
        {
            9
        } else if self.map_uri.is_some() || self.segments.iter().any(|s| s.map_uri.is_some()) {
            6
        } else {
            3
        }
    }

    /// Media sequence number of the segment after the last complete one.
    pub fn next_msn(&self) -> u64 {
        self.media_sequence + self.segments.len() as u64
    }

    /// How many leading segments a delta update (`_HLS_skip=YES`) skips:
    /// those that start more than `CAN-SKIP-UNTIL` seconds before the end
    /// (8216bis §6.2.5.1).
    pub fn skippable_segments(&self) -> usize {
        let Some(until) = self.low_latency.as_ref().and_then(|l| l.can_skip_until) else {
            return 0;
        };
        let mut from_end = self.pending_parts.iter().map(|p| p.duration).sum::<f64>();
        let mut keep = 0;
        for s in self.segments.iter().rev() {
            from_end += s.duration;
            keep += 1;
            if from_end > until {
                break;
            }
        }
        // A skipped segment may not carry a tag the client needs to count
        // discontinuities or find its map: stop skipping at the first one.
        let skip = self.segments.len() - keep;
        self.segments[..skip]
            .iter()
            .position(|s| s.map_uri.is_some() || s.discontinuity)
            .unwrap_or(skip)
    }

    /// Render the playlist text. `skip` asks for a delta update
    /// (`EXT-X-SKIP`), honoured only if `CAN-SKIP-UNTIL` is set.
    pub fn render(&self, skip: bool) -> String {
        let mut out = String::with_capacity(128 + 96 * self.segments.len());
        self.render_into(skip, &mut out);
        out
    }

    /// [`render`](Self::render) into an existing buffer (cleared first).
    pub fn render_into(&self, skip: bool, out: &mut String) {
        out.clear();
        // Header tags precede any media segment (§4.4.1, §4.4.3).
        out.push_str("#EXTM3U\n");
        let _ = writeln!(out, "#EXT-X-VERSION:{}", self.version());
        let _ = writeln!(out, "#EXT-X-TARGETDURATION:{}", self.target_duration);
        if self.independent_segments {
            out.push_str("#EXT-X-INDEPENDENT-SEGMENTS\n");
        }
        if let Some(ll) = &self.low_latency {
            let _ = write!(out, "#EXT-X-SERVER-CONTROL:");
            if ll.can_block_reload {
                out.push_str("CAN-BLOCK-RELOAD=YES,");
            }
            if let Some(until) = ll.can_skip_until {
                let _ = write!(out, "CAN-SKIP-UNTIL={until:.3},");
            }
            // HOLD-BACK: at least three target durations (§4.4.3.8).
            let _ = writeln!(
                out,
                "HOLD-BACK={:.3},PART-HOLD-BACK={:.3}",
                3.0 * f64::from(self.target_duration),
                ll.part_hold_back
            );
            let _ = writeln!(out, "#EXT-X-PART-INF:PART-TARGET={:.3}", ll.part_target);
        }
        let _ = writeln!(out, "#EXT-X-MEDIA-SEQUENCE:{}", self.media_sequence);
        let _ = writeln!(
            out,
            "#EXT-X-DISCONTINUITY-SEQUENCE:{}",
            self.discontinuity_sequence
        );
        let skipped = if skip { self.skippable_segments() } else { 0 };
        if skipped > 0 {
            let _ = writeln!(out, "#EXT-X-SKIP:SKIPPED-SEGMENTS={skipped}");
        }
        // The map in force at the first rendered segment.
        let map = self.segments[..skipped]
            .iter()
            .rev()
            .find_map(|s| s.map_uri.as_ref())
            .or(self.map_uri.as_ref());
        let first_map_shown = self
            .segments
            .get(skipped)
            .is_some_and(|s| s.map_uri.is_some());
        if let (Some(uri), false) = (map, first_map_shown) {
            let _ = writeln!(out, "#EXT-X-MAP:URI=\"{uri}\"");
        }
        let parts_from = self.part_window_start();
        for (i, s) in self.segments.iter().enumerate().skip(skipped) {
            if s.discontinuity {
                out.push_str("#EXT-X-DISCONTINUITY\n");
            }
            if let Some(uri) = &s.map_uri {
                let _ = writeln!(out, "#EXT-X-MAP:URI=\"{uri}\"");
            }
            if let Some(t) = s.program_date_time {
                out.push_str("#EXT-X-PROGRAM-DATE-TIME:");
                push_date_time(out, t);
                out.push('\n');
            }
            if i >= parts_from {
                for p in &s.parts {
                    push_part(out, p);
                }
            }
            let _ = writeln!(out, "#EXTINF:{:.3},\n{}", s.duration, s.uri);
        }
        if !self.ended {
            for p in &self.pending_parts {
                push_part(out, p);
            }
            if let Some(uri) = &self.preload_hint {
                let _ = writeln!(out, "#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"{uri}\"");
            }
        }
        for r in &self.rendition_reports {
            let _ = write!(
                out,
                "#EXT-X-RENDITION-REPORT:URI=\"{}\",LAST-MSN={}",
                r.uri, r.last_msn
            );
            if let Some(p) = r.last_part {
                let _ = write!(out, ",LAST-PART={p}");
            }
            out.push('\n');
        }
        if self.ended {
            out.push_str("#EXT-X-ENDLIST\n");
        }
    }

    /// Index of the first segment whose parts are still listed.
    fn part_window_start(&self) -> usize {
        let limit = PART_WINDOW_TARGET_DURATIONS * f64::from(self.target_duration);
        let mut from_end: f64 = self.pending_parts.iter().map(|p| p.duration).sum();
        let mut start = self.segments.len();
        for (i, s) in self.segments.iter().enumerate().rev() {
            from_end += s.duration;
            if from_end > limit {
                break;
            }
            start = i;
        }
        start
    }
}

fn push_part(out: &mut String, p: &PartEntry) {
    let _ = write!(
        out,
        "#EXT-X-PART:DURATION={:.3},URI=\"{}\"",
        p.duration, p.uri
    );
    if p.independent {
        out.push_str(",INDEPENDENT=YES");
    }
    out.push('\n');
}

/// Write `t` as an ISO 8601 / RFC 3339 date-time with milliseconds, UTC
/// (8216bis §4.4.4.6).
pub fn push_date_time(out: &mut String, t: SystemTime) {
    let ms = t
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or(0);
    let secs = i64::try_from(ms / 1000).unwrap_or(0);
    let days = secs.div_euclid(86_400);
    let sod = secs.rem_euclid(86_400);
    // Civil date from days since 1970-01-01 (proleptic Gregorian).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    let _ = write!(
        out,
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:03}Z",
        sod / 3600,
        (sod / 60) % 60,
        sod % 60,
        ms % 1000
    );
}

/// One variant stream of a [`MultivariantPlaylist`] (`EXT-X-STREAM-INF`, 8216bis §4.4.6.2).
#[derive(Clone, Debug, PartialEq)]
pub struct Variant {
    /// URI of the variant's media playlist.
    pub uri: String,
    /// Peak segment bit rate in bits per second (`BANDWIDTH`).
    pub bandwidth: u64,
    /// Average segment bit rate (`AVERAGE-BANDWIDTH`).
    pub average_bandwidth: Option<u64>,
    /// RFC 6381 codec strings (`CODECS`), e.g. `avc1.64001f`, `mp4a.40.2`.
    pub codecs: Vec<String>,
    /// Picture size (`RESOLUTION`).
    pub resolution: Option<(u32, u32)>,
    /// Maximum frame rate (`FRAME-RATE`).
    pub frame_rate: Option<f64>,
}

/// A multivariant (master) playlist.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct MultivariantPlaylist {
    /// `EXT-X-INDEPENDENT-SEGMENTS` applies to every media playlist.
    pub independent_segments: bool,
    /// The variants, in preference order.
    pub variants: Vec<Variant>,
}

impl MultivariantPlaylist {
    /// Render the playlist text.
    pub fn render(&self) -> String {
        let mut out = String::from("#EXTM3U\n#EXT-X-VERSION:6\n");
        if self.independent_segments {
            out.push_str("#EXT-X-INDEPENDENT-SEGMENTS\n");
        }
        for v in &self.variants {
            let _ = write!(out, "#EXT-X-STREAM-INF:BANDWIDTH={}", v.bandwidth);
            if let Some(a) = v.average_bandwidth {
                let _ = write!(out, ",AVERAGE-BANDWIDTH={a}");
            }
            if !v.codecs.is_empty() {
                let _ = write!(out, ",CODECS=\"{}\"", v.codecs.join(","));
            }
            if let Some((w, h)) = v.resolution {
                let _ = write!(out, ",RESOLUTION={w}x{h}");
            }
            if let Some(r) = v.frame_rate {
                let _ = write!(out, ",FRAME-RATE={r:.3}");
            }
            let _ = writeln!(out, "\n{}", v.uri);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn date_time_format() {
        let mut s = String::new();
        push_date_time(
            &mut s,
            UNIX_EPOCH + Duration::from_millis(1_700_000_000_123),
        );
        assert_eq!(s, "2023-11-14T22:13:20.123Z");
        s.clear();
        push_date_time(&mut s, UNIX_EPOCH + Duration::from_secs(951_782_400)); // leap day
        assert_eq!(s, "2000-02-29T00:00:00.000Z");
    }

    #[test]
    fn multivariant_renders_attributes() {
        let m = MultivariantPlaylist {
            independent_segments: true,
            variants: vec![Variant {
                uri: "index.m3u8".into(),
                bandwidth: 800_000,
                average_bandwidth: Some(700_000),
                codecs: vec!["avc1.64001e".into(), "mp4a.40.2".into()],
                resolution: Some((640, 360)),
                frame_rate: Some(25.0),
            }],
        };
        let t = m.render();
        assert!(t.contains("BANDWIDTH=800000,AVERAGE-BANDWIDTH=700000,CODECS=\"avc1.64001e,mp4a.40.2\",RESOLUTION=640x360,FRAME-RATE=25.000\nindex.m3u8\n"));
        crate::checker::check(&t).unwrap();
    }
}
