//! The sans-IO core of a recording: [`SegmentWriter`] takes frames and
//! returns [`WriterAction`]s (bytes to append to a key, segments closed,
//! recordings started); the driver in the `recorder` module does the I/O.
//!
//! Cuts come from the shared [`SegmentClock`] (keyframe boundaries, target
//! duration, byte bound, discontinuities), so a recording and the HLS
//! packager split a stream the same way.
//!
//! The container is whatever [`Muxer`] the [`MuxerFactory`] makes
//! (MPEG-TS by default): the segment extension comes from
//! [`Muxer::format`], and a format with an initialization segment (fMP4)
//! gets it stored as `init.mp4` next to the segments
//! ([`WriterAction::Init`]) and named by every [`SegmentInfo`] that needs it.
//! When the initialization segment changes (a publisher comes back with
//! other codecs) the new one is stored as `init-<seq>.mp4`, `<seq>` being the
//! first segment that uses it.

use arcly_core::frame::{FrameType, MediaFrame, TimeBase};
use arcly_core::segment::{Cut, SegmentClock, SegmentPolicy};
use arcly_core::traits::{ContainerFormat, Muxer, StorageKey};
use arcly_core::Result;
use arcly_mpegts::MpegTsMuxer;
use bytes::Bytes;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use crate::playlist::compact_time;

/// A frame delta larger than this is not used to estimate frame durations.
const MAX_FRAME_DELTA_US: i64 = 10_000_000;

/// The signature of a muxer constructor.
pub type MakeMuxer = dyn Fn() -> Box<dyn Muxer> + Send + Sync;

/// Makes the [`Muxer`] of a recording: one fresh muxer per publisher (its
/// codecs may differ from the previous one's). The recorder only relies on
/// the core's `Muxer` contract, so any format can be plugged in; the default
/// is MPEG-TS ([`MpegTsMuxer`]).
///
/// ```
/// use arcly_core::traits::{ContainerFormat, Muxer};
/// use arcly_mpegts::MpegTsMuxer;
/// use arcly_record::writer::MuxerFactory;
/// let ts = MuxerFactory::new(|| Box::new(MpegTsMuxer::new()));
/// assert_eq!(ts.make().format(), ContainerFormat::MpegTs);
/// assert_eq!(MuxerFactory::default().make().format(), ContainerFormat::MpegTs);
/// ```
#[derive(Clone)]
pub struct MuxerFactory(Arc<MakeMuxer>);

impl MuxerFactory {
    /// A factory calling `make`.
    pub fn new(make: impl Fn() -> Box<dyn Muxer> + Send + Sync + 'static) -> Self {
        Self(Arc::new(make))
    }

    /// A factory from a shared constructor.
    pub fn from_arc(make: Arc<MakeMuxer>) -> Self {
        Self(make)
    }

    /// MPEG-TS ([`MpegTsMuxer`]): the default.
    pub fn mpegts() -> Self {
        Self::new(|| Box::new(MpegTsMuxer::new()))
    }

    /// A new muxer.
    pub fn make(&self) -> Box<dyn Muxer> {
        (self.0)()
    }
}

impl Default for MuxerFactory {
    fn default() -> Self {
        Self::mpegts()
    }
}

impl std::fmt::Debug for MuxerFactory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MuxerFactory")
    }
}

/// Two factories are equal when they share one constructor.
impl PartialEq for MuxerFactory {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}
impl Eq for MuxerFactory {}

/// The name of a recording's first initialization segment (fMP4).
pub const INIT_NAME: &str = "init.mp4";

/// How a [`SegmentWriter`] cuts and buffers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WriterConfig {
    /// Where segments are cut (target duration, optional byte bound).
    pub segment: SegmentPolicy,
    /// Muxed bytes buffered before an [`WriterAction::Append`] is emitted
    /// (a segment's end always emits what is left).
    pub flush_bytes: usize,
    /// Stop (or roll over) once a recording holds this much media.
    pub max_duration: Option<Duration>,
    /// At `max_duration`, start a new recording instead of stopping.
    pub rollover: bool,
    /// The container (default MPEG-TS).
    pub muxer: MuxerFactory,
}

impl Default for WriterConfig {
    fn default() -> Self {
        Self {
            segment: SegmentPolicy::new(Duration::from_secs(6)),
            flush_bytes: 1 << 20,
            max_duration: None,
            rollover: false,
            muxer: MuxerFactory::default(),
        }
    }
}

/// A closed segment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SegmentInfo {
    /// The recording's key prefix (`app/stream/<start-time>`).
    pub recording: String,
    /// Sequence number within the recording, from 1.
    pub seq: u64,
    /// The segment's key (`<recording>/<seq:06>.<ext>`, the extension of
    /// the muxer's format: `ts`, `m4s`, `flv`).
    pub key: StorageKey,
    /// The initialization segment it needs, relative to the recording
    /// (`init.mp4`), for formats that have one.
    pub init: Option<String>,
    /// Media duration.
    pub duration: Duration,
    /// Bytes appended for it.
    pub bytes: u64,
    /// Media frames in it.
    pub frames: u64,
    /// It follows a discontinuity (publisher restart, timestamp jump, drop).
    pub discontinuity: bool,
    /// Wall-clock time its first frame was written.
    pub started_at: SystemTime,
}

/// What the driver must do, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WriterAction {
    /// A new recording begins under `prefix` (`app/stream/<start-time>`).
    RecordingStarted {
        /// The recording's key prefix.
        prefix: String,
    },
    /// Store the initialization segment `data` as the whole object `key`
    /// before anything of `segment` (which needs it) is appended.
    Init {
        /// `<recording>/init.mp4` (or `init-<seq>.mp4` after a change).
        key: StorageKey,
        /// `ftyp` + `moov`.
        data: Bytes,
        /// The segment that follows.
        segment: StorageKey,
    },
    /// Append `data` to the segment object `key`.
    Append {
        /// The segment's key.
        key: StorageKey,
        /// Muxed bytes.
        data: Bytes,
    },
    /// A segment is complete (everything for it was emitted before).
    SegmentClosed(SegmentInfo),
    /// `max_duration` was reached and rollover is off: the writer ignores
    /// further frames.
    LimitReached,
}

#[derive(Debug)]
struct Open {
    seq: u64,
    key: StorageKey,
    start_us: i64,
    end_us: i64,
    bytes: u64,
    frames: u64,
    discontinuity: bool,
    started_at: SystemTime,
    init: Option<String>,
}

/// Turns a stream's frames into segments under
/// `app/stream/<start-time>/<seq>.<ext>` (MPEG-TS `.ts` by default). Sans-IO:
/// see the [module docs](self).
///
/// ```
/// use arcly_core::testing::SyntheticStream;
/// use arcly_record::writer::{SegmentWriter, WriterAction, WriterConfig};
/// use std::time::SystemTime;
/// let mut w = SegmentWriter::new("live/cam", WriterConfig::default());
/// let mut actions = Vec::new();
/// // Synthetic payloads are not real H.264, so feed audio only here.
/// for f in SyntheticStream::new(25).filter(|f| f.is_audio()).take(400) {
///     w.push(&f, SystemTime::now(), &mut actions).unwrap();
/// }
/// w.finish(&mut actions).unwrap();
/// let closed = actions.iter().filter(|a| matches!(a, WriterAction::SegmentClosed(_))).count();
/// assert_eq!(closed, 3); // 16 s of audio in 6 s segments
/// ```
pub struct SegmentWriter {
    cfg: WriterConfig,
    base: String,
    clock: SegmentClock,
    mux: Box<dyn Muxer>,
    format: ContainerFormat,
    /// The initialization segment stored for the current recording, and its
    /// name there.
    init: Option<(Bytes, String)>,
    /// The initialization segment changed under an open segment: cut at the
    /// next random-access point.
    init_changed: bool,
    recording: Option<String>,
    next_seq: u64,
    open: Option<Open>,
    unflushed: usize,
    recording_elapsed: Duration,
    pending_discontinuity: bool,
    stopped: bool,
    last_dts: [Option<i64>; 2],
    last_delta: [i64; 2],
    frames_written: u64,
    frames_skipped: u64,
}

impl std::fmt::Debug for SegmentWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SegmentWriter")
            .field("base", &self.base)
            .field("format", &self.format)
            .field("recording", &self.recording)
            .field("next_seq", &self.next_seq)
            .field("frames_written", &self.frames_written)
            .finish_non_exhaustive()
    }
}

impl SegmentWriter {
    /// A writer for the stream whose key prefix is `base` (`app/stream`).
    pub fn new(base: impl Into<String>, cfg: WriterConfig) -> Self {
        let mux = cfg.muxer.make();
        Self {
            clock: SegmentClock::new(cfg.segment.clone()),
            format: mux.format(),
            mux,
            init: None,
            init_changed: false,
            cfg,
            base: base.into(),
            recording: None,
            next_seq: 1,
            open: None,
            unflushed: 0,
            recording_elapsed: Duration::ZERO,
            pending_discontinuity: false,
            stopped: false,
            last_dts: [None; 2],
            last_delta: [0; 2],
            frames_written: 0,
            frames_skipped: 0,
        }
    }

    /// Media frames muxed so far.
    pub fn frames_written(&self) -> u64 {
        self.frames_written
    }

    /// Media frames not written because no segment could start yet (before
    /// the first random-access point) or the writer had stopped.
    pub fn frames_skipped(&self) -> u64 {
        self.frames_skipped
    }

    /// The container format written.
    pub fn format(&self) -> ContainerFormat {
        self.format
    }

    /// Whether `max_duration` stopped the writer.
    pub fn is_stopped(&self) -> bool {
        self.stopped
    }

    /// The current recording's key prefix, once one has started.
    pub fn recording(&self) -> Option<&str> {
        self.recording.as_deref()
    }

    /// Frames were lost before the next one (a queue overflow upstream): the
    /// next segment starts at a random-access point, marked discontinuous.
    pub fn gap(&mut self) {
        self.clock.on_frame(&MediaFrame::end_of_stream());
        self.pending_discontinuity = true;
    }

    /// Feed one frame, received at wall-clock `now`.
    pub fn push(
        &mut self,
        frame: &MediaFrame,
        now: SystemTime,
        out: &mut Vec<WriterAction>,
    ) -> Result<()> {
        if self.stopped {
            if !frame.is_config() && !frame.is_end_of_stream() {
                self.frames_skipped += 1;
            }
            return Ok(());
        }
        if frame.is_sequence_end() {
            // A codec's end of sequence: the encoder restarts its stream at
            // the next configuration and keyframe; the recording goes on.
            return Ok(());
        }
        if frame.is_end_of_stream() {
            // The publisher left: everything it sent is closed out now; the
            // next publisher continues after a discontinuity, with a fresh
            // muxer (its codecs may differ) and clock.
            self.close(None, out)?;
            self.pending_discontinuity = true;
            self.clock = SegmentClock::new(self.cfg.segment.clone());
            self.mux = self.cfg.muxer.make();
            self.format = self.mux.format();
            self.last_dts = [None; 2];
            return Ok(());
        }
        if frame.is_config() {
            self.mux.write_frame(frame)?;
            if self.open.is_some() {
                if let Some((cur, _)) = &self.init {
                    if self.mux.init_segment()?.as_ref() != Some(cur) {
                        // The open segment's fragments need the old
                        // initialization segment: start a new one (after a
                        // discontinuity) at the next random-access point.
                        self.init_changed = true;
                        self.clock.on_frame(&MediaFrame::end_of_stream());
                    }
                }
            }
            return Ok(());
        }
        if frame.frame_type == FrameType::Data {
            return Ok(());
        }
        let d = self.clock.on_frame(frame);
        let dts = frame.dts_in(TimeBase::MICROS);
        if d.cut == Cut::Segment {
            let discontinuity = d.discontinuity || self.pending_discontinuity || self.init_changed;
            self.init_changed = false;
            self.close((!discontinuity).then_some(dts), out)?;
            if let Some(max) = self.cfg.max_duration {
                if self.recording_elapsed >= max {
                    if self.cfg.rollover {
                        self.recording = None;
                    } else {
                        self.stopped = true;
                        self.frames_skipped += 1;
                        out.push(WriterAction::LimitReached);
                        return Ok(());
                    }
                }
            }
            let prefix = match &self.recording {
                Some(p) => p.clone(),
                None => {
                    let p = format!("{}/{}", self.base, compact_time(now));
                    self.recording = Some(p.clone());
                    self.init = None;
                    self.next_seq = 1;
                    self.recording_elapsed = Duration::ZERO;
                    out.push(WriterAction::RecordingStarted { prefix: p.clone() });
                    p
                }
            };
            let seq = self.next_seq;
            self.next_seq += 1;
            let key = StorageKey::new(format!("{prefix}/{seq:06}.{}", self.format.extension()))?;
            self.mux.start_segment()?;
            if let Some(data) = self.mux.init_segment()? {
                if self.init.as_ref().map(|(d, _)| d) != Some(&data) {
                    let name = if self.init.is_none() {
                        INIT_NAME.to_owned()
                    } else {
                        format!("init-{seq:06}.mp4")
                    };
                    out.push(WriterAction::Init {
                        key: StorageKey::new(format!("{prefix}/{name}"))?,
                        data: data.clone(),
                        segment: key.clone(),
                    });
                    self.init = Some((data, name));
                }
            }
            if discontinuity {
                self.mux.discontinuity();
            }
            self.pending_discontinuity = false;
            self.open = Some(Open {
                seq,
                key,
                start_us: dts,
                end_us: dts,
                bytes: 0,
                frames: 0,
                discontinuity,
                started_at: now,
                init: self.init.as_ref().map(|(_, n)| n.clone()),
            });
        }
        let Some(open) = self.open.as_mut() else {
            self.frames_skipped += 1;
            return Ok(());
        };
        self.mux.write_frame(frame)?;
        self.frames_written += 1;
        open.frames += 1;
        let k = usize::from(frame.is_audio());
        if let Some(last) = self.last_dts[k] {
            let delta = dts - last;
            if delta > 0 && delta < MAX_FRAME_DELTA_US {
                self.last_delta[k] = delta;
            }
        }
        self.last_dts[k] = Some(dts);
        open.end_us = open.end_us.max(dts + self.last_delta[k]);
        self.unflushed += frame.payload.len();
        if self.unflushed >= self.cfg.flush_bytes {
            self.flush(out)?;
        }
        Ok(())
    }

    /// Close the segment in progress (graceful stop). The writer may be fed
    /// again afterwards; the next segment is then a new one.
    pub fn finish(&mut self, out: &mut Vec<WriterAction>) -> Result<()> {
        self.close(None, out)
    }

    fn flush(&mut self, out: &mut Vec<WriterAction>) -> Result<()> {
        self.unflushed = 0;
        let data = self.mux.flush()?;
        if let Some(open) = self.open.as_mut() {
            if !data.is_empty() {
                open.bytes += data.len() as u64;
                out.push(WriterAction::Append {
                    key: open.key.clone(),
                    data,
                });
            }
        }
        Ok(())
    }

    /// Close the open segment; it ends at `next_start_us` when the next
    /// segment follows without a discontinuity, else after its last frame.
    fn close(&mut self, next_start_us: Option<i64>, out: &mut Vec<WriterAction>) -> Result<()> {
        if self.open.is_none() {
            return Ok(());
        }
        self.flush(out)?;
        let Some(open) = self.open.take() else {
            return Ok(());
        };
        let end = next_start_us.unwrap_or(open.end_us).max(open.start_us);
        let duration = Duration::from_micros((end - open.start_us) as u64);
        self.recording_elapsed += duration;
        out.push(WriterAction::SegmentClosed(SegmentInfo {
            recording: self.recording.clone().unwrap_or_default(),
            seq: open.seq,
            key: open.key,
            duration,
            bytes: open.bytes,
            frames: open.frames,
            discontinuity: open.discontinuity,
            started_at: open.started_at,
            init: open.init,
        }));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arcly_core::CodecId;

    fn audio(ms: i64) -> MediaFrame {
        MediaFrame::audio(CodecId::Mp3, ms, mp3_frame())
    }

    /// A valid MPEG-1 Layer III header (128 kb/s, 48 kHz) and zero body.
    fn mp3_frame() -> Bytes {
        let mut v = vec![0xFF, 0xFB, 0x94, 0x64];
        v.resize(384, 0);
        Bytes::from(v)
    }

    fn closed(actions: &[WriterAction]) -> Vec<&SegmentInfo> {
        actions
            .iter()
            .filter_map(|a| match a {
                WriterAction::SegmentClosed(s) => Some(s),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn segments_are_named_and_timed() {
        let mut w = SegmentWriter::new("live/cam", WriterConfig::default());
        let mut out = Vec::new();
        let t = SystemTime::UNIX_EPOCH;
        for i in 0..500 {
            w.push(&audio(i * 24), t, &mut out).unwrap();
        }
        w.finish(&mut out).unwrap();
        assert_eq!(
            out[0],
            WriterAction::RecordingStarted {
                prefix: "live/cam/19700101T000000.000Z".into()
            }
        );
        let segs = closed(&out);
        assert_eq!(segs.len(), 2);
        assert_eq!(
            segs[0].key.as_str(),
            "live/cam/19700101T000000.000Z/000001.ts"
        );
        assert_eq!(segs[0].duration, Duration::from_millis(6000));
        assert_eq!(segs[1].duration, Duration::from_millis(12000 - 6000));
        assert_eq!(segs.iter().map(|s| s.frames).sum::<u64>(), 500);
        let appended: u64 = out
            .iter()
            .filter_map(|a| match a {
                WriterAction::Append { data, .. } => Some(data.len() as u64),
                _ => None,
            })
            .sum();
        assert_eq!(appended, segs.iter().map(|s| s.bytes).sum::<u64>());
    }

    #[test]
    fn end_of_stream_closes_and_marks_the_next_segment() {
        let mut w = SegmentWriter::new("live/cam", WriterConfig::default());
        let mut out = Vec::new();
        let t = SystemTime::UNIX_EPOCH;
        for i in 0..10 {
            w.push(&audio(i * 24), t, &mut out).unwrap();
        }
        w.push(&MediaFrame::end_of_stream(), t, &mut out).unwrap();
        assert_eq!(closed(&out).len(), 1);
        for i in 0..10 {
            w.push(&audio(i * 24), t, &mut out).unwrap();
        }
        w.finish(&mut out).unwrap();
        let segs = closed(&out);
        assert_eq!(segs.len(), 2);
        assert!(!segs[0].discontinuity && segs[1].discontinuity);
        assert_eq!(segs[1].seq, 2, "same recording continues");
    }

    #[test]
    fn codecs_mpeg_ts_cannot_carry_are_refused_at_their_first_frame() {
        for codec in [CodecId::Av1, CodecId::Vp9, CodecId::Vvc] {
            let mut w = SegmentWriter::new("a/b", WriterConfig::default());
            let mut out = Vec::new();
            let r = w.push(
                &MediaFrame::config(codec, 0, Bytes::from_static(&[1, 2, 3, 4])),
                SystemTime::UNIX_EPOCH,
                &mut out,
            );
            assert!(
                matches!(r, Err(arcly_core::StreamError::Unsupported(_))),
                "{codec:?}: {r:?}"
            );
            assert!(out.is_empty());
        }
    }

    /// A muxer with an initialization segment that is the last CONFIG
    /// payload, and media bytes as they come.
    #[derive(Default)]
    struct FakeInit {
        config: Option<Bytes>,
        out: Vec<u8>,
    }

    impl Muxer for FakeInit {
        fn format(&self) -> ContainerFormat {
            ContainerFormat::Fmp4
        }
        fn init_segment(&mut self) -> Result<Option<Bytes>> {
            Ok(self.config.clone())
        }
        fn start_segment(&mut self) -> Result<()> {
            Ok(())
        }
        fn write_frame(&mut self, frame: &MediaFrame) -> Result<()> {
            if frame.is_config() {
                self.config = Some(frame.payload.clone());
            } else {
                self.out.extend_from_slice(&frame.payload);
            }
            Ok(())
        }
        fn flush(&mut self) -> Result<Bytes> {
            Ok(Bytes::from(std::mem::take(&mut self.out)))
        }
    }

    #[test]
    fn init_segments_are_stored_once_per_change() {
        let cfg = WriterConfig {
            segment: SegmentPolicy::new(Duration::from_secs(1)),
            muxer: MuxerFactory::new(|| Box::<FakeInit>::default()),
            ..WriterConfig::default()
        };
        let mut w = SegmentWriter::new("a/b", cfg);
        assert_eq!(w.format(), ContainerFormat::Fmp4);
        let mut out = Vec::new();
        let t = SystemTime::UNIX_EPOCH;
        let cfg_a = MediaFrame::config(CodecId::Mp3, 0, Bytes::from_static(b"A"));
        let cfg_b = MediaFrame::config(CodecId::Mp3, 0, Bytes::from_static(b"B"));
        w.push(&cfg_a, t, &mut out).unwrap();
        for i in 0..100 {
            if i == 50 {
                // Repeated, unchanged: nothing new.
                w.push(&cfg_a, t, &mut out).unwrap();
            }
            if i == 70 {
                // Changed mid-segment: a cut (with a discontinuity) follows.
                w.push(&cfg_b, t, &mut out).unwrap();
            }
            w.push(&audio(i * 24), t, &mut out).unwrap();
        }
        w.finish(&mut out).unwrap();
        let inits: Vec<(String, Bytes, String)> = out
            .iter()
            .filter_map(|a| match a {
                WriterAction::Init { key, data, segment } => {
                    Some((key.to_string(), data.clone(), segment.to_string()))
                }
                _ => None,
            })
            .collect();
        let p = "a/b/19700101T000000.000Z";
        assert_eq!(
            inits,
            [
                (
                    format!("{p}/init.mp4"),
                    Bytes::from_static(b"A"),
                    format!("{p}/000001.m4s")
                ),
                (
                    format!("{p}/init-000003.mp4"),
                    Bytes::from_static(b"B"),
                    format!("{p}/000003.m4s")
                ),
            ]
        );
        let segs = closed(&out);
        assert_eq!(segs.len(), 3);
        let maps: Vec<_> = segs.iter().map(|s| s.init.as_deref()).collect();
        assert_eq!(
            maps,
            [Some("init.mp4"), Some("init.mp4"), Some("init-000003.mp4")]
        );
        assert!(segs[2].discontinuity, "cut right after the change");
        assert!(segs[2].key.as_str().ends_with("000003.m4s"));
        // Each Init precedes the first append of its segment.
        let pos = |f: &dyn Fn(&WriterAction) -> bool| out.iter().position(f).unwrap();
        let init3 = pos(
            &|a| matches!(a, WriterAction::Init { key, .. } if key.as_str().ends_with("init-000003.mp4")),
        );
        let app3 = pos(
            &|a| matches!(a, WriterAction::Append { key, .. } if key.as_str().ends_with("000003.m4s")),
        );
        assert!(init3 < app3);
    }

    #[test]
    fn max_duration_stops_or_rolls_over() {
        let mut cfg = WriterConfig {
            segment: SegmentPolicy::new(Duration::from_secs(1)),
            max_duration: Some(Duration::from_secs(2)),
            ..WriterConfig::default()
        };
        let mut w = SegmentWriter::new("a/b", cfg.clone());
        let mut out = Vec::new();
        for i in 0..200 {
            w.push(&audio(i * 24), SystemTime::UNIX_EPOCH, &mut out)
                .unwrap();
        }
        assert!(w.is_stopped());
        assert!(out.contains(&WriterAction::LimitReached));
        assert_eq!(closed(&out).len(), 2);
        cfg.rollover = true;
        let mut w = SegmentWriter::new("a/b", cfg);
        let mut out = Vec::new();
        for i in 0..200 {
            let now = SystemTime::UNIX_EPOCH + Duration::from_millis(i as u64 * 24);
            w.push(&audio(i * 24), now, &mut out).unwrap();
        }
        let started = out
            .iter()
            .filter(|a| matches!(a, WriterAction::RecordingStarted { .. }))
            .count();
        assert_eq!(started, 3);
    }
}
