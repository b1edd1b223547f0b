//! Media frames: the one unit of media that moves through the kernel.
//!
//! A [`MediaFrame`] is one access unit (a picture, an audio frame, a metadata
//! object) with its codec, kind, flags, timestamps in an explicit
//! [`TimeBase`], a track number and a `bytes::Bytes` payload. Frames are built
//! once by a protocol at its edge, wrapped in an `Arc` when published, and
//! handed to every subscriber without copying the payload.
//!
//! # Canonical payload layout
//!
//! Every codec has exactly one layout inside the kernel. A protocol or muxer
//! converts to and from its wire layout at its own edge, never in the middle.
//!
//! | codec | ordinary frame payload | `CONFIG` frame payload |
//! |---|---|---|
//! | H.264 | NAL units, each behind a 4-byte big-endian length (ISO/IEC 14496-15 §5.3.2, `lengthSizeMinusOne = 3`) | `AVCDecoderConfigurationRecord` (14496-15 §5.3.3.1) |
//! | H.265 | NAL units behind 4-byte lengths (14496-15 §8.3.2) | `HEVCDecoderConfigurationRecord` (14496-15 §8.3.3.1) |
//! | VVC | NAL units behind 4-byte lengths (14496-15 §11.2) | `VvcDecoderConfigurationRecord` (14496-15 §11.2.4.2) |
//! | AV1 | one temporal unit as low-overhead OBUs, each with `obu_has_size_field = 1`, temporal delimiters removed (AV1-ISOBMFF §2.4) | `AV1CodecConfigurationRecord` (av1C, AV1-ISOBMFF §2.3) |
//! | VP9 | one frame or superframe exactly as the encoder wrote it | `VPCodecConfigurationRecord` (the vpcC body after its FullBox header, VP-ISOBMFF §2.2) |
//! | AAC | one raw AAC frame (no ADTS header) | `AudioSpecificConfig` (ISO/IEC 14496-3 §1.6.2.1) |
//! | Opus | one Opus packet (RFC 6716) | the Opus identification header `OpusHead` (RFC 7845 §5.1) |
//! | MP3 | one MPEG audio frame, header included | none |
//! | metadata ([`FrameType::Data`]) | an AMF0-encoded script object (FLV 10.1 §E.4.4), e.g. `onMetaData` | none |
//!
//! A length prefix is always 4 bytes: protocols that receive 1- or 2-byte
//! prefixes widen them at the edge.

use bytes::Bytes;
use std::fmt;

/// A FourCC code, as used by Enhanced RTMP, MP4 sample entries and the
/// [`CodecId::Other`] escape.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FourCc(pub [u8; 4]);

impl FourCc {
    /// The four bytes of the code.
    pub const fn as_bytes(&self) -> &[u8; 4] {
        &self.0
    }
}

impl fmt::Debug for FourCc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "FourCc(\"{self}\")")
    }
}

impl fmt::Display for FourCc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for &b in &self.0 {
            if b.is_ascii_graphic() || b == b' ' {
                write!(f, "{}", b as char)?;
            } else {
                write!(f, "\\x{b:02x}")?;
            }
        }
        Ok(())
    }
}

/// The codec of a frame's payload. See the [module docs](self) for the
/// payload layout of each.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum CodecId {
    /// H.264 / AVC (ISO/IEC 14496-10).
    H264,
    /// H.265 / HEVC (ISO/IEC 23008-2).
    H265,
    /// AV1 (AOMedia).
    Av1,
    /// VP9 (Google).
    Vp9,
    /// H.266 / VVC (ISO/IEC 23090-3).
    Vvc,
    /// AAC (ISO/IEC 14496-3).
    Aac,
    /// Opus (RFC 6716).
    Opus,
    /// MPEG-1/2 Audio Layer III.
    Mp3,
    /// AMF0 script data (`onMetaData` and friends).
    Amf0Data,
    /// Anything else, named by its FourCC; the kernel carries it opaquely.
    Other(FourCc),
}

impl CodecId {
    /// Whether this is a video codec.
    pub const fn is_video(self) -> bool {
        matches!(
            self,
            Self::H264 | Self::H265 | Self::Av1 | Self::Vp9 | Self::Vvc
        )
    }

    /// Whether this is an audio codec.
    pub const fn is_audio(self) -> bool {
        matches!(self, Self::Aac | Self::Opus | Self::Mp3)
    }

    /// Whether ordinary frames of this codec carry NAL units behind 4-byte
    /// lengths (H.264, H.265, VVC).
    pub const fn is_nal_based(self) -> bool {
        matches!(self, Self::H264 | Self::H265 | Self::Vvc)
    }

    /// The FourCC this codec is known by in MP4 sample entries and Enhanced
    /// RTMP (`avc1`, `hvc1`, `av01`, `vp09`, `vvc1`, `mp4a`, `Opus`, `.mp3`).
    pub const fn fourcc(self) -> FourCc {
        match self {
            Self::H264 => FourCc(*b"avc1"),
            Self::H265 => FourCc(*b"hvc1"),
            Self::Av1 => FourCc(*b"av01"),
            Self::Vp9 => FourCc(*b"vp09"),
            Self::Vvc => FourCc(*b"vvc1"),
            Self::Aac => FourCc(*b"mp4a"),
            Self::Opus => FourCc(*b"Opus"),
            Self::Mp3 => FourCc(*b".mp3"),
            Self::Amf0Data => FourCc(*b"amf0"),
            Self::Other(f) => f,
        }
    }

    /// A short lowercase name for logs and APIs (`h264`, `aac`, …).
    pub fn name(self) -> String {
        match self {
            Self::H264 => "h264".into(),
            Self::H265 => "h265".into(),
            Self::Av1 => "av1".into(),
            Self::Vp9 => "vp9".into(),
            Self::Vvc => "vvc".into(),
            Self::Aac => "aac".into(),
            Self::Opus => "opus".into(),
            Self::Mp3 => "mp3".into(),
            Self::Amf0Data => "amf0".into(),
            Self::Other(f) => f.to_string(),
        }
    }
}

impl fmt::Display for CodecId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name())
    }
}

/// What kind of media a frame carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FrameType {
    /// A picture (or a video decoder configuration).
    Video,
    /// An audio frame (or an audio decoder configuration).
    Audio,
    /// Timed metadata such as `onMetaData`.
    Data,
}

/// Per-frame flags. A small bit set; combine with `|`.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct FrameFlags(u8);

impl FrameFlags {
    /// No flag set.
    pub const NONE: Self = Self(0);
    /// A random-access point: decoding can start here (IDR, IRAP, AV1 key frame, VP9 key frame).
    pub const KEYFRAME: Self = Self(1);
    /// The payload is a decoder configuration record, not media.
    pub const CONFIG: Self = Self(1 << 1);
    /// Timestamps or decoder state do not continue from the previous frame
    /// (a publisher restarted, or a source jumped).
    pub const DISCONTINUITY: Self = Self(1 << 2);
    /// An end with no media. On a [`FrameType::Data`] frame it is the bus's
    /// in-band marker that the publisher of this stream went away
    /// ([`MediaFrame::is_publisher_end`]); on a video or audio frame it is
    /// the codec's end of sequence, the publisher staying
    /// ([`MediaFrame::is_sequence_end`]).
    pub const END_OF_STREAM: Self = Self(1 << 3);
    /// The frame belongs to a track other than its kind's default track
    /// (Enhanced RTMP multitrack; see [`MediaFrame::is_default_track`]).
    /// Set by the bus when the frame is published: whatever a protocol put
    /// here is replaced.
    pub const NON_DEFAULT_TRACK: Self = Self(1 << 4);
    /// On a [`FrameType::Data`] frame: a timed data event (an AMF0 data
    /// message such as `onCuePoint`, `onTextData`, `onCaptionInfo`) that
    /// players receive in order, as opposed to the stream's metadata
    /// (`onMetaData`), which is kept as configuration and replayed to
    /// every joining player ([`MediaFrame::is_data_event`]).
    pub const DATA_EVENT: Self = Self(1 << 5);

    /// The raw bits.
    pub const fn bits(self) -> u8 {
        self.0
    }

    /// Whether every flag of `other` is set in `self`.
    pub const fn contains(self, other: Self) -> bool {
        self.0 & other.0 == other.0
    }

    /// Set the flags of `other`.
    pub fn insert(&mut self, other: Self) {
        self.0 |= other.0;
    }

    /// Clear the flags of `other`.
    pub fn remove(&mut self, other: Self) {
        self.0 &= !other.0;
    }
}

impl std::ops::BitOr for FrameFlags {
    type Output = Self;
    fn bitor(self, rhs: Self) -> Self {
        Self(self.0 | rhs.0)
    }
}

impl std::ops::BitOrAssign for FrameFlags {
    fn bitor_assign(&mut self, rhs: Self) {
        self.0 |= rhs.0;
    }
}

impl fmt::Debug for FrameFlags {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names = [
            (Self::KEYFRAME, "KEYFRAME"),
            (Self::CONFIG, "CONFIG"),
            (Self::DISCONTINUITY, "DISCONTINUITY"),
            (Self::END_OF_STREAM, "END_OF_STREAM"),
            (Self::NON_DEFAULT_TRACK, "NON_DEFAULT_TRACK"),
            (Self::DATA_EVENT, "DATA_EVENT"),
        ];
        let mut first = true;
        f.write_str("FrameFlags(")?;
        for (flag, name) in names {
            if self.contains(flag) {
                if !first {
                    f.write_str(" | ")?;
                }
                f.write_str(name)?;
                first = false;
            }
        }
        f.write_str(")")
    }
}

/// The unit of a timestamp: one tick is `num / den` seconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct TimeBase {
    /// Numerator of the tick length in seconds.
    pub num: u32,
    /// Denominator of the tick length in seconds (never zero).
    pub den: u32,
}

impl TimeBase {
    /// Milliseconds: RTMP and FLV timestamps.
    pub const MILLIS: Self = Self { num: 1, den: 1000 };
    /// The 90 kHz clock of MPEG-TS and most video RTP payloads.
    pub const MPEG_90K: Self = Self {
        num: 1,
        den: 90_000,
    };
    /// Microseconds.
    pub const MICROS: Self = Self {
        num: 1,
        den: 1_000_000,
    };

    /// A time base of `num / den` seconds per tick. `den == 0` is clamped to 1.
    pub const fn new(num: u32, den: u32) -> Self {
        Self {
            num,
            den: if den == 0 { 1 } else { den },
        }
    }

    /// Convert `ts` ticks of `self` into ticks of `to`, rounding toward
    /// negative infinity. Saturates instead of overflowing.
    pub fn rescale(self, ts: i64, to: TimeBase) -> i64 {
        if self == to {
            return ts;
        }
        let n = i128::from(ts) * i128::from(self.num) * i128::from(to.den);
        let d = i128::from(self.den) * i128::from(to.num.max(1));
        let q = n.div_euclid(d);
        q.clamp(i128::from(i64::MIN), i128::from(i64::MAX)) as i64
    }
}

/// One access unit of media. Cheap to clone (the payload is shared).
#[derive(Clone, PartialEq, Eq)]
pub struct MediaFrame {
    /// The codec of `payload`.
    pub codec: CodecId,
    /// Video, audio or data.
    pub frame_type: FrameType,
    /// Keyframe, config, discontinuity, end-of-stream.
    pub flags: FrameFlags,
    /// Presentation timestamp in `time_base` ticks.
    pub pts: i64,
    /// Decode timestamp in `time_base` ticks (equal to `pts` without reordering).
    pub dts: i64,
    /// The unit of `pts` and `dts`.
    pub time_base: TimeBase,
    /// Track number within its kind (0 for the main video or audio track;
    /// Enhanced RTMP multitrack uses others).
    pub track: u8,
    /// Position on the stream's bus, assigned when the frame is published
    /// (0 before). Monotonic per stream.
    pub sequence: u64,
    /// The payload, in the codec's canonical layout (see the [module docs](self)).
    pub payload: Bytes,
}

impl MediaFrame {
    /// A frame of `codec` at `dts`/`pts` (in `time_base`), kind inferred from
    /// the codec, no flags, track 0.
    pub fn new(codec: CodecId, time_base: TimeBase, dts: i64, pts: i64, payload: Bytes) -> Self {
        let frame_type = if codec.is_video() {
            FrameType::Video
        } else if codec.is_audio() {
            FrameType::Audio
        } else {
            FrameType::Data
        };
        Self {
            codec,
            frame_type,
            flags: FrameFlags::NONE,
            pts,
            dts,
            time_base,
            track: 0,
            sequence: 0,
            payload,
        }
    }

    /// A video frame with millisecond timestamps.
    pub fn video(codec: CodecId, dts_ms: i64, pts_ms: i64, payload: Bytes) -> Self {
        let mut f = Self::new(codec, TimeBase::MILLIS, dts_ms, pts_ms, payload);
        f.frame_type = FrameType::Video;
        f
    }

    /// An audio frame with millisecond timestamps (`pts == dts`).
    pub fn audio(codec: CodecId, ts_ms: i64, payload: Bytes) -> Self {
        let mut f = Self::new(codec, TimeBase::MILLIS, ts_ms, ts_ms, payload);
        f.frame_type = FrameType::Audio;
        f
    }

    /// A decoder configuration frame (kind inferred from the codec).
    pub fn config(codec: CodecId, ts_ms: i64, record: Bytes) -> Self {
        Self::new(codec, TimeBase::MILLIS, ts_ms, ts_ms, record).with_flags(FrameFlags::CONFIG)
    }

    /// A metadata frame carrying an AMF0 script object.
    pub fn metadata(ts_ms: i64, amf0: Bytes) -> Self {
        Self::new(CodecId::Amf0Data, TimeBase::MILLIS, ts_ms, ts_ms, amf0)
    }

    /// A timed data event carrying an AMF0 data message whole (its name,
    /// such as `onCuePoint`, then its values): passed on to players, never
    /// kept as the stream's configuration.
    pub fn data_event(ts_ms: i64, amf0: Bytes) -> Self {
        Self::metadata(ts_ms, amf0).with_flags(FrameFlags::DATA_EVENT)
    }

    /// Whether this is a timed data event ([`FrameFlags::DATA_EVENT`]), not
    /// the stream's metadata.
    pub fn is_data_event(&self) -> bool {
        self.frame_type == FrameType::Data && self.flags.contains(FrameFlags::DATA_EVENT)
    }

    /// The in-band end-of-stream marker a publisher leaves when it goes.
    pub fn end_of_stream() -> Self {
        Self::new(CodecId::Amf0Data, TimeBase::MILLIS, 0, 0, Bytes::new())
            .with_flags(FrameFlags::END_OF_STREAM)
    }

    /// Add flags (builder style).
    #[must_use]
    pub fn with_flags(mut self, flags: FrameFlags) -> Self {
        self.flags |= flags;
        self
    }

    /// Set the track (builder style).
    #[must_use]
    pub fn with_track(mut self, track: u8) -> Self {
        self.track = track;
        self
    }

    /// Whether this is a random-access point.
    pub fn is_keyframe(&self) -> bool {
        self.flags.contains(FrameFlags::KEYFRAME)
    }

    /// Whether the payload is a decoder configuration record.
    pub fn is_config(&self) -> bool {
        self.flags.contains(FrameFlags::CONFIG)
    }

    /// Whether this frame is flagged [`FrameFlags::END_OF_STREAM`]: either
    /// the publisher left ([`is_publisher_end`](Self::is_publisher_end)) or
    /// a codec ended its sequence ([`is_sequence_end`](Self::is_sequence_end)).
    /// Neither carries media.
    pub fn is_end_of_stream(&self) -> bool {
        self.flags.contains(FrameFlags::END_OF_STREAM)
    }

    /// Whether this is the bus's in-band marker that the publisher left
    /// (what [`MediaFrame::end_of_stream`] builds): what follows, if
    /// anything, comes from the next publisher.
    pub fn is_publisher_end(&self) -> bool {
        self.is_end_of_stream() && self.frame_type == FrameType::Data
    }

    /// Whether this is a codec's end of sequence (AVC end of sequence, FLV
    /// 10.1 §E.4.3.1 `AVCPacketType` 2; Enhanced RTMP `SequenceEnd`): a video
    /// or audio frame of that codec and track, flagged
    /// [`FrameFlags::END_OF_STREAM`]. The publisher is still there; the
    /// codec restarts at its next configuration and keyframe.
    pub fn is_sequence_end(&self) -> bool {
        self.is_end_of_stream() && self.frame_type != FrameType::Data
    }

    /// Whether this frame belongs to its kind's default track: the track a
    /// player that did not ask for multitrack receives, and the one whose
    /// keyframes start a GOP. For a published frame the bus decides (see
    /// [`crate::bus`], "Tracks"); frames of no media kind (`onMetaData`, the
    /// end-of-stream marker) are always on it.
    pub fn is_default_track(&self) -> bool {
        !self.flags.contains(FrameFlags::NON_DEFAULT_TRACK)
    }

    /// Whether this frame is video.
    pub fn is_video(&self) -> bool {
        self.frame_type == FrameType::Video
    }

    /// Whether this frame is audio.
    pub fn is_audio(&self) -> bool {
        self.frame_type == FrameType::Audio
    }

    /// `dts` in `to` ticks.
    pub fn dts_in(&self, to: TimeBase) -> i64 {
        self.time_base.rescale(self.dts, to)
    }

    /// `pts` in `to` ticks.
    pub fn pts_in(&self, to: TimeBase) -> i64 {
        self.time_base.rescale(self.pts, to)
    }

    /// `dts` in milliseconds.
    pub fn dts_ms(&self) -> i64 {
        self.dts_in(TimeBase::MILLIS)
    }

    /// `pts` in milliseconds.
    pub fn pts_ms(&self) -> i64 {
        self.pts_in(TimeBase::MILLIS)
    }
}

impl fmt::Debug for MediaFrame {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MediaFrame")
            .field("codec", &self.codec)
            .field("type", &self.frame_type)
            .field("flags", &self.flags)
            .field("dts", &self.dts)
            .field("pts", &self.pts)
            .field(
                "time_base",
                &format_args!("{}/{}", self.time_base.num, self.time_base.den),
            )
            .field("track", &self.track)
            .field("seq", &self.sequence)
            .field("len", &self.payload.len())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rescale_between_bases() {
        assert_eq!(TimeBase::MILLIS.rescale(1000, TimeBase::MPEG_90K), 90_000);
        assert_eq!(TimeBase::MPEG_90K.rescale(90_000, TimeBase::MILLIS), 1000);
        assert_eq!(TimeBase::MPEG_90K.rescale(-1, TimeBase::MILLIS), -1);
        assert_eq!(
            TimeBase::MILLIS.rescale(i64::MAX, TimeBase::MPEG_90K),
            i64::MAX
        );
        assert_eq!(TimeBase::new(1, 0).den, 1);
    }

    #[test]
    fn flags_combine_and_print() {
        let mut f = FrameFlags::KEYFRAME | FrameFlags::CONFIG;
        assert!(f.contains(FrameFlags::KEYFRAME));
        f.remove(FrameFlags::KEYFRAME);
        assert!(!f.contains(FrameFlags::KEYFRAME));
        assert_eq!(format!("{f:?}"), "FrameFlags(CONFIG)");
    }

    #[test]
    fn constructors_infer_kind() {
        let v = MediaFrame::video(CodecId::H264, 0, 40, Bytes::from_static(b"x"));
        assert!(v.is_video() && v.pts_ms() == 40);
        let a = MediaFrame::audio(CodecId::Aac, 23, Bytes::new());
        assert!(a.is_audio());
        let c = MediaFrame::config(CodecId::Opus, 0, Bytes::new());
        assert!(c.is_config() && c.is_audio());
        assert!(MediaFrame::end_of_stream().is_end_of_stream());
        assert!(MediaFrame::end_of_stream().is_publisher_end());
        assert!(!MediaFrame::end_of_stream().is_sequence_end());
        let seq_end = MediaFrame::video(CodecId::H264, 0, 0, Bytes::new())
            .with_flags(FrameFlags::END_OF_STREAM);
        assert!(seq_end.is_sequence_end() && !seq_end.is_publisher_end());
        assert_eq!(CodecId::Other(FourCc(*b"abcd")).to_string(), "abcd");
        assert_eq!(CodecId::H265.fourcc().to_string(), "hvc1");
    }
}
