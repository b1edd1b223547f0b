//! The few facts the init segment needs from a decoder configuration
//! record: picture size, sample rate, channel count.
//!
//! This is a minimal private fallback until `arcly-codec`'s
//! `CodecInfo::from_config` lands; every reader is bounded (a truncated or
//! hostile record yields `None`, never a panic).

use arcly_core::CodecId;

/// Largest RBSP this module unescapes (a parameter set is a few hundred bytes).
const MAX_PARAMETER_SET_BYTES: usize = 4096;
/// Most scaling-list / loop iterations accepted from an SPS field.
const MAX_LOOP_COUNT: u32 = 256;

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

/// A bounded MSB-first bit reader.
pub(crate) struct BitReader<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> BitReader<'a> {
    pub(crate) fn new(data: &'a [u8]) -> Self {
        Self { data, pos: 0 }
    }

    pub(crate) fn bit(&mut self) -> Option<u32> {
        let byte = *self.data.get(self.pos / 8)?;
        let b = (byte >> (7 - (self.pos % 8))) & 1;
        self.pos += 1;
        Some(u32::from(b))
    }

    pub(crate) fn bits(&mut self, n: u32) -> Option<u32> {
        if n > 32 {
            return None;
        }
        let mut v: u64 = 0;
        for _ in 0..n {
            v = (v << 1) | u64::from(self.bit()?);
        }
        u32::try_from(v).ok()
    }

    pub(crate) fn skip(&mut self, n: usize) -> Option<()> {
        let end = self.pos.checked_add(n)?;
        if end > self.data.len().checked_mul(8)? {
            return None;
        }
        self.pos = end;
        Some(())
    }

    /// Unsigned Exp-Golomb (ITU-T H.264 §9.1).
    pub(crate) fn ue(&mut self) -> Option<u32> {
        let mut zeros = 0u32;
        while self.bit()? == 0 {
            zeros += 1;
            if zeros > 31 {
                return None;
            }
        }
        let rest = self.bits(zeros)?;
        ((1u64 << zeros) - 1 + u64::from(rest)).try_into().ok()
    }

    /// Signed Exp-Golomb (ITU-T H.264 §9.1.1).
    pub(crate) fn se(&mut self) -> Option<i32> {
        let k = self.ue()?;
        let v = i64::from(k.div_ceil(2));
        i32::try_from(if k % 2 == 0 { -v } else { v }).ok()
    }
}

/// Remove emulation-prevention bytes (ITU-T H.264 §7.4.1, H.265 §7.4.2).
fn unescape(nal: &[u8]) -> Vec<u8> {
    let nal = nal
        .get(..nal.len().min(MAX_PARAMETER_SET_BYTES))
        .unwrap_or_default();
    let mut out = Vec::with_capacity(nal.len());
    let mut zeros = 0;
    for &b in nal {
        if zeros >= 2 && b == 3 {
            zeros = 0;
            continue;
        }
        zeros = if b == 0 { zeros + 1 } else { 0 };
        out.push(b);
    }
    out
}

fn clamp16(v: u32) -> u16 {
    u16::try_from(v).unwrap_or(u16::MAX)
}

/// Parse what the init segment needs out of a canonical CONFIG payload.
pub(crate) fn parse_config(codec: CodecId, record: &[u8]) -> Option<ConfigInfo> {
    match codec {
        CodecId::H264 => avc_sps(first_avc_sps(record)?),
        CodecId::H265 => hevc_sps(first_hevc_sps(record)?),
        CodecId::Av1 => av1_sequence_header(record.get(4..)?),
        CodecId::Vp9 => Some(ConfigInfo::default()),
        CodecId::Aac => aac_asc(record),
        CodecId::Opus => opus_head(record).map(|h| ConfigInfo {
            sample_rate: 48_000,
            channels: u16::from(h.channels),
            ..ConfigInfo::default()
        }),
        _ => None,
    }
}

/// AVCDecoderConfigurationRecord (ISO/IEC 14496-15 §5.3.3.1): the first SPS.
fn first_avc_sps(record: &[u8]) -> Option<&[u8]> {
    let n = record.get(5)? & 0x1f;
    if n == 0 {
        return None;
    }
    let len = usize::from(u16::from_be_bytes([*record.get(6)?, *record.get(7)?]));
    record.get(8..8usize.checked_add(len)?)
}

/// HEVCDecoderConfigurationRecord (ISO/IEC 14496-15 §8.3.3.1): the first SPS (type 33).
fn first_hevc_sps(record: &[u8]) -> Option<&[u8]> {
    let num_arrays = *record.get(22)?;
    let mut pos = 23usize;
    for _ in 0..num_arrays {
        let nal_type = record.get(pos)? & 0x3f;
        let count = u16::from_be_bytes([*record.get(pos + 1)?, *record.get(pos + 2)?]);
        pos += 3;
        for _ in 0..count {
            let len = usize::from(u16::from_be_bytes([
                *record.get(pos)?,
                *record.get(pos + 1)?,
            ]));
            let nal = record.get(pos + 2..pos.checked_add(2 + len)?)?;
            if nal_type == 33 {
                return Some(nal);
            }
            pos += 2 + len;
        }
    }
    None
}

fn skip_scaling_list(r: &mut BitReader<'_>, size: u32) -> Option<()> {
    let (mut last, mut next) = (8i32, 8i32);
    for _ in 0..size {
        if next != 0 {
            let delta = r.se()?;
            next = (last + delta + 256).rem_euclid(256);
        }
        last = if next == 0 { last } else { next };
    }
    Some(())
}

/// H.264 seq_parameter_set_rbsp (ITU-T H.264 §7.3.2.1.1) up to the cropping window.
pub(crate) fn avc_sps(nal: &[u8]) -> Option<ConfigInfo> {
    let rbsp = unescape(nal.get(1..)?);
    let mut r = BitReader::new(&rbsp);
    let profile = r.bits(8)?;
    r.skip(16)?;
    r.ue()?;
    let mut chroma = 1;
    if matches!(
        profile,
        100 | 110 | 122 | 244 | 44 | 83 | 86 | 118 | 128 | 138 | 139 | 134 | 135
    ) {
        chroma = r.ue()?;
        if chroma == 3 && r.bit()? == 1 {
            chroma = 0; // separate_colour_plane: cropped like monochrome
        }
        r.ue()?;
        r.ue()?;
        r.bit()?;
        if r.bit()? == 1 {
            let lists = if chroma == 3 { 12 } else { 8 };
            for i in 0..lists {
                if r.bit()? == 1 {
                    skip_scaling_list(&mut r, if i < 6 { 16 } else { 64 })?;
                }
            }
        }
    }
    r.ue()?;
    match r.ue()? {
        0 => {
            r.ue()?;
        }
        1 => {
            r.bit()?;
            r.se()?;
            r.se()?;
            let n = r.ue()?;
            if n > MAX_LOOP_COUNT {
                return None;
            }
            for _ in 0..n {
                r.se()?;
            }
        }
        _ => {}
    }
    r.ue()?;
    r.bit()?;
    let w_mbs = r.ue()?.checked_add(1)?;
    let h_units = r.ue()?.checked_add(1)?;
    let frame_mbs_only = r.bit()?;
    if frame_mbs_only == 0 {
        r.bit()?;
    }
    r.bit()?;
    let (mut cl, mut cr, mut ct, mut cb) = (0, 0, 0, 0);
    if r.bit()? == 1 {
        cl = r.ue()?;
        cr = r.ue()?;
        ct = r.ue()?;
        cb = r.ue()?;
    }
    let (sub_w, sub_h) = match chroma {
        1 => (2, 2),
        2 => (2, 1),
        _ => (1, 1),
    };
    let crop_y = sub_h * (2 - frame_mbs_only);
    let width = w_mbs
        .checked_mul(16)?
        .checked_sub(sub_w * cl.checked_add(cr)?)?;
    let height = (2 - frame_mbs_only)
        .checked_mul(h_units)?
        .checked_mul(16)?
        .checked_sub(crop_y.checked_mul(ct.checked_add(cb)?)?)?;
    Some(ConfigInfo {
        width: clamp16(width),
        height: clamp16(height),
        ..ConfigInfo::default()
    })
}

/// H.265 seq_parameter_set_rbsp (ITU-T H.265 §7.3.2.2) up to the conformance window.
pub(crate) fn hevc_sps(nal: &[u8]) -> Option<ConfigInfo> {
    let rbsp = unescape(nal.get(2..)?);
    let mut r = BitReader::new(&rbsp);
    r.bits(4)?;
    let max_sub_layers_minus1 = r.bits(3)?;
    r.bit()?;
    // profile_tier_level(1, sps_max_sub_layers_minus1) (§7.3.3): 96 bits general.
    r.skip(96)?;
    let mut present = [(0u32, 0u32); 8];
    for p in present.iter_mut().take(max_sub_layers_minus1 as usize) {
        *p = (r.bit()?, r.bit()?);
    }
    if max_sub_layers_minus1 > 0 {
        for _ in max_sub_layers_minus1..8 {
            r.bits(2)?;
        }
    }
    for &(profile, level) in present.iter().take(max_sub_layers_minus1 as usize) {
        if profile == 1 {
            r.skip(88)?;
        }
        if level == 1 {
            r.skip(8)?;
        }
    }
    r.ue()?;
    let mut chroma = r.ue()?;
    if chroma == 3 && r.bit()? == 1 {
        chroma = 0;
    }
    let width = r.ue()?;
    let height = r.ue()?;
    let (sub_w, sub_h) = match chroma {
        1 => (2, 2),
        2 => (2, 1),
        _ => (1, 1),
    };
    let (mut w, mut h) = (width, height);
    if r.bit()? == 1 {
        let (cl, cr, ct, cb) = (r.ue()?, r.ue()?, r.ue()?, r.ue()?);
        w = w.checked_sub(sub_w * cl.checked_add(cr)?)?;
        h = h.checked_sub(sub_h * ct.checked_add(cb)?)?;
    }
    Some(ConfigInfo {
        width: clamp16(w),
        height: clamp16(h),
        ..ConfigInfo::default()
    })
}

fn leb128(data: &[u8], pos: &mut usize) -> Option<u64> {
    let mut v = 0u64;
    for i in 0..8 {
        let b = *data.get(*pos)?;
        *pos += 1;
        v |= u64::from(b & 0x7f) << (7 * i);
        if b & 0x80 == 0 {
            return Some(v);
        }
    }
    None
}

/// Find the sequence header OBU among `obus` (AV1 spec §5.3) and read the
/// maximum frame size from it (§5.5.1).
pub(crate) fn av1_sequence_header(obus: &[u8]) -> Option<ConfigInfo> {
    let mut pos = 0usize;
    while pos < obus.len() {
        let header = *obus.get(pos)?;
        let obu_type = (header >> 3) & 0x0f;
        let has_ext = header & 0x04 != 0;
        let has_size = header & 0x02 != 0;
        pos += 1 + usize::from(has_ext);
        let size = if has_size {
            usize::try_from(leb128(obus, &mut pos)?).ok()?
        } else {
            obus.len().checked_sub(pos)?
        };
        let body = obus.get(pos..pos.checked_add(size)?)?;
        if obu_type == 1 {
            return av1_seq_body(body);
        }
        pos += size;
    }
    None
}

fn av1_seq_body(body: &[u8]) -> Option<ConfigInfo> {
    let mut r = BitReader::new(body);
    r.bits(3)?;
    r.bit()?;
    let reduced = r.bit()?;
    if reduced == 1 {
        r.bits(5)?;
    } else {
        let mut buffer_delay_len = 0;
        let mut decoder_model_info = 0;
        if r.bit()? == 1 {
            // timing_info (§5.5.3)
            r.skip(64)?;
            if r.bit()? == 1 {
                // uvlc
                let mut zeros = 0;
                while r.bit()? == 0 {
                    zeros += 1;
                    if zeros >= 32 {
                        return None;
                    }
                }
                r.bits(zeros)?;
            }
            decoder_model_info = r.bit()?;
            if decoder_model_info == 1 {
                buffer_delay_len = r.bits(5)? + 1;
                r.skip(32 + 5 + 5)?;
            }
        }
        let initial_display_delay = r.bit()?;
        let ops = r.bits(5)? + 1;
        for _ in 0..ops {
            r.bits(12)?;
            if r.bits(5)? > 7 {
                r.bit()?;
            }
            if decoder_model_info == 1 && r.bit()? == 1 {
                r.skip((2 * buffer_delay_len + 1) as usize)?;
            }
            if initial_display_delay == 1 && r.bit()? == 1 {
                r.bits(4)?;
            }
        }
    }
    let wbits = r.bits(4)? + 1;
    let hbits = r.bits(4)? + 1;
    let w = r.bits(wbits)?.checked_add(1)?;
    let h = r.bits(hbits)?.checked_add(1)?;
    Some(ConfigInfo {
        width: clamp16(w),
        height: clamp16(h),
        ..ConfigInfo::default()
    })
}

/// The frame size from a VP9 key frame's uncompressed header (VP9 spec §6.2).
pub(crate) fn vp9_keyframe_size(frame: &[u8]) -> Option<(u16, u16)> {
    let mut r = BitReader::new(frame);
    if r.bits(2)? != 2 {
        return None;
    }
    let profile = r.bit()? | (r.bit()? << 1);
    if profile == 3 {
        r.bit()?;
    }
    if r.bit()? == 1 || r.bit()? != 0 {
        return None; // show_existing_frame, or not a key frame
    }
    r.skip(2)?;
    if r.bits(24)? != 0x49_83_42 {
        return None;
    }
    // color_config (§6.2.2)
    if profile >= 2 {
        r.bit()?;
    }
    let color_space = r.bits(3)?;
    if color_space != 7 {
        r.bit()?;
        if profile == 1 || profile == 3 {
            r.skip(3)?;
        }
    } else if profile == 1 || profile == 3 {
        r.bit()?;
    }
    let w = r.bits(16)? + 1;
    let h = r.bits(16)? + 1;
    Some((clamp16(w), clamp16(h)))
}

/// AudioSpecificConfig (ISO/IEC 14496-3 §1.6.2.1): sample rate and channels.
pub(crate) fn aac_asc(asc: &[u8]) -> Option<ConfigInfo> {
    const RATES: [u32; 13] = [
        96000, 88200, 64000, 48000, 44100, 32000, 24000, 22050, 16000, 12000, 11025, 8000, 7350,
    ];
    let mut r = BitReader::new(asc);
    if r.bits(5)? == 31 {
        r.bits(6)?;
    }
    let idx = r.bits(4)?;
    let rate = if idx == 15 {
        r.bits(24)?
    } else {
        *RATES.get(idx as usize)?
    };
    let channels = r.bits(4)?;
    if rate == 0 {
        return None;
    }
    Some(ConfigInfo {
        sample_rate: rate,
        channels: channels as u16,
        ..ConfigInfo::default()
    })
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
    fn exp_golomb() {
        // 1 -> 0, 010 -> 1, 011 -> 2, 00100 -> 3
        let mut r = BitReader::new(&[0b1010_0110, 0b0100_0000]);
        assert_eq!(r.ue(), Some(0));
        assert_eq!(r.ue(), Some(1));
        assert_eq!(r.ue(), Some(2));
        assert_eq!(r.ue(), Some(3));
        let mut r = BitReader::new(&[0b0100_1100]);
        assert_eq!(r.se(), Some(1));
        assert_eq!(r.se(), Some(-1));
    }

    #[test]
    fn asc_48k_mono() {
        assert_eq!(
            aac_asc(&[0x11, 0x88]),
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
                let junk = vec![0xffu8; len];
                let _ = parse_config(codec, &junk);
            }
        }
    }
}
