//! The index of a recording: an HLS media playlist (RFC 8216), rendered and
//! parsed.
//!
//! A recording keeps two renderings of one [`RecordingPlaylist`], both
//! rewritten atomically after every closed segment:
//!
//! * `index.m3u8` — `EXT-X-PLAYLIST-TYPE:VOD` with `EXT-X-ENDLIST`, always.
//!   It lists exactly the segments that are complete and durable, so after a
//!   crash it opens in any player (ffmpeg included) as a finished recording
//!   of everything written so far. This is the recording's index of record.
//! * `live.m3u8` — `EXT-X-PLAYLIST-TYPE:EVENT` without `EXT-X-ENDLIST` while
//!   recording (players that open it mid-recording start from the beginning,
//!   can seek, and keep reloading for new segments; RFC 8216 §4.3.3.5), and
//!   with `EXT-X-ENDLIST` once the recording is finished.
//!
//! Each segment line is preceded by a comment `#ARCLY-BYTES:<n>` (a line
//! starting with `#` but not `#EXT` is a comment, RFC 8216 §4.1), so the
//! recorder can account sizes for retention after a restart without reading
//! the segments.

use std::fmt::Write as _;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The largest playlist [`RecordingPlaylist::parse`] accepts.
pub const MAX_PLAYLIST_BYTES: usize = 16 << 20;
/// The most segments [`RecordingPlaylist::parse`] accepts.
pub const MAX_SEGMENTS: usize = 1 << 20;
/// The longest line (URI or tag) [`RecordingPlaylist::parse`] accepts.
pub const MAX_LINE_BYTES: usize = 4096;

/// Why a playlist could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PlaylistError {
    /// It does not start with `#EXTM3U` (RFC 8216 §4.3.1.1).
    #[error("not an M3U8 playlist (no #EXTM3U header)")]
    NotM3u8,
    /// Larger than [`MAX_PLAYLIST_BYTES`], more than [`MAX_SEGMENTS`]
    /// segments, or a line longer than [`MAX_LINE_BYTES`].
    #[error("playlist exceeds the limit on {0}")]
    TooLarge(&'static str),
    /// A tag's value could not be read.
    #[error("line {line}: bad {tag} value")]
    BadTag {
        /// 1-based line number.
        line: usize,
        /// The tag.
        tag: &'static str,
    },
    /// A segment URI without a preceding `#EXTINF` (RFC 8216 §4.3.2.1).
    #[error("line {0}: segment without #EXTINF")]
    MissingExtinf(usize),
}

/// One segment of a recording.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlaylistSegment {
    /// The URI, relative to the playlist (`000001.ts`).
    pub uri: String,
    /// Media duration.
    pub duration: Duration,
    /// Size in bytes (from the `#ARCLY-BYTES` comment; 0 if absent).
    pub bytes: u64,
    /// Preceded by `EXT-X-DISCONTINUITY`.
    pub discontinuity: bool,
    /// `EXT-X-PROGRAM-DATE-TIME` of the segment's first sample, as written.
    pub program_date_time: Option<String>,
    /// The URI of its initialization segment (`EXT-X-MAP`, fMP4), relative
    /// to the playlist. Rendered only where it changes.
    pub map: Option<String>,
}

/// How to render a [`RecordingPlaylist`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PlaylistKind {
    /// `EXT-X-PLAYLIST-TYPE:VOD` and `EXT-X-ENDLIST`.
    Vod,
    /// `EXT-X-PLAYLIST-TYPE:EVENT`, with `EXT-X-ENDLIST` when `ended`.
    Event {
        /// The recording is finished.
        ended: bool,
    },
}

/// The segments of a recording and what a media playlist says about them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RecordingPlaylist {
    /// `EXT-X-MEDIA-SEQUENCE`: how many segments were removed from the front.
    pub media_sequence: u64,
    /// `EXT-X-DISCONTINUITY-SEQUENCE`: discontinuities removed from the front.
    pub discontinuity_sequence: u64,
    /// The lower bound of `EXT-X-TARGETDURATION`.
    pub target: Duration,
    /// The segments, oldest first.
    pub segments: Vec<PlaylistSegment>,
    /// The parsed playlist carried `EXT-X-ENDLIST` (ignored by `render`).
    pub ended: bool,
}

impl RecordingPlaylist {
    /// An empty playlist whose target duration is at least `target`.
    pub fn new(target: Duration) -> Self {
        Self {
            target,
            ..Self::default()
        }
    }

    /// Total media duration.
    pub fn duration(&self) -> Duration {
        self.segments.iter().map(|s| s.duration).sum()
    }

    /// `EXT-X-VERSION`: 7 once a segment has an `EXT-X-MAP` (fMP4;
    /// RFC 8216 §4.3.2.5 and §7 ask for 6 at least, 7 for CMAF), else 3
    /// (decimal `EXTINF`, §7).
    pub fn version(&self) -> u8 {
        if self.segments.iter().any(|s| s.map.is_some()) {
            7
        } else {
            3
        }
    }

    /// Total bytes of the segments.
    pub fn bytes(&self) -> u64 {
        self.segments.iter().map(|s| s.bytes).sum()
    }

    /// Remove the oldest segment, keeping the sequence numbers right
    /// (RFC 8216 §6.2.2).
    pub fn pop_front(&mut self) -> Option<PlaylistSegment> {
        if self.segments.is_empty() {
            return None;
        }
        let s = self.segments.remove(0);
        self.media_sequence += 1;
        if s.discontinuity {
            self.discontinuity_sequence += 1;
        }
        Some(s)
    }

    /// `EXT-X-TARGETDURATION`: every EXTINF rounded to the nearest integer
    /// must not exceed it (RFC 8216 §4.3.3.1).
    pub fn target_duration(&self) -> u64 {
        let max = self
            .segments
            .iter()
            .map(|s| (s.duration.as_micros() as u64 + 500_000) / 1_000_000)
            .max()
            .unwrap_or(0);
        let target = self.target.as_micros() as u64;
        max.max(target.div_ceil(1_000_000)).max(1)
    }

    /// The playlist text.
    pub fn render(&self, kind: PlaylistKind) -> String {
        let mut s = String::with_capacity(128 + self.segments.len() * 96);
        // RFC 8216 §4.3.1.1, §4.3.1.2.
        let _ = write!(s, "#EXTM3U\n#EXT-X-VERSION:{}\n", self.version());
        let _ = writeln!(s, "#EXT-X-TARGETDURATION:{}", self.target_duration());
        let _ = writeln!(s, "#EXT-X-MEDIA-SEQUENCE:{}", self.media_sequence);
        if self.discontinuity_sequence > 0 {
            let _ = writeln!(
                s,
                "#EXT-X-DISCONTINUITY-SEQUENCE:{}",
                self.discontinuity_sequence
            );
        }
        // §4.3.3.5
        let ended = match kind {
            PlaylistKind::Vod => {
                s.push_str("#EXT-X-PLAYLIST-TYPE:VOD\n");
                true
            }
            PlaylistKind::Event { ended } => {
                s.push_str("#EXT-X-PLAYLIST-TYPE:EVENT\n");
                ended
            }
        };
        let mut map: Option<&str> = None;
        for seg in &self.segments {
            if seg.discontinuity {
                s.push_str("#EXT-X-DISCONTINUITY\n");
            }
            // §4.3.2.5: EXT-X-MAP applies to every following segment until
            // the next one; written where the initialization changes.
            if let Some(m) = seg.map.as_deref() {
                if map != Some(m) {
                    let _ = writeln!(s, "#EXT-X-MAP:URI=\"{m}\"");
                    map = Some(m);
                }
            }
            if let Some(t) = &seg.program_date_time {
                let _ = writeln!(s, "#EXT-X-PROGRAM-DATE-TIME:{t}");
            }
            let us = seg.duration.as_micros();
            let _ = writeln!(s, "#EXTINF:{}.{:06},", us / 1_000_000, us % 1_000_000);
            let _ = writeln!(s, "#ARCLY-BYTES:{}", seg.bytes);
            s.push_str(&seg.uri);
            s.push('\n');
        }
        if ended {
            s.push_str("#EXT-X-ENDLIST\n");
        }
        s
    }

    /// Parse a media playlist written by [`render`](Self::render) (or any
    /// simple media playlist). Unknown tags and comments are ignored
    /// (RFC 8216 §4.1). Bounded by [`MAX_PLAYLIST_BYTES`],
    /// [`MAX_SEGMENTS`] and [`MAX_LINE_BYTES`].
    pub fn parse(text: &[u8]) -> Result<Self, PlaylistError> {
        if text.len() > MAX_PLAYLIST_BYTES {
            return Err(PlaylistError::TooLarge("bytes"));
        }
        let text = String::from_utf8_lossy(text);
        let mut lines = text.lines().enumerate();
        match lines.next() {
            Some((_, l)) if l.trim_end() == "#EXTM3U" => {}
            _ => return Err(PlaylistError::NotM3u8),
        }
        let mut p = Self::default();
        let mut pending: Option<PlaylistSegment> = None;
        let mut discontinuity = false;
        let mut pdt = None;
        let mut bytes = 0u64;
        let mut map: Option<String> = None;
        for (i, line) in lines {
            let n = i + 1;
            let line = line.trim();
            if line.len() > MAX_LINE_BYTES {
                return Err(PlaylistError::TooLarge("line length"));
            }
            if line.is_empty() {
                continue;
            }
            if let Some(v) = line.strip_prefix("#EXT-X-TARGETDURATION:") {
                let t = parse_u64(v, n, "EXT-X-TARGETDURATION")?;
                p.target = Duration::from_secs(t);
            } else if let Some(v) = line.strip_prefix("#EXT-X-MEDIA-SEQUENCE:") {
                p.media_sequence = parse_u64(v, n, "EXT-X-MEDIA-SEQUENCE")?;
            } else if let Some(v) = line.strip_prefix("#EXT-X-DISCONTINUITY-SEQUENCE:") {
                p.discontinuity_sequence = parse_u64(v, n, "EXT-X-DISCONTINUITY-SEQUENCE")?;
            } else if line == "#EXT-X-DISCONTINUITY" {
                discontinuity = true;
            } else if line == "#EXT-X-ENDLIST" {
                p.ended = true;
            } else if let Some(v) = line.strip_prefix("#EXT-X-PROGRAM-DATE-TIME:") {
                pdt = Some(v.to_owned());
            } else if let Some(v) = line.strip_prefix("#EXT-X-MAP:") {
                map = Some(map_uri(v).ok_or(PlaylistError::BadTag {
                    line: n,
                    tag: "EXT-X-MAP",
                })?);
            } else if let Some(v) = line.strip_prefix("#ARCLY-BYTES:") {
                bytes = parse_u64(v, n, "ARCLY-BYTES")?;
            } else if let Some(v) = line.strip_prefix("#EXTINF:") {
                // §4.3.2.1: `#EXTINF:<duration>,[<title>]`
                let d = v.split(',').next().unwrap_or("");
                let duration = parse_seconds(d).ok_or(PlaylistError::BadTag {
                    line: n,
                    tag: "EXTINF",
                })?;
                pending = Some(PlaylistSegment {
                    uri: String::new(),
                    duration,
                    bytes: 0,
                    discontinuity: false,
                    program_date_time: None,
                    map: None,
                });
            } else if line.starts_with('#') {
                // Another tag or a comment.
            } else {
                let mut seg = pending.take().ok_or(PlaylistError::MissingExtinf(n))?;
                if p.segments.len() >= MAX_SEGMENTS {
                    return Err(PlaylistError::TooLarge("segments"));
                }
                seg.uri = line.to_owned();
                seg.discontinuity = std::mem::take(&mut discontinuity);
                seg.program_date_time = pdt.take();
                seg.bytes = std::mem::take(&mut bytes);
                seg.map.clone_from(&map);
                p.segments.push(seg);
            }
        }
        Ok(p)
    }
}

/// The `URI` attribute of an `EXT-X-MAP` attribute list (RFC 8216
/// §4.3.2.5, §4.2: a quoted string without `"`, CR or LF). Other
/// attributes (`BYTERANGE`) are ignored.
fn map_uri(attrs: &str) -> Option<String> {
    let rest = attrs.split_once("URI=\"")?.1;
    let (uri, _) = rest.split_once('"')?;
    (!uri.is_empty() && uri.trim() == uri).then(|| uri.to_owned())
}

fn parse_u64(v: &str, line: usize, tag: &'static str) -> Result<u64, PlaylistError> {
    v.trim()
        .parse()
        .map_err(|_| PlaylistError::BadTag { line, tag })
}

/// A decimal number of seconds, to the microsecond, without floats.
fn parse_seconds(v: &str) -> Option<Duration> {
    let v = v.trim();
    let (int, frac) = v.split_once('.').unwrap_or((v, ""));
    if int.is_empty() || !int.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    if !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let secs: u64 = int.parse().ok()?;
    if secs > 1 << 40 {
        return None;
    }
    let mut micros = 0u64;
    for (i, b) in frac.bytes().take(6).enumerate() {
        micros += u64::from(b - b'0') * 10u64.pow(5 - i as u32);
    }
    Some(Duration::from_secs(secs) + Duration::from_micros(micros))
}

/// Days since 1970-01-01 to a proleptic Gregorian (year, month, day).
/// (H. Hinnant's `civil_from_days`.)
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (the inverse of
/// `civil_from_days`, same method).
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = i64::from(if m > 2 { m - 3 } else { m + 9 });
    let doy = (153 * mp + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The time of a UTC calendar date and time of day, if it is one.
fn join_time(y: i64, mo: u32, d: u32, h: u32, mi: u32, s: u32, nanos: u32) -> Option<SystemTime> {
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || s > 60 {
        return None;
    }
    let days = days_from_civil(y, mo, d);
    let secs = days * 86_400 + i64::from(h) * 3600 + i64::from(mi) * 60 + i64::from(s);
    let secs = u64::try_from(secs).ok()?;
    UNIX_EPOCH.checked_add(Duration::new(secs, nanos))
}

/// `n` ASCII digits of `b` at `at` as a number.
fn digits(b: &[u8], at: usize, n: usize) -> Option<u32> {
    let v = b.get(at..at + n)?;
    v.iter().try_fold(0u32, |acc, c| {
        c.is_ascii_digit().then(|| acc * 10 + u32::from(c - b'0'))
    })
}

/// A fraction of a second (`.123`, up to nanoseconds) at the start of `b`:
/// the nanoseconds and the bytes it took.
fn fraction(b: &[u8]) -> (u32, usize) {
    if b.first() != Some(&b'.') {
        return (0, 0);
    }
    let n = b[1..].iter().take_while(|c| c.is_ascii_digit()).count();
    let mut nanos = 0u32;
    for (i, c) in b[1..1 + n].iter().take(9).enumerate() {
        nanos += u32::from(c - b'0') * 10u32.pow(8 - i as u32);
    }
    (nanos, 1 + n)
}

/// Parse an `EXT-X-PROGRAM-DATE-TIME` value (RFC 8216 §4.3.2.6: ISO 8601
/// with a time zone), as [`rfc3339`] writes it or with a `±hh:mm` offset.
pub fn parse_rfc3339(v: &str) -> Option<SystemTime> {
    let b = v.trim().as_bytes();
    if b.len() < 20
        || b.get(4) != Some(&b'-')
        || b.get(7) != Some(&b'-')
        || !matches!(b.get(10), Some(b'T' | b't'))
    {
        return None;
    }
    if b.get(13) != Some(&b':') || b.get(16) != Some(&b':') {
        return None;
    }
    let (nanos, n) = fraction(&b[19.min(b.len())..]);
    let t = join_time(
        i64::from(digits(b, 0, 4)?),
        digits(b, 5, 2)?,
        digits(b, 8, 2)?,
        digits(b, 11, 2)?,
        digits(b, 14, 2)?,
        digits(b, 17, 2)?,
        nanos,
    )?;
    let zone = &b[19 + n..];
    match zone {
        b"Z" | b"z" => Some(t),
        [sign @ (b'+' | b'-'), _, _, b':', _, _] => {
            let off = Duration::from_secs(u64::from(
                digits(zone, 1, 2)? * 3600 + digits(zone, 4, 2)? * 60,
            ));
            // Local time = UTC + offset.
            if *sign == b'+' {
                t.checked_sub(off)
            } else {
                t.checked_add(off)
            }
        }
        _ => None,
    }
}

/// Parse a recording's start-time folder name, as [`compact_time`] writes
/// it (`20240501T120000.123Z`).
pub fn parse_compact_time(v: &str) -> Option<SystemTime> {
    let b = v.as_bytes();
    if b.len() < 16 || b.get(8) != Some(&b'T') {
        return None;
    }
    let (nanos, n) = fraction(&b[15.min(b.len())..]);
    if &b[15 + n..] != b"Z" {
        return None;
    }
    join_time(
        i64::from(digits(b, 0, 4)?),
        digits(b, 4, 2)?,
        digits(b, 6, 2)?,
        digits(b, 9, 2)?,
        digits(b, 11, 2)?,
        digits(b, 13, 2)?,
        nanos,
    )
}

fn split_time(t: SystemTime) -> (i64, u32, u32, u64, u64, u64, u32) {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = d.as_secs();
    let (y, m, day) = civil_from_days((secs / 86_400) as i64);
    let rem = secs % 86_400;
    (
        y,
        m,
        day,
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        d.subsec_millis(),
    )
}

/// `2024-05-01T12:00:00.123Z` (ISO 8601 / RFC 3339, as
/// `EXT-X-PROGRAM-DATE-TIME` wants, RFC 8216 §4.3.2.6).
pub fn rfc3339(t: SystemTime) -> String {
    let (y, mo, d, h, mi, s, ms) = split_time(t);
    format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}.{ms:03}Z")
}

/// `20240501T120000.123Z`: the start-time folder of a recording (sorts in
/// time order, no `:` so it is a valid storage key segment).
pub fn compact_time(t: SystemTime) -> String {
    let (y, mo, d, h, mi, s, ms) = split_time(t);
    format!("{y:04}{mo:02}{d:02}T{h:02}{mi:02}{s:02}.{ms:03}Z")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seg(uri: &str, ms: u64, disc: bool) -> PlaylistSegment {
        PlaylistSegment {
            uri: uri.into(),
            duration: Duration::from_millis(ms),
            bytes: ms * 10,
            discontinuity: disc,
            program_date_time: disc.then(|| "2024-01-01T00:00:00.000Z".into()),
            map: None,
        }
    }

    #[test]
    fn fmp4_maps_are_written_where_they_change() {
        let mut p = RecordingPlaylist::new(Duration::from_secs(2));
        for (uri, map, disc) in [
            ("000001.m4s", "init.mp4", false),
            ("000002.m4s", "init.mp4", false),
            ("000003.m4s", "init-000003.mp4", true),
        ] {
            p.segments.push(PlaylistSegment {
                map: Some(map.into()),
                ..seg(uri, 2000, disc)
            });
        }
        let text = p.render(PlaylistKind::Vod);
        assert!(text.contains("#EXT-X-VERSION:7\n"), "{text}");
        assert_eq!(text.matches("#EXT-X-MAP:").count(), 2, "{text}");
        assert!(text.contains("#EXT-X-MAP:URI=\"init.mp4\"\n#EXTINF:2.000000,"));
        let mut back = RecordingPlaylist::parse(text.as_bytes()).unwrap();
        back.ended = false;
        assert_eq!(back, p);
        // Retention keeps the first segment's map.
        p.pop_front();
        let text = p.render(PlaylistKind::Vod);
        assert!(
            text.contains("#EXT-X-MAP:URI=\"init.mp4\"\n#EXTINF"),
            "{text}"
        );
        assert!(RecordingPlaylist::parse(b"#EXTM3U\n#EXT-X-MAP:BYTERANGE=1\n").is_err());
        assert_eq!(
            RecordingPlaylist::new(Duration::from_secs(1)).render(PlaylistKind::Vod)[..26],
            *"#EXTM3U\n#EXT-X-VERSION:3\n#"
        );
    }

    #[test]
    fn render_parse_round_trip() {
        let mut p = RecordingPlaylist::new(Duration::from_secs(6));
        p.segments.push(seg("000001.ts", 6000, true));
        p.segments.push(seg("000002.ts", 6480, false));
        p.segments.push(seg("000003.ts", 1234, true));
        let vod = p.render(PlaylistKind::Vod);
        assert!(vod.contains("#EXT-X-TARGETDURATION:6\n"));
        assert!(vod.contains("#EXTINF:6.480000,\n"));
        assert!(vod.ends_with("#EXT-X-ENDLIST\n"));
        let mut back = RecordingPlaylist::parse(vod.as_bytes()).unwrap();
        assert!(back.ended);
        back.ended = false;
        assert_eq!(back, p);
        let ev = p.render(PlaylistKind::Event { ended: false });
        assert!(ev.contains("PLAYLIST-TYPE:EVENT") && !ev.contains("ENDLIST"));
        p.pop_front();
        p.pop_front();
        let r = p.render(PlaylistKind::Vod);
        assert!(r.contains("#EXT-X-MEDIA-SEQUENCE:2\n"));
        assert!(r.contains("#EXT-X-DISCONTINUITY-SEQUENCE:1\n"));
    }

    #[test]
    fn target_duration_rounds_like_rfc8216() {
        let mut p = RecordingPlaylist::new(Duration::from_secs(2));
        p.segments.push(seg("a", 2499, false));
        assert_eq!(p.target_duration(), 2);
        p.segments.push(seg("b", 2500, false));
        assert_eq!(p.target_duration(), 3);
    }

    #[test]
    fn hostile_playlists_are_refused() {
        assert_eq!(
            RecordingPlaylist::parse(b"nope"),
            Err(PlaylistError::NotM3u8)
        );
        assert!(matches!(
            RecordingPlaylist::parse(b"#EXTM3U\nseg.ts\n"),
            Err(PlaylistError::MissingExtinf(2))
        ));
        assert!(RecordingPlaylist::parse(b"#EXTM3U\n#EXTINF:-1,\nx\n").is_err());
        assert!(RecordingPlaylist::parse(b"#EXTM3U\n#EXTINF:1e9,\nx\n").is_err());
        assert!(RecordingPlaylist::parse(b"#EXTM3U\n#EXT-X-MEDIA-SEQUENCE:x\n").is_err());
    }

    #[test]
    fn dates() {
        let t = UNIX_EPOCH + Duration::from_millis(1_714_564_800_123);
        assert_eq!(rfc3339(t), "2024-05-01T12:00:00.123Z");
        assert_eq!(compact_time(t), "20240501T120000.123Z");
        assert_eq!(rfc3339(UNIX_EPOCH), "1970-01-01T00:00:00.000Z");
        let leap = UNIX_EPOCH + Duration::from_secs(951_782_400); // 2000-02-29
        assert_eq!(&rfc3339(leap)[..10], "2000-02-29");
        // And back.
        for t in [
            t,
            leap,
            UNIX_EPOCH,
            UNIX_EPOCH + Duration::from_millis(4_102_444_799_999),
        ] {
            assert_eq!(parse_rfc3339(&rfc3339(t)), Some(t));
            assert_eq!(parse_compact_time(&compact_time(t)), Some(t));
        }
        assert_eq!(parse_rfc3339("2024-05-01T14:00:00.123+02:00"), Some(t));
        assert_eq!(parse_rfc3339("2024-05-01T07:00:00.123-05:00"), Some(t));
        assert_eq!(
            parse_rfc3339("2024-05-01T12:00:00Z"),
            Some(t - Duration::from_millis(123))
        );
        for bad in [
            "",
            "2024-05-01",
            "2024-05-01T12:00",
            "2024-13-01T00:00:00Z",
            "2024-05-01T12:00:00",
            "x024-05-01T12:00:00Z",
        ] {
            assert_eq!(parse_rfc3339(bad), None, "{bad}");
        }
        for bad in [
            "",
            "20240501",
            "20240501T12",
            "20240501T120000.123",
            "2024050xT120000Z",
        ] {
            assert_eq!(parse_compact_time(bad), None, "{bad}");
        }
    }
}
