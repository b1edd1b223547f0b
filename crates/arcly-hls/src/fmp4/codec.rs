//! The few facts the init segment needs from a decoder configuration
//! record — picture size, sample rate, channel count — taken from
//! `arcly-codec` ([`CodecInfo`]), plus the Opus details `dOps` and sample
//! durations need (the channel mapping table and the TOC byte, which
//! `arcly-codec` does not model).

use arcly_codec::CodecInfo;
use arcly_core::CodecId;

/// What the sample entry needs to know about a track.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct ConfigInfo {
    /// Picture width in pixels (0 when unknown).
    pub width: u16,
    /// Picture height in pixels (0 when unknown).
    pub height: u16,
    /// Audio sample rate in Hz (0 for video / unknown).
    pub sample_rate: u32,
    /// Audio channel count (0 for video / unknown).
    pub channels: u16,
}

fn clamp16(v: u32) -> u16 {
    u16::try_from(v).unwrap_or(u16::MAX)
}

/// What the init segment needs out of a canonical CONFIG payload, or `None`
/// when the record does not parse.
pub(crate) fn parse_config(codec: CodecId, record: &bytes::Bytes) -> Option<ConfigInfo> {
    let info = CodecInfo::from_config_bytes(codec, record).ok()?;
    let sample_rate = match codec {
        // The media timescale is the core AAC rate: one raw frame is 1024
        // samples of it, SBR or not (ISO/IEC 14496-3 §1.6.2.1).
        CodecId::Aac => {
            arcly_codec::aac::AudioSpecificConfig::parse(record)
                .ok()?
                .sampling_frequency
        }
        _ => info.sample_rate.unwrap_or(0),
    };
    if codec.is_audio() && sample_rate == 0 {
        return None;
    }
    Some(ConfigInfo {
        width: clamp16(info.width.unwrap_or(0)),
        height: clamp16(info.height.unwrap_or(0)),
        sample_rate,
        channels: u16::from(info.channels.unwrap_or(0)),
    })
}

/// Picture size of a VP9 key frame (VP9 bitstream §6.2, via `arcly-codec`).
pub(crate) fn vp9_keyframe_size(frame: &[u8]) -> Option<(u16, u16)> {
    let h = arcly_codec::vp9::FrameHeader::parse(frame).ok()?;
    h.size.map(|(w, h)| (clamp16(w), clamp16(h)))
}

/// The fields of an Opus identification header (RFC 7845 §5.1).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct OpusHead {
    pub channels: u8,
    pub pre_skip: u16,
    pub input_rate: u32,
    pub gain: i16,
    pub mapping_family: u8,
    /// stream count, coupled count, channel mapping (family != 0 only).
    pub mapping: Vec<u8>,
}

/// Parse `OpusHead` (RFC 7845 §5.1, little-endian fields).
pub(crate) fn opus_head(h: &[u8]) -> Option<OpusHead> {
    if h.get(..8)? != b"OpusHead" || h.get(8)? & 0xf0 != 0 {
        return None;
    }
    let channels = *h.get(9)?;
    let mapping_family = *h.get(18)?;
    let mapping = if mapping_family != 0 {
        h.get(19..21usize.checked_add(usize::from(channels))?)?
            .to_vec()
    } else {
        Vec::new()
    };
    if channels == 0 {
        return None;
    }
    Some(OpusHead {
        channels,
        pre_skip: u16::from_le_bytes([*h.get(10)?, *h.get(11)?]),
        input_rate: u32::from_le_bytes([*h.get(12)?, *h.get(13)?, *h.get(14)?, *h.get(15)?]),
        gain: i16::from_le_bytes([*h.get(16)?, *h.get(17)?]),
        mapping_family,
        mapping,
    })
}

/// Samples at 48 kHz in one Opus packet, from its TOC byte and frame count
/// (RFC 6716 §3.1, §3.2).
pub(crate) fn opus_packet_samples(packet: &[u8]) -> Option<u32> {
    let toc = *packet.first()?;
    let config = toc >> 3;
    let frame = match config {
        0..=11 => [480, 960, 1920, 2880][usize::from(config & 3)],
        12..=15 => [480, 960][usize::from(config & 1)],
        _ => [120, 240, 480, 960][usize::from(config & 3)],
    };
    let frames = match toc & 3 {
        0 => 1,
        1 | 2 => 2,
        _ => u32::from(*packet.get(1)? & 0x3f),
    };
    let total = frame * frames;
    (total > 0 && total <= 5760).then_some(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn asc_48k_mono() {
        assert_eq!(
            parse_config(CodecId::Aac, &bytes::Bytes::from_static(&[0x11, 0x88])),
            Some(ConfigInfo {
                sample_rate: 48000,
                channels: 1,
                ..ConfigInfo::default()
            })
        );
    }

    #[test]
    fn opus_toc_durations() {
        assert_eq!(opus_packet_samples(&[0xfc]), Some(960)); // CELT FB 20 ms, one frame
        assert_eq!(opus_packet_samples(&[0x78 | 1]), Some(960 * 2));
        assert_eq!(opus_packet_samples(&[]), None);
    }

    #[test]
    fn truncated_records_are_none() {
        for codec in [
            CodecId::H264,
            CodecId::H265,
            CodecId::Av1,
            CodecId::Aac,
            CodecId::Opus,
        ] {
            for len in 0..30 {
                let junk = bytes::Bytes::from(vec![0xffu8; len]);
                let _ = parse_config(codec, &junk);
            }
        }
    }
}
