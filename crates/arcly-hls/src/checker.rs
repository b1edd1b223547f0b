//! A playlist checker enforcing RFC 8216 and the LL-HLS rules of its
//! successor draft (draft-pantos-hls-rfc8216bis, "8216bis" below) on any
//! playlist text. Used by this crate's tests and by the server's.
//!
//! [`check`] parses one playlist and returns a [`Summary`] or every
//! [`Violation`] found; [`check_reload`] checks that a later reload of the
//! same media playlist is consistent with an earlier one (§6.2.1).
//!
//! ```
//! let bad = "#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXTINF:2.6,\na.ts\n";
//! let errors = arcly_hls::checker::check(bad).unwrap_err();
//! assert!(errors.iter().any(|v| v.rule.contains("4.4.3.1")));
//! ```

use std::collections::HashMap;
use std::fmt;

/// Longest playlist text the checker accepts.
pub const MAX_PLAYLIST_BYTES: usize = 4 * 1024 * 1024;
/// Slack for durations printed with three decimals.
const EPS: f64 = 0.0015;

/// One broken rule.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Violation {
    /// 1-based line number (0 for whole-playlist rules).
    pub line: usize,
    /// The rule, with its section (`8216bis §4.4.3.1 EXTINF <= TARGETDURATION`).
    pub rule: &'static str,
    /// What was found.
    pub detail: String,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: {}: {}", self.line, self.rule, self.detail)
    }
}

/// Which kind of playlist was checked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// A media playlist.
    Media,
    /// A multivariant playlist.
    Multivariant,
}

/// A partial segment as listed.
#[derive(Clone, Debug, PartialEq)]
pub struct CheckedPart {
    /// Its URI.
    pub uri: String,
    /// `DURATION`.
    pub duration: f64,
    /// `INDEPENDENT=YES`.
    pub independent: bool,
}

/// A media segment as listed.
#[derive(Clone, Debug, PartialEq)]
pub struct CheckedSegment {
    /// Its media sequence number.
    pub msn: u64,
    /// Its discontinuity sequence number.
    pub discontinuity_sequence: u64,
    /// Its URI.
    pub uri: String,
    /// `EXTINF` duration.
    pub duration: f64,
    /// Its listed parts.
    pub parts: Vec<CheckedPart>,
}

/// What a valid playlist contains.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Summary {
    /// Media or multivariant (`None` only for an empty default).
    pub kind: Option<Kind>,
    /// `EXT-X-VERSION` (1 when absent).
    pub version: u32,
    /// `EXT-X-TARGETDURATION`.
    pub target_duration: u64,
    /// `EXT-X-MEDIA-SEQUENCE`.
    pub media_sequence: u64,
    /// `EXT-X-SKIP:SKIPPED-SEGMENTS`.
    pub skipped: u64,
    /// Listed segments.
    pub segments: Vec<CheckedSegment>,
    /// Parts after the last segment (the segment in progress).
    pub pending_parts: Vec<CheckedPart>,
    /// `PART-TARGET`.
    pub part_target: Option<f64>,
    /// `EXT-X-PRELOAD-HINT:TYPE=PART` URI.
    pub preload_hint: Option<String>,
    /// `EXT-X-ENDLIST` present.
    pub ended: bool,
    /// `EXT-X-STREAM-INF` URIs (multivariant).
    pub variants: Vec<String>,
}

/// Parse an attribute list (8216bis §4.2): `NAME=value` pairs separated by
/// commas, quoted strings may contain commas.
pub fn attributes(s: &str) -> Result<HashMap<&str, &str>, String> {
    let mut out = HashMap::new();
    let mut rest = s;
    while !rest.is_empty() {
        let eq = rest
            .find('=')
            .ok_or_else(|| format!("attribute without '=' in {rest:?}"))?;
        let name = &rest[..eq];
        if name.is_empty()
            || !name
                .bytes()
                .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'-')
        {
            return Err(format!("bad attribute name {name:?}"));
        }
        let after = &rest[eq + 1..];
        let (value, next) = if let Some(q) = after.strip_prefix('"') {
            let end = q.find('"').ok_or("unterminated quoted string")?;
            (&after[..end + 2], &q[end + 1..])
        } else {
            let end = after.find(',').unwrap_or(after.len());
            (&after[..end], &after[end..])
        };
        if out.insert(name, value).is_some() {
            return Err(format!("attribute {name} repeated"));
        }
        rest = match next.strip_prefix(',') {
            Some(n) if !n.is_empty() => n,
            Some(_) => return Err("trailing comma".into()),
            None if next.is_empty() => "",
            None => return Err(format!("junk after attribute {name}: {next:?}")),
        };
    }
    Ok(out)
}

fn unquote(v: &str) -> Option<&str> {
    v.strip_prefix('"')?.strip_suffix('"')
}

fn decimal(v: &str) -> Option<f64> {
    if v.is_empty() || !v.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        return None;
    }
    v.parse().ok()
}

fn integer(v: &str) -> Option<u64> {
    if v.is_empty() || v.len() > 20 || !v.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    v.parse().ok()
}

fn valid_date_time(v: &str) -> bool {
    // YYYY-MM-DDThh:mm:ss[.fff](Z|±hh:mm) (ISO 8601 / RFC 3339)
    let b = v.as_bytes();
    let digits =
        |r: std::ops::Range<usize>| b.get(r).is_some_and(|s| s.iter().all(u8::is_ascii_digit));
    if !(digits(0..4)
        && b.get(4) == Some(&b'-')
        && digits(5..7)
        && b.get(7) == Some(&b'-')
        && digits(8..10))
        || b.get(10) != Some(&b'T')
        || !(digits(11..13)
            && b.get(13) == Some(&b':')
            && digits(14..16)
            && b.get(16) == Some(&b':')
            && digits(17..19))
    {
        return false;
    }
    let mut i = 19;
    if b.get(i) == Some(&b'.') {
        i += 1;
        let start = i;
        while b.get(i).is_some_and(u8::is_ascii_digit) {
            i += 1;
        }
        if i == start {
            return false;
        }
    }
    match b.get(i) {
        Some(b'Z') => i + 1 == b.len(),
        Some(b'+' | b'-') => {
            i + 6 == b.len() && digits(i + 1..i + 3) && b[i + 3] == b':' && digits(i + 4..i + 6)
        }
        _ => false,
    }
}

struct Ctx {
    errors: Vec<Violation>,
}

impl Ctx {
    fn err(&mut self, line: usize, rule: &'static str, detail: impl Into<String>) {
        self.errors.push(Violation {
            line,
            rule,
            detail: detail.into(),
        });
    }
}

/// Check one playlist. Returns its [`Summary`] or every violation.
pub fn check(text: &str) -> Result<Summary, Vec<Violation>> {
    let mut cx = Ctx { errors: Vec::new() };
    if text.len() > MAX_PLAYLIST_BYTES {
        cx.err(
            0,
            "size limit",
            format!("{} bytes > {MAX_PLAYLIST_BYTES}", text.len()),
        );
        return Err(cx.errors);
    }
    let summary = check_inner(text, &mut cx);
    if cx.errors.is_empty() {
        Ok(summary)
    } else {
        Err(cx.errors)
    }
}

#[derive(Default)]
struct SegState {
    extinf: Option<(usize, f64)>,
    discontinuity: bool,
    parts: Vec<(usize, CheckedPart)>,
}

#[allow(clippy::too_many_lines)]
fn check_inner(text: &str, cx: &mut Ctx) -> Summary {
    let mut s = Summary {
        version: 1,
        ..Summary::default()
    };
    let lines: Vec<&str> = text
        .split('\n')
        .map(|l| l.strip_suffix('\r').unwrap_or(l))
        .collect();
    if lines.first() != Some(&"#EXTM3U") {
        cx.err(
            1,
            "8216bis §4.4.1.1 first line is #EXTM3U",
            format!("{:?}", lines.first().unwrap_or(&"")),
        );
    }
    if text.starts_with('\u{feff}')
        || text
            .chars()
            .any(|c| c.is_control() && c != '\n' && c != '\r')
    {
        cx.err(0, "8216bis §4.1 no BOM or control characters", "found");
    }
    let mut seen: HashMap<&str, usize> = HashMap::new();
    let mut media_tags = false;
    let mut multivariant_tags = false;
    let mut target: Option<u64> = None;
    let mut part_target: Option<f64> = None;
    let mut server: Option<(usize, HashMap<String, String>)> = None;
    let mut needs_version = 1u32;
    let mut disc_seq = 0u64;
    let mut msn_base: Option<u64> = None;
    let mut cur = SegState::default();
    let mut first_segment_line: Option<usize> = None;
    let mut preload_types: Vec<String> = Vec::new();
    let mut pending_stream_inf: Option<usize> = None;
    let mut saw_disc_tag = false;
    let mut ended_line = None;
    let mut segments_parts_lines: Vec<usize> = Vec::new();

    for (idx, raw) in lines.iter().enumerate().skip(1) {
        let n = idx + 1;
        let line = raw.trim_end();
        if line.is_empty() {
            continue;
        }
        if !line.starts_with('#') {
            // A URI line.
            if let Some(l) = pending_stream_inf.take() {
                let _ = l;
                s.variants.push(line.to_owned());
                continue;
            }
            let Some((_, dur)) = cur.extinf.take() else {
                cx.err(
                    n,
                    "8216bis §4.4.4.1 every segment URI follows an EXTINF",
                    line,
                );
                continue;
            };
            first_segment_line.get_or_insert(n);
            let base = *msn_base.get_or_insert(s.media_sequence + s.skipped);
            let parts: Vec<CheckedPart> = cur.parts.drain(..).map(|(_, p)| p).collect();
            if !parts.is_empty() {
                segments_parts_lines.push(n);
                let sum: f64 = parts.iter().map(|p| p.duration).sum();
                if (sum - dur).abs() > EPS * parts.len() as f64 + 0.002 {
                    cx.err(
                        n,
                        "8216bis §4.4.4.9 parts add up to their parent segment",
                        format!("{sum:.3} vs EXTINF {dur:.3}"),
                    );
                }
            }
            if cur.discontinuity {
                disc_seq += 1;
            }
            cur.discontinuity = false;
            s.segments.push(CheckedSegment {
                msn: base + s.segments.len() as u64,
                discontinuity_sequence: disc_seq,
                uri: line.to_owned(),
                duration: dur,
                parts,
            });
            continue;
        }
        if !line.starts_with("#EXT") {
            continue; // a comment
        }
        let (tag, value) = match line.find(':') {
            Some(i) => (&line[..i], &line[i + 1..]),
            None => (line, ""),
        };
        let count = seen.entry(tag).or_insert(0);
        *count += 1;
        let once = *count == 1;
        let before_segments =
            first_segment_line.is_none() && cur.extinf.is_none() && cur.parts.is_empty();
        match tag {
            "#EXTM3U" => cx.err(n, "8216bis §4.4.1.1 #EXTM3U only on the first line", ""),
            "#EXT-X-VERSION" => {
                if !once {
                    cx.err(n, "8216bis §4.4.1.2 at most one EXT-X-VERSION", "");
                }
                match integer(value).and_then(|v| u32::try_from(v).ok()) {
                    Some(v) => s.version = v,
                    None => cx.err(n, "8216bis §4.4.1.2 EXT-X-VERSION is an integer", value),
                }
            }
            "#EXT-X-INDEPENDENT-SEGMENTS" if !once => {
                cx.err(
                    n,
                    "8216bis §4.4.2.1 at most one EXT-X-INDEPENDENT-SEGMENTS",
                    "",
                );
            }
            "#EXT-X-TARGETDURATION" => {
                media_tags = true;
                if !once {
                    cx.err(
                        n,
                        "8216bis §4.4.3.1 exactly one EXT-X-TARGETDURATION",
                        "repeated",
                    );
                }
                if !before_segments {
                    cx.err(n, "8216bis §4.4.3 playlist tags precede segments", tag);
                }
                match integer(value) {
                    Some(v) => target = Some(v),
                    None => cx.err(
                        n,
                        "8216bis §4.4.3.1 TARGETDURATION is a decimal-integer",
                        value,
                    ),
                }
            }
            "#EXT-X-MEDIA-SEQUENCE" => {
                media_tags = true;
                if !once || !before_segments {
                    cx.err(
                        n,
                        "8216bis §4.4.3.2 one EXT-X-MEDIA-SEQUENCE before the first segment",
                        "",
                    );
                }
                match integer(value) {
                    Some(v) => s.media_sequence = v,
                    None => cx.err(
                        n,
                        "8216bis §4.4.3.2 MEDIA-SEQUENCE is a decimal-integer",
                        value,
                    ),
                }
            }
            "#EXT-X-DISCONTINUITY-SEQUENCE" => {
                media_tags = true;
                if !once || !before_segments || saw_disc_tag {
                    cx.err(n, "8216bis §4.4.3.3 one EXT-X-DISCONTINUITY-SEQUENCE before any segment or EXT-X-DISCONTINUITY", "");
                }
                match integer(value) {
                    Some(v) => disc_seq = v,
                    None => cx.err(
                        n,
                        "8216bis §4.4.3.3 DISCONTINUITY-SEQUENCE is a decimal-integer",
                        value,
                    ),
                }
            }
            "#EXT-X-ENDLIST" => {
                media_tags = true;
                s.ended = true;
                ended_line = Some(n);
                if !once {
                    cx.err(n, "8216bis §4.4.3.4 at most one EXT-X-ENDLIST", "");
                }
            }
            "#EXT-X-PART-INF" => {
                media_tags = true;
                if !once || !before_segments {
                    cx.err(
                        n,
                        "8216bis §4.4.3.7 one EXT-X-PART-INF before the segments",
                        "",
                    );
                }
                match attributes(value).map(|a| a.get("PART-TARGET").and_then(|v| decimal(v))) {
                    Ok(Some(v)) if v > 0.0 => part_target = Some(v),
                    _ => cx.err(
                        n,
                        "8216bis §4.4.3.7 PART-TARGET is a positive decimal",
                        value,
                    ),
                }
            }
            "#EXT-X-SERVER-CONTROL" => {
                media_tags = true;
                if !once || !before_segments {
                    cx.err(
                        n,
                        "8216bis §4.4.3.8 one EXT-X-SERVER-CONTROL before the segments",
                        "",
                    );
                }
                match attributes(value) {
                    Ok(a) => {
                        server = Some((
                            n,
                            a.into_iter()
                                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                                .collect(),
                        ));
                    }
                    Err(e) => cx.err(n, "8216bis §4.2 attribute list", e),
                }
            }
            "#EXT-X-SKIP" => {
                media_tags = true;
                needs_version = needs_version.max(9);
                if !once || first_segment_line.is_some() {
                    cx.err(n, "8216bis §4.4.5.2 one EXT-X-SKIP before the segments", "");
                }
                match attributes(value).map(|a| a.get("SKIPPED-SEGMENTS").and_then(|v| integer(v)))
                {
                    Ok(Some(v)) => s.skipped = v,
                    _ => cx.err(n, "8216bis §4.4.5.2 SKIPPED-SEGMENTS is required", value),
                }
            }
            "#EXTINF" => {
                media_tags = true;
                if let Some((l, _)) = cur.extinf {
                    cx.err(
                        n,
                        "8216bis §4.4.4.1 one EXTINF per segment",
                        format!("previous EXTINF on line {l} has no URI"),
                    );
                }
                let dur = value.split(',').next().unwrap_or("");
                match decimal(dur) {
                    Some(d) => {
                        if dur.contains('.') {
                            needs_version = needs_version.max(3);
                        }
                        if let Some(t) = target {
                            // §4.4.3.1: EXTINF rounded to the nearest integer <= target.
                            if d.round() as u64 > t {
                                cx.err(
                                    n,
                                    "8216bis §4.4.3.1 EXTINF rounded <= TARGETDURATION",
                                    format!("{d} > {t}"),
                                );
                            }
                        }
                        cur.extinf = Some((n, d));
                    }
                    None => cx.err(n, "8216bis §4.4.4.1 EXTINF duration is a decimal", value),
                }
            }
            "#EXT-X-DISCONTINUITY" => {
                media_tags = true;
                saw_disc_tag = true;
                cur.discontinuity = true;
            }
            "#EXT-X-MAP" => {
                media_tags = true;
                needs_version = needs_version.max(6);
                match attributes(value).map(|a| a.get("URI").and_then(|u| unquote(u)).is_some()) {
                    Ok(true) => {}
                    _ => cx.err(n, "8216bis §4.4.4.5 EXT-X-MAP has a quoted URI", value),
                }
            }
            "#EXT-X-PROGRAM-DATE-TIME" => {
                media_tags = true;
                if !valid_date_time(value) {
                    cx.err(
                        n,
                        "8216bis §4.4.4.6 PROGRAM-DATE-TIME is an ISO 8601 date-time",
                        value,
                    );
                }
            }
            "#EXT-X-PART" => {
                media_tags = true;
                match attributes(value) {
                    Ok(a) => {
                        let uri = a.get("URI").and_then(|u| unquote(u));
                        let dur = a.get("DURATION").and_then(|d| decimal(d));
                        let independent = match a.get("INDEPENDENT") {
                            None => false,
                            Some(&"YES") => true,
                            Some(v) => {
                                cx.err(n, "8216bis §4.4.4.9 INDEPENDENT is YES or absent", *v);
                                false
                            }
                        };
                        match (uri, dur) {
                            (Some(u), Some(d)) => {
                                cur.parts.push((
                                    n,
                                    CheckedPart {
                                        uri: u.to_owned(),
                                        duration: d,
                                        independent,
                                    },
                                ));
                            }
                            _ => {
                                cx.err(n, "8216bis §4.4.4.9 EXT-X-PART has URI and DURATION", value)
                            }
                        }
                    }
                    Err(e) => cx.err(n, "8216bis §4.2 attribute list", e),
                }
            }
            "#EXT-X-PRELOAD-HINT" => {
                media_tags = true;
                match attributes(value) {
                    Ok(a) => {
                        let ty = a.get("TYPE").copied().unwrap_or("");
                        if ty != "PART" && ty != "MAP" {
                            cx.err(n, "8216bis §4.4.5.3 PRELOAD-HINT TYPE is PART or MAP", ty);
                        }
                        if preload_types.iter().any(|t| t == ty) {
                            cx.err(n, "8216bis §4.4.5.3 at most one PRELOAD-HINT per TYPE", ty);
                        }
                        preload_types.push(ty.to_owned());
                        match a.get("URI").and_then(|u| unquote(u)) {
                            Some(u) if ty == "PART" => s.preload_hint = Some(u.to_owned()),
                            Some(_) => {}
                            None => {
                                cx.err(n, "8216bis §4.4.5.3 PRELOAD-HINT has a quoted URI", value)
                            }
                        }
                    }
                    Err(e) => cx.err(n, "8216bis §4.2 attribute list", e),
                }
            }
            "#EXT-X-RENDITION-REPORT" => {
                media_tags = true;
                match attributes(value) {
                    Ok(a) if a.get("URI").and_then(|u| unquote(u)).is_some() => {
                        if a.get("LAST-MSN").is_some_and(|v| integer(v).is_none())
                            || a.get("LAST-PART").is_some_and(|v| integer(v).is_none())
                        {
                            cx.err(
                                n,
                                "8216bis §4.4.5.4 LAST-MSN / LAST-PART are integers",
                                value,
                            );
                        }
                    }
                    _ => cx.err(
                        n,
                        "8216bis §4.4.5.4 RENDITION-REPORT has a quoted URI",
                        value,
                    ),
                }
            }
            "#EXT-X-STREAM-INF" => {
                multivariant_tags = true;
                match attributes(value) {
                    Ok(a) => {
                        if a.get("BANDWIDTH").and_then(|v| integer(v)).is_none() {
                            cx.err(
                                n,
                                "8216bis §4.4.6.2 STREAM-INF has an integer BANDWIDTH",
                                value,
                            );
                        }
                        if a.get("AVERAGE-BANDWIDTH")
                            .is_some_and(|v| integer(v).is_none())
                        {
                            cx.err(n, "8216bis §4.4.6.2 AVERAGE-BANDWIDTH is an integer", value);
                        }
                        if a.get("CODECS")
                            .is_some_and(|v| unquote(v).is_none_or(str::is_empty))
                        {
                            cx.err(n, "8216bis §4.4.6.2 CODECS is a quoted list", value);
                        }
                        if let Some(r) = a.get("RESOLUTION") {
                            let ok = r
                                .split_once('x')
                                .is_some_and(|(w, h)| integer(w).is_some() && integer(h).is_some());
                            if !ok {
                                cx.err(n, "8216bis §4.4.6.2 RESOLUTION is WIDTHxHEIGHT", *r);
                            }
                        }
                        if a.get("FRAME-RATE").is_some_and(|v| decimal(v).is_none()) {
                            cx.err(n, "8216bis §4.4.6.2 FRAME-RATE is a decimal", value);
                        }
                    }
                    Err(e) => cx.err(n, "8216bis §4.2 attribute list", e),
                }
                pending_stream_inf = Some(n);
            }
            "#EXT-X-MEDIA"
            | "#EXT-X-I-FRAME-STREAM-INF"
            | "#EXT-X-SESSION-DATA"
            | "#EXT-X-SESSION-KEY" => {
                multivariant_tags = true;
            }
            _ => {}
        }
        if let Some(l) = ended_line {
            if n > l && tag != "#EXT-X-ENDLIST" && tag != "#EXT-X-RENDITION-REPORT" {
                cx.err(
                    n,
                    "8216bis §4.4.3.4 nothing but reports after EXT-X-ENDLIST",
                    tag,
                );
            }
        }
    }
    if let Some(l) = pending_stream_inf {
        cx.err(l, "8216bis §4.4.6.2 STREAM-INF is followed by a URI", "");
    }
    if let Some((l, _)) = cur.extinf {
        cx.err(l, "8216bis §4.4.4.1 EXTINF is followed by a URI", "");
    }
    if media_tags && multivariant_tags {
        cx.err(
            0,
            "8216bis §4.1 a playlist is media or multivariant, not both",
            "",
        );
    }
    if s.version < needs_version {
        cx.err(
            0,
            "8216bis §8 EXT-X-VERSION covers the features used",
            format!("{} < {needs_version}", s.version),
        );
    }
    if multivariant_tags {
        s.kind = Some(Kind::Multivariant);
        if s.variants.is_empty() {
            cx.err(
                0,
                "8216bis §4.4.6.2 a multivariant playlist lists variants",
                "",
            );
        }
        return s;
    }
    s.kind = Some(Kind::Media);
    s.pending_parts = cur.parts.iter().map(|(_, p)| p.clone()).collect();
    let Some(td) = target else {
        cx.err(0, "8216bis §4.4.3.1 EXT-X-TARGETDURATION is required", "");
        return s;
    };
    s.target_duration = td;
    let td = td as f64;
    // LL-HLS rules.
    s.part_target = part_target;
    let has_parts = s.segments.iter().any(|x| !x.parts.is_empty()) || !s.pending_parts.is_empty();
    if has_parts && part_target.is_none() {
        cx.err(0, "8216bis §4.4.3.7 EXT-X-PART requires EXT-X-PART-INF", "");
    }
    if let Some(pt) = part_target {
        let mut all: Vec<(usize, Vec<CheckedPart>, bool)> = s
            .segments
            .iter()
            .zip(&segments_parts_lines_for(&s, &segments_parts_lines))
            .map(|(seg, &l)| (l, seg.parts.clone(), true))
            .collect();
        all.push((0, s.pending_parts.clone(), false));
        for (l, parts, complete) in all {
            for (i, p) in parts.iter().enumerate() {
                if p.duration > pt + EPS {
                    cx.err(
                        l,
                        "8216bis §4.4.4.9 part DURATION <= PART-TARGET",
                        format!("{} {} > {pt}", p.uri, p.duration),
                    );
                }
                let last_of_parent = complete && i + 1 == parts.len();
                if p.duration < 0.85 * pt - EPS && !p.independent && !last_of_parent {
                    cx.err(l, "8216bis §4.4.4.9 part DURATION >= 85% of PART-TARGET (unless independent or last)", format!("{} {}", p.uri, p.duration));
                }
            }
        }
        // Parts are removed once more than three target durations from the end.
        let mut from_end: f64 = s.pending_parts.iter().map(|p| p.duration).sum();
        for seg in s.segments.iter().rev() {
            let start_from_end = from_end + seg.duration;
            if !seg.parts.is_empty() && from_end > 3.0 * td + EPS {
                cx.err(
                    0,
                    "8216bis §4.4.4.9 parts older than 3 target durations are removed",
                    seg.uri.clone(),
                );
            }
            from_end = start_from_end;
        }
        match &server {
            None => cx.err(
                0,
                "8216bis §4.4.3.8 LL-HLS playlists carry EXT-X-SERVER-CONTROL with PART-HOLD-BACK",
                "",
            ),
            Some((l, a)) => match a.get("PART-HOLD-BACK").and_then(|v| decimal(v)) {
                Some(phb) if phb + EPS >= 2.0 * pt => {}
                Some(phb) => cx.err(
                    *l,
                    "8216bis §4.4.3.8 PART-HOLD-BACK >= 2 x PART-TARGET",
                    format!("{phb} < 2 x {pt}"),
                ),
                None => cx.err(
                    *l,
                    "8216bis §4.4.3.8 PART-HOLD-BACK is required with EXT-X-PART-INF",
                    "",
                ),
            },
        }
    }
    if let Some((l, a)) = &server {
        if let Some(hb) = a.get("HOLD-BACK") {
            if decimal(hb).is_none_or(|v| v + EPS < 3.0 * td) {
                cx.err(
                    *l,
                    "8216bis §4.4.3.8 HOLD-BACK >= 3 x TARGETDURATION",
                    hb.clone(),
                );
            }
        }
        if let Some(csu) = a.get("CAN-SKIP-UNTIL") {
            if decimal(csu).is_none_or(|v| v + EPS < 6.0 * td) {
                cx.err(
                    *l,
                    "8216bis §4.4.3.8 CAN-SKIP-UNTIL >= 6 x TARGETDURATION",
                    csu.clone(),
                );
            }
        }
        for flag in ["CAN-BLOCK-RELOAD", "CAN-SKIP-DATERANGES"] {
            if a.get(flag).is_some_and(|v| v != "YES") {
                cx.err(*l, "8216bis §4.4.3.8 boolean attributes are YES", flag);
            }
        }
    }
    if s.skipped > 0
        && !server
            .as_ref()
            .is_some_and(|(_, a)| a.contains_key("CAN-SKIP-UNTIL"))
    {
        cx.err(
            0,
            "8216bis §4.4.5.2 EXT-X-SKIP only when the server offers CAN-SKIP-UNTIL",
            "",
        );
    }
    if s.preload_hint.is_some() && s.ended {
        cx.err(
            0,
            "8216bis §4.4.5.3 no PRELOAD-HINT in an ended playlist",
            "",
        );
    }
    s
}

fn segments_parts_lines_for(s: &Summary, lines: &[usize]) -> Vec<usize> {
    let mut it = lines.iter();
    s.segments
        .iter()
        .map(|seg| {
            if seg.parts.is_empty() {
                0
            } else {
                *it.next().unwrap_or(&0)
            }
        })
        .collect()
}

/// Check that `next`, a later reload of the same media playlist as `prev`,
/// is consistent with it (8216bis §6.2.1): the target duration does not
/// change, media sequence numbers never go back, and a segment with the
/// same media sequence number keeps its URI, duration and discontinuity
/// sequence number.
pub fn check_reload(prev: &Summary, next: &Summary) -> Result<(), Vec<Violation>> {
    let mut cx = Ctx { errors: Vec::new() };
    if prev.target_duration != next.target_duration {
        cx.err(
            0,
            "8216bis §6.2.1 EXT-X-TARGETDURATION does not change",
            format!("{} -> {}", prev.target_duration, next.target_duration),
        );
    }
    if next.media_sequence < prev.media_sequence {
        cx.err(
            0,
            "8216bis §6.2.1 MEDIA-SEQUENCE never decreases",
            format!("{} -> {}", prev.media_sequence, next.media_sequence),
        );
    }
    if prev.ended && !next.ended {
        cx.err(0, "8216bis §6.2.1 an ended playlist stays ended", "");
    }
    let prev_last = prev.segments.last().map_or(0, |x| x.msn + 1);
    let next_last = next.segments.last().map_or(0, |x| x.msn + 1);
    if next_last < prev_last {
        cx.err(
            0,
            "8216bis §6.2.1 segments are never removed from the end",
            format!("last msn {prev_last} -> {next_last}"),
        );
    }
    for a in &prev.segments {
        if let Some(b) = next.segments.iter().find(|b| b.msn == a.msn) {
            if a.uri != b.uri
                || (a.duration - b.duration).abs() > EPS
                || a.discontinuity_sequence != b.discontinuity_sequence
            {
                cx.err(
                    0,
                    "8216bis §6.2.1 a segment never changes",
                    format!("msn {}: {a:?} -> {b:?}", a.msn),
                );
            }
        }
    }
    if cx.errors.is_empty() {
        Ok(())
    } else {
        Err(cx.errors)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules(text: &str) -> Vec<&'static str> {
        check(text)
            .err()
            .unwrap_or_default()
            .into_iter()
            .map(|v| v.rule)
            .collect()
    }

    #[test]
    fn accepts_a_plain_live_playlist() {
        let t = "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:2\n#EXT-X-MEDIA-SEQUENCE:7\n#EXTINF:2.000,\na.ts\n#EXTINF:1.5,\nb.ts\n";
        let s = check(t).unwrap();
        assert_eq!(s.segments.len(), 2);
        assert_eq!(s.segments[1].msn, 8);
    }

    #[test]
    fn catches_broken_rules() {
        assert!(rules("#EXT-X-TARGETDURATION:2\n")
            .iter()
            .any(|r| r.contains("§4.4.1.1")));
        assert!(rules("#EXTM3U\n#EXTINF:1,\na.ts\n")
            .iter()
            .any(|r| r.contains("required")));
        assert!(rules("#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXTINF:1,\n")
            .iter()
            .any(|r| r.contains("followed by a URI")));
        assert!(
            rules("#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXTINF:1.5,\na.ts\n")
                .iter()
                .any(|r| r.contains("§8"))
        );
        assert!(rules("#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:2\n#EXT-X-MAP:URI=\"i.mp4\"\n#EXTINF:1.5,\na.m4s\n")
            .iter()
            .any(|r| r.contains("§8")));
        let ll = "#EXTM3U\n#EXT-X-VERSION:6\n#EXT-X-TARGETDURATION:2\n#EXT-X-SERVER-CONTROL:PART-HOLD-BACK=0.3\n#EXT-X-PART-INF:PART-TARGET=0.2\n#EXT-X-PART:DURATION=0.25,URI=\"p\"\n";
        let r = rules(ll);
        assert!(r.iter().any(|r| r.contains("PART-HOLD-BACK >= 2")), "{r:?}");
        assert!(r.iter().any(|r| r.contains("<= PART-TARGET")), "{r:?}");
        let short = "#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXT-X-SERVER-CONTROL:PART-HOLD-BACK=0.6\n#EXT-X-PART-INF:PART-TARGET=0.2\n#EXT-X-PART:DURATION=0.1,URI=\"p\"\n";
        assert!(rules(short).iter().any(|r| r.contains("85%")));
        let skip = "#EXTM3U\n#EXT-X-VERSION:9\n#EXT-X-TARGETDURATION:2\n#EXT-X-SKIP:SKIPPED-SEGMENTS=3\n#EXTINF:2,\na\n";
        assert!(rules(skip).iter().any(|r| r.contains("CAN-SKIP-UNTIL")));
        let both = "#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXT-X-STREAM-INF:BANDWIDTH=1\nx.m3u8\n";
        assert!(rules(both).iter().any(|r| r.contains("not both")));
    }

    #[test]
    fn attribute_lists() {
        let a = attributes("A=1,B=\"x,y\",C=0x1F").unwrap();
        assert_eq!(a["B"], "\"x,y\"");
        assert!(attributes("A=1,").is_err());
        assert!(attributes("a=1").is_err());
        assert!(attributes("A=\"x").is_err());
        assert!(attributes("A=1,A=2").is_err());
    }

    #[test]
    fn reload_consistency() {
        let a = check("#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXT-X-MEDIA-SEQUENCE:1\n#EXTINF:2,\na\n#EXTINF:2,\nb\n").unwrap();
        let b = check("#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXT-X-MEDIA-SEQUENCE:2\n#EXTINF:2,\nb\n#EXTINF:2,\nc\n").unwrap();
        check_reload(&a, &b).unwrap();
        let c = check("#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXT-X-MEDIA-SEQUENCE:2\n#EXTINF:1,\nb\n")
            .unwrap();
        assert!(check_reload(&a, &c).is_err());
    }

    #[test]
    fn date_times() {
        assert!(valid_date_time("2023-11-14T22:13:20.123Z"));
        assert!(valid_date_time("2023-11-14T22:13:20+01:00"));
        assert!(!valid_date_time("2023-11-14 22:13:20Z"));
        assert!(!valid_date_time("2023-11-14T22:13:20."));
    }
}
