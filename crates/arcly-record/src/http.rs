//! Recordings over HTTP (feature `http`): [`RecordingsService`], an
//! [`HttpService`] on a [`StorageBackend`] (and, for deletion, the
//! [`Recorder`] whose retention ledger must forget what is deleted).
//!
//! | request | answer |
//! |---|---|
//! | `GET /api/recordings[?app=A&stream=S]` | every recording on storage, per stream (JSON) |
//! | `DELETE /api/recordings/APP/KEY/ID` | delete one finished recording |
//! | `GET /APP/KEY/recordings/index.m3u8?start=T&duration=S` | an HLS VOD playlist of the range |
//! | `GET /APP/KEY/recordings/ID/NAME` | a segment (or init section) that playlist names |
//! | `GET /APP/KEY/recordings/download?start=T&duration=S` | the range as one file |
//!
//! `ID` is a recording's start-time folder (`20240501T120000.123Z`), `T`
//! an RFC 3339 time, `S` seconds (decimal), at most
//! [`RecordingsService::max_range`] ([`MAX_RANGE`] by default).
//!
//! **Who may ask.** `/api` goes through the host's admin rule
//! ([`RecordingsService::admin`]; without one, `/api` is refused). Playback
//! is authorized like any other play: the [`StreamAuthenticator`] with
//! [`AuthAction::Play`], the credential in the query (`?token=…`) or as
//! `Authorization: Bearer …`; a query credential is carried through every
//! URI of the playlist (as `arcly_hls::access` does for live HLS). One
//! decision per address, stream and credential is reused for
//! [`DECISION_TTL`].
//!
//! **What a range is.** Whole segments: every recorded segment that
//! overlaps `[start, start + duration)`, oldest first. Segments start on
//! keyframes, so the first frame played is at most one segment before
//! `start`. Each segment carries `EXT-X-PROGRAM-DATE-TIME` (its wall-clock
//! start); `EXT-X-DISCONTINUITY` separates recordings (and a publisher's
//! return within one). The download concatenates the same segments: MPEG-TS
//! segments make one valid transport stream; fMP4 ones are the
//! initialization section followed by the fragments (a range across a
//! change of initialization is refused: use the playlist).
//!
//! **Names.** Only names the recorder writes are served: `APP`/`KEY` as
//! [`StreamPath`] accepts them, `ID` a start time, `NAME` `<digits>.ts`,
//! `<digits>.m4s`, `init.mp4` or `init-<digits>.mp4`; anything else is a
//! 400 before storage is touched.

use crate::playlist::{compact_time, parse_compact_time, parse_rfc3339, rfc3339};
use crate::{
    DeleteOutcome, PlaylistKind, PlaylistSegment, Recorder, RecordingPlaylist, INDEX_NAME,
};
use arcly_core::auth::{PlayAuthorizer, StreamAuthenticator};
use arcly_core::traits::{StorageBackend, StorageKey};
use arcly_core::StreamPath;
use arcly_http::{full, Body, ChannelBody, Chunks, ConnInfo, HttpService, RequestBody};
use arcly_http::{text, ResponseFuture};
use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::header::{self, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::sync::Arc;
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

/// The longest range played or downloaded by default.
pub const MAX_RANGE: Duration = Duration::from_secs(6 * 3600);
/// Most recordings one request reads (a listing says when it stopped).
pub const MAX_RECORDINGS: usize = 10_000;
/// Longest query or bearer credential looked at.
pub const MAX_QUERY_LEN: usize = 8 * 1024;
/// How long one authorization of an address for a stream and credential
/// is reused (a player's segment requests do not each call the
/// authenticator, which may be a webhook).
pub const DECISION_TTL: Duration = Duration::from_secs(30);
/// Most authorizations remembered.
pub const MAX_DECISIONS: usize = 4096;
/// Bytes of a recording's first MPEG-TS segment read to learn its codecs.
const CODEC_PROBE_BYTES: usize = 256 * 1024;

/// The host's admin rule: `None` lets the request through, `Some` is the
/// response that refuses it.
pub type AdminCheck = dyn Fn(&Request<RequestBody>) -> Option<Response<Body>> + Send + Sync;

/// Recordings listed, deleted, played back and downloaded over HTTP (see
/// the [module docs](self)). Cheap to clone.
#[derive(Clone)]
pub struct RecordingsService {
    storage: Arc<dyn StorageBackend>,
    recorder: Option<Recorder>,
    admin: Option<Arc<AdminCheck>>,
    has_app: Arc<dyn Fn(&str) -> bool + Send + Sync>,
    api: bool,
    max_range: Duration,
    plays: PlayAuthorizer,
    /// Codecs of finished recordings (they do not change), by prefix.
    codecs: Arc<Mutex<HashMap<String, Vec<String>>>>,
}

impl std::fmt::Debug for RecordingsService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RecordingsService")
            .field("api", &self.api)
            .field("max_range", &self.max_range)
            .finish_non_exhaustive()
    }
}

/// What a request asks for.
#[derive(Debug, PartialEq, Eq)]
enum Route<'a> {
    List,
    Delete(&'a str, &'a str, &'a str),
    Playlist(&'a str, &'a str),
    Download(&'a str, &'a str),
    Object(&'a str, &'a str, &'a str, &'a str),
}

fn route<'a>(method: &Method, path: &'a str) -> Option<Route<'a>> {
    let get = matches!(*method, Method::GET | Method::HEAD);
    if path == "/api/recordings" {
        return get.then_some(Route::List);
    }
    if let Some(rest) = path.strip_prefix("/api/recordings/") {
        let mut it = rest.split('/');
        return match (it.next(), it.next(), it.next(), it.next()) {
            (Some(a), Some(k), Some(id), None) if *method == Method::DELETE => {
                Some(Route::Delete(a, k, id))
            }
            _ => None,
        };
    }
    if !get {
        return None;
    }
    let mut it = path.strip_prefix('/')?.split('/');
    let (app, key, rec) = (it.next()?, it.next()?, it.next()?);
    if rec != "recordings" || app == "api" {
        return None;
    }
    match (it.next()?, it.next(), it.next()) {
        ("index.m3u8", None, None) => Some(Route::Playlist(app, key)),
        ("download", None, None) => Some(Route::Download(app, key)),
        (id, Some(name), None) => Some(Route::Object(app, key, id, name)),
        _ => None,
    }
}

/// A recording's id: a start-time folder as the recorder names it.
pub fn is_recording_id(id: &str) -> bool {
    id.len() <= 32
        && id
            .bytes()
            .all(|b| b.is_ascii_digit() || matches!(b, b'T' | b'Z' | b'.'))
        && parse_compact_time(id).is_some()
}

/// An object name the recorder writes in a recording: `<digits>.ts`,
/// `<digits>.m4s`, `init.mp4`, `init-<digits>.mp4`.
pub fn is_object_name(name: &str) -> bool {
    let digits = |s: &str| !s.is_empty() && s.len() <= 12 && s.bytes().all(|b| b.is_ascii_digit());
    if let Some(seq) = name
        .strip_suffix(".ts")
        .or_else(|| name.strip_suffix(".m4s"))
    {
        return digits(seq);
    }
    name == crate::INIT_NAME
        || name
            .strip_prefix("init-")
            .and_then(|s| s.strip_suffix(".mp4"))
            .is_some_and(digits)
}

/// One recording on storage, its segments dated.
struct Rec {
    id: String,
    playlist: RecordingPlaylist,
    /// Wall-clock start of each segment.
    starts: Vec<SystemTime>,
    start: SystemTime,
    end: SystemTime,
}

impl Rec {
    /// Date the segments: the folder's time, then each
    /// `EXT-X-PROGRAM-DATE-TIME`, each segment starting where the one
    /// before ended.
    fn new(id: &str, playlist: RecordingPlaylist) -> Option<Self> {
        let start = parse_compact_time(id)?;
        let mut at = start;
        let mut starts = Vec::with_capacity(playlist.segments.len());
        for s in &playlist.segments {
            if let Some(t) = s.program_date_time.as_deref().and_then(parse_rfc3339) {
                at = t;
            }
            starts.push(at);
            at += s.duration;
        }
        let start = starts.first().copied().unwrap_or(start);
        Some(Self {
            id: id.to_owned(),
            playlist,
            starts,
            start,
            end: at,
        })
    }
}

/// A time range asked for.
#[derive(Debug, Clone, Copy)]
struct Range {
    start: SystemTime,
    end: SystemTime,
}

/// `%XX` decoded (`+` stays `+`: a time zone offset), bounded by the
/// caller's query limit.
fn pct_decode(v: &str) -> Option<String> {
    let b = v.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let h = std::str::from_utf8(b.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(h, 16).ok()?);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

fn query_param(query: Option<&str>, name: &str) -> Option<String> {
    query?.split('&').find_map(|kv| {
        let (k, v) = kv.split_once('=')?;
        (k == name).then(|| pct_decode(v)).flatten()
    })
}

/// The query without the range parameters: what carries the credential.
fn credential_query(query: Option<&str>) -> Option<String> {
    let kept: Vec<&str> = query?
        .split('&')
        .filter(|kv| {
            let k = kv.split('=').next().unwrap_or("");
            !kv.is_empty() && k != "start" && k != "duration" && !k.starts_with("_HLS_")
        })
        .collect();
    (!kept.is_empty()).then(|| kept.join("&"))
}

/// Decimal seconds, to the millisecond, no floats.
fn parse_seconds(v: &str) -> Option<Duration> {
    let (int, frac) = v.split_once('.').unwrap_or((v, ""));
    if int.is_empty() || int.len() > 9 || !int.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    if frac.len() > 9 || !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let mut ms = 0u64;
    for (i, b) in frac.bytes().take(3).enumerate() {
        ms += u64::from(b - b'0') * 10u64.pow(2 - i as u32);
    }
    Some(Duration::from_secs(int.parse().ok()?) + Duration::from_millis(ms))
}

fn json_str(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn secs(d: Duration) -> String {
    format!("{:.3}", d.as_secs_f64())
}

fn json(status: StatusCode, body: String) -> Response<Body> {
    let mut r = Response::new(full(Bytes::from(body)));
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    r
}

fn api_error(status: StatusCode, msg: &str) -> Response<Body> {
    json(status, format!("{{\"error\": {}}}\n", json_str(msg)))
}

fn media_error(status: StatusCode, msg: impl Into<String>) -> Response<Body> {
    let mut r = text(status, msg);
    r.headers_mut().insert(
        header::ACCESS_CONTROL_ALLOW_ORIGIN,
        HeaderValue::from_static("*"),
    );
    r
}

fn content_type(name: &str) -> &'static str {
    if name.ends_with(".ts") {
        "video/mp2t"
    } else {
        "video/mp4"
    }
}

/// The codecs of a recording, from its first segment (MPEG-TS: the PMT) or
/// its initialization section (fMP4: the sample entries).
async fn codecs(storage: &dyn StorageBackend, prefix: &str, rec: &Rec) -> Vec<String> {
    let Some(first) = rec.playlist.segments.first() else {
        return Vec::new();
    };
    if let Some(map) = &first.map {
        let Ok(k) = StorageKey::new(format!("{prefix}/{map}")) else {
            return Vec::new();
        };
        let Ok(init) = storage.get(&k).await else {
            return Vec::new();
        };
        // Sample entry types, found by name in the `stsd` boxes.
        let known: [(&[u8; 4], &str); 10] = [
            (b"avc1", "h264"),
            (b"avc3", "h264"),
            (b"hvc1", "h265"),
            (b"hev1", "h265"),
            (b"av01", "av1"),
            (b"vp09", "vp9"),
            (b"vvc1", "vvc"),
            (b"mp4a", "aac"),
            (b"Opus", "opus"),
            (b".mp3", "mp3"),
        ];
        let mut out: Vec<String> = Vec::new();
        for (fourcc, name) in known {
            if init.windows(4).any(|w| w == fourcc) && !out.iter().any(|o| o == name) {
                out.push(name.to_owned());
            }
        }
        return out;
    }
    let Ok(k) = StorageKey::new(format!("{prefix}/{}", first.uri)) else {
        return Vec::new();
    };
    let Ok(seg) = storage.get(&k).await else {
        return Vec::new();
    };
    let mut demux = arcly_mpegts::TsDemuxer::new();
    let n = seg.len().min(CODEC_PROBE_BYTES) / 188 * 188;
    let _ = demux.push(&seg[..n]);
    let mut out: Vec<String> = Vec::new();
    for (_, codec, _) in demux.streams() {
        let name = codec.name();
        if !out.contains(&name) {
            out.push(name);
        }
    }
    out
}

impl RecordingsService {
    /// Recordings on `storage`, played back under `auth`. Without
    /// [`admin`](Self::admin), `/api` is refused.
    pub fn new(storage: Arc<dyn StorageBackend>, auth: Arc<dyn StreamAuthenticator>) -> Self {
        Self {
            storage,
            plays: PlayAuthorizer::new(auth, DECISION_TTL, MAX_DECISIONS),
            recorder: None,
            admin: None,
            has_app: Arc::new(|_| true),
            api: true,
            max_range: MAX_RANGE,
            codecs: Arc::default(),
        }
    }

    /// The recorder writing to the same storage: recordings in progress are
    /// marked in the listing and not deleted, and a deletion leaves its
    /// retention ledger.
    pub fn recorder(mut self, recorder: Recorder) -> Self {
        self.recorder = Some(recorder);
        self
    }

    /// The host's admin rule for `/api`.
    pub fn admin(
        mut self,
        check: impl Fn(&Request<RequestBody>) -> Option<Response<Body>> + Send + Sync + 'static,
    ) -> Self {
        self.admin = Some(Arc::new(check));
        self
    }

    /// Serve playback only for the applications `has_app` says yes to.
    pub fn apps(mut self, has_app: impl Fn(&str) -> bool + Send + Sync + 'static) -> Self {
        self.has_app = Arc::new(has_app);
        self
    }

    /// Whether `/api/recordings` is served here (`false` when the host
    /// serves its API on another listener).
    pub fn api(mut self, on: bool) -> Self {
        self.api = on;
        self
    }

    /// The longest range played or downloaded.
    pub fn max_range(mut self, d: Duration) -> Self {
        self.max_range = d;
        self
    }

    /// The recordings of `app/stream` on storage, oldest first.
    async fn recordings(&self, app: &str, stream: &str) -> Result<Vec<Rec>, String> {
        let keys = self
            .storage
            .list(&format!("{app}/{stream}/"))
            .await
            .map_err(|e| e.to_string())?;
        let mut out = Vec::new();
        for key in keys {
            let mut it = key.as_str().split('/');
            let (Some(_), Some(_), Some(id), Some(INDEX_NAME), None) =
                (it.next(), it.next(), it.next(), it.next(), it.next())
            else {
                continue;
            };
            if out.len() >= MAX_RECORDINGS || !is_recording_id(id) {
                continue;
            }
            let Ok(text) = self.storage.get(&key).await else {
                continue;
            };
            let Ok(p) = RecordingPlaylist::parse(&text) else {
                continue;
            };
            if let Some(r) = Rec::new(id, p) {
                out.push(r);
            }
        }
        out.sort_by_key(|r| r.start);
        Ok(out)
    }

    fn parse_range(&self, query: Option<&str>) -> Result<Range, String> {
        let (start, end) = parse_range(query, self.max_range)?;
        Ok(Range { start, end })
    }
}

/// The range a playback query asks for (`start=RFC3339&duration=SECONDS`,
/// the duration positive and at most `max`): `(start, end)`, or what is
/// wrong with it.
pub fn parse_range(query: Option<&str>, max: Duration) -> Result<(SystemTime, SystemTime), String> {
    if query.is_some_and(|q| q.len() > MAX_QUERY_LEN) {
        return Err("query too long".into());
    }
    let start = query_param(query, "start")
        .ok_or("start=RFC3339 is required")?
        .trim()
        .to_owned();
    let start = parse_rfc3339(&start).ok_or("start is not an RFC 3339 time")?;
    let d = query_param(query, "duration").ok_or("duration=SECONDS is required")?;
    let d = parse_seconds(d.trim()).ok_or("duration is not a number of seconds")?;
    if d.is_zero() {
        return Err("duration must be positive".into());
    }
    if d > max {
        return Err(format!("duration exceeds the limit of {} s", max.as_secs()));
    }
    let end = start
        .checked_add(d)
        .ok_or_else(|| "the range ends too far in the future".to_owned())?;
    Ok((start, end))
}

impl RecordingsService {
    /// Authorize a play of `path` by the request's credential.
    async fn authorize<B>(
        &self,
        path: &StreamPath,
        req: &Request<B>,
    ) -> Result<(), Response<Body>> {
        let query = credential_query(req.uri().query());
        let bearer = req
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "));
        if query.as_ref().is_some_and(|q| q.len() > MAX_QUERY_LEN)
            || bearer.is_some_and(|b| b.len() > MAX_QUERY_LEN)
        {
            return Err(media_error(StatusCode::URI_TOO_LONG, "credential too long"));
        }
        let peer = ConnInfo::peer_of(req);
        match self
            .plays
            .authorize(path, query.as_deref(), bearer, peer, "recordings")
            .await
        {
            Ok(_) => Ok(()),
            Err(reason) => {
                tracing::warn!(target: "arcly::audit", event = "denied", action = "play", app = path.app.as_str(), stream = path.stream.as_str(), peer = %peer, protocol = "recordings", reason = %reason, "recording play denied");
                Err(media_error(
                    StatusCode::FORBIDDEN,
                    format!("not authorized: {reason}"),
                ))
            }
        }
    }

    /// The segments of `recs` overlapping `range`: (recording, segment index).
    fn select(recs: &[Rec], range: Range) -> Vec<(&Rec, usize)> {
        let mut out = Vec::new();
        for r in recs {
            for (i, s) in r.playlist.segments.iter().enumerate() {
                let st = r.starts[i];
                if st < range.end && st + s.duration > range.start {
                    out.push((r, i));
                }
            }
        }
        out
    }

    async fn list(&self, req: &Request<RequestBody>) -> Response<Body> {
        let q = req.uri().query();
        if q.is_some_and(|q| q.len() > MAX_QUERY_LEN) {
            return api_error(StatusCode::URI_TOO_LONG, "query too long");
        }
        let (want_app, want_stream) = (query_param(q, "app"), query_param(q, "stream"));
        let keys = match self.storage.list("").await {
            Ok(k) => k,
            Err(e) => return api_error(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
        };
        // (app, stream) → ids, from the index objects.
        let mut streams: BTreeMap<(String, String), ()> = BTreeMap::new();
        for key in &keys {
            let mut it = key.as_str().split('/');
            if let (Some(a), Some(s), Some(id), Some(INDEX_NAME), None) =
                (it.next(), it.next(), it.next(), it.next(), it.next())
            {
                if want_app.as_deref().is_some_and(|w| w != a)
                    || want_stream.as_deref().is_some_and(|w| w != s)
                    || !is_recording_id(id)
                {
                    continue;
                }
                streams.insert((a.to_owned(), s.to_owned()), ());
            }
        }
        let mut out = String::from("{\"streams\": [");
        let mut n_recordings = 0;
        let mut truncated = false;
        for (i, (app, stream)) in streams.keys().enumerate() {
            let Ok(path) = StreamPath::parse(app, stream) else {
                continue;
            };
            let recs = self.recordings(app, stream).await.unwrap_or_default();
            let active = self
                .recorder
                .as_ref()
                .and_then(|r| r.recording_prefix(&path));
            if i > 0 {
                out.push(',');
            }
            let _ = write!(
                out,
                "\n  {{\"app\": {}, \"stream\": {}, \"recordings\": [",
                json_str(app),
                json_str(stream)
            );
            for (j, r) in recs.iter().enumerate() {
                if n_recordings >= MAX_RECORDINGS {
                    truncated = true;
                    break;
                }
                n_recordings += 1;
                let prefix = format!("{app}/{stream}/{}", r.id);
                let cached = self
                    .codecs
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .get(&prefix)
                    .cloned();
                let codecs = match cached {
                    Some(c) => c,
                    None => {
                        let c = codecs(self.storage.as_ref(), &prefix, r).await;
                        let mut g = self.codecs.lock().unwrap_or_else(|e| e.into_inner());
                        if r.playlist.ended && !c.is_empty() && g.len() < MAX_RECORDINGS {
                            g.insert(prefix.clone(), c.clone());
                        }
                        c
                    }
                };
                let format = if r.playlist.segments.iter().any(|s| s.map.is_some()) {
                    "fmp4"
                } else {
                    "mpegts"
                };
                if j > 0 {
                    out.push(',');
                }
                let _ = write!(
                    out,
                    "\n    {{\"id\": {}, \"start\": {}, \"end\": {}, \"duration\": {}, \
                     \"bytes\": {}, \"format\": {}, \"codecs\": [{}], \"active\": {}, \
                     \"finished\": {}, \"segments\": [",
                    json_str(&r.id),
                    json_str(&rfc3339(r.start)),
                    json_str(&rfc3339(r.end)),
                    secs(r.playlist.duration()),
                    r.playlist.bytes(),
                    json_str(format),
                    codecs
                        .iter()
                        .map(|c| json_str(c))
                        .collect::<Vec<_>>()
                        .join(", "),
                    active.as_deref() == Some(prefix.as_str()),
                    r.playlist.ended,
                );
                for (k, s) in r.playlist.segments.iter().enumerate() {
                    if k > 0 {
                        out.push(',');
                    }
                    let st = r.starts[k];
                    let _ = write!(
                        out,
                        "\n      {{\"name\": {}, \"start\": {}, \"end\": {}, \"duration\": {}, \
                         \"bytes\": {}, \"discontinuity\": {}}}",
                        json_str(&s.uri),
                        json_str(&rfc3339(st)),
                        json_str(&rfc3339(st + s.duration)),
                        secs(s.duration),
                        s.bytes,
                        s.discontinuity
                    );
                }
                out.push_str("]}");
            }
            out.push_str("]}");
        }
        let _ = writeln!(out, "\n], \"truncated\": {truncated}}}");
        json(StatusCode::OK, out)
    }

    async fn delete(&self, app: &str, stream: &str, id: &str) -> Response<Body> {
        if StreamPath::parse(app, stream).is_err() || !is_recording_id(id) {
            return api_error(
                StatusCode::BAD_REQUEST,
                "not a recording: APP/KEY/ID expected",
            );
        }
        let prefix = format!("{app}/{stream}/{id}");
        let outcome = match &self.recorder {
            Some(r) => r.delete_recording(&prefix).await,
            None => delete_objects(self.storage.as_ref(), &prefix).await,
        };
        if matches!(outcome, Ok(DeleteOutcome::Deleted { .. })) {
            self.codecs
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .remove(&prefix);
        }
        match outcome {
            Ok(DeleteOutcome::Deleted { objects, bytes }) => json(
                StatusCode::OK,
                format!(
                    "{{\"deleted\": {}, \"objects\": {objects}, \"bytes\": {bytes}}}\n",
                    json_str(&prefix)
                ),
            ),
            Ok(DeleteOutcome::InProgress) => api_error(
                StatusCode::CONFLICT,
                "the recording is in progress: stop it first",
            ),
            Ok(_) => api_error(StatusCode::NOT_FOUND, "no such recording"),
            Err(e) => api_error(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
        }
    }

    async fn playlist(&self, path: &StreamPath, req: &Request<RequestBody>) -> Response<Body> {
        let range = match self.parse_range(req.uri().query()) {
            Ok(r) => r,
            Err(e) => return media_error(StatusCode::BAD_REQUEST, e),
        };
        let recs = match self
            .recordings(path.app.as_str(), path.stream.as_str())
            .await
        {
            Ok(r) => r,
            Err(e) => return media_error(StatusCode::INTERNAL_SERVER_ERROR, e),
        };
        let picked = Self::select(&recs, range);
        if picked.is_empty() {
            return media_error(StatusCode::NOT_FOUND, "no recording covers that range");
        }
        let mut p = RecordingPlaylist::default();
        let mut last: Option<&str> = None;
        for (r, i) in picked {
            let s = &r.playlist.segments[i];
            let new_rec = last.is_some_and(|l| l != r.id);
            p.segments.push(PlaylistSegment {
                uri: format!("{}/{}", r.id, s.uri),
                duration: s.duration,
                bytes: s.bytes,
                discontinuity: last.is_some() && (new_rec || s.discontinuity),
                program_date_time: Some(rfc3339(r.starts[i])),
                map: s.map.as_ref().map(|m| format!("{}/{m}", r.id)),
            });
            last = Some(&r.id);
        }
        let mut body = p.render(PlaylistKind::Vod);
        if let Some(q) = credential_query(req.uri().query()) {
            body = arcly_hls::access::carry_query(&body, &q);
        }
        let mut resp = media_error(StatusCode::OK, "");
        *resp.body_mut() = full(Bytes::from(body));
        resp.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/vnd.apple.mpegurl"),
        );
        resp
    }

    async fn object(&self, path: &StreamPath, id: &str, name: &str) -> Response<Body> {
        if !is_recording_id(id) || !is_object_name(name) {
            return media_error(StatusCode::BAD_REQUEST, "not a recorded segment name");
        }
        let Ok(key) = StorageKey::new(format!("{}/{}/{id}/{name}", path.app, path.stream)) else {
            return media_error(StatusCode::BAD_REQUEST, "not a recorded segment name");
        };
        match self.storage.get(&key).await {
            Ok(b) => {
                let mut resp = media_error(StatusCode::OK, "");
                let len = b.len();
                *resp.body_mut() = full(b);
                let h = resp.headers_mut();
                h.insert(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static(content_type(name)),
                );
                h.insert(header::CONTENT_LENGTH, HeaderValue::from(len));
                resp
            }
            Err(_) => media_error(StatusCode::NOT_FOUND, "no such segment"),
        }
    }

    async fn download(&self, path: &StreamPath, req: &Request<RequestBody>) -> Response<Body> {
        let range = match self.parse_range(req.uri().query()) {
            Ok(r) => r,
            Err(e) => return media_error(StatusCode::BAD_REQUEST, e),
        };
        let recs = match self
            .recordings(path.app.as_str(), path.stream.as_str())
            .await
        {
            Ok(r) => r,
            Err(e) => return media_error(StatusCode::INTERNAL_SERVER_ERROR, e),
        };
        let picked = Self::select(&recs, range);
        let Some((first_rec, first_i)) = picked.first() else {
            return media_error(StatusCode::NOT_FOUND, "no recording covers that range");
        };
        let base = format!("{}/{}", path.app, path.stream);
        let key = |id: &str, name: &str| StorageKey::new(format!("{base}/{id}/{name}"));
        let mut keys = Vec::with_capacity(picked.len() + 1);
        let mut sizes = Vec::with_capacity(picked.len() + 1);
        let first_map = first_rec.playlist.segments[*first_i]
            .map
            .as_ref()
            .map(|m| (first_rec.id.as_str(), m.as_str()));
        if let Some((id, map)) = first_map {
            // fMP4: one initialization section, then the fragments.
            let same = picked
                .iter()
                .all(|(r, i)| r.playlist.segments[*i].map.as_deref() == Some(map) && r.id == id);
            if !same {
                return media_error(
                    StatusCode::CONFLICT,
                    "the range spans a change of initialization section: play it through the playlist",
                );
            }
            let Ok(k) = key(id, map) else {
                return media_error(StatusCode::NOT_FOUND, "no initialization section");
            };
            // Its size is not in the index: read it here.
            let Ok(init) = self.storage.get(&k).await else {
                return media_error(StatusCode::NOT_FOUND, "no initialization section");
            };
            sizes.push(init.len() as u64);
            keys.push(k);
        }
        for (r, i) in &picked {
            let s = &r.playlist.segments[*i];
            let Ok(k) = key(&r.id, &s.uri) else {
                return media_error(StatusCode::NOT_FOUND, "no such segment");
            };
            keys.push(k);
            sizes.push(s.bytes);
        }
        let known = sizes.iter().all(|&b| b > 0);
        let total: u64 = sizes.iter().sum();
        let (tx, body) = ChannelBody::new(2);
        let storage = Arc::clone(&self.storage);
        tokio::spawn(async move {
            for (k, want) in keys.into_iter().zip(sizes) {
                let Ok(b) = storage.get(&k).await else {
                    tracing::warn!(key = %k, "download: segment unreadable; response cut");
                    return;
                };
                if known && b.len() as u64 != want {
                    tracing::warn!(key = %k, "download: segment size differs from its index; response cut");
                    return;
                }
                if tx.send(Chunks::from(b)).await.is_err() {
                    return;
                }
            }
        });
        let ext = if first_map.is_some() { "mp4" } else { "ts" };
        let mut resp = Response::new(body.boxed());
        let h = resp.headers_mut();
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static(if first_map.is_some() {
                "video/mp4"
            } else {
                "video/mp2t"
            }),
        );
        if known {
            h.insert(header::CONTENT_LENGTH, HeaderValue::from(total));
        }
        let file = format!(
            "attachment; filename=\"{}-{}-{}.{ext}\"",
            path.app,
            path.stream,
            compact_time(range.start)
        );
        if let Ok(v) = HeaderValue::from_str(&file) {
            h.insert(header::CONTENT_DISPOSITION, v);
        }
        h.insert(
            header::ACCESS_CONTROL_ALLOW_ORIGIN,
            HeaderValue::from_static("*"),
        );
        resp
    }

    async fn respond(&self, req: Request<RequestBody>) -> Response<Body> {
        let path = req.uri().path().to_owned();
        let Some(route) = route(req.method(), &path) else {
            return media_error(StatusCode::NOT_FOUND, "not found");
        };
        if matches!(route, Route::List | Route::Delete(..)) {
            match &self.admin {
                Some(check) => {
                    if let Some(r) = check(&req) {
                        return r;
                    }
                }
                None => return api_error(StatusCode::FORBIDDEN, "no admin rule configured"),
            }
        }
        let stream = |app: &str, key: &str| StreamPath::parse(app, key);
        match route {
            Route::List => self.list(&req).await,
            Route::Delete(a, k, id) => self.delete(a, k, id).await,
            Route::Playlist(a, k) | Route::Download(a, k) | Route::Object(a, k, _, _) => {
                let sp = match stream(a, k) {
                    Ok(p) => p,
                    Err(e) => return media_error(StatusCode::BAD_REQUEST, e.to_string()),
                };
                if let Err(r) = self.authorize(&sp, &req).await {
                    return r;
                }
                match route {
                    Route::Playlist(..) => self.playlist(&sp, &req).await,
                    Route::Download(..) => self.download(&sp, &req).await,
                    Route::Object(_, _, id, name) => self.object(&sp, id, name).await,
                    _ => media_error(StatusCode::NOT_FOUND, "not found"),
                }
            }
        }
    }
}

/// Delete every object under `prefix`, indexes first (no recorder to tell).
async fn delete_objects(
    storage: &dyn StorageBackend,
    prefix: &str,
) -> arcly_core::Result<DeleteOutcome> {
    let keys = storage.list(&format!("{prefix}/")).await?;
    if keys.is_empty() {
        return Ok(DeleteOutcome::NotFound);
    }
    let is_index = |k: &StorageKey| {
        k.as_str()
            .rsplit('/')
            .next()
            .is_some_and(|n| n == INDEX_NAME || n == crate::LIVE_NAME)
    };
    let mut objects = 0;
    for k in keys.iter().filter(|k| is_index(k)) {
        storage.delete(k).await?;
    }
    for k in keys.iter().filter(|k| !is_index(k)) {
        storage.delete(k).await?;
        objects += 1;
    }
    Ok(DeleteOutcome::Deleted { objects, bytes: 0 })
}

impl HttpService for RecordingsService {
    fn name(&self) -> &'static str {
        "recordings"
    }

    fn owns(&self, method: &Method, path: &str) -> bool {
        match route(method, path) {
            Some(Route::List | Route::Delete(..)) => self.api,
            Some(Route::Playlist(a, _) | Route::Download(a, _) | Route::Object(a, ..)) => {
                (self.has_app)(a)
            }
            None => false,
        }
    }

    fn call(&self, req: Request<RequestBody>) -> ResponseFuture {
        let this = self.clone();
        Box::pin(async move { this.respond(req).await })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    proptest::proptest! {
        /// Whatever a client sends, the parsers answer without panicking.
        #[test]
        fn bad_input_never_panics(path in ".{0,80}", query in ".{0,120}") {
            let _ = route(&Method::GET, &path);
            let _ = route(&Method::DELETE, &path);
            let _ = is_recording_id(&path);
            let _ = is_object_name(&path);
            let _ = parse_range(Some(&query), MAX_RANGE);
            let _ = credential_query(Some(&query));
            let _ = pct_decode(&query);
        }
    }

    #[test]
    fn routes() {
        let get = Method::GET;
        assert_eq!(route(&get, "/api/recordings"), Some(Route::List));
        assert_eq!(
            route(
                &Method::DELETE,
                "/api/recordings/live/cam/20240501T120000.123Z"
            ),
            Some(Route::Delete("live", "cam", "20240501T120000.123Z"))
        );
        assert_eq!(route(&get, "/api/recordings/live/cam/x"), None);
        assert_eq!(
            route(&get, "/live/cam/recordings/index.m3u8"),
            Some(Route::Playlist("live", "cam"))
        );
        assert_eq!(
            route(&get, "/live/cam/recordings/download"),
            Some(Route::Download("live", "cam"))
        );
        assert_eq!(
            route(&get, "/live/cam/recordings/ID/000001.ts"),
            Some(Route::Object("live", "cam", "ID", "000001.ts"))
        );
        assert_eq!(route(&get, "/live/cam/index.m3u8"), None);
        assert_eq!(route(&get, "/live/cam/recordings/a/b/c"), None);
        assert_eq!(route(&Method::POST, "/live/cam/recordings/download"), None);
    }

    #[test]
    fn only_names_the_recorder_writes() {
        assert!(is_recording_id("20240501T120000.123Z"));
        for bad in [
            "..",
            "20240501T120000.123",
            "x20240501T120000Z",
            "",
            "2024/05",
        ] {
            assert!(!is_recording_id(bad), "{bad}");
        }
        for good in ["000001.ts", "000002.m4s", "init.mp4", "init-000003.mp4"] {
            assert!(is_object_name(good), "{good}");
        }
        for bad in [
            "..",
            "index.m3u8",
            "live.m3u8",
            "a.ts",
            ".ts",
            "init-.mp4",
            "1.ts/x",
        ] {
            assert!(!is_object_name(bad), "{bad}");
        }
    }

    #[test]
    fn queries() {
        let q = Some("start=2024-05-01T12%3A00%3A00Z&duration=6.5&token=a%2Bb");
        assert_eq!(
            query_param(q, "start").as_deref(),
            Some("2024-05-01T12:00:00Z")
        );
        assert_eq!(parse_seconds("6.5"), Some(Duration::from_millis(6500)));
        assert_eq!(parse_seconds("-1"), None);
        assert_eq!(parse_seconds("1e9"), None);
        assert_eq!(credential_query(q).as_deref(), Some("token=a%2Bb"));
        assert_eq!(credential_query(Some("start=x&duration=1")), None);
        assert_eq!(pct_decode("%zz"), None);
        assert_eq!(pct_decode("%4"), None);
    }

    #[test]
    fn segments_are_dated_and_picked_by_overlap() {
        let text = b"#EXTM3U\n#EXT-X-TARGETDURATION:2\n\
            #EXT-X-PROGRAM-DATE-TIME:2024-05-01T12:00:00.000Z\n#EXTINF:2.0,\n000001.ts\n\
            #EXTINF:2.0,\n000002.ts\n#EXTINF:2.0,\n000003.ts\n#EXT-X-ENDLIST\n";
        let r = Rec::new(
            "20240501T120000.000Z",
            RecordingPlaylist::parse(text).unwrap(),
        )
        .unwrap();
        let t0 = parse_rfc3339("2024-05-01T12:00:00Z").unwrap();
        assert_eq!(r.starts[2], t0 + Duration::from_secs(4));
        assert_eq!(r.end, t0 + Duration::from_secs(6));
        let recs = [r];
        let picked = RecordingsService::select(
            &recs,
            Range {
                start: t0 + Duration::from_millis(2500),
                end: t0 + Duration::from_millis(4000),
            },
        );
        assert_eq!(picked.iter().map(|p| p.1).collect::<Vec<_>>(), [1]);
    }
}
