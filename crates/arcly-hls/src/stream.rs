//! The sans-IO segmenter: [`HlsStream`] takes [`MediaFrame`]s, cuts
//! segments (and LL-HLS parts) through a [`Muxer`], keeps a bounded window
//! in memory and renders playlists. A thin driver (the HTTP layer, a
//! `MediaSink`) owns it behind a lock; blocking playlist reloads wait on
//! [`HlsStream::subscribe`].

use crate::clock::{HlsClock, Step};
use crate::fmp4::Fmp4Muxer;
use crate::playlist::{
    LowLatency, MediaPlaylist, MultivariantPlaylist, PartEntry, SegmentEntry, Variant,
};
use arcly_core::traits::{ContainerFormat, Muxer};
use arcly_core::{CodecId, FrameType, MediaFrame, Result, StreamError, TimeBase};
use bytes::{Bytes, BytesMut};
use std::collections::VecDeque;
use std::time::{Duration, SystemTime};
use tokio::sync::watch;

/// Which segment format to write.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SegmentFormat {
    /// MPEG-TS when every codec is H.264, AAC or MP3; fMP4 otherwise
    /// (H.265, AV1, VP9, Opus).
    Auto,
    /// MPEG-TS (arcly-mpegts).
    MpegTs,
    /// Fragmented MP4 / CMAF.
    Fmp4,
}

/// Packager settings.
#[derive(Clone, Debug)]
pub struct HlsConfig {
    /// Cut at the first keyframe after this much media (default 2 s).
    pub segment_target: Duration,
    /// LL-HLS part target; `None` disables parts (default `None`).
    pub part_target: Option<Duration>,
    /// Segments listed in the live playlist (default 6).
    pub window: usize,
    /// Segments kept in memory after they leave the playlist, for clients
    /// still fetching them, at the least (default 2). Each is kept at least
    /// as long as RFC 8216bis §6.2.2 requires (its duration plus the
    /// longest playlist that listed it), whatever this says; see
    /// [`HlsStream`].
    pub retain: usize,
    /// Segment format (default [`SegmentFormat::Auto`]).
    pub format: SegmentFormat,
    /// Longest first segment before a cut is forced (default 10 s); later
    /// segments are bounded by the target duration it fixes.
    pub max_first_segment: Duration,
    /// Offer delta updates (`CAN-SKIP-UNTIL`) in LL-HLS mode (default true).
    pub delta_updates: bool,
    /// Prefix of every segment, part and init URI (default empty), e.g. a
    /// per-session tag so caches never confuse two sessions' `seg0.ts`.
    pub uri_prefix: String,
}

impl Default for HlsConfig {
    fn default() -> Self {
        Self {
            segment_target: Duration::from_secs(2),
            part_target: None,
            window: 6,
            retain: 2,
            format: SegmentFormat::Auto,
            max_first_segment: Duration::from_secs(10),
            delta_updates: true,
            uri_prefix: String::new(),
        }
    }
}

/// A resource of a stream, by the URI the playlist gives it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Resource {
    /// `init{generation}.mp4`.
    Init(u64),
    /// `seg{msn}.{ext}`.
    Segment(u64),
    /// `part{msn}.{index}.{ext}`.
    Part(u64, u64),
}

/// Where the stream's live edge is: the last complete segment and the
/// parts of the one in progress. Sent on every update.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Position {
    /// Media sequence number of the segment in progress (= count of complete segments ever).
    pub msn: u64,
    /// Complete parts of that segment.
    pub parts: u64,
    /// The stream has ended.
    pub ended: bool,
}

#[derive(Clone, Debug)]
struct Part {
    data: Bytes,
    duration: f64,
    independent: bool,
}

#[derive(Clone, Debug)]
struct Segment {
    msn: u64,
    data: Bytes,
    duration: f64,
    parts: Vec<Part>,
    discontinuity: bool,
    independent: bool,
    init_gen: u64,
    pdt: Option<SystemTime>,
    /// Duration (s) of the longest playlist that listed it (§6.2.2).
    longest_playlist: f64,
    /// [`HlsStream::media_elapsed`] when it left the playlist.
    left_at: Option<f64>,
}

#[derive(Debug)]
struct Current {
    msn: u64,
    start_us: i64,
    parts: Vec<Part>,
    part_start_us: i64,
    part_independent: bool,
    discontinuity: bool,
    independent: bool,
    init_gen: u64,
    pdt: Option<SystemTime>,
}

/// Longest media span held back while waiting for every track's CONFIG.
const PROBE_US: i64 = 1_000_000;
/// Most frames held back while waiting for every track's CONFIG.
const MAX_PROBE_FRAMES: usize = 256;
/// Most CONFIG frames kept before the muxer exists.
const MAX_PENDING_CONFIGS: usize = 16;
/// Most segments kept after they left the playlist, whatever RFC 8216bis
/// §6.2.2 asks: one long segment followed by many tiny ones (keyframes on
/// every frame after a stall) cannot hold an unbounded count in memory.
const MAX_RETAINED: usize = 128;

/// The segmenter state of one rendition. See the [module docs](self).
///
/// # Segments that left the playlist
/// RFC 8216bis §6.2.2: a segment removed from the playlist "MUST remain
/// available to clients for a period of time equal to the duration of the
/// segment plus the duration of the longest Playlist file distributed by
/// the server containing that segment". The segmenter has no clock: it
/// measures that period in media time, the sum of the segments completed
/// since (a live publisher is paced at real time; while nothing is
/// published, nothing is dropped either). It keeps at least
/// [`HlsConfig::retain`] such segments, and at most `MAX_RETAINED` (128).
///
/// ```
/// use arcly_core::{CodecId, FrameFlags, MediaFrame};
/// use arcly_hls::stream::{HlsConfig, HlsStream};
/// use bytes::Bytes;
///
/// let mut hls = HlsStream::new(HlsConfig::default());
/// hls.push(&MediaFrame::config(CodecId::Aac, 0, Bytes::from_static(&[0x11, 0x88])))?;
/// for i in 0..300 {
///     hls.push(&MediaFrame::audio(CodecId::Aac, i * 20, Bytes::from_static(b"\x21\x00")))?;
/// }
/// hls.end();
/// let text = hls.playlist(false).expect("a segment is ready");
/// assert!(text.ends_with("#EXT-X-ENDLIST\n"));
/// arcly_hls::checker::check(&text).unwrap();
/// # Ok::<(), arcly_core::StreamError>(())
/// ```
pub struct HlsStream {
    cfg: HlsConfig,
    muxer: Option<Box<dyn Muxer>>,
    format: ContainerFormat,
    configs: Vec<MediaFrame>,
    pending_configs: Vec<MediaFrame>,
    probing: Vec<MediaFrame>,
    known_tracks: Vec<(FrameType, u8)>,
    codecs: Vec<CodecId>,
    video_driven: bool,
    clock: HlsClock,
    current: Option<Current>,
    segments: VecDeque<Segment>,
    next_msn: u64,
    discontinuity_sequence: u64,
    pending_discontinuity: bool,
    target_duration: Option<u32>,
    inits: VecDeque<(u64, Bytes)>,
    init_gen: u64,
    anchor: Option<(SystemTime, i64)>,
    ended: bool,
    notify: watch::Sender<Position>,
    /// Seconds of media in the segments completed so far: the clock
    /// segments that left the playlist are retained by (§6.2.2).
    media_elapsed: f64,
}

impl std::fmt::Debug for HlsStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HlsStream")
            .field("format", &self.format)
            .field("segments", &self.segments.len())
            .field("next_msn", &self.next_msn)
            .field("ended", &self.ended)
            .finish_non_exhaustive()
    }
}

impl HlsStream {
    /// A packager that picks its muxer by [`HlsConfig::format`] at the
    /// first media frame.
    pub fn new(cfg: HlsConfig) -> Self {
        let (notify, _) = watch::channel(Position::default());
        let clock = HlsClock::new(cfg.segment_target, cfg.part_target, cfg.max_first_segment);
        Self {
            format: ContainerFormat::Fmp4,
            cfg,
            muxer: None,
            configs: Vec::new(),
            pending_configs: Vec::new(),
            probing: Vec::new(),
            known_tracks: Vec::new(),
            codecs: Vec::new(),
            video_driven: false,
            clock,
            current: None,
            segments: VecDeque::new(),
            next_msn: 0,
            discontinuity_sequence: 0,
            pending_discontinuity: false,
            target_duration: None,
            inits: VecDeque::new(),
            init_gen: 0,
            anchor: None,
            ended: false,
            notify,
            media_elapsed: 0.0,
        }
    }

    /// A packager writing through `muxer` (any [`Muxer`], e.g. a custom one).
    pub fn with_muxer(cfg: HlsConfig, muxer: Box<dyn Muxer>) -> Self {
        let mut s = Self::new(cfg);
        s.format = muxer.format();
        s.muxer = Some(muxer);
        s
    }

    /// Fix the wall clock of the first frame (for `EXT-X-PROGRAM-DATE-TIME`);
    /// by default it is `SystemTime::now()` when the first frame arrives.
    pub fn set_wallclock_anchor(&mut self, at_first_frame: SystemTime) {
        self.anchor = Some((at_first_frame, i64::MIN));
    }

    /// The segment format in use.
    pub fn format(&self) -> ContainerFormat {
        self.format
    }

    /// Codecs of the stream's tracks, as configured.
    pub fn codecs(&self) -> &[CodecId] {
        &self.codecs
    }

    /// The live edge; a receiver sees every change (blocking reloads wait on it).
    pub fn subscribe(&self) -> watch::Receiver<Position> {
        self.notify.subscribe()
    }

    /// The current live edge.
    pub fn position(&self) -> Position {
        *self.notify.borrow()
    }

    /// Whether a blocking reload for `_HLS_msn=msn` (and `_HLS_part=part`)
    /// can be answered (8216bis §6.2.5.2): the segment is complete, or the
    /// part of the segment in progress is.
    pub fn is_ready(&self, msn: u64, part: Option<u64>) -> bool {
        let p = self.position();
        p.ended || msn < p.msn || (msn == p.msn && part.is_some_and(|i| i < p.parts))
    }

    /// The `EXT-X-TARGETDURATION`, fixed by the first complete segment.
    pub fn target_duration(&self) -> Option<u32> {
        self.target_duration
    }

    fn ext(&self) -> &'static str {
        self.format.extension()
    }

    /// URI of segment `msn`, relative to the playlist.
    pub fn segment_uri(&self, msn: u64) -> String {
        format!("{}seg{msn}.{}", self.cfg.uri_prefix, self.ext())
    }

    /// URI of part `index` of segment `msn`.
    pub fn part_uri(&self, msn: u64, index: usize) -> String {
        format!("{}part{msn}.{index}.{}", self.cfg.uri_prefix, self.ext())
    }

    /// URI of init segment generation `generation`.
    pub fn init_uri(&self, generation: u64) -> String {
        format!("{}init{generation}.mp4", self.cfg.uri_prefix)
    }

    /// What a URI relative to the playlist names, if it is one of this
    /// stream's resource names (whether or not it is in memory).
    pub fn parse_resource(&self, name: &str) -> Option<Resource> {
        let name = name.strip_prefix(self.cfg.uri_prefix.as_str())?;
        if let Some(g) = name
            .strip_prefix("init")
            .and_then(|r| r.strip_suffix(".mp4"))
        {
            return Some(Resource::Init(g.parse().ok()?));
        }
        let stem = name.strip_suffix(self.ext())?.strip_suffix('.')?;
        if let Some(n) = stem.strip_prefix("seg") {
            return Some(Resource::Segment(n.parse().ok()?));
        }
        let (m, i) = stem.strip_prefix("part")?.split_once('.')?;
        Some(Resource::Part(m.parse().ok()?, i.parse().ok()?))
    }

    /// Bytes of segment `msn`, while it is in memory.
    pub fn segment(&self, msn: u64) -> Option<Bytes> {
        self.segments
            .iter()
            .find(|s| s.msn == msn)
            .map(|s| s.data.clone())
    }

    /// Bytes of part `index` of segment `msn`, while it is in memory.
    pub fn part(&self, msn: u64, index: usize) -> Option<Bytes> {
        if let Some(c) = self.current.as_ref().filter(|c| c.msn == msn) {
            return c.parts.get(index).map(|p| p.data.clone());
        }
        self.segments
            .iter()
            .find(|s| s.msn == msn)
            .and_then(|s| s.parts.get(index))
            .map(|p| p.data.clone())
    }

    /// Bytes of media held in memory: the segments (listed or retained),
    /// the parts of the segment in progress and the init segments. A
    /// buffer shared by a segment and its parts counts once; a part held
    /// apart from its segment counts on its own.
    pub fn held_bytes(&self) -> usize {
        let mut n = 0;
        for s in &self.segments {
            n += s.data.len();
            let start = s.data.as_ptr() as usize;
            let inside = start..start + s.data.len();
            n += s
                .parts
                .iter()
                .filter(|p| !p.data.is_empty() && !inside.contains(&(p.data.as_ptr() as usize)))
                .map(|p| p.data.len())
                .sum::<usize>();
        }
        if let Some(c) = &self.current {
            n += c.parts.iter().map(|p| p.data.len()).sum::<usize>();
        }
        n + self.inits.iter().map(|(_, b)| b.len()).sum::<usize>()
    }

    /// The fMP4 init segment of generation `generation` (`init{generation}.mp4`).
    pub fn init(&self, generation: u64) -> Option<Bytes> {
        self.inits
            .iter()
            .find(|(g, _)| *g == generation)
            .map(|(_, b)| b.clone())
    }

    /// Resolve a URI relative to the playlist (`seg3.ts`, `part3.1.m4s`,
    /// `init1.mp4`) to its bytes and content type.
    pub fn resource(&self, name: &str) -> Option<(Bytes, &'static str)> {
        let ct = self.format.content_type();
        match self.parse_resource(name)? {
            Resource::Init(g) => self.init(g).map(|b| (b, "video/mp4")),
            Resource::Segment(n) => self.segment(n).map(|b| (b, ct)),
            Resource::Part(m, i) => self.part(m, usize::try_from(i).ok()?).map(|b| (b, ct)),
        }
    }

    /// Feed one frame. Frames the format cannot carry are dropped (logged);
    /// errors are only those the caller must act on.
    pub fn push(&mut self, frame: &MediaFrame) -> Result<()> {
        if self.ended {
            return Ok(());
        }
        if frame.is_publisher_end() {
            self.publisher_left();
            return Ok(());
        }
        if frame.is_sequence_end() {
            // The codec restarts at its next configuration and keyframe;
            // the playlist goes on.
            return Ok(());
        }
        if frame.frame_type == FrameType::Data {
            return Ok(());
        }
        if frame.is_config() {
            return self.on_config(frame);
        }
        if self.muxer.is_none() {
            return self.probe(frame);
        }
        self.push_media(frame)
    }

    /// Before the muxer exists, frames wait (bounded) until every track's
    /// configuration is known: an audio CONFIG commonly follows the first
    /// video frames, and a track missing from the first segment would be
    /// missing from the TS program / init segment players probe.
    fn probe(&mut self, frame: &MediaFrame) -> Result<()> {
        self.probing.push(frame.clone());
        let has_video = self.configs.iter().any(MediaFrame::is_video);
        let has_audio = self.configs.iter().any(MediaFrame::is_audio)
            || self.probing.iter().any(|f| f.codec == CodecId::Mp3);
        let span = match (self.probing.first(), self.probing.last()) {
            (Some(a), Some(b)) => b
                .dts_in(TimeBase::MICROS)
                .saturating_sub(a.dts_in(TimeBase::MICROS)),
            _ => 0,
        };
        if (has_video && has_audio) || span >= PROBE_US || self.probing.len() >= MAX_PROBE_FRAMES {
            self.end_probe()?;
        }
        Ok(())
    }

    fn end_probe(&mut self) -> Result<()> {
        let frames = std::mem::take(&mut self.probing);
        let Some(first) = frames.first() else {
            return Ok(());
        };
        self.create_muxer(first);
        for f in &frames {
            self.push_media(f)?;
        }
        Ok(())
    }

    fn push_media(&mut self, frame: &MediaFrame) -> Result<()> {
        match self.clock.decide(frame) {
            Step::Continue => {}
            Step::Part { independent } => {
                let dts_us = frame.dts_in(TimeBase::MICROS);
                self.close_part(dts_us, independent)?;
            }
            Step::Segment {
                end_us,
                independent,
                discontinuity,
            } => {
                if discontinuity {
                    self.mark_discontinuity(end_us);
                } else {
                    self.close_segment(end_us);
                }
                self.open_segment(frame.dts_in(TimeBase::MICROS), independent);
            }
            Step::Break { end_us } => self.mark_discontinuity(end_us),
        }
        if self.current.is_none() {
            return Ok(()); // before the first keyframe, or after a break
        }
        if !self.known_tracks.contains(&(frame.frame_type, frame.track)) {
            return Ok(()); // its CONFIG waits for the next segment
        }
        if let Some(m) = self.muxer.as_mut() {
            if let Err(e) = m.write_frame(frame) {
                match e {
                    StreamError::LimitExceeded(_) => return Err(e),
                    other => {
                        tracing::debug!(error = %other, codec = %frame.codec, "hls: frame dropped")
                    }
                }
            }
        }
        Ok(())
    }

    fn on_config(&mut self, frame: &MediaFrame) -> Result<()> {
        let key = (frame.frame_type, frame.track);
        if let Some(m) = self.muxer.as_mut() {
            if self.known_tracks.contains(&key) && self.current.is_none() {
                // Between segments (a new publisher): applies to the next one.
                m.write_frame(frame)?;
                self.configs.retain(|c| (c.frame_type, c.track) != key);
                self.configs.push(frame.clone());
                return Ok(());
            }
            if self.configs.iter().any(|c| {
                c.frame_type == frame.frame_type
                    && c.track == frame.track
                    && c.payload == frame.payload
            }) {
                return Ok(());
            }
            // Applied at the next segment boundary so every segment matches its init segment.
            self.pending_configs
                .retain(|c| (c.frame_type, c.track) != key);
            if self.pending_configs.len() < MAX_PENDING_CONFIGS {
                self.pending_configs.push(frame.clone());
            }
            return Ok(());
        }
        self.configs.retain(|c| (c.frame_type, c.track) != key);
        if self.configs.len() >= MAX_PENDING_CONFIGS {
            return Err(StreamError::LimitExceeded(
                "too many tracks configured".into(),
            ));
        }
        self.configs.push(frame.clone());
        Ok(())
    }

    fn create_muxer(&mut self, first: &MediaFrame) {
        self.video_driven = first.is_video() || self.configs.iter().any(|c| c.is_video());
        self.clock.set_video_driven(self.video_driven);
        let codecs: Vec<CodecId> = self
            .configs
            .iter()
            .map(|c| c.codec)
            .chain([first.codec])
            .collect();
        let ts_ok = codecs
            .iter()
            .all(|c| matches!(c, CodecId::H264 | CodecId::Aac | CodecId::Mp3));
        let fmt = match self.cfg.format {
            SegmentFormat::MpegTs => ContainerFormat::MpegTs,
            SegmentFormat::Fmp4 => ContainerFormat::Fmp4,
            SegmentFormat::Auto if ts_ok => ContainerFormat::MpegTs,
            SegmentFormat::Auto => ContainerFormat::Fmp4,
        };
        self.format = fmt;
        let mut m: Box<dyn Muxer> = if fmt == ContainerFormat::MpegTs {
            Box::new(arcly_mpegts::MpegTsMuxer::new())
        } else {
            Box::new(Fmp4Muxer::new())
        };
        for c in std::mem::take(&mut self.configs) {
            match m.write_frame(&c) {
                Ok(()) => {
                    self.known_tracks.push((c.frame_type, c.track));
                    self.codecs.push(c.codec);
                    self.configs.push(c);
                }
                Err(e) => tracing::debug!(error = %e, "hls: track not packaged"),
            }
        }
        if first.codec == CodecId::Mp3
            && !self.known_tracks.contains(&(first.frame_type, first.track))
        {
            self.known_tracks.push((first.frame_type, first.track));
            self.codecs.push(first.codec);
        }
        self.muxer = Some(m);
    }

    /// The publisher went away: the segment in progress ends after its
    /// last frame and the next publisher's first segment is marked
    /// `EXT-X-DISCONTINUITY`. The playlist stays live (no `EXT-X-ENDLIST`)
    /// until [`HlsStream::end`].
    pub fn publisher_left(&mut self) {
        if self.ended {
            return;
        }
        if let Err(e) = self.end_probe() {
            tracing::debug!(error = %e, "hls: probed frames dropped");
        }
        if let Some(end_us) = self.clock.publisher_left() {
            self.mark_discontinuity(end_us);
        } else {
            self.pending_discontinuity |= !self.segments.is_empty();
        }
    }

    /// End the segment in progress at `end_us`; the next one is marked.
    fn mark_discontinuity(&mut self, end_us: i64) {
        if self.current.is_some() || !self.segments.is_empty() {
            self.pending_discontinuity = true;
        }
        self.close_segment(end_us);
        if let Some(m) = self.muxer.as_mut() {
            m.discontinuity();
        }
    }

    fn open_segment(&mut self, dts_us: i64, independent: bool) {
        // Media only flows once a muxer is chosen; without one there is
        // nothing to open (never a panic on what a publisher sends).
        let Some(m) = self.muxer.as_mut() else {
            return;
        };
        for c in std::mem::take(&mut self.pending_configs) {
            if m.write_frame(&c).is_ok() {
                let key = (c.frame_type, c.track);
                if !self.known_tracks.contains(&key) {
                    self.known_tracks.push(key);
                    self.codecs.push(c.codec);
                }
                self.configs.retain(|x| (x.frame_type, x.track) != key);
                self.configs.push(c);
            }
        }
        let _ = m.start_segment();
        if let Ok(Some(init)) = m.init_segment() {
            if self.inits.back().is_none_or(|(_, b)| *b != init) {
                self.init_gen += 1;
                self.inits.push_back((self.init_gen, init));
                if self.inits.len() > 4 {
                    self.inits.pop_front();
                }
            }
        }
        let anchor = match self.anchor {
            Some((_, i64::MIN)) | None => {
                let t = self.anchor.map_or_else(SystemTime::now, |a| a.0);
                self.anchor = Some((t, dts_us));
                (t, dts_us)
            }
            Some(a) => a,
        };
        let pdt = u64::try_from(dts_us.saturating_sub(anchor.1))
            .ok()
            .map(|d| anchor.0 + Duration::from_micros(d));
        self.current = Some(Current {
            msn: self.next_msn,
            start_us: dts_us,
            parts: Vec::new(),
            part_start_us: dts_us,
            part_independent: true,
            discontinuity: std::mem::take(&mut self.pending_discontinuity),
            independent,
            init_gen: self.init_gen,
            pdt,
        });
    }

    fn close_part(&mut self, end_us: i64, next_independent: bool) -> Result<()> {
        let Some(m) = self.muxer.as_mut() else {
            return Ok(());
        };
        let data = m.flush()?;
        let Some(cur) = self.current.as_mut() else {
            return Ok(());
        };
        let duration = (end_us.saturating_sub(cur.part_start_us)) as f64 / 1e6;
        cur.parts.push(Part {
            data,
            duration,
            independent: cur.part_independent,
        });
        cur.part_start_us = end_us;
        cur.part_independent = next_independent;
        let pos = Position {
            msn: cur.msn,
            parts: cur.parts.len() as u64,
            ended: false,
        };
        self.notify.send_replace(pos);
        Ok(())
    }

    fn close_segment(&mut self, end_us: i64) {
        if self.current.is_none() {
            return;
        }
        let Some(mut cur) = self.current.take() else {
            return;
        };
        let tail = self
            .muxer
            .as_mut()
            .and_then(|m| m.flush().ok())
            .unwrap_or_default();
        if !tail.is_empty() || cur.parts.is_empty() {
            let duration = (end_us.saturating_sub(cur.part_start_us)) as f64 / 1e6;
            cur.parts.push(Part {
                data: tail,
                duration,
                independent: cur.part_independent,
            });
        }
        let duration = (end_us.saturating_sub(cur.start_us)) as f64 / 1e6;
        let data = if cur.parts.len() == 1 {
            cur.parts[0].data.clone()
        } else {
            let mut b = BytesMut::with_capacity(cur.parts.iter().map(|p| p.data.len()).sum());
            for p in &cur.parts {
                b.extend_from_slice(&p.data);
            }
            let data = b.freeze();
            // The segment is the concatenation of its parts (RFC 8216bis
            // §4.4.4.9): from now on each part is a view of the segment's
            // buffer, so a complete segment is held once, not twice. The
            // parts' own buffers go once no client holds them any more.
            let mut at = 0;
            for p in &mut cur.parts {
                let end = at + p.data.len();
                p.data = data.slice(at..end);
                at = end;
            }
            data
        };
        if self.target_duration.is_none() {
            let target = self.cfg.segment_target.as_secs_f64().ceil();
            let td = target.max(duration.round()).max(1.0) as u32;
            self.target_duration = Some(td);
            // Never exceed the target duration after rounding (8216bis §4.4.3.1).
            self.clock.set_max(i64::from(td) * 1_000_000 + 499_000);
        }
        if cur.discontinuity {
            // Counted when the segment that carried the tag leaves the window.
        }
        let parts = if self.cfg.part_target.is_some() {
            cur.parts
        } else {
            Vec::new()
        };
        // The playlist served until now listed the window and, with parts,
        // the parts of the segment closing now (at most all of it).
        let parts_listed = if self.cfg.part_target.is_some() {
            duration
        } else {
            0.0
        };
        self.note_listed(parts_listed);
        self.segments.push_back(Segment {
            msn: cur.msn,
            data,
            duration,
            parts,
            discontinuity: cur.discontinuity,
            independent: cur.independent,
            init_gen: cur.init_gen,
            pdt: cur.pdt,
            longest_playlist: 0.0,
            left_at: None,
        });
        self.next_msn = cur.msn + 1;
        self.media_elapsed += duration.max(0.0);
        self.note_listed(0.0);
        self.expire();
        self.notify.send_replace(Position {
            msn: self.next_msn,
            parts: 0,
            ended: false,
        });
    }

    /// Note that the playlist now served (the window, plus `parts` seconds
    /// of parts after it) lists each segment of the window, and which
    /// segment left it.
    fn note_listed(&mut self, parts: f64) {
        let window = self.cfg.window.max(1);
        let first = self.segments.len().saturating_sub(window);
        let total = parts
            + self
                .segments
                .range(first..)
                .map(|s| s.duration)
                .sum::<f64>();
        for s in self.segments.range_mut(first..) {
            s.longest_playlist = s.longest_playlist.max(total);
        }
        let now = self.media_elapsed;
        for s in self.segments.range_mut(..first) {
            s.left_at.get_or_insert(now);
        }
    }

    /// Drop the segments that left the playlist long enough ago
    /// (RFC 8216bis §6.2.2: their duration plus the longest playlist that
    /// listed them), keeping at least [`HlsConfig::retain`] and at most
    /// `MAX_RETAINED` of them.
    fn expire(&mut self) {
        let window = self.cfg.window.max(1);
        loop {
            let retained = self.segments.len().saturating_sub(window);
            let Some(old) = self.segments.front() else {
                break;
            };
            let due = old
                .left_at
                .is_some_and(|t| self.media_elapsed - t >= old.duration + old.longest_playlist);
            if retained == 0 || (retained <= MAX_RETAINED && (retained <= self.cfg.retain || !due))
            {
                break;
            }
            if let Some(old) = self.segments.pop_front() {
                if old.discontinuity {
                    self.discontinuity_sequence += 1;
                }
            }
        }
    }

    /// End the stream: the segment in progress is closed and the playlist
    /// gets `EXT-X-ENDLIST`.
    pub fn end(&mut self) {
        if self.ended {
            return;
        }
        if let Err(e) = self.end_probe() {
            tracing::debug!(error = %e, "hls: probed frames dropped");
        }
        if let Some(end_us) = self.clock.end_of_last_frame() {
            self.close_segment(end_us);
        }
        self.ended = true;
        self.notify.send_replace(Position {
            msn: self.next_msn,
            parts: 0,
            ended: true,
        });
    }

    /// The media playlist model (`None` until the first segment completes
    /// and fixes the target duration).
    pub fn media_playlist(&self) -> Option<MediaPlaylist> {
        let td = self.target_duration?;
        let window = self.cfg.window.max(1);
        let listed: Vec<&Segment> = self
            .segments
            .iter()
            .skip(self.segments.len().saturating_sub(window))
            .collect();
        let first = listed.first()?;
        let mut disc_seq = self.discontinuity_sequence;
        for s in self.segments.iter().take_while(|s| s.msn < first.msn) {
            if s.discontinuity {
                disc_seq += 1;
            }
        }
        let fmp4 = self.format == ContainerFormat::Fmp4;
        let mut p = MediaPlaylist::new(td);
        p.media_sequence = first.msn;
        p.discontinuity_sequence = disc_seq;
        p.independent_segments = listed.iter().all(|s| s.independent);
        p.map_uri = fmp4.then(|| self.init_uri(first.init_gen));
        let mut gen = first.init_gen;
        for s in &listed {
            let mut e = SegmentEntry::new(self.segment_uri(s.msn), s.duration);
            e.discontinuity = s.discontinuity;
            e.program_date_time = s.pdt;
            if fmp4 && s.init_gen != gen {
                e.map_uri = Some(self.init_uri(s.init_gen));
                gen = s.init_gen;
            }
            e.parts = s
                .parts
                .iter()
                .enumerate()
                .map(|(i, x)| PartEntry {
                    uri: self.part_uri(s.msn, i),
                    duration: x.duration,
                    independent: x.independent,
                })
                .collect();
            p.segments.push(e);
        }
        if let Some(pt) = self.cfg.part_target {
            let pt = pt.as_secs_f64();
            p.low_latency = Some(LowLatency {
                part_target: pt,
                part_hold_back: 3.0 * pt,
                can_block_reload: true,
                can_skip_until: self.cfg.delta_updates.then_some(6.0 * f64::from(td)),
            });
            if let Some(cur) = &self.current {
                p.pending_parts = cur
                    .parts
                    .iter()
                    .enumerate()
                    .map(|(i, x)| PartEntry {
                        uri: self.part_uri(cur.msn, i),
                        duration: x.duration,
                        independent: x.independent,
                    })
                    .collect();
                p.preload_hint = Some(self.part_uri(cur.msn, cur.parts.len()));
            }
        }
        p.ended = self.ended;
        Some(p)
    }

    /// This rendition as a multivariant-playlist entry pointing at `uri`:
    /// `CODECS`, `RESOLUTION` and `FRAME-RATE` from the tracks' decoder
    /// configurations (via `arcly_codec::CodecInfo`), `BANDWIDTH` the peak
    /// and `AVERAGE-BANDWIDTH` the mean bit rate of the segments in memory
    /// (RFC 8216bis §4.4.6.2). `None` until a segment is complete.
    pub fn variant(&self, uri: impl Into<String>) -> Option<Variant> {
        if self.segments.is_empty() {
            return None;
        }
        let mut codecs = Vec::new();
        let mut resolution = None;
        let mut frame_rate = None;
        for c in &self.configs {
            let Ok(info) = arcly_codec::CodecInfo::from_config_bytes(c.codec, &c.payload) else {
                continue;
            };
            if !info.codec_string().is_empty() {
                codecs.push(info.codec_string().to_owned());
            }
            if c.is_video() && resolution.is_none() {
                resolution = info.width.zip(info.height);
                frame_rate = info
                    .frame_rate
                    .filter(|(_, d)| *d > 0)
                    .map(|(n, d)| f64::from(n) / f64::from(d));
            }
        }
        if self.codecs.contains(&CodecId::Mp3) {
            // MP3 as Apple's HLS authoring spec names it (as arcly-codec does).
            codecs.push("mp4a.40.34".into());
        }
        let (mut peak, mut bits, mut secs) = (0f64, 0f64, 0f64);
        for s in &self.segments {
            let b = s.data.len() as f64 * 8.0;
            if s.duration > 0.0 {
                peak = peak.max(b / s.duration);
            }
            bits += b;
            secs += s.duration;
        }
        let average = (secs > 0.0).then(|| (bits / secs).ceil() as u64);
        Some(Variant {
            uri: uri.into(),
            bandwidth: (peak.ceil() as u64).max(average.unwrap_or(0)).max(1),
            average_bandwidth: average,
            codecs,
            resolution,
            frame_rate,
        })
    }

    /// A multivariant playlist with this one rendition (the media playlist
    /// at `uri`), ready for more once a transcoder provides them.
    pub fn multivariant(&self, uri: impl Into<String>) -> Option<String> {
        let v = self.variant(uri)?;
        MultivariantPlaylist {
            independent_segments: self.segments.iter().all(|s| s.independent),
            variants: vec![v],
        }
        .render()
        .into()
    }

    /// The media playlist text (`skip`: a delta update, LL-HLS only).
    pub fn playlist(&self, skip: bool) -> Option<String> {
        self.media_playlist().map(|p| p.render(skip))
    }
}
