//! FLV tags and files, and their mapping to [`MediaFrame`].
//!
//! - [`TagDemuxer`] turns an audio/video/script tag body (as carried by an
//!   RTMP message or an FLV file tag) into frames in the kernel's canonical
//!   layout: legacy AVC (FLV 10.1 §E.4.3.1) and AAC/MP3 (§E.4.2.1), and
//!   Enhanced RTMP v1/v2 (veovera "Enhanced RTMP", ExVideoTagHeader /
//!   ExAudioTagHeader) with FourCC `avc1`, `hvc1`, `av01`, `vp09`, `Opus`,
//!   `mp4a`, `.mp3`, packet types SequenceStart / CodedFrames /
//!   CodedFramesX / SequenceEnd / Metadata, multitrack and ModEx.
//! - [`mux_frame`] does the reverse, returning the small tag header and the
//!   untouched payload `Bytes` separately so the payload is never copied.
//! - [`FlvReader`] / [`FlvWriter`] read and write FLV files and HTTP-FLV
//!   streams (header, tags, previous-tag-size; FLV 10.1 §E.2, §E.3).
//!
//! A sequence end (AVC end of sequence, Enhanced `SequenceEnd`) becomes a
//! frame of that codec with [`FrameFlags::END_OF_STREAM`] and an empty
//! payload. An Enhanced video `Metadata` packet (e.g. `colorInfo`) becomes a
//! frame of the video codec with [`FrameType::Data`] and the AMF0 payload.

use crate::amf0::{Amf0Reader, Amf0Value};
use crate::error::{Result, RtmpError};
use arcly_core::{CodecId, FourCc, FrameFlags, FrameType, MediaFrame, TimeBase};
use bytes::{Buf, BufMut, Bytes, BytesMut};

/// FLV tag type of audio (also the RTMP message type id).
pub const TAG_AUDIO: u8 = 8;
/// FLV tag type of video (also the RTMP message type id).
pub const TAG_VIDEO: u8 = 9;
/// FLV tag type of script data (also the RTMP AMF0 data message type id).
pub const TAG_SCRIPT: u8 = 18;
/// Largest tag body accepted by [`FlvReader`] (the field is 24 bits).
pub const MAX_TAG_SIZE: usize = 0x00FF_FFFF;
/// Most tracks one multitrack tag may carry.
pub const MAX_TRACKS: usize = 16;

// Enhanced RTMP packet types.
const VPT_SEQUENCE_START: u8 = 0;
const VPT_CODED_FRAMES: u8 = 1;
const VPT_SEQUENCE_END: u8 = 2;
const VPT_CODED_FRAMES_X: u8 = 3;
const VPT_METADATA: u8 = 4;
const VPT_MPEG2TS_SEQUENCE_START: u8 = 5;
const VPT_MULTITRACK: u8 = 6;
const VPT_MODEX: u8 = 7;
const APT_SEQUENCE_START: u8 = 0;
const APT_CODED_FRAMES: u8 = 1;
const APT_SEQUENCE_END: u8 = 2;
const APT_MULTICHANNEL_CONFIG: u8 = 4;
const APT_MULTITRACK: u8 = 5;
const APT_MODEX: u8 = 7;
const MT_ONE_TRACK: u8 = 0;
const MT_MANY_TRACKS_MANY_CODECS: u8 = 2;
/// `SoundFormat` 9 announces the ExAudioTagHeader.
const SOUND_FORMAT_EX: u8 = 9;

fn video_codec_of(f: [u8; 4]) -> CodecId {
    match &f {
        b"avc1" => CodecId::H264,
        b"hvc1" => CodecId::H265,
        b"av01" => CodecId::Av1,
        b"vp09" => CodecId::Vp9,
        b"vvc1" => CodecId::Vvc,
        _ => CodecId::Other(FourCc(f)),
    }
}

fn audio_codec_of(f: [u8; 4]) -> CodecId {
    match &f {
        b"mp4a" => CodecId::Aac,
        b"Opus" => CodecId::Opus,
        b".mp3" => CodecId::Mp3,
        _ => CodecId::Other(FourCc(f)),
    }
}

fn flv_err(msg: impl Into<String>) -> RtmpError {
    RtmpError::Flv(msg.into())
}

/// A bounds-checked reader over a tag body that slices the underlying
/// `Bytes` (no copies).
struct Cursor {
    b: Bytes,
}

impl Cursor {
    fn need(&self, n: usize, what: &'static str) -> Result<()> {
        if self.b.len() < n {
            return Err(RtmpError::truncated(what, n - self.b.len()));
        }
        Ok(())
    }
    fn u8(&mut self, what: &'static str) -> Result<u8> {
        self.need(1, what)?;
        Ok(self.b.get_u8())
    }
    fn u16(&mut self, what: &'static str) -> Result<u16> {
        self.need(2, what)?;
        Ok(self.b.get_u16())
    }
    fn u24(&mut self, what: &'static str) -> Result<u32> {
        self.need(3, what)?;
        let v = u32::from(self.b[0]) << 16 | u32::from(self.b[1]) << 8 | u32::from(self.b[2]);
        self.b.advance(3);
        Ok(v)
    }
    fn si24(&mut self, what: &'static str) -> Result<i32> {
        let v = self.u24(what)?;
        // Sign-extend 24 bits.
        Ok(((v << 8) as i32) >> 8)
    }
    fn fourcc(&mut self) -> Result<[u8; 4]> {
        self.need(4, "FourCC")?;
        let mut f = [0u8; 4];
        f.copy_from_slice(&self.b[..4]);
        self.b.advance(4);
        Ok(f)
    }
    fn take(&mut self, n: usize, what: &'static str) -> Result<Bytes> {
        self.need(n, what)?;
        Ok(self.b.split_to(n))
    }
    fn rest(&mut self) -> Bytes {
        std::mem::take(&mut self.b)
    }
}

/// Skip ModEx blocks (E-RTMP v2 "ModEx"): returns the next packet type.
/// The only defined modifier, TimestampOffsetNano, is below the
/// millisecond time base of RTMP frames and is not applied.
fn skip_modex(c: &mut Cursor, mut packet_type: u8, modex: u8) -> Result<u8> {
    let mut rounds = 0;
    while packet_type == modex {
        rounds += 1;
        if rounds > 8 {
            return Err(flv_err("too many ModEx blocks"));
        }
        let mut size = usize::from(c.u8("ModEx size")?) + 1;
        if size == 256 {
            size = usize::from(c.u16("ModEx size")?) + 1;
        }
        c.take(size, "ModEx data")?;
        let b = c.u8("ModEx type")?;
        packet_type = b & 0x0f;
    }
    Ok(packet_type)
}

/// Largest data event ([`MediaFrame::data_event`]: `onCuePoint`,
/// `onTextData`, `onCaptionInfo`, …) passed on to players. Cue points and
/// captions are a few hundred bytes; a publisher must not make every
/// player carry large blobs this way. Larger ones are dropped.
pub const MAX_DATA_EVENT_SIZE: usize = 16 * 1024;
/// Most data events passed on per second of the stream's timeline (60 fps
/// captions fit); more are dropped, so a publisher cannot flood every
/// player with small messages. A publisher whose clock stands still gets
/// this many in all until it moves (the connection's rate limit,
/// `RtmpConfig::rate_limit`, bounds messages in wall-clock time).
pub const MAX_DATA_EVENTS_PER_SEC: u32 = 64;

/// Per-codec state the demuxer keeps: NAL length size for widening.
#[derive(Debug, Clone, Copy, Default)]
struct TrackState {
    nal_length_size: u8,
}

/// Converts tag bodies into [`MediaFrame`]s, keeping the little state that
/// needs (NAL length sizes, 32-bit timestamp unwrapping).
#[derive(Debug, Default)]
pub struct TagDemuxer {
    video: [TrackState; MAX_TRACKS],
    last_ts: Option<u32>,
    wraps: i64,
    /// Start (ms) of the second of timeline data events are counted in.
    events_since: i64,
    /// Data events passed on in that second.
    events: u32,
}

impl TagDemuxer {
    /// A fresh demuxer.
    pub fn new() -> Self {
        Self::default()
    }

    /// Extend a 32-bit RTMP/FLV timestamp to 64 bits across wraps.
    fn unwrap_ts(&mut self, ts: u32) -> i64 {
        if let Some(last) = self.last_ts {
            if ts < last && last - ts > 0x8000_0000 {
                self.wraps += 1;
            } else if ts > last && ts - last > 0x8000_0000 && self.wraps > 0 {
                // A late frame from before the wrap.
                return (self.wraps - 1) * (1 << 32) + i64::from(ts);
            }
        }
        self.last_ts = Some(ts);
        self.wraps * (1 << 32) + i64::from(ts)
    }

    /// Demux one tag body of `tag_type` at `timestamp` (ms), appending frames
    /// to `out`. Tags that carry nothing for the kernel (video commands,
    /// multichannel configs, empty bodies) append nothing. A codec this crate
    /// cannot map is [`RtmpError::Unsupported`].
    pub fn demux(
        &mut self,
        tag_type: u8,
        timestamp: u32,
        body: Bytes,
        out: &mut Vec<MediaFrame>,
    ) -> Result<()> {
        if body.is_empty() {
            return Ok(());
        }
        let ts = self.unwrap_ts(timestamp);
        match tag_type {
            TAG_VIDEO => self.video(ts, body, out),
            TAG_AUDIO => audio(ts, body, out),
            TAG_SCRIPT => {
                if let Some(p) = script_payload(&body)? {
                    out.push(MediaFrame::metadata(ts, p));
                } else if self.admit_event(ts, &body) {
                    out.push(MediaFrame::data_event(ts, body));
                }
                Ok(())
            }
            t => Err(RtmpError::Unsupported(format!("FLV tag type {t}"))),
        }
    }

    /// Whether a data message other than metadata passes on to players as
    /// a data event: named by a string (not an `@` directive such as
    /// `@clearDataFrame`, nor `|RtmpSampleAccess`, which a server sends
    /// its players), within [`MAX_DATA_EVENT_SIZE`] and
    /// [`MAX_DATA_EVENTS_PER_SEC`]. nginx-rtmp relays every data message
    /// to its players; SRS relays `onCuePoint` and friends too, unbounded.
    fn admit_event(&mut self, ts: i64, body: &Bytes) -> bool {
        if body.len() > MAX_DATA_EVENT_SIZE {
            return false;
        }
        match Amf0Reader::new(body).next_value() {
            Ok(Some(v))
                if v.as_str()
                    .is_some_and(|n| !n.is_empty() && !n.starts_with(['@', '|'])) => {}
            _ => return false,
        }
        if ts - self.events_since >= 1000 {
            self.events_since = ts;
            self.events = 0;
        } else if ts < self.events_since {
            // A clock going back starts the second again, with what was
            // counted: timestamps that go back and forth win nothing.
            self.events_since = ts;
        }
        if self.events >= MAX_DATA_EVENTS_PER_SEC {
            return false;
        }
        self.events += 1;
        true
    }

    fn video(&mut self, ts: i64, body: Bytes, out: &mut Vec<MediaFrame>) -> Result<()> {
        let mut c = Cursor { b: body };
        let b0 = c.u8("video tag header")?;
        let frame_type = (b0 >> 4) & 0x07;
        if b0 & 0x80 == 0 {
            // FLV 10.1 §E.4.3.1 VIDEODATA.
            let codec = match b0 & 0x0f {
                7 => CodecId::H264,
                12 => CodecId::H265, // the widespread pre-Enhanced HEVC extension
                id => {
                    return Err(RtmpError::Unsupported(format!(
                        "legacy FLV video codec id {id}"
                    )))
                }
            };
            if frame_type == 5 {
                return Ok(()); // video info/command frame
            }
            let pkt = c.u8("AVCPacketType")?;
            let cts = c.si24("CompositionTime")?;
            let kind = match pkt {
                0 => VPT_SEQUENCE_START,
                1 => VPT_CODED_FRAMES,
                2 => VPT_SEQUENCE_END,
                p => return Err(flv_err(format!("AVCPacketType {p}"))),
            };
            return self.video_track(codec, 0, kind, frame_type, Some(cts), ts, c.rest(), out);
        }
        // E-RTMP ExVideoTagHeader.
        let packet_type = skip_modex(&mut c, b0 & 0x0f, VPT_MODEX)?;
        if frame_type == 5 && packet_type != VPT_METADATA {
            return Ok(()); // VideoCommand: no payload
        }
        for_each_track(
            &mut c,
            packet_type,
            VPT_MULTITRACK,
            "nested video multitrack",
            |fourcc, track, packet_type, data| {
                self.ex_video_body(
                    video_codec_of(fourcc),
                    track,
                    packet_type,
                    frame_type,
                    ts,
                    data,
                    out,
                )
            },
        )
    }

    #[allow(clippy::too_many_arguments)]
    fn ex_video_body(
        &mut self,
        codec: CodecId,
        track: u8,
        packet_type: u8,
        frame_type: u8,
        ts: i64,
        data: Bytes,
        out: &mut Vec<MediaFrame>,
    ) -> Result<()> {
        let mut c = Cursor { b: data };
        match packet_type {
            VPT_CODED_FRAMES if matches!(codec, CodecId::H264 | CodecId::H265) => {
                let cts = c.si24("CompositionTime")?;
                self.video_track(
                    codec,
                    track,
                    VPT_CODED_FRAMES,
                    frame_type,
                    Some(cts),
                    ts,
                    c.rest(),
                    out,
                )
            }
            VPT_CODED_FRAMES | VPT_CODED_FRAMES_X => self.video_track(
                codec,
                track,
                VPT_CODED_FRAMES,
                frame_type,
                None,
                ts,
                c.rest(),
                out,
            ),
            VPT_SEQUENCE_START | VPT_SEQUENCE_END => self.video_track(
                codec,
                track,
                packet_type,
                frame_type,
                None,
                ts,
                c.rest(),
                out,
            ),
            VPT_METADATA => {
                let mut f =
                    MediaFrame::new(codec, TimeBase::MILLIS, ts, ts, c.rest()).with_track(track);
                f.frame_type = FrameType::Data;
                out.push(f);
                Ok(())
            }
            VPT_MPEG2TS_SEQUENCE_START => {
                Err(RtmpError::Unsupported("MPEG2TSSequenceStart".into()))
            }
            p => Err(flv_err(format!("video packet type {p}"))),
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn video_track(
        &mut self,
        codec: CodecId,
        track: u8,
        kind: u8,
        frame_type: u8,
        cts: Option<i32>,
        ts: i64,
        data: Bytes,
        out: &mut Vec<MediaFrame>,
    ) -> Result<()> {
        let st = self
            .video
            .get_mut(usize::from(track))
            .ok_or_else(|| flv_err("video track id out of range"))?;
        match kind {
            VPT_SEQUENCE_START => {
                let mut record = data;
                // Length size for widening: avcC byte 4, hvcC byte 21 (low 2 bits).
                let pos = match codec {
                    CodecId::H264 => Some(4),
                    CodecId::H265 => Some(21),
                    _ => None,
                };
                // The canonical VP9 config is the vpcC body after its FullBox
                // header (VP-ISOBMFF §2.2); FLV carries version 1 and flags 0
                // in front of it: strip them.
                if codec == CodecId::Vp9 && record.len() >= 12 && record[..4] == [1, 0, 0, 0] {
                    record = record.slice(4..);
                }
                if let Some(pos) = pos {
                    if let Some(&b) = record.get(pos) {
                        st.nal_length_size = (b & 3) + 1;
                        if st.nal_length_size != 4 {
                            // ISO/IEC 14496-15 §5.3.3.1: lengthSizeMinusOne. The
                            // canonical layout is 4-byte lengths: patch it.
                            let mut m = BytesMut::from(&record[..]);
                            m[pos] |= 3;
                            record = m.freeze();
                        }
                    }
                }
                out.push(MediaFrame::config(codec, ts, record).with_track(track));
            }
            VPT_SEQUENCE_END => {
                let mut f = MediaFrame::new(codec, TimeBase::MILLIS, ts, ts, Bytes::new())
                    .with_flags(FrameFlags::END_OF_STREAM)
                    .with_track(track);
                f.frame_type = FrameType::Video;
                out.push(f);
            }
            _ => {
                let payload =
                    if codec.is_nal_based() && st.nal_length_size != 0 && st.nal_length_size != 4 {
                        widen_nals(&data, st.nal_length_size)?
                    } else {
                        data
                    };
                let pts = ts + i64::from(cts.unwrap_or(0));
                let mut f = MediaFrame::video(codec, ts, pts, payload).with_track(track);
                if frame_type == 1 || frame_type == 4 {
                    f.flags |= FrameFlags::KEYFRAME;
                }
                out.push(f);
            }
        }
        Ok(())
    }
}

/// Rewrite NAL units behind `size`-byte lengths to 4-byte lengths.
fn widen_nals(data: &[u8], size: u8) -> Result<Bytes> {
    let size = usize::from(size);
    let mut out = BytesMut::with_capacity(data.len() + data.len() / 8 + 16);
    let mut rest = data;
    while !rest.is_empty() {
        let len_bytes = rest
            .get(..size)
            .ok_or_else(|| RtmpError::truncated("NAL length", size - rest.len()))?;
        let n = len_bytes
            .iter()
            .fold(0usize, |a, &b| a << 8 | usize::from(b));
        let nal = rest
            .get(size..size + n)
            .ok_or_else(|| RtmpError::truncated("NAL unit", n))?;
        out.put_u32(n as u32);
        out.put_slice(nal);
        rest = &rest[size + n..];
    }
    Ok(out.freeze())
}

fn audio(ts: i64, body: Bytes, out: &mut Vec<MediaFrame>) -> Result<()> {
    let mut c = Cursor { b: body };
    let b0 = c.u8("audio tag header")?;
    let format = b0 >> 4;
    if format != SOUND_FORMAT_EX {
        // FLV 10.1 §E.4.2.1 AUDIODATA.
        match format {
            10 => {
                let pkt = c.u8("AACPacketType")?;
                let data = c.rest();
                out.push(if pkt == 0 {
                    MediaFrame::config(CodecId::Aac, ts, data)
                } else {
                    MediaFrame::audio(CodecId::Aac, ts, data)
                });
            }
            2 | 14 => out.push(MediaFrame::audio(CodecId::Mp3, ts, c.rest())),
            f => {
                return Err(RtmpError::Unsupported(format!(
                    "legacy FLV sound format {f}"
                )))
            }
        }
        return Ok(());
    }
    // E-RTMP v2 ExAudioTagHeader.
    let packet_type = skip_modex(&mut c, b0 & 0x0f, APT_MODEX)?;
    for_each_track(
        &mut c,
        packet_type,
        APT_MULTITRACK,
        "nested audio multitrack",
        |fourcc, track, packet_type, data| {
            ex_audio_body(audio_codec_of(fourcc), track, packet_type, ts, data, out)
        },
    )
}

/// The track layer Enhanced RTMP v2 shares between audio and video: after the
/// packet type, either one FourCC and the body (a single track), or, when the
/// packet type is `multitrack_marker`, the multitrack type, the inner packet
/// type and then each track (FourCC when codecs differ, track id, size unless
/// there is one track). Calls `body(fourcc, track, packet_type, data)` per
/// track, at most [`MAX_TRACKS`] times; a multitrack packet inside a
/// multitrack packet is the `nested_error` protocol error.
fn for_each_track(
    c: &mut Cursor,
    mut packet_type: u8,
    multitrack_marker: u8,
    nested_error: &'static str,
    mut body: impl FnMut([u8; 4], u8, u8, Bytes) -> Result<()>,
) -> Result<()> {
    if packet_type != multitrack_marker {
        let fourcc = c.fourcc()?;
        return body(fourcc, 0, packet_type, c.rest());
    }
    let b = c.u8("multitrack type")?;
    let mt = b >> 4;
    packet_type = b & 0x0f;
    if packet_type == multitrack_marker {
        return Err(flv_err(nested_error));
    }
    let mut fourcc = [0u8; 4];
    if mt != MT_MANY_TRACKS_MANY_CODECS {
        fourcc = c.fourcc()?;
    }
    let mut tracks = 0;
    while !c.b.is_empty() {
        tracks += 1;
        if tracks > MAX_TRACKS {
            return Err(RtmpError::limit(
                "tracks in a multitrack tag",
                tracks as u64,
                MAX_TRACKS as u64,
            ));
        }
        if mt == MT_MANY_TRACKS_MANY_CODECS {
            fourcc = c.fourcc()?;
        }
        let track = c.u8("track id")?;
        let data = if mt == MT_ONE_TRACK {
            c.rest()
        } else {
            let n = c.u24("track size")? as usize;
            c.take(n, "track data")?
        };
        body(fourcc, track, packet_type, data)?;
    }
    Ok(())
}

fn ex_audio_body(
    codec: CodecId,
    track: u8,
    packet_type: u8,
    ts: i64,
    data: Bytes,
    out: &mut Vec<MediaFrame>,
) -> Result<()> {
    match packet_type {
        APT_SEQUENCE_START => out.push(MediaFrame::config(codec, ts, data).with_track(track)),
        APT_CODED_FRAMES => out.push(MediaFrame::audio(codec, ts, data).with_track(track)),
        APT_SEQUENCE_END => {
            let mut f = MediaFrame::new(codec, TimeBase::MILLIS, ts, ts, Bytes::new())
                .with_flags(FrameFlags::END_OF_STREAM)
                .with_track(track);
            f.frame_type = FrameType::Audio;
            out.push(f);
        }
        APT_MULTICHANNEL_CONFIG => {} // channel layout: not carried by MediaFrame
        p => return Err(flv_err(format!("audio packet type {p}"))),
    }
    Ok(())
}

/// The metadata payload of a script tag / AMF0 data message: for
/// `@setDataFrame` the values after that name (so `onMetaData` first), for
/// `onMetaData` the whole body, otherwise `None` (other data messages).
pub fn script_payload(body: &Bytes) -> Result<Option<Bytes>> {
    let mut r = Amf0Reader::new(body);
    let first = r.next_value()?;
    match first.as_ref().and_then(Amf0Value::as_str) {
        Some("@setDataFrame") => {
            let off = body.len() - r.remaining().len();
            Ok(Some(body.slice(off..)))
        }
        Some("onMetaData") => Ok(Some(body.clone())),
        _ => Ok(None),
    }
}

/// One frame as an FLV tag: type, timestamp, the small tag-body header and
/// the payload (shared with the frame). The tag body is `header ++ payload`.
#[derive(Debug, Clone)]
pub struct MuxedTag {
    /// [`TAG_AUDIO`], [`TAG_VIDEO`] or [`TAG_SCRIPT`].
    pub tag_type: u8,
    /// Timestamp in milliseconds (the frame's dts, truncated to 32 bits).
    pub timestamp: u32,
    /// The tag-body header (codec byte, packet type, FourCC, composition time).
    pub header: Bytes,
    /// The payload, shared with the frame.
    pub payload: Bytes,
}

impl MuxedTag {
    /// Length of the tag body.
    pub fn body_len(&self) -> usize {
        self.header.len() + self.payload.len()
    }

    /// The tag body in one buffer (copies; for tests and small tags).
    pub fn body(&self) -> Bytes {
        if self.header.is_empty() {
            return self.payload.clone();
        }
        let mut b = BytesMut::with_capacity(self.body_len());
        b.put_slice(&self.header);
        b.put_slice(&self.payload);
        b.freeze()
    }
}

/// The tag-body header of one frame (codec byte, packet type, FourCC,
/// composition time: at most [`TagHeader::MAX_LEN`] bytes), built on the
/// stack so a frame sent to many players costs no allocation per player.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TagHeader {
    /// [`TAG_AUDIO`], [`TAG_VIDEO`] or [`TAG_SCRIPT`].
    pub tag_type: u8,
    /// Whether the frame's payload follows the header (not for end-of-sequence tags).
    pub with_payload: bool,
    len: u8,
    bytes: [u8; TagHeader::MAX_LEN],
}

impl TagHeader {
    /// The longest tag-body header written (a multitrack video header with
    /// a composition time is 10 bytes).
    pub const MAX_LEN: usize = 16;

    /// The header bytes.
    pub fn as_bytes(&self) -> &[u8] {
        self.bytes.get(..usize::from(self.len)).unwrap_or(&[])
    }

    /// The tag body's length for a frame whose payload is `payload_len` bytes.
    pub fn body_len(&self, payload_len: usize) -> usize {
        usize::from(self.len) + if self.with_payload { payload_len } else { 0 }
    }
}

/// A fixed-capacity writer for [`TagHeader`] bytes.
struct HeadBuf {
    len: usize,
    bytes: [u8; TagHeader::MAX_LEN],
}

impl HeadBuf {
    fn put(&mut self, b: &[u8]) {
        // Every header written below is at most 10 bytes.
        if let Some(dst) = self.bytes.get_mut(self.len..self.len + b.len()) {
            dst.copy_from_slice(b);
            self.len += b.len();
        }
    }
    fn u8(&mut self, b: u8) {
        self.put(&[b]);
    }
    /// A signed 24-bit composition time (FLV 10.1 §E.4.3.1).
    fn si24(&mut self, v: i32) {
        let b = v.to_be_bytes();
        self.put(&b[1..]);
    }
}

/// The tag-body header for `frame` with composition time offset `cts`
/// milliseconds: legacy AVC/AAC/MP3 headers (what every player
/// understands), Enhanced RTMP for H.265/AV1/VP9/VVC/Opus, AMF0 script
/// data for metadata. `Ok(None)` for frames FLV does not carry (the
/// publisher's in-band end-of-stream marker).
pub fn tag_header(frame: &MediaFrame, cts: i32) -> Result<Option<TagHeader>> {
    let cts = cts.clamp(-0x80_0000, 0x7f_ffff);
    let eos = frame.is_end_of_stream();
    let mut h = HeadBuf {
        len: 0,
        bytes: [0; TagHeader::MAX_LEN],
    };
    let tag_type = match frame.frame_type {
        FrameType::Data if frame.codec == CodecId::Amf0Data => {
            if eos {
                return Ok(None);
            }
            TAG_SCRIPT
        }
        FrameType::Data => {
            // E-RTMP video Metadata packet.
            h.u8(0x80 | (5 << 4) | VPT_METADATA); // frame type ignored; ffmpeg writes 5
            h.put(frame.codec.fourcc().as_bytes());
            TAG_VIDEO
        }
        FrameType::Video => {
            let ft: u8 = if frame.is_keyframe() || frame.is_config() || eos {
                1
            } else {
                2
            };
            if frame.codec == CodecId::H264 && frame.track == 0 {
                h.u8(ft << 4 | 7);
                h.u8(if frame.is_config() {
                    0
                } else if eos {
                    2
                } else {
                    1
                });
                h.si24(cts);
            } else {
                let pt = if frame.is_config() {
                    VPT_SEQUENCE_START
                } else if eos {
                    VPT_SEQUENCE_END
                } else if cts != 0 && frame.codec.is_nal_based() {
                    VPT_CODED_FRAMES
                } else if frame.codec.is_nal_based() {
                    VPT_CODED_FRAMES_X
                } else {
                    VPT_CODED_FRAMES
                };
                if frame.track != 0 {
                    h.u8(0x80 | ft << 4 | VPT_MULTITRACK);
                    h.u8(MT_ONE_TRACK << 4 | pt);
                    h.put(frame.codec.fourcc().as_bytes());
                    h.u8(frame.track);
                } else {
                    h.u8(0x80 | ft << 4 | pt);
                    h.put(frame.codec.fourcc().as_bytes());
                }
                if pt == VPT_SEQUENCE_START && frame.codec == CodecId::Vp9 {
                    h.put(&[1, 0, 0, 0]); // vpcC FullBox version and flags
                }
                if pt == VPT_CODED_FRAMES && frame.codec.is_nal_based() {
                    h.si24(cts);
                }
            }
            TAG_VIDEO
        }
        FrameType::Audio => {
            match frame.codec {
                CodecId::Aac if frame.track == 0 && !eos => {
                    // 10 = AAC, 44 kHz, 16-bit, stereo (§E.4.2.1: always so for AAC).
                    h.u8(0xAF);
                    h.u8(u8::from(!frame.is_config()));
                }
                CodecId::Mp3 if frame.track == 0 && !eos => h.u8(0x2F),
                _ => {
                    let pt = if frame.is_config() {
                        APT_SEQUENCE_START
                    } else if eos {
                        APT_SEQUENCE_END
                    } else {
                        APT_CODED_FRAMES
                    };
                    if frame.track != 0 {
                        h.u8(SOUND_FORMAT_EX << 4 | APT_MULTITRACK);
                        h.u8(MT_ONE_TRACK << 4 | pt);
                        h.put(frame.codec.fourcc().as_bytes());
                        h.u8(frame.track);
                    } else {
                        h.u8(SOUND_FORMAT_EX << 4 | pt);
                        h.put(frame.codec.fourcc().as_bytes());
                    }
                }
            }
            TAG_AUDIO
        }
    };
    let head = TagHeader {
        tag_type,
        with_payload: !eos,
        len: h.len as u8,
        bytes: h.bytes,
    };
    let body_len = head.body_len(frame.payload.len());
    if body_len > MAX_TAG_SIZE {
        return Err(RtmpError::limit(
            "FLV tag size",
            body_len as u64,
            MAX_TAG_SIZE as u64,
        ));
    }
    Ok(Some(head))
}

/// Build the FLV tag for `frame` (see [`tag_header`]); the timestamp is the
/// frame's dts and the composition time its `pts - dts`.
pub fn mux_frame(frame: &MediaFrame) -> Result<Option<MuxedTag>> {
    let dts = frame.dts_ms();
    let cts = (frame.pts_ms() - dts).clamp(-0x80_0000, 0x7f_ffff) as i32;
    let Some(head) = tag_header(frame, cts)? else {
        return Ok(None);
    };
    Ok(Some(MuxedTag {
        tag_type: head.tag_type,
        timestamp: dts as u32,
        header: Bytes::copy_from_slice(head.as_bytes()),
        payload: if head.with_payload {
            frame.payload.clone()
        } else {
            Bytes::new()
        },
    }))
}

/// Encode an `onMetaData` payload the way `@setDataFrame` carries it on the
/// wire: `"@setDataFrame"` followed by the metadata payload.
pub fn set_data_frame(metadata: &Bytes) -> Bytes {
    let mut b = BytesMut::with_capacity(16 + metadata.len());
    Amf0Value::string("@setDataFrame").encode(&mut b);
    b.put_slice(metadata);
    b.freeze()
}

/// One tag read from an FLV file/stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlvTag {
    /// Tag type (8, 9 or 18).
    pub tag_type: u8,
    /// Timestamp in milliseconds (with the extension byte applied).
    pub timestamp: u32,
    /// The tag body.
    pub body: Bytes,
}

/// The FLV file header flags (FLV 10.1 §E.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FlvHeader {
    /// `TypeFlagsAudio`.
    pub has_audio: bool,
    /// `TypeFlagsVideo`.
    pub has_video: bool,
}

/// Reads an FLV file or HTTP-FLV stream incrementally (sans-IO).
#[derive(Debug, Default)]
pub struct FlvReader {
    buf: BytesMut,
    header: Option<FlvHeader>,
}

impl FlvReader {
    /// A reader expecting the FLV header first.
    pub fn new() -> Self {
        Self::default()
    }

    /// Append input bytes.
    pub fn push(&mut self, data: &[u8]) {
        self.buf.extend_from_slice(data);
    }

    /// The header, once read.
    pub fn header(&self) -> Option<FlvHeader> {
        self.header
    }

    /// The next complete tag, or `Ok(None)` if more input is needed.
    pub fn next_tag(&mut self) -> Result<Option<FlvTag>> {
        if self.header.is_none() {
            // §E.2: "FLV", version, flags, DataOffset; then PreviousTagSize0.
            if self.buf.len() < 9 {
                return Ok(None);
            }
            if &self.buf[..3] != b"FLV" {
                return Err(flv_err("not an FLV file (signature)"));
            }
            let off =
                u32::from_be_bytes([self.buf[5], self.buf[6], self.buf[7], self.buf[8]]) as usize;
            if !(9..=1024).contains(&off) {
                return Err(flv_err(format!("FLV DataOffset {off}")));
            }
            if self.buf.len() < off + 4 {
                return Ok(None);
            }
            let flags = self.buf[4];
            self.header = Some(FlvHeader {
                has_audio: flags & 4 != 0,
                has_video: flags & 1 != 0,
            });
            self.buf.advance(off + 4);
        }
        if self.buf.len() < 11 {
            return Ok(None);
        }
        // §E.4.1 FLVTAG header.
        let b = &self.buf[..11];
        if b[0] & 0x20 != 0 {
            return Err(RtmpError::Unsupported("encrypted FLV tag".into()));
        }
        let tag_type = b[0] & 0x1f;
        let size = (usize::from(b[1]) << 16) | (usize::from(b[2]) << 8) | usize::from(b[3]);
        let timestamp =
            u32::from(b[7]) << 24 | u32::from(b[4]) << 16 | u32::from(b[5]) << 8 | u32::from(b[6]);
        if self.buf.len() < 11 + size + 4 {
            return Ok(None);
        }
        self.buf.advance(11);
        let body = self.buf.split_to(size).freeze();
        self.buf.advance(4); // PreviousTagSize: not trusted.
        Ok(Some(FlvTag {
            tag_type,
            timestamp,
            body,
        }))
    }
}

/// Writes FLV files and HTTP-FLV streams.
#[derive(Debug, Default, Clone, Copy)]
pub struct FlvWriter;

impl FlvWriter {
    /// The file header and `PreviousTagSize0` (FLV 10.1 §E.2, §E.3).
    pub fn header(has_audio: bool, has_video: bool) -> Bytes {
        let mut b = BytesMut::with_capacity(13);
        b.put_slice(b"FLV\x01");
        b.put_u8(u8::from(has_audio) << 2 | u8::from(has_video));
        b.put_u32(9);
        b.put_u32(0);
        b.freeze()
    }

    /// The 11-byte tag header for a body of `body_len` bytes (§E.4.1).
    pub fn tag_header(tag_type: u8, timestamp: u32, body_len: usize) -> [u8; 11] {
        let l = body_len as u32;
        [
            tag_type,
            (l >> 16) as u8,
            (l >> 8) as u8,
            l as u8,
            (timestamp >> 16) as u8,
            (timestamp >> 8) as u8,
            timestamp as u8,
            (timestamp >> 24) as u8,
            0,
            0,
            0,
        ]
    }

    /// Append one whole tag (header, body, PreviousTagSize) to `out` as
    /// buffers for a vectored write; the payload is shared, not copied.
    pub fn write_tag_vectored(tag: &MuxedTag, out: &mut Vec<Bytes>) {
        let len = tag.body_len();
        let mut h = BytesMut::with_capacity(11 + tag.header.len());
        h.put_slice(&Self::tag_header(tag.tag_type, tag.timestamp, len));
        h.put_slice(&tag.header);
        out.push(h.freeze());
        if !tag.payload.is_empty() {
            out.push(tag.payload.clone());
        }
        out.push(Bytes::copy_from_slice(&((11 + len) as u32).to_be_bytes()));
    }

    /// Append one whole tag to `out` (copying).
    pub fn write_tag(tag_type: u8, timestamp: u32, body: &[u8], out: &mut BytesMut) {
        out.put_slice(&Self::tag_header(tag_type, timestamp, body.len()));
        out.put_slice(body);
        out.put_u32((11 + body.len()) as u32);
    }

    /// Mux `frame` and append its tag to `out`; frames FLV cannot carry
    /// append nothing.
    pub fn write_frame(frame: &MediaFrame, out: &mut BytesMut) -> Result<()> {
        if let Some(t) = mux_frame(frame)? {
            out.put_slice(&Self::tag_header(t.tag_type, t.timestamp, t.body_len()));
            out.put_slice(&t.header);
            out.put_slice(&t.payload);
            out.put_u32((11 + t.body_len()) as u32);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn demux1(t: u8, ts: u32, body: &[u8]) -> Vec<MediaFrame> {
        let mut v = Vec::new();
        TagDemuxer::new()
            .demux(t, ts, Bytes::copy_from_slice(body), &mut v)
            .unwrap();
        v
    }

    fn amf(values: &[Amf0Value]) -> Bytes {
        crate::amf0::encode_all(values)
    }

    /// Issue 18 #9: data messages other than metadata become data events
    /// carrying the message whole; `@` directives, oversized ones and
    /// more than [`MAX_DATA_EVENTS_PER_SEC`] per second are dropped.
    #[test]
    fn data_messages_become_bounded_data_events() {
        let cue = amf(&[
            Amf0Value::string("onCuePoint"),
            Amf0Value::object([("name", Amf0Value::string("ad"))]),
        ]);
        for name in ["onCuePoint", "onTextData", "onCaptionInfo"] {
            let body = amf(&[Amf0Value::string(name), Amf0Value::string("x")]);
            let f = demux1(TAG_SCRIPT, 500, &body);
            assert_eq!(f.len(), 1, "{name}");
            assert!(f[0].is_data_event(), "{name}");
            assert_eq!((f[0].dts, f[0].payload.clone()), (500, body));
        }
        let meta = amf(&[
            Amf0Value::string("onMetaData"),
            Amf0Value::object([("width", Amf0Value::Number(640.0))]),
        ]);
        assert!(!demux1(TAG_SCRIPT, 0, &meta)[0].is_data_event());
        let clear = amf(&[Amf0Value::string("@clearDataFrame"), Amf0Value::string("x")]);
        assert!(demux1(TAG_SCRIPT, 0, &clear).is_empty());
        let big = amf(&[
            Amf0Value::string("onTextData"),
            Amf0Value::string("x".repeat(MAX_DATA_EVENT_SIZE)),
        ]);
        assert!(demux1(TAG_SCRIPT, 0, &big).is_empty());
        // The rate bound, per second of the timeline.
        let mut d = TagDemuxer::new();
        let mut out = Vec::new();
        for ts in [0, 10, 999] {
            for _ in 0..MAX_DATA_EVENTS_PER_SEC {
                d.demux(TAG_SCRIPT, ts, cue.clone(), &mut out).unwrap();
            }
        }
        assert_eq!(out.len(), MAX_DATA_EVENTS_PER_SEC as usize);
        d.demux(TAG_SCRIPT, 1000, cue.clone(), &mut out).unwrap();
        assert_eq!(out.len(), MAX_DATA_EVENTS_PER_SEC as usize + 1);
        // Going back does not start a fresh count.
        for _ in 0..MAX_DATA_EVENTS_PER_SEC {
            d.demux(TAG_SCRIPT, 0, cue.clone(), &mut out).unwrap();
        }
        assert_eq!(out.len(), 2 * MAX_DATA_EVENTS_PER_SEC as usize);
    }

    #[test]
    fn legacy_avc_and_cts() {
        let f = demux1(9, 100, &[0x17, 1, 0, 0, 40, 0, 0, 0, 1, 0x65]);
        assert_eq!(f.len(), 1);
        assert!(f[0].is_keyframe());
        assert_eq!((f[0].dts, f[0].pts), (100, 140));
        assert_eq!(&f[0].payload[..], &[0, 0, 0, 1, 0x65]);
        let neg = demux1(9, 100, &[0x27, 1, 0xff, 0xff, 0xf6, 0, 0, 0, 1, 0x41]);
        assert_eq!(neg[0].pts, 90);
        assert!(!neg[0].is_keyframe());
        // Round trip through the muxer.
        let t = mux_frame(&f[0]).unwrap().unwrap();
        assert_eq!(&t.body()[..], &[0x17, 1, 0, 0, 40, 0, 0, 0, 1, 0x65]);
        assert_eq!(
            &mux_frame(&neg[0]).unwrap().unwrap().body()[..5],
            &[0x27, 1, 0xff, 0xff, 0xf6]
        );
    }

    #[test]
    fn nal_lengths_are_widened() {
        let mut d = TagDemuxer::new();
        let mut v = Vec::new();
        // avcC with lengthSizeMinusOne = 1 (2-byte lengths).
        d.demux(
            9,
            0,
            Bytes::from_static(&[0x17, 0, 0, 0, 0, 1, 0x64, 0, 0x1f, 0xfd, 0xe1]),
            &mut v,
        )
        .unwrap();
        assert!(v[0].is_config());
        assert_eq!(v[0].payload[4], 0xff);
        d.demux(
            9,
            40,
            Bytes::from_static(&[0x27, 1, 0, 0, 0, 0, 2, 0x41, 0x9a, 0, 1, 0x06]),
            &mut v,
        )
        .unwrap();
        assert_eq!(
            &v[1].payload[..],
            &[0, 0, 0, 2, 0x41, 0x9a, 0, 0, 0, 1, 0x06]
        );
        assert!(d
            .demux(
                9,
                80,
                Bytes::from_static(&[0x27, 1, 0, 0, 0, 0, 9, 0x41]),
                &mut v
            )
            .is_err());
    }

    #[test]
    fn enhanced_video_v1() {
        // hvc1 CodedFrames with CTS, av01 CodedFrames, vp09 SequenceStart.
        let f = demux1(9, 10, b"\x91hvc1\x00\x00\x14\x00\x00\x00\x01\x26");
        assert_eq!(
            (f[0].codec, f[0].pts, f[0].is_keyframe()),
            (CodecId::H265, 30, true)
        );
        let f = demux1(9, 10, b"\xa1av01\x12\x00");
        assert_eq!(
            (f[0].codec, f[0].pts, &f[0].payload[..]),
            (CodecId::Av1, 10, &b"\x12\x00"[..])
        );
        let f = demux1(9, 0, b"\x90vp09\x01\x02");
        assert!(f[0].is_config() && f[0].codec == CodecId::Vp9);
        let f = demux1(
            9,
            0,
            b"\x90vp09\x01\x00\x00\x00\x00\x15\x82\x02\x02\x02\x00\x00",
        );
        assert_eq!(
            &f[0].payload[..],
            b"\x00\x15\x82\x02\x02\x02\x00\x00",
            "FullBox header stripped"
        );
        assert_eq!(
            &mux_frame(&f[0]).unwrap().unwrap().body()[..],
            b"\x90vp09\x01\x00\x00\x00\x00\x15\x82\x02\x02\x02\x00\x00"
        );
        let f = demux1(9, 0, b"\x93hvc1\x00\x00\x00\x01\x26");
        assert_eq!(f[0].pts, 0);
        let f = demux1(9, 0, b"\x92av01");
        assert!(f[0].is_end_of_stream() && f[0].is_video());
        let f = demux1(9, 0, b"\x94hvc1\x02\x00\x09colorInfo\x03\x00\x00\x09");
        assert_eq!(f[0].frame_type, FrameType::Data);
        // Mux back each and compare bytes.
        for body in [
            &b"\x91hvc1\x00\x00\x14\x00\x00\x00\x01\x26"[..],
            b"\xa1av01\x12\x00",
            b"\x93hvc1\x00\x00\x00\x01\x26",
        ] {
            let f = demux1(9, 0, body);
            assert_eq!(&mux_frame(&f[0]).unwrap().unwrap().body()[..], body);
        }
    }

    #[test]
    fn enhanced_v2_multitrack_modex_and_audio() {
        // ManyTracks, CodedFramesX, av01, two tracks with sizes.
        let f = demux1(
            9,
            5,
            b"\x96\x13av01\x00\x00\x00\x02\xaa\xbb\x01\x00\x00\x01\xcc",
        );
        assert_eq!(f.len(), 2);
        assert_eq!((f[0].track, &f[0].payload[..]), (0, &b"\xaa\xbb"[..]));
        assert_eq!((f[1].track, &f[1].payload[..]), (1, &b"\xcc"[..]));
        // ManyTracksManyCodecs audio: Opus on track 0, AAC on track 2.
        let f = demux1(
            8,
            5,
            b"\x95\x21Opus\x00\x00\x00\x01\x01mp4a\x02\x00\x00\x02\x21\x10",
        );
        assert_eq!(
            (f[0].codec, f[1].codec, f[1].track),
            (CodecId::Opus, CodecId::Aac, 2)
        );
        // ModEx (TimestampOffsetNano, 3 bytes) before CodedFrames on video.
        let f = demux1(9, 7, b"\x97\x02\x00\x01\x00\x01av01\x0a");
        assert_eq!(
            (f[0].codec, f[0].dts, &f[0].payload[..]),
            (CodecId::Av1, 7, &b"\x0a"[..])
        );
        // Opus sequence start / coded frames, and a multichannel config (ignored).
        let f = demux1(8, 0, b"\x90OpusOpusHead");
        assert!(f[0].is_config() && f[0].codec == CodecId::Opus);
        assert!(demux1(8, 0, b"\x94Opus\x01\x02").is_empty());
        let f = demux1(8, 20, b"\x91Opus\xfc\x01");
        assert_eq!(
            &mux_frame(&f[0]).unwrap().unwrap().body()[..],
            b"\x91Opus\xfc\x01"
        );
        // Multitrack one-track muxes back the same.
        let f = demux1(9, 0, b"\x96\x01av01\x03\x0a\x0b");
        assert_eq!(f[0].track, 3);
        assert_eq!(
            &mux_frame(&f[0]).unwrap().unwrap().body()[..],
            b"\x96\x01av01\x03\x0a\x0b"
        );
    }

    #[test]
    fn aac_mp3_and_metadata() {
        let f = demux1(8, 0, &[0xaf, 0, 0x11, 0x90]);
        assert!(f[0].is_config() && f[0].codec == CodecId::Aac);
        let f = demux1(8, 21, &[0xaf, 1, 0x21]);
        assert_eq!(
            &mux_frame(&f[0]).unwrap().unwrap().body()[..],
            &[0xaf, 1, 0x21]
        );
        assert_eq!(demux1(8, 0, &[0x2f, 0xff, 0xfb])[0].codec, CodecId::Mp3);
        let meta = crate::amf0::encode_all(&[
            Amf0Value::string("onMetaData"),
            Amf0Value::EcmaArray(vec![]),
        ]);
        let sdf = set_data_frame(&meta);
        let f = demux1(18, 0, &sdf);
        assert_eq!(f[0].payload, meta);
        // Other data messages are data events (issue 18 #9), not metadata.
        assert!(demux1(
            18,
            0,
            &crate::amf0::encode_all(&[Amf0Value::string("onCuePoint")])
        )[0]
        .is_data_event());
    }

    #[test]
    fn timestamps_unwrap() {
        let mut d = TagDemuxer::new();
        let mut v = Vec::new();
        d.demux(8, 0xffff_fff0, Bytes::from_static(&[0xaf, 1, 0]), &mut v)
            .unwrap();
        d.demux(8, 0x10, Bytes::from_static(&[0xaf, 1, 0]), &mut v)
            .unwrap();
        assert_eq!(v[1].dts - v[0].dts, 0x20);
    }

    #[test]
    fn file_round_trip() {
        let mut out = BytesMut::new();
        out.put_slice(&FlvWriter::header(true, true));
        FlvWriter::write_tag(9, 0x0100_0002, b"\x17\x01\x00\x00\x00", &mut out);
        let mut vec = Vec::new();
        let tag = MuxedTag {
            tag_type: 8,
            timestamp: 3,
            header: Bytes::from_static(&[0xaf, 1]),
            payload: Bytes::from_static(b"xyz"),
        };
        FlvWriter::write_tag_vectored(&tag, &mut vec);
        for b in vec {
            out.put_slice(&b);
        }
        let mut r = FlvReader::new();
        for b in out.chunks(7) {
            r.push(b);
        }
        assert_eq!(r.header(), None);
        let t1 = r.next_tag().unwrap().unwrap();
        assert_eq!(
            (t1.tag_type, t1.timestamp, &t1.body[..]),
            (9, 0x0100_0002, &b"\x17\x01\x00\x00\x00"[..])
        );
        assert_eq!(
            r.header(),
            Some(FlvHeader {
                has_audio: true,
                has_video: true
            })
        );
        let t2 = r.next_tag().unwrap().unwrap();
        assert_eq!(&t2.body[..], b"\xaf\x01xyz");
        assert!(r.next_tag().unwrap().is_none());
    }

    #[test]
    fn fixture_files_demux() {
        for name in [
            "h264-aac.flv",
            "hevc-aac.enhanced.flv",
            "av1-opus.enhanced.flv",
            "vp9-opus.enhanced.flv",
        ] {
            let data = std::fs::read(arcly_core::testing::tools::fixture(name)).unwrap();
            let mut r = FlvReader::new();
            r.push(&data);
            let mut d = TagDemuxer::new();
            let mut frames = Vec::new();
            while let Some(t) = r.next_tag().unwrap() {
                let before = frames.len();
                d.demux(t.tag_type, t.timestamp, t.body.clone(), &mut frames)
                    .unwrap();
                // Every media tag muxes back to the identical body.
                if t.tag_type != TAG_SCRIPT {
                    for f in &frames[before..] {
                        assert_eq!(mux_frame(f).unwrap().unwrap().body(), t.body, "{name}");
                    }
                }
            }
            let video = frames
                .iter()
                .filter(|f| f.is_video() && !f.is_config() && !f.is_end_of_stream())
                .count();
            assert_eq!(video, 150, "{name}: 6 s at 25 fps");
            assert!(
                frames.iter().any(|f| f.is_config() && f.is_video()),
                "{name}"
            );
            assert!(
                frames.iter().any(|f| f.frame_type == FrameType::Data),
                "{name}: onMetaData"
            );
        }
    }
}
