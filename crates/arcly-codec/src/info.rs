//! One description for every codec: [`CodecInfo`] from a `CONFIG` frame's
//! record (or a first keyframe), with the RFC 6381 codec string, plus
//! per-codec keyframe detection over canonical payloads ([`is_keyframe`]).

use arcly_core::CodecId;
use bytes::Bytes;

use crate::aac::AudioSpecificConfig;
use crate::error::{CodecError, Result};
use crate::h264::AvcDecoderConfigurationRecord;

/// What a stream is: codec, profile, level, picture or audio format, and the
/// RFC 6381 codec string (HLS `CODECS`, fMP4, DASH).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CodecInfo {
    /// The codec.
    pub codec: CodecId,
    /// Profile number as the codec defines it (H.264 `profile_idc`, H.265
    /// `general_profile_idc`, AV1/VP9 profile, AAC object type).
    pub profile: Option<u8>,
    /// Profile name as FFmpeg prints it (`High`, `Main 10`, `LC`, …).
    pub profile_name: Option<&'static str>,
    /// Level (H.264 `level_idc`, H.265/VVC `general_level_idc`, AV1
    /// `seq_level_idx`, VP9 level × 10).
    pub level: Option<u8>,
    /// Tier: true for High tier (H.265, VVC, AV1).
    pub high_tier: Option<bool>,
    /// Picture width after cropping.
    pub width: Option<u32>,
    /// Picture height after cropping.
    pub height: Option<u32>,
    /// Frame rate as `(num, den)`, when the bitstream signals it.
    pub frame_rate: Option<(u32, u32)>,
    /// Luma bit depth.
    pub bit_depth: Option<u8>,
    /// Chroma format (0 monochrome, 1 4:2:0, 2 4:2:2, 3 4:4:4).
    pub chroma_format: Option<u8>,
    /// Audio output sample rate in Hz.
    pub sample_rate: Option<u32>,
    /// Audio channels.
    pub channels: Option<u8>,
    codec_string: String,
}

impl CodecInfo {
    fn empty(codec: CodecId) -> Self {
        Self {
            codec,
            profile: None,
            profile_name: None,
            level: None,
            high_tier: None,
            width: None,
            height: None,
            frame_rate: None,
            bit_depth: None,
            chroma_format: None,
            sample_rate: None,
            channels: None,
            codec_string: String::new(),
        }
    }

    /// The RFC 6381 codec string: `avc1.64001f`, `hvc1.1.6.L93.B0`,
    /// `av01.0.08M.08`, `vp09.00.10.08`, `vvc1.1.L51.CQA`, `mp4a.40.2`,
    /// `Opus`, `mp4a.40.34` (MP3).
    pub fn codec_string(&self) -> &str {
        &self.codec_string
    }

    /// Describe a stream from its `CONFIG` frame payload (the canonical
    /// record of `codec`: avcC, hvcC, av1C, vpcC, vvcC, AudioSpecificConfig,
    /// OpusHead).
    pub fn from_config(codec: CodecId, record: &[u8]) -> Result<Self> {
        Self::from_config_bytes(codec, &Bytes::copy_from_slice(record))
    }

    /// [`CodecInfo::from_config`] without copying a `Bytes` record.
    pub fn from_config_bytes(codec: CodecId, record: &Bytes) -> Result<Self> {
        let mut info = Self::empty(codec);
        match codec {
            CodecId::H264 => {
                let rec = AvcDecoderConfigurationRecord::parse(record)?;
                let sps = rec.parse_sps()?;
                info.profile = Some(sps.profile_idc);
                info.profile_name = Some(sps.profile_name());
                info.level = Some(sps.level_idc);
                info.width = Some(sps.width);
                info.height = Some(sps.height);
                info.frame_rate = sps.frame_rate();
                info.bit_depth = Some(sps.bit_depth_luma);
                info.chroma_format = Some(sps.chroma_format_idc);
                info.codec_string = rec.codec_string();
            }
            #[cfg(feature = "h265")]
            CodecId::H265 => {
                let rec = crate::h265::HevcDecoderConfigurationRecord::parse(record)?;
                info.profile = Some(rec.ptl.profile_idc);
                info.profile_name = Some(rec.ptl.profile_name());
                info.level = Some(rec.ptl.level_idc);
                info.high_tier = Some(rec.ptl.tier_flag);
                info.bit_depth = Some(rec.bit_depth_luma);
                info.chroma_format = Some(rec.chroma_format);
                if let Ok(sps) = rec.parse_sps() {
                    info.width = Some(sps.width);
                    info.height = Some(sps.height);
                    info.frame_rate = sps.frame_rate();
                }
                if info.frame_rate.is_none() && rec.avg_frame_rate != 0 {
                    info.frame_rate = Some(crate::h264::reduce(u64::from(rec.avg_frame_rate), 256));
                }
                info.codec_string = rec.codec_string();
            }
            #[cfg(feature = "av1")]
            CodecId::Av1 => {
                let rec = crate::av1::Av1CodecConfigurationRecord::parse(record)?;
                info.profile = Some(rec.profile);
                info.level = Some(rec.level_idx);
                info.high_tier = Some(rec.tier);
                info.bit_depth = Some(rec.bit_depth());
                info.chroma_format = Some(
                    match (
                        rec.monochrome,
                        rec.chroma_subsampling_x,
                        rec.chroma_subsampling_y,
                    ) {
                        (true, _, _) => 0,
                        (_, true, true) => 1,
                        (_, true, false) => 2,
                        _ => 3,
                    },
                );
                if let Some(sh) = rec.sequence_header()? {
                    info.profile_name = Some(sh.profile_name());
                    info.width = Some(sh.max_frame_width);
                    info.height = Some(sh.max_frame_height);
                    info.frame_rate = sh.frame_rate();
                }
                info.codec_string = rec.codec_string();
            }
            #[cfg(feature = "vp9")]
            CodecId::Vp9 => {
                let rec = crate::vp9::VpCodecConfigurationRecord::parse(record)?;
                info.fill_vp9(&rec);
            }
            #[cfg(feature = "vvc")]
            CodecId::Vvc => {
                let rec = crate::vvc::VvcDecoderConfigurationRecord::parse(record)?;
                if let Some(p) = &rec.ptl {
                    info.profile = Some(p.ptl.profile_idc);
                    info.profile_name = Some(p.ptl.profile_name());
                    info.level = Some(p.ptl.level_idc);
                    info.high_tier = Some(p.ptl.tier_flag);
                    info.bit_depth = Some(p.bit_depth);
                    info.chroma_format = Some(p.chroma_format_idc);
                    info.width = Some(u32::from(p.max_picture_width));
                    info.height = Some(u32::from(p.max_picture_height));
                    if p.avg_frame_rate != 0 {
                        info.frame_rate =
                            Some(crate::h264::reduce(u64::from(p.avg_frame_rate), 256));
                    }
                }
                if let Ok(sps) = rec.parse_sps() {
                    info.width = Some(sps.width);
                    info.height = Some(sps.height);
                    info.bit_depth = sps.bit_depth.or(info.bit_depth);
                }
                info.codec_string = rec.codec_string().unwrap_or_else(|| "vvc1".into());
            }
            CodecId::Aac => {
                let asc = AudioSpecificConfig::parse(record)?;
                info.profile = Some(asc.signalled_object_type());
                info.profile_name = Some(asc.profile_name());
                info.sample_rate = Some(asc.output_sample_rate());
                info.channels = Some(asc.channels());
                info.codec_string = asc.codec_string();
            }
            CodecId::Opus => {
                let head = OpusHead::parse(record)?;
                info.sample_rate = Some(48_000);
                info.channels = Some(head.channels);
                info.codec_string = "Opus".into();
            }
            _ => {
                return Err(CodecError::unsupported(
                    "CodecInfo",
                    "no configuration record parser for this codec (or its feature is off)",
                ))
            }
        }
        Ok(info)
    }

    #[cfg(feature = "vp9")]
    fn fill_vp9(&mut self, rec: &crate::vp9::VpCodecConfigurationRecord) {
        self.profile = Some(rec.profile);
        self.profile_name = Some(match rec.profile {
            0 => "Profile 0",
            1 => "Profile 1",
            2 => "Profile 2",
            _ => "Profile 3",
        });
        self.level = Some(rec.level);
        self.bit_depth = Some(rec.bit_depth);
        self.chroma_format = Some(match rec.chroma_subsampling {
            0 | 1 => 1,
            2 => 2,
            _ => 3,
        });
        self.width = rec.width;
        self.height = rec.height;
        self.codec_string = rec.codec_string();
    }

    /// Describe a VP9 stream from its first key frame (VP9 has no in-band
    /// configuration record): profile, size, bit depth and the vpcC-derived
    /// codec string. `fps` refines the level.
    #[cfg(feature = "vp9")]
    pub fn from_vp9_keyframe(frame: &[u8], fps: Option<(u32, u32)>) -> Result<Self> {
        let rec = crate::vp9::VpCodecConfigurationRecord::from_keyframe(frame, fps)?;
        let mut info = Self::empty(CodecId::Vp9);
        info.fill_vp9(&rec);
        info.frame_rate = fps;
        Ok(info)
    }
}

/// The Opus identification header (RFC 7845 §5.1), the Opus `CONFIG` payload.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OpusHead {
    /// `version` (1).
    pub version: u8,
    /// Output channel count.
    pub channels: u8,
    /// Samples (at 48 kHz) to discard at the start.
    pub pre_skip: u16,
    /// The original input sample rate (informational).
    pub input_sample_rate: u32,
    /// Output gain in Q7.8 dB.
    pub output_gain: i16,
    /// Channel mapping family.
    pub mapping_family: u8,
}

impl OpusHead {
    /// Parse `OpusHead` (the 8-byte magic is required).
    pub fn parse(data: &[u8]) -> Result<Self> {
        const W: &str = "OpusHead";
        let h = data.get(..19).ok_or(CodecError::truncated(W))?;
        if h.get(..8) != Some(b"OpusHead") {
            return Err(CodecError::invalid(W, "no OpusHead magic"));
        }
        if h[8] >> 4 != 0 {
            return Err(CodecError::unsupported(W, "major version above 0"));
        }
        if h[9] == 0 {
            return Err(CodecError::invalid(W, "zero channels"));
        }
        Ok(Self {
            version: h[8],
            channels: h[9],
            pre_skip: u16::from_le_bytes([h[10], h[11]]),
            input_sample_rate: u32::from_le_bytes([h[12], h[13], h[14], h[15]]),
            output_gain: i16::from_le_bytes([h[16], h[17]]),
            mapping_family: h[18],
        })
    }
}

/// Whether a canonical payload of `codec` is a random-access point: an IDR
/// (H.264), an IRAP (H.265, VVC), a shown key frame (AV1, VP9). Every audio
/// frame is one. Codecs whose feature is off, and data, report `false`.
pub fn is_keyframe(codec: CodecId, payload: &[u8]) -> bool {
    match codec {
        CodecId::H264 => crate::h264::contains_keyframe(payload),
        #[cfg(feature = "h265")]
        CodecId::H265 => crate::h265::contains_keyframe(payload),
        #[cfg(feature = "vvc")]
        CodecId::Vvc => crate::vvc::contains_keyframe(payload),
        #[cfg(feature = "av1")]
        CodecId::Av1 => crate::av1::is_keyframe(payload),
        #[cfg(feature = "vp9")]
        CodecId::Vp9 => crate::vp9::is_keyframe(payload),
        c => c.is_audio(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aac_and_opus_info() {
        let i = CodecInfo::from_config(CodecId::Aac, &[0x11, 0x88]).unwrap();
        assert_eq!(
            (i.sample_rate, i.channels, i.codec_string()),
            (Some(48000), Some(1), "mp4a.40.2")
        );
        let head = b"OpusHead\x01\x01\x38\x01\x80\xbb\x00\x00\x00\x00\x00";
        let o = CodecInfo::from_config(CodecId::Opus, head).unwrap();
        assert_eq!((o.channels, o.codec_string()), (Some(1), "Opus"));
        assert!(CodecInfo::from_config(CodecId::Mp3, &[]).is_err());
        assert!(is_keyframe(CodecId::Aac, &[]));
        assert!(!is_keyframe(CodecId::Amf0Data, &[]));
    }
}
