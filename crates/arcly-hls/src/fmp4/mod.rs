//! Fragmented MP4 / CMAF writer (ISO/IEC 14496-12, ISO/IEC 23000-19).
//!
//! [`Fmp4Muxer`] implements the core [`Muxer`] contract:
//!
//! * CONFIG frames (canonical layout of [`arcly_core::frame`]) define the
//!   tracks. The record is embedded as-is: `avcC`, `hvcC`, `av1C`, the `vpcC`
//!   body, the `AudioSpecificConfig` inside `esds`; for Opus a `dOps` box is
//!   built from the `OpusHead`.
//! * [`Muxer::init_segment`] returns `ftyp` + `moov` (one `trak` per track,
//!   empty sample tables, `mvex`/`trex`).
//! * Media frames are buffered; [`Muxer::flush`] returns one `moof` + `mdat`
//!   fragment holding every buffered sample of every track.
//!
//! # Sample durations
//!
//! A sample's duration is the distance to the next sample's decode time of
//! the same track. For the *last* buffered sample of a track the next one is
//! not known yet at flush time; rather than holding it back (which would
//! delay every LL-HLS part by one frame), the muxer **emits it with the
//! previous sample's duration** (or a codec default for the first sample:
//! 1024 samples for AAC, the TOC duration for Opus, 1/25 s for video).
//! The next fragment's `tfdt` carries the true decode time of its first
//! sample, so an estimate never accumulates into drift.
//!
//! Timestamps are rescaled from the frame's time base to the track
//! timescale (90 kHz for video, the sample rate for audio) from their
//! absolute values, never by summing durations.

mod boxes;
pub(crate) mod codec;

use crate::fmp4::boxes::BoxWriter;
use crate::fmp4::codec::{opus_head, opus_packet_samples, parse_config, vp9_keyframe_size};
use arcly_core::traits::{ContainerFormat, Muxer};
use arcly_core::{CodecId, FrameType, MediaFrame, Result, StreamError, TimeBase};
use bytes::Bytes;

/// Largest fragment (`moof` + `mdat`) the muxer buffers before refusing
/// frames: a caller that never flushes gets an error, not unbounded memory.
pub const MAX_FRAGMENT_BYTES: usize = 64 * 1024 * 1024;
/// Most samples buffered per track between two flushes.
pub const MAX_SAMPLES_PER_FRAGMENT: usize = 16 * 1024;
/// Most tracks in one presentation.
pub const MAX_TRACKS: usize = 16;
/// Largest decoder configuration record accepted.
pub const MAX_CONFIG_BYTES: usize = 64 * 1024;

/// Video timescale: 90 kHz, exact for every common frame rate and for TS.
const VIDEO_TIMESCALE: u32 = 90_000;

/// `sample_flags` (ISO/IEC 14496-12 §8.8.3.1): `sample_depends_on = 2`
/// (an I-picture), `sample_is_non_sync_sample = 0`.
const FLAGS_SYNC: u32 = 0x0200_0000;
/// `sample_depends_on = 1`, `sample_is_non_sync_sample = 1`.
const FLAGS_NON_SYNC: u32 = 0x0101_0000;

#[derive(Clone, Debug)]
struct Sample {
    /// Decode time in the track timescale, after the presentation shift.
    dts: i64,
    /// Composition offset (pts - dts) in the track timescale.
    cto: i32,
    flags: u32,
    /// A discontinuity precedes this sample: the previous one must not
    /// take its duration from this sample's decode time.
    after_gap: bool,
    /// Duration hint from the payload itself (Opus TOC).
    own_duration: Option<u32>,
    data: Bytes,
}

#[derive(Clone, Debug)]
struct Track {
    id: u32,
    kind: FrameType,
    index: u8,
    codec: CodecId,
    timescale: u32,
    config: Bytes,
    width: u16,
    height: u16,
    sample_rate: u32,
    channels: u16,
    samples: Vec<Sample>,
    last_duration: u32,
    last_dts: Option<i64>,
    gap_pending: bool,
}

impl Track {
    fn default_duration(&self) -> u32 {
        match self.codec {
            CodecId::Aac => 1024,
            CodecId::Opus => 960,
            _ if self.kind == FrameType::Video => self.timescale / 25,
            _ => self.timescale / 50,
        }
    }
}

/// A fragmented-MP4 (CMAF) [`Muxer`]. See the [module docs](self).
///
/// ```
/// use arcly_core::traits::Muxer;
/// use arcly_core::{CodecId, FrameFlags, MediaFrame};
/// use arcly_hls::fmp4::Fmp4Muxer;
/// use bytes::Bytes;
///
/// let mut mux = Fmp4Muxer::new();
/// // AudioSpecificConfig: AAC-LC, 48 kHz, mono.
/// mux.write_frame(&MediaFrame::config(CodecId::Aac, 0, Bytes::from_static(&[0x11, 0x88])))?;
/// let init = mux.init_segment()?.expect("configured");
/// assert_eq!(&init[4..8], b"ftyp");
/// mux.write_frame(&MediaFrame::audio(CodecId::Aac, 0, Bytes::from_static(b"\x21\x00")))?;
/// let frag = mux.flush()?;
/// assert_eq!(&frag[4..8], b"moof");
/// # Ok::<(), arcly_core::StreamError>(())
/// ```
#[derive(Debug, Default)]
pub struct Fmp4Muxer {
    tracks: Vec<Track>,
    sequence: u32,
    init: Option<Bytes>,
    init_generation: u64,
    shift: Option<i64>,
    buffered_bytes: usize,
    gap_pending: bool,
}

impl Fmp4Muxer {
    /// An empty muxer; tracks appear with their CONFIG frames.
    pub fn new() -> Self {
        Self::default()
    }

    /// Incremented every time the init segment changes (a track appears or
    /// its configuration changes): a packager starts a new `EXT-X-MAP` then.
    pub fn init_generation(&self) -> u64 {
        self.init_generation
    }

    /// Codecs of the configured tracks, in track order.
    pub fn codecs(&self) -> Vec<CodecId> {
        self.tracks.iter().map(|t| t.codec).collect()
    }

    /// The configured picture size of the first video track, if known.
    pub fn resolution(&self) -> Option<(u16, u16)> {
        self.tracks
            .iter()
            .find(|t| t.kind == FrameType::Video && t.width > 0)
            .map(|t| (t.width, t.height))
    }

    /// Samples waiting for the next [`flush`](Muxer::flush).
    pub fn buffered_samples(&self) -> usize {
        self.tracks.iter().map(|t| t.samples.len()).sum()
    }

    fn track_pos(&self, kind: FrameType, index: u8) -> Option<usize> {
        self.tracks
            .iter()
            .position(|t| t.kind == kind && t.index == index)
    }

    fn configure(&mut self, frame: &MediaFrame) -> Result<()> {
        if !(frame.codec.is_video() || matches!(frame.codec, CodecId::Aac | CodecId::Opus)) {
            return Err(StreamError::Unsupported(format!("{} in fMP4", frame.codec)));
        }
        if frame.codec == CodecId::Vvc {
            return Err(StreamError::Unsupported(
                "vvc in fMP4 (vvcC not written yet)".into(),
            ));
        }
        if frame.payload.len() > MAX_CONFIG_BYTES {
            return Err(StreamError::LimitExceeded(format!(
                "config record of {} bytes > {MAX_CONFIG_BYTES}",
                frame.payload.len()
            )));
        }
        let info = parse_config(frame.codec, &frame.payload).ok_or_else(|| {
            StreamError::protocol(format!("malformed {} configuration record", frame.codec))
        })?;
        if frame.codec == CodecId::Opus {
            // dOps is built from this; refuse now rather than at init time.
            opus_head(&frame.payload).ok_or_else(|| StreamError::protocol("malformed OpusHead"))?;
        }
        let kind = frame.frame_type;
        let timescale = if kind == FrameType::Video {
            VIDEO_TIMESCALE
        } else if frame.codec == CodecId::Opus {
            48_000
        } else {
            info.sample_rate
        };
        let pos = self.track_pos(kind, frame.track);
        if let Some(p) = pos {
            let t = &mut self.tracks[p];
            if t.codec == frame.codec && t.config == frame.payload {
                return Ok(());
            }
            if t.codec != frame.codec || t.timescale != timescale {
                // A different codec on the same track: a new presentation.
                if !t.samples.is_empty() {
                    return Err(StreamError::protocol(
                        "codec change with samples pending; flush first",
                    ));
                }
                t.last_dts = None;
            }
            t.codec = frame.codec;
            t.timescale = timescale;
            t.config = frame.payload.clone();
            if info.width > 0 || kind != FrameType::Video {
                t.width = info.width;
                t.height = info.height;
            }
            t.sample_rate = info.sample_rate;
            t.channels = info.channels;
        } else {
            if self.tracks.len() >= MAX_TRACKS {
                return Err(StreamError::LimitExceeded(format!(
                    "more than {MAX_TRACKS} tracks"
                )));
            }
            let id = u32::try_from(self.tracks.len() + 1).unwrap_or(u32::MAX);
            let mut t = Track {
                id,
                kind,
                index: frame.track,
                codec: frame.codec,
                timescale,
                config: frame.payload.clone(),
                width: info.width,
                height: info.height,
                sample_rate: info.sample_rate,
                channels: info.channels,
                samples: Vec::new(),
                last_duration: 0,
                last_dts: None,
                gap_pending: false,
            };
            t.last_duration = t.default_duration();
            self.tracks.push(t);
        }
        self.init = None;
        self.init_generation += 1;
        Ok(())
    }

    fn add_sample(&mut self, frame: &MediaFrame) -> Result<()> {
        let p = self
            .track_pos(frame.frame_type, frame.track)
            .ok_or_else(|| {
                StreamError::protocol(format!(
                    "{} frame on track {} before its CONFIG frame",
                    frame.codec, frame.track
                ))
            })?;
        if self.tracks[p].codec != frame.codec {
            return Err(StreamError::protocol(
                "frame codec differs from its track's CONFIG",
            ));
        }
        let added = frame.payload.len();
        if self.buffered_bytes.saturating_add(added) > MAX_FRAGMENT_BYTES
            || self.tracks[p].samples.len() >= MAX_SAMPLES_PER_FRAGMENT
        {
            return Err(StreamError::LimitExceeded(
                "fMP4 fragment too large: flush more often".into(),
            ));
        }
        // The presentation shift makes the first decode time non-negative
        // (tfdt is unsigned, §8.8.12) and is shared by all tracks for sync.
        let shift_us = *self
            .shift
            .get_or_insert_with(|| (-frame.dts_in(TimeBase::MICROS)).max(0));
        if self.gap_pending {
            self.gap_pending = false;
            for t in &mut self.tracks {
                t.gap_pending = true;
            }
        }
        let t = &mut self.tracks[p];
        if frame.codec == CodecId::Vp9 && frame.is_keyframe() && t.width == 0 {
            if let Some((w, h)) = vp9_keyframe_size(&frame.payload) {
                t.width = w;
                t.height = h;
                self.init = None;
            }
        }
        let tb = TimeBase::new(1, t.timescale);
        let shift = TimeBase::MICROS.rescale(shift_us, tb);
        let mut dts = frame.dts_in(tb).saturating_add(shift);
        let pts = frame.pts_in(tb).saturating_add(shift);
        // Decode times never go backwards within a track (§8.8.12): clamp.
        if let Some(last) = t.last_dts {
            if dts < last {
                dts = last;
            }
        }
        dts = dts.max(0);
        let cto = i32::try_from(
            pts.saturating_sub(dts)
                .clamp(i64::from(i32::MIN), i64::from(i32::MAX)),
        )
        .unwrap_or(0);
        let flags = if frame.is_keyframe() || frame.frame_type == FrameType::Audio {
            FLAGS_SYNC
        } else {
            FLAGS_NON_SYNC
        };
        let own_duration = if frame.codec == CodecId::Opus {
            opus_packet_samples(&frame.payload)
        } else {
            None
        };
        let after_gap = std::mem::take(&mut t.gap_pending)
            || frame.flags.contains(arcly_core::FrameFlags::DISCONTINUITY);
        t.last_dts = Some(dts);
        t.samples.push(Sample {
            dts,
            cto,
            flags,
            after_gap,
            own_duration,
            data: frame.payload.clone(),
        });
        self.buffered_bytes += added;
        Ok(())
    }

    fn build_init(&self) -> Bytes {
        let mut w = BoxWriter::with_capacity(1024);
        // ftyp (§4.3) with the CMAF brand (ISO/IEC 23000-19 §7.2).
        let b = w.begin(b"ftyp");
        w.bytes(b"iso6");
        w.u32(0);
        for brand in [b"iso6", b"cmfc", b"isom", b"mp41"] {
            w.bytes(brand);
        }
        w.end(b);
        let moov = w.begin(b"moov");
        // mvhd (§8.2.2), version 0, duration 0 (fragmented).
        let b = w.begin_full(b"mvhd", 0, 0);
        w.u32(0);
        w.u32(0);
        w.u32(1000);
        w.u32(0);
        w.u32(0x0001_0000);
        w.u16(0x0100);
        w.zeros(10);
        w.matrix();
        w.zeros(24);
        w.u32(u32::try_from(self.tracks.len() + 1).unwrap_or(u32::MAX));
        w.end(b);
        for t in &self.tracks {
            write_trak(&mut w, t);
        }
        // mvex (§8.8.1) with one trex (§8.8.3) per track.
        let mvex = w.begin(b"mvex");
        for t in &self.tracks {
            let b = w.begin_full(b"trex", 0, 0);
            w.u32(t.id);
            w.u32(1);
            w.u32(0);
            w.u32(0);
            w.u32(0);
            w.end(b);
        }
        w.end(mvex);
        w.end(moov);
        w.buf.freeze()
    }

    fn build_fragment(&mut self) -> Bytes {
        self.sequence = self.sequence.wrapping_add(1);
        let mut w =
            BoxWriter::with_capacity(self.buffered_bytes + 256 + 16 * self.buffered_samples());
        // moof (§8.8.4)
        let moof = w.begin(b"moof");
        let b = w.begin_full(b"mfhd", 0, 0);
        w.u32(self.sequence);
        w.end(b);
        let mut patches: Vec<(usize, usize)> = Vec::new(); // (data_offset field pos, offset in mdat)
        let mut mdat_len = 0usize;
        for t in &mut self.tracks {
            if t.samples.is_empty() {
                continue;
            }
            let durations = durations(t);
            let traf = w.begin(b"traf");
            // tfhd (§8.8.7): default-base-is-moof.
            let b = w.begin_full(b"tfhd", 0, 0x02_0000);
            w.u32(t.id);
            w.end(b);
            // tfdt (§8.8.12), version 1.
            let b = w.begin_full(b"tfdt", 1, 0);
            w.u64(u64::try_from(t.samples[0].dts).unwrap_or(0));
            w.end(b);
            // trun (§8.8.8): data-offset, duration, size, flags and (video)
            // signed composition offsets (version 1).
            let video = t.kind == FrameType::Video;
            let flags = 0x01 | 0x100 | 0x200 | 0x400 | if video { 0x800 } else { 0 };
            let b = w.begin_full(b"trun", u8::from(video), flags);
            w.u32(u32::try_from(t.samples.len()).unwrap_or(u32::MAX));
            patches.push((w.buf.len(), mdat_len));
            w.u32(0);
            for (s, d) in t.samples.iter().zip(&durations) {
                w.u32(*d);
                w.u32(u32::try_from(s.data.len()).unwrap_or(u32::MAX));
                w.u32(s.flags);
                if video {
                    w.u32(s.cto as u32);
                }
                mdat_len += s.data.len();
            }
            w.end(b);
            w.end(traf);
            if let Some(&d) = durations.last() {
                t.last_duration = d;
            }
        }
        w.end(moof);
        let moof_len = w.buf.len();
        for (at, off) in patches {
            let v = moof_len + 8 + off;
            w.patch_u32(at, u32::try_from(v).unwrap_or(u32::MAX));
        }
        // mdat (§8.1.1)
        let b = w.begin(b"mdat");
        for t in &mut self.tracks {
            for s in t.samples.drain(..) {
                w.bytes(&s.data);
            }
        }
        w.end(b);
        self.buffered_bytes = 0;
        w.buf.freeze()
    }
}

/// Per-sample durations: next decode time minus this one; the last sample
/// (and one before a discontinuity or a non-increasing decode time) gets
/// its own payload duration if it has one, else the previous duration.
fn durations(t: &Track) -> Vec<u32> {
    let mut out = Vec::with_capacity(t.samples.len());
    let mut prev = t.last_duration;
    for (i, s) in t.samples.iter().enumerate() {
        let next = t.samples.get(i + 1).filter(|n| !n.after_gap);
        let d = match next.map(|n| n.dts - s.dts) {
            Some(d) if d > 0 => u32::try_from(d).unwrap_or(prev),
            _ => s.own_duration.unwrap_or(prev),
        };
        out.push(d);
        prev = d;
    }
    out
}

fn write_trak(w: &mut BoxWriter, t: &Track) {
    let video = t.kind == FrameType::Video;
    let trak = w.begin(b"trak");
    // tkhd (§8.3.2): enabled | in_movie | in_preview.
    let b = w.begin_full(b"tkhd", 0, 0x7);
    w.u32(0);
    w.u32(0);
    w.u32(t.id);
    w.u32(0);
    w.u32(0);
    w.zeros(8);
    w.u16(0);
    w.u16(0);
    w.u16(if video { 0 } else { 0x0100 });
    w.u16(0);
    w.matrix();
    w.u32(u32::from(t.width) << 16);
    w.u32(u32::from(t.height) << 16);
    w.end(b);
    let mdia = w.begin(b"mdia");
    // mdhd (§8.4.2), language "und".
    let b = w.begin_full(b"mdhd", 0, 0);
    w.u32(0);
    w.u32(0);
    w.u32(t.timescale);
    w.u32(0);
    w.u16(0x55c4);
    w.u16(0);
    w.end(b);
    // hdlr (§8.4.3)
    let b = w.begin_full(b"hdlr", 0, 0);
    w.u32(0);
    w.bytes(if video { b"vide" } else { b"soun" });
    w.zeros(12);
    w.bytes(if video {
        b"VideoHandler\0"
    } else {
        b"SoundHandler\0"
    });
    w.end(b);
    let minf = w.begin(b"minf");
    if video {
        // vmhd (§12.1.2)
        let b = w.begin_full(b"vmhd", 0, 1);
        w.zeros(8);
        w.end(b);
    } else {
        // smhd (§12.2.2)
        let b = w.begin_full(b"smhd", 0, 0);
        w.zeros(4);
        w.end(b);
    }
    // dinf/dref (§8.7.1, §8.7.2) with a self-contained 'url '.
    let dinf = w.begin(b"dinf");
    let dref = w.begin_full(b"dref", 0, 0);
    w.u32(1);
    let b = w.begin_full(b"url ", 0, 1);
    w.end(b);
    w.end(dref);
    w.end(dinf);
    let stbl = w.begin(b"stbl");
    let stsd = w.begin_full(b"stsd", 0, 0);
    w.u32(1);
    write_sample_entry(w, t);
    w.end(stsd);
    // Empty stts (§8.6.1.2), stsc (§8.7.4), stsz (§8.7.3), stco (§8.7.5).
    for fourcc in [b"stts", b"stsc"] {
        let b = w.begin_full(fourcc, 0, 0);
        w.u32(0);
        w.end(b);
    }
    let b = w.begin_full(b"stsz", 0, 0);
    w.u32(0);
    w.u32(0);
    w.end(b);
    let b = w.begin_full(b"stco", 0, 0);
    w.u32(0);
    w.end(b);
    w.end(stbl);
    w.end(minf);
    w.end(mdia);
    w.end(trak);
}

fn write_sample_entry(w: &mut BoxWriter, t: &Track) {
    let entry = w.begin(t.codec.fourcc().as_bytes());
    // SampleEntry (§8.5.2.2): reserved, data_reference_index = 1.
    w.zeros(6);
    w.u16(1);
    if t.kind == FrameType::Video {
        // VisualSampleEntry (§12.1.3.2).
        w.zeros(16);
        w.u16(t.width);
        w.u16(t.height);
        w.u32(0x0048_0000);
        w.u32(0x0048_0000);
        w.u32(0);
        w.u16(1);
        w.zeros(32);
        w.u16(0x0018);
        w.u16(0xffff);
        let (fourcc, full) = match t.codec {
            CodecId::H264 => (b"avcC", false), // ISO/IEC 14496-15 §5.4.2.1
            CodecId::H265 => (b"hvcC", false), // ISO/IEC 14496-15 §8.4.1.1
            CodecId::Av1 => (b"av1C", false),  // AV1-ISOBMFF §2.3
            _ => (b"vpcC", true),              // VP-ISOBMFF §2.2: FullBox version 1
        };
        let b = if full {
            w.begin_full(fourcc, 1, 0)
        } else {
            w.begin(fourcc)
        };
        w.bytes(&t.config);
        w.end(b);
    } else {
        // AudioSampleEntry (§12.2.3.2).
        w.zeros(8);
        w.u16(t.channels.max(1));
        w.u16(16);
        w.u32(0);
        let rate = if t.codec == CodecId::Opus {
            48_000
        } else {
            t.sample_rate
        };
        w.u32(if rate <= 0xffff { rate << 16 } else { 0 });
        if t.codec == CodecId::Opus {
            write_dops(w, &t.config);
        } else {
            write_esds(w, &t.config);
        }
    }
    w.end(entry);
}

/// `dOps` (Opus in ISOBMFF §4.3.2): the OpusHead fields, big-endian.
fn write_dops(w: &mut BoxWriter, opus_head_bytes: &[u8]) {
    let Some(h) = opus_head(opus_head_bytes) else {
        return;
    };
    let b = w.begin(b"dOps");
    w.u8(0);
    w.u8(h.channels);
    w.u16(h.pre_skip);
    w.u32(h.input_rate);
    w.u16(h.gain as u16);
    w.u8(h.mapping_family);
    w.bytes(&h.mapping);
    w.end(b);
}

fn descriptor(w: &mut BoxWriter, tag: u8, len: usize) {
    // expandable size (ISO/IEC 14496-1 §8.3.3), always 4 bytes.
    w.u8(tag);
    let len = u32::try_from(len).unwrap_or(0x0fff_ffff).min(0x0fff_ffff);
    w.u8(0x80 | ((len >> 21) & 0x7f) as u8);
    w.u8(0x80 | ((len >> 14) & 0x7f) as u8);
    w.u8(0x80 | ((len >> 7) & 0x7f) as u8);
    w.u8((len & 0x7f) as u8);
}

/// `esds` (ISO/IEC 14496-14 §5.6) with an ES_Descriptor (ISO/IEC 14496-1 §7.2.6.5).
fn write_esds(w: &mut BoxWriter, asc: &[u8]) {
    let b = w.begin_full(b"esds", 0, 0);
    let dsi = 5 + asc.len();
    let dcd = 5 + 13 + dsi;
    let sl = 5 + 1;
    descriptor(w, 0x03, 3 + dcd + sl);
    w.u16(0); // ES_ID
    w.u8(0); // no dependsOn / URL / OCR
    descriptor(w, 0x04, 13 + dsi);
    w.u8(0x40); // objectTypeIndication: Audio ISO/IEC 14496-3
    w.u8(0x15); // streamType audio (5) << 2 | upStream 0 | reserved 1
    w.bytes(&[0, 0, 0]); // bufferSizeDB
    w.u32(0); // maxBitrate
    w.u32(0); // avgBitrate
    descriptor(w, 0x05, asc.len());
    w.bytes(asc);
    descriptor(w, 0x06, 1);
    w.u8(0x02); // SLConfigDescriptor predefined = MP4
    w.end(b);
}

impl Muxer for Fmp4Muxer {
    fn format(&self) -> ContainerFormat {
        ContainerFormat::Fmp4
    }

    fn init_segment(&mut self) -> Result<Option<Bytes>> {
        if self.tracks.is_empty() {
            return Ok(None);
        }
        if self.init.is_none() {
            self.init = Some(self.build_init());
        }
        Ok(self.init.clone())
    }

    fn start_segment(&mut self) -> Result<()> {
        // Every fragment is self-contained; nothing to reset.
        Ok(())
    }

    fn write_frame(&mut self, frame: &MediaFrame) -> Result<()> {
        if frame.is_end_of_stream() {
            return Ok(());
        }
        if frame.frame_type == FrameType::Data {
            return Err(StreamError::Unsupported("timed metadata in fMP4".into()));
        }
        if frame.is_config() {
            return self.configure(frame);
        }
        self.add_sample(frame)
    }

    fn discontinuity(&mut self) {
        self.gap_pending = true;
    }

    fn flush(&mut self) -> Result<Bytes> {
        if self.buffered_samples() == 0 {
            return Ok(Bytes::new());
        }
        Ok(self.build_fragment())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arcly_core::FrameFlags;

    fn boxes(data: &[u8]) -> Vec<(String, usize)> {
        let mut out = Vec::new();
        let mut pos = 0;
        while pos + 8 <= data.len() {
            let size = u32::from_be_bytes(data[pos..pos + 4].try_into().unwrap()) as usize;
            out.push((
                String::from_utf8_lossy(&data[pos + 4..pos + 8]).into_owned(),
                size,
            ));
            assert!(size >= 8 && pos + size <= data.len(), "bad box size");
            pos += size;
        }
        assert_eq!(pos, data.len());
        out
    }

    #[test]
    fn fragment_durations_and_offsets() {
        let mut m = Fmp4Muxer::new();
        m.write_frame(&MediaFrame::config(
            CodecId::Aac,
            0,
            Bytes::from_static(&[0x11, 0x88]),
        ))
        .unwrap();
        assert_eq!(m.flush().unwrap().len(), 0);
        for i in 0..3 {
            // 1024 samples at 48 kHz = 21.333 ms
            m.write_frame(&MediaFrame::new(
                CodecId::Aac,
                TimeBase::new(1, 48000),
                i * 1024,
                i * 1024,
                Bytes::from_static(b"ab"),
            ))
            .unwrap();
        }
        let f = m.flush().unwrap();
        assert_eq!(
            boxes(&f).iter().map(|b| b.0.as_str()).collect::<Vec<_>>(),
            ["moof", "mdat"]
        );
        assert!(f.ends_with(b"ababab"));
        let t = &m.tracks[0];
        assert_eq!(t.last_duration, 1024);
        assert_eq!(m.buffered_samples(), 0);
    }

    #[test]
    fn media_before_config_is_refused() {
        let mut m = Fmp4Muxer::new();
        assert!(m
            .write_frame(&MediaFrame::audio(CodecId::Aac, 0, Bytes::new()))
            .is_err());
        assert!(m.init_segment().unwrap().is_none());
        assert!(m
            .write_frame(&MediaFrame::metadata(0, Bytes::new()))
            .is_err());
        let bad = MediaFrame::config(CodecId::Opus, 0, Bytes::from_static(b"NotOpus"))
            .with_flags(FrameFlags::CONFIG);
        assert!(m.write_frame(&bad).is_err());
    }
}
